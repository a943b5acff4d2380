"""W&B logging from the config, offline: the run's summary holds the architecture, size and test metrics."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch
import yaml
from conftest import ROOT, SAMPLE

from lit_compressor.data.task import TaskData
from lit_compressor.labels.soft_labels import SoftLabels, save_soft_labels

LIMIT = {"labelled": 8, "unlabelled": 32, "valid": 16, "test": 16}
ARCHITECTURE = {"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64,
                "vocab_size": 300}


def tiny_distillation_config(tmp_path: Path) -> Path:
    """A fit config for a one-layer student on random soft labels of the shipped sample (seconds on CPU)."""
    task = TaskData(data_dir=str(SAMPLE), limit=LIMIT)
    ids = [e.id for e in task.read("unlabelled")]
    soft = save_soft_labels(tmp_path / "soft.safetensors", SoftLabels(ids, torch.randn(len(ids), 2,
                                                                       generator=torch.Generator().manual_seed(0))))
    config = {
        "seed_everything": 0,
        "model": {"class_path": "lit_compressor.training.distillation.DistillationModule", "init_args": {
            "architecture": ARCHITECTURE, "lr": 1e-3, "output_dir": str(tmp_path / "student")}},
        "data": {"class_path": "lit_compressor.training.distillation_data.DistillationDataModule", "init_args": {
            "task": {"data_dir": str(SAMPLE), "limit": LIMIT}, "block_size": 64, "batch_size": 16,
            "eval_batch_size": 8, "soft_labels": str(soft), "tokenizer_cache": str(tmp_path / "tokenizers")}},
        "trainer": {"max_epochs": 1, "accelerator": "cpu", "devices": 1, "enable_progress_bar": False,
                    "enable_model_summary": False, "num_sanity_val_steps": 0,
                    "default_root_dir": str(tmp_path / "logs")},
    }
    path = tmp_path / "fit.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def wandb_records(path: Path):
    """The protobuf records of a ``.wandb`` file (a LevelDB-style log: 32 KiB blocks of chunked records)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, buffer = 7, b""
    while pos + 7 <= len(data):
        space = 32768 - pos % 32768
        if space < 7:  # a block's tail too short for a header is zero padding
            pos += space
            continue
        length, kind = struct.unpack("<HB", data[pos + 4:pos + 7])
        payload, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0:
            break
        buffer = payload if kind in (1, 2) else buffer + payload  # FULL, FIRST | MIDDLE, LAST
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(buffer)
            yield record


def offline_run(save_dir: Path) -> tuple[dict, list[str]]:
    """The final summary and the logged artifacts' names of the one offline run under ``save_dir``."""
    (run_file,) = save_dir.glob("wandb/offline-run-*/run-*.wandb")
    summary, artifacts = {}, []
    for record in wandb_records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "summary":
            for item in record.summary.update:
                summary[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        elif kind == "artifact":
            artifacts.append(f"{record.artifact.type}:{record.artifact.name}")
    return summary, artifacts


def test_offline_fit_writes_summary_and_report_artifact(tmp_path, monkeypatch):
    from lit_compressor.training.cli import run_lightning_cli

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"architecture": ARCHITECTURE}))
    save_dir = tmp_path / "wandb"
    cli = run_lightning_cli(["fit", "--config", str(tiny_distillation_config(tmp_path)),
                       "--config", str(ROOT / "configs" / "logging" / "wandb.yaml"),
                       f"--trainer.logger.init_args.save_dir={save_dir}",
                       "--trainer.logger.init_args.project=test", f"--wandb_summary.report={report}",
                       f"--model.init_args.output_dir={tmp_path}/student-{{run_id}}"])
    import wandb

    cli.trainer.logger.experiment.finish()
    wandb.teardown()  # stop the wandb-core service: the offline run file is complete (as at process exit)
    summary, artifacts = offline_run(save_dir)
    (student,) = tmp_path.glob("student-*")  # {run_id} became the W&B run id
    metrics = json.loads((student / "metrics.json").read_text())
    for name in ("accuracy", "precision", "recall", "f1"):
        assert summary[f"test/{name}"] == metrics[name]
    assert summary["params"] == metrics["params"] > 0
    assert summary["size_mb"] == metrics["size_mb"] == metrics["params"] * 4 / 1e6
    assert summary["disk_mb"] == metrics["disk_mb"] == (student / "model.safetensors").stat().st_size / 1e6
    assert {k: summary[f"architecture/{k}"] for k in ARCHITECTURE} == ARCHITECTURE
    assert "search-report:search-report" in artifacts
    run_id = student.name.removeprefix("student-")
    assert list(save_dir.glob(f"wandb/offline-run-*-{run_id}"))
    assert list(save_dir.glob(f"test/{run_id}/checkpoints/*.ckpt"))  # checkpoints are per run
