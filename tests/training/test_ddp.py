"""DDP on CPU (2 gloo processes, real CLI in a subprocess) gives the 1-process results.

Soft labels: the same ids in the same order and the same logits, written once. Test metrics of one
checkpoint: the same with 1 and 2 processes, on an odd-sized test set (so the DistributedSampler pads
one rank with a duplicate, which ``ClassifierModule.real_examples`` leaves out of the metrics).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import ROOT, SAMPLE

from lit_compressor.commands.label import label
from lit_compressor.data.task import TaskData
from lit_compressor.labels.soft_labels import load_soft_labels
from lit_compressor.nn.folders import save_classifier
from lit_compressor.nn.student import build_student
from lit_compressor.nn.tokenization import train_student_tokenizer
from lit_compressor.search.architecture import StudentArchitecture

LIMIT = {"labelled": 8, "unlabelled": 41, "valid": 15, "test": 33}  # odd: DDP pads the last rank
METRICS = ("accuracy", "precision", "recall", "f1")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """``python -m lit_compressor ARGS`` from the repo root, one thread per process (2 ranks, 2 cores)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "lit_compressor", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def teacher_folder(tmp_path_factory) -> Path:
    from conftest import sample_functions

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("teacher")
    model = build_student(StudentArchitecture(1, 32, 2, 64, 400), num_inputs=2, max_positions=66)
    save_classifier(model, train_student_tokenizer(sample_functions(), 400), folder)
    return folder


def distillation_config(tmp_path: Path, soft_labels: Path) -> Path:
    config = {
        "seed_everything": 0,
        "model": {"class_path": "lit_compressor.training.distillation.DistillationModule", "init_args": {
            "architecture": {"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2,
                             "intermediate_size": 64, "vocab_size": 300},
            "lr": 3e-3, "warmup_ratio": 0.0, "output_dir": str(tmp_path / "student")}},
        "data": {"class_path": "lit_compressor.training.distillation_data.DistillationDataModule", "init_args": {
            "task": {"data_dir": str(SAMPLE), "limit": LIMIT}, "block_size": 64, "batch_size": 8,
            "eval_batch_size": 4, "soft_labels": str(soft_labels), "tokenizer_cache": str(tmp_path / "tokenizers")}},
        "trainer": {"max_epochs": 1, "accelerator": "cpu", "devices": 2, "strategy": "ddp", "logger": False,
                    "enable_progress_bar": False, "enable_model_summary": False, "num_sanity_val_steps": 0,
                    "default_root_dir": str(tmp_path / "logs"),
                    "callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint", "init_args": {
                        "dirpath": str(tmp_path / "checkpoints"), "monitor": "val/accuracy", "mode": "max",
                        "filename": "best"}}]},
    }
    path = tmp_path / "distill.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_ddp_labelling_and_distillation_match_one_process(teacher_folder, tmp_path):
    task = TaskData(data_dir=str(SAMPLE), limit=LIMIT)
    one = label(str(teacher_folder), tmp_path / "one" / "soft.safetensors", task, block_size=64, batch_size=4)

    # Soft labels with 2 processes: every example once, in split order, the same logits.
    two = tmp_path / "two" / "soft.safetensors"
    run_cli("label", f"--teacher={teacher_folder}", f"--output={two}", f"--task.data_dir={SAMPLE}",
            f"--task.limit={json.dumps(LIMIT)}", "--block_size=64", "--batch_size=4", "--accelerator=cpu",
            "--devices=2", "--strategy=ddp")
    expected, got = load_soft_labels(one), load_soft_labels(two)
    assert got.ids == expected.ids == [e.id for e in task.read("unlabelled")] and len(got.ids) == 41
    torch.testing.assert_close(got.logits, expected.logits, rtol=0, atol=1e-5)
    assert [p.name for p in two.parent.iterdir()] == ["soft.safetensors"]  # no per-rank or temporary files

    # Distillation with 2 processes completes; rank 0 exports, tests the best checkpoint, writes metrics.
    config = distillation_config(tmp_path, two)
    run_cli("fit", "--config", str(config))
    student = tmp_path / "student"
    assert sorted(p.name for p in student.iterdir()) >= ["config.json", "metrics.json", "model.safetensors"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best.ckpt"]
    two_ranks = json.loads((student / "metrics.json").read_text())

    # The same checkpoint tested by one process gives the same metrics. (With --ckpt_path, LightningCLI
    # takes the model's arguments from the checkpoint, so metrics.json goes to the same output_dir.)
    from lit_compressor.training.cli import run_lightning_cli

    (student / "metrics.json").unlink()
    run_lightning_cli(["test", "--config", str(config), "--trainer.devices=1", "--trainer.strategy=auto",
                       f"--ckpt_path={tmp_path / 'checkpoints' / 'best.ckpt'}"])
    one_rank = json.loads((student / "metrics.json").read_text())
    assert one_rank == two_ranks
    assert two_ranks["accuracy"] * 33 == pytest.approx(round(two_ranks["accuracy"] * 33))  # 33 examples, not 34
