"""Determinism: with a fixed seed on CPU, every stage's output is bit-identical across two runs.

Compared as bytes (or exact tensor equality): the search's best genome and its history, the trained
BPE ``tokenizer.json``, the soft-label tensors (and file), and the distilled student's
``model.safetensors`` after a short ``fit``. The search and the fit run as two separate processes, so
no state carried inside one interpreter can make them agree by accident.
"""

from __future__ import annotations

import json
import subprocess
import sys

import torch
from conftest import sample_functions
from tiny_tasks import ROOT, _env, _tiny_classifier, distill_config, make_soft_labels, make_tiny_task

from lit_compressor.data.task import TaskData


def _parallel(*commands: list[str]) -> list[subprocess.CompletedProcess]:
    """Run the commands side by side (two processes on two cores) and wait for all."""
    processes = [subprocess.Popen([sys.executable, "-m", "lit_compressor", *args], cwd=ROOT, env=_env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for args in commands]
    results = []
    for process, args in zip(processes, commands, strict=True):
        stdout, stderr = process.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(args, process.returncode, stdout, stderr))
        assert process.returncode == 0, stderr[-3000:]
    return results


def test_search_is_deterministic(tmp_path):
    outputs = [tmp_path / "a", tmp_path / "b"]
    _parallel(*[["search", "--output", str(out), "--population", "12", "--generations", "8", "--restarts", "2",
                 "--seed", "3", "--target_mb", "3"] for out in outputs])
    reports = [json.loads((out / "report.json").read_text()) for out in outputs]
    assert reports[0]["best"] == reports[1]["best"]
    assert reports[0]["history"] == reports[1]["history"] and len(reports[0]["history"]) == 2 * 9
    assert (outputs[0] / "architecture.yaml").read_bytes() == (outputs[1] / "architecture.yaml").read_bytes()


def test_bpe_training_is_deterministic(tmp_path):
    from lit_compressor.nn.tokenization import train_student_tokenizer

    corpus = sample_functions(300)
    files = []
    for name in ("a", "b"):
        train_student_tokenizer(corpus, 500, tmp_path / name)
        files += list((tmp_path / name).rglob("tokenizer.json"))
    assert len(files) == 2
    first, second = (f.read_bytes() for f in files)
    assert first == second
    assert len(json.loads(first)["model"]["vocab"]) == 500


def test_soft_labelling_is_deterministic(tmp_path):
    from lit_compressor.commands.label import label
    from lit_compressor.labels.soft_labels import load_soft_labels

    task_dir = make_tiny_task(tmp_path / "data")
    teacher = _tiny_classifier(tmp_path / "teacher")
    task = TaskData(data_dir=str(task_dir))
    paths = [label(str(teacher), tmp_path / name, task, block_size=64, batch_size=5, force=True)
             for name in ("a.safetensors", "b.safetensors")]
    first, second = (load_soft_labels(p) for p in paths)
    assert first.ids == second.ids and len(first.ids) == 24
    assert torch.equal(first.logits, second.logits)
    assert first.logits.numpy().tobytes() == second.logits.numpy().tobytes()
    # the files' headers may list the metadata in another order (safetensors keeps it in a Rust HashMap)
    assert first.metadata == second.metadata


def test_distillation_is_deterministic(tmp_path):
    from safetensors.torch import load_file

    task = make_tiny_task(tmp_path / "data")
    soft = make_soft_labels(task, tmp_path / "soft.safetensors")
    runs = [tmp_path / "a", tmp_path / "b"]
    # the same config twice, each in its own process; separate tokenizer caches, so each trains its own BPE
    _parallel(*[["fit", "--config", str(distill_config(run, task, soft, exact_resume=False, max_epochs=1)),
                 "--test_after_fit", "false"] for run in runs])
    weights = [run / "student" / "model.safetensors" for run in runs]
    assert weights[0].read_bytes() == weights[1].read_bytes()
    tokenizers = [next(run.rglob("tokenizers/*/tokenizer.json")).read_bytes() for run in runs]
    assert tokenizers[0] == tokenizers[1]
    state = load_file(weights[0])
    assert len(state) > 10 and all(torch.isfinite(t).all() for t in state.values())
