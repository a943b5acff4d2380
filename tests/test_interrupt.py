"""Nothing lost on interruption: a SIGKILLed ``fit`` resumes exactly; a killed ``label`` leaves no partial file.

What is guaranteed (CPU, one process, ``seed_everything`` set, the ``ExactResume`` callback in the
trainer's callbacks): ``lit-compressor fit ... --ckpt_path last`` after a SIGKILL anywhere in an
epoch ends with *bit-identical* weights and the same test metrics as the uninterrupted run. Each
epoch's order is a permutation seeded by (seed, epoch), the checkpoint records how many batches of
the epoch were served (the resumed run skips exactly those), and the random generators (dropout)
are restored from the checkpoint. Work done after the last checkpoint is redone, nothing else.

Without ``ExactResume`` Lightning restores the step counters but restarts a plain ``DataLoader``'s
epoch from a fresh permutation of the global generator, so a mid-epoch resume trains on different
batches (some twice, some never) and ends with different weights.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from lightning.pytorch.callbacks import Callback

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "bigclonebench-sample"


class KillAtStep(Callback):
    """SIGKILLs its own process right after optimiser step ``step`` (before that step's checkpoint)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def make_tiny_task(folder: Path, functions: int = 12, unlabelled: int = 24) -> Path:
    """A BigCloneBench-format folder of real sample functions: 16 labelled, ``unlabelled``, 8 valid, 8 test pairs."""
    folder.mkdir(parents=True, exist_ok=True)
    with (SAMPLE / "data.jsonl").open() as handle:
        records = [json.loads(line) for line, _ in zip(handle, range(functions), strict=False)]
    (folder / "data.jsonl").write_text("".join(json.dumps({"func": r["func"], "idx": r["idx"]}) + "\n"
                                               for r in records))
    pairs = list(itertools.combinations([r["idx"] for r in records], 2))
    labelled, rest = pairs[:16], pairs[16:]
    (folder / "label_train.txt").write_text("".join(f"{a}\t{b}\t{i % 2}\n" for i, (a, b) in enumerate(labelled)))
    (folder / "unlabel_train.txt").write_text("".join(f"{a}\t{b}\n" for a, b in rest[:unlabelled]))
    evaluation = rest[unlabelled:]
    (folder / "valid.txt").write_text("".join(f"{a}\t{b}\t{i % 2}\n" for i, (a, b) in enumerate(evaluation[:8])))
    (folder / "test.txt").write_text("".join(f"{a}\t{b}\t{i % 2}\n" for i, (a, b) in enumerate(evaluation[8:16])))
    return folder


def make_soft_labels(task_dir: Path, output: Path, seed: int = 0) -> Path:
    """Seeded random teacher logits for every unlabelled pair (what `label` would cache)."""
    import torch

    from lit_compressor.data.task import TaskData, fingerprint
    from lit_compressor.soft_labels import SoftLabels, save_soft_labels

    examples = TaskData(data_dir=str(task_dir)).read("unlabelled")
    logits = torch.randn(len(examples), 2, generator=torch.Generator().manual_seed(seed)) * 3
    return save_soft_labels(output, SoftLabels([e.id for e in examples], logits, {"data": fingerprint(examples)}))


def distill_config(run: Path, task_dir: Path, soft_labels: Path, kill_at: int | None = None,
                   exact_resume: bool = True, max_epochs: int = 2, every_n_steps: int = 4) -> Path:
    """A tiny DistillationModule fit (1 layer, H=16, 24 pairs, batch 4: 6 steps an epoch) writing under ``run``."""
    callbacks = [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                  "init_args": {"dirpath": str(run / "checkpoints"), "every_n_train_steps": every_n_steps,
                                "save_last": True}}]
    if exact_resume:
        callbacks.append({"class_path": "lit_compressor.checkpoints.ExactResume"})
    if kill_at is not None:
        callbacks.append({"class_path": "test_interrupt.KillAtStep", "init_args": {"step": kill_at}})
    config = {
        "seed_everything": 7,
        "model": {"class_path": "lit_compressor.modules.distillation.DistillationModule", "init_args": {
            "architecture": {"num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2,
                             "intermediate_size": 32, "vocab_size": 300},
            "soft_labels": str(soft_labels), "tokenizer_cache": str(run / "tokenizers"),
            "dropout": 0.1, "output_dir": str(run / "student")}},
        "data": {"task": {"format": "bigclonebench", "data_dir": str(task_dir)}, "block_size": 64,
                 "batch_size": 4, "eval_batch_size": 8},
        "trainer": {"max_epochs": max_epochs, "accelerator": "cpu", "devices": 1, "logger": False,
                    "enable_progress_bar": False, "enable_model_summary": False,
                    "default_root_dir": str(run), "callbacks": callbacks},
    }
    run.mkdir(parents=True, exist_ok=True)
    path = run / "config.json"  # JSON is YAML
    path.write_text(json.dumps(config, indent=1))
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}


def cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lit_compressor", *args], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen, timeout: float = 240) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=timeout)
    return process.returncode, stderr


def student_state(run: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(run / "student" / "model.safetensors")


def test_sigkilled_fit_resumes_to_identical_weights_and_metrics(tmp_path):
    task = make_tiny_task(tmp_path / "data")
    soft = make_soft_labels(task, tmp_path / "soft.safetensors")
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    # 2 epochs x 6 steps; checkpoints at steps 4 and 8; killed at step 10 (mid epoch 1, after its validation)
    runs = [cli("fit", "--config", str(distill_config(reference, task, soft))),
            cli("fit", "--config", str(distill_config(killed, task, soft, kill_at=10)))]
    (code_reference, err_reference), (code_killed, err_killed) = [finish(p) for p in runs]
    assert code_reference == 0, err_reference[-3000:]
    assert code_killed == -signal.SIGKILL, err_killed[-3000:]
    last = killed / "checkpoints" / "last.ckpt"
    from lit_compressor.checkpoints import load_checkpoint_state

    checkpoint = load_checkpoint_state(last, key=None)
    assert checkpoint["global_step"] == 8 and checkpoint["epoch"] == 1
    assert not (killed / "student").exists()  # the killed run never got to write its model

    code, err = finish(cli("fit", "--config", str(distill_config(killed, task, soft)), "--ckpt_path", "last"))
    assert code == 0, err[-3000:]
    expected, resumed = student_state(reference), student_state(killed)
    assert expected.keys() == resumed.keys()
    for name, tensor in expected.items():
        assert tensor.equal(resumed[name]), name
    metrics = [json.loads((run / "student" / "metrics.json").read_text()) for run in (reference, killed)]
    assert metrics[0] == metrics[1], metrics
    assert {"accuracy", "f1", "precision", "recall"} <= metrics[0].keys()


def test_killed_label_never_leaves_a_partial_file_that_loads(tmp_path, monkeypatch):
    """The writer dies mid-write: the target path either does not exist or holds the previous, complete file."""
    import torch

    import lit_compressor.soft_labels as soft_labels
    from lit_compressor.errors import UserError

    path = tmp_path / "soft.safetensors"
    old = soft_labels.SoftLabels(["a", "b"], torch.zeros(2, 2), {"data": "old"})
    soft_labels.save_soft_labels(path, old)
    before = path.read_bytes()

    def dying_save_file(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\x00" * 10)  # half a file, then the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr(soft_labels, "save_file", dying_save_file)
    new = soft_labels.SoftLabels(["c"], torch.ones(1, 2), {"data": "new"})
    try:
        soft_labels.save_soft_labels(path, new)
    except KeyboardInterrupt:
        pass
    assert path.read_bytes() == before
    assert soft_labels.load_soft_labels(path).metadata["data"] == "old"
    assert not soft_labels.is_current(path, teacher="", data="new")
    monkeypatch.undo()
    # a killed first run: no file at the target at all, so nothing is taken as complete
    fresh = tmp_path / "fresh.safetensors"
    monkeypatch.setattr(soft_labels, "save_file", dying_save_file)
    try:
        soft_labels.save_soft_labels(fresh, new)
    except KeyboardInterrupt:
        pass
    assert not fresh.exists()
    try:
        soft_labels.load_soft_labels(fresh)
        raise AssertionError("a missing soft-label file loaded")
    except UserError as error:
        assert "not found" in str(error)


SLOW_WRITER = """
import os, sys, time
import lit_compressor.soft_labels as soft_labels
real_save_file = soft_labels.save_file

def half_written(tensors, filename, metadata=None):
    real_save_file(tensors, filename, metadata=metadata)
    os.truncate(filename, os.path.getsize(filename) // 2)
    print("HALF-WRITTEN", filename, file=sys.stderr, flush=True)
    time.sleep(600)

soft_labels.save_file = half_written
from lit_compressor.cli import main
main(sys.argv[1:])
"""


def test_sigkilled_label_subprocess_leaves_no_complete_looking_file(tmp_path):
    """A real `lit-compressor label` process SIGKILLed while its file is half written (its writer is slowed
    down to make the moment certain): the output path never exists half-written, the rerun completes."""
    from lit_compressor.soft_labels import load_soft_labels

    task = make_tiny_task(tmp_path / "data")
    teacher = _tiny_classifier(tmp_path / "teacher")
    output = tmp_path / "soft.safetensors"
    args = ["label", "--teacher", str(teacher), "--output", str(output), "--task.data_dir", str(task),
            "--block_size", "64", "--batch_size", "8"]
    process = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, *args], cwd=ROOT, env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = ""
    for line in process.stderr:  # blocks until the writer reports, or the process ends
        seen += line
        if line.startswith("HALF-WRITTEN"):
            break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert "HALF-WRITTEN" in seen, seen[-3000:]
    partial = Path(seen.split("HALF-WRITTEN", 1)[1].split()[0])
    assert partial.exists() and partial != output and not output.exists()

    code, err = finish(cli(*args))
    assert code == 0, err[-3000:]
    labels = load_soft_labels(output)
    assert len(labels.ids) == 24 and labels.logits.shape == (24, 2)
    assert not partial.exists()  # the dead run's temporary file was cleaned up


def _tiny_classifier(folder: Path) -> Path:
    """A 1-layer H=32 RoBERTa pair classifier folder (random weights), usable as a labelling teacher."""
    import torch

    from lit_compressor.models.hf_folder import save_classifier
    from lit_compressor.models.student import build_student
    from lit_compressor.search.architecture import StudentArchitecture
    from lit_compressor.tokenization import train_student_tokenizer

    torch.manual_seed(0)
    with (SAMPLE / "data.jsonl").open() as handle:
        corpus = [json.loads(line)["func"] for line, _ in zip(handle, range(200), strict=False)]
    model = build_student(StudentArchitecture(1, 32, 2, 64, 400), num_inputs=2, max_positions=130)
    return save_classifier(model, train_student_tokenizer(corpus, 400), folder)
