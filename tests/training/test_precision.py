"""Mixed precision passes straight through from the trainer config: a bf16 distillation step on CPU."""

from __future__ import annotations

import re
from pathlib import Path

import lightning as L
import torch
from conftest import ROOT, SAMPLE
from tiny_tasks import distillation

from lit_compressor.data.task import TaskData
from lit_compressor.labels.soft_labels import SoftLabels, save_soft_labels
from lit_compressor.search.architecture import StudentArchitecture


class RecordLoss(L.Callback):
    def __init__(self):
        self.losses: list[torch.Tensor] = []
        self.logits_dtypes: set[torch.dtype] = set()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(outputs["loss"].detach().float())
        with trainer.precision_plugin.forward_context():
            self.logits_dtypes.add(pl_module(batch).dtype)


def test_bf16_mixed_distillation_step_on_cpu(tmp_path):
    task = TaskData(data_dir=str(SAMPLE), limit={"labelled": 8, "unlabelled": 16, "valid": 8, "test": 8})
    ids = [e.id for e in task.read("unlabelled")]
    soft = save_soft_labels(tmp_path / "soft.safetensors", SoftLabels(ids, torch.randn(len(ids), 2)))
    torch.manual_seed(0)
    module, data = distillation(StudentArchitecture(1, 32, 2, 64, 300), task, soft, batch_size=8,
                                tokenizer_cache=tmp_path / "tokenizers", temperature=2.0)
    record = RecordLoss()
    trainer = L.Trainer(accelerator="cpu", devices=1, precision="bf16-mixed", max_steps=2, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, callbacks=[record])
    trainer.fit(module, datamodule=data)
    assert len(record.losses) == 2 and all(torch.isfinite(loss) for loss in record.losses)
    assert record.logits_dtypes == {torch.bfloat16}  # autocast really ran the student in bf16
    assert next(module.model.parameters()).dtype == torch.float32  # mixed: weights stay fp32


def test_no_hard_coded_device_in_training_code():
    """Devices come from the trainer: no ``.cuda()`` and no ``"cpu"`` device outside loading/benchmarks."""
    allowed = {"benchmark.py", "latency.py"}  # CPU latency is what they measure
    offenders = []
    for path in sorted(Path(ROOT, "lit_compressor").rglob("*.py")):
        if path.name in allowed:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if ".cuda(" in code or re.search(r"""device\s*=\s*["']cpu["']|\.to\(\s*["']cpu["']""", code):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, offenders
