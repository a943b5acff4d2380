"""A tiny random GraphCodeBERT-layout teacher fine-tunes and labels real Java pairs and real C functions."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from conftest import SAMPLE, SHARED_DATA

from lit_compressor.commands.label import label
from lit_compressor.data.task import TaskData
from lit_compressor.labels.soft_labels import load_soft_labels
from lit_compressor.training.datamodule import CodeDataModule
from lit_compressor.training.teacher import TeacherModule


@pytest.mark.parametrize(("fmt", "language"), [("bigclonebench", "java"), ("devign", "c")])
def test_graphcodebert_teacher_fits_and_labels(fmt, language, tiny_roberta, tmp_path):
    data_dir = SAMPLE if fmt == "bigclonebench" else SHARED_DATA / "devign"
    task = TaskData(format=fmt, data_dir=str(data_dir),
                    limit={"labelled": 16, "unlabelled": 12, "valid": 8, "test": 8})
    torch.manual_seed(0)
    module = TeacherModule(str(tiny_roberta), kind="graphcodebert", language=language, flow_length=16,
                           num_inputs=task.num_inputs, block_size=64, lr=1e-3, output_dir=str(tmp_path / "teacher"))
    batch = module.collate(task.read("labelled")[:4])
    length = batch["input_ids"].shape[-1]
    assert batch["attention_mask"].shape == (4, task.num_inputs, length, length)
    assert (batch["position_ids"] == 0).any()  # data-flow nodes are in the input
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        num_sanity_val_steps=0, limit_val_batches=1)
    trainer.fit(module, datamodule=CodeDataModule(task, batch_size=8, block_size=64, encoder=module.code_encoder))
    assert (tmp_path / "teacher" / "model.safetensors").is_file()

    soft = load_soft_labels(label(str(tmp_path / "teacher"), tmp_path / "soft.safetensors", task, block_size=64))
    assert soft.ids == [e.id for e in task.read("unlabelled")]
    assert soft.logits.shape == (12, 2) and torch.isfinite(soft.logits).all()
    module.eval()
    with torch.no_grad():
        expected = module(module.collate(task.read("unlabelled")))
    torch.testing.assert_close(soft.logits, expected, rtol=1e-4, atol=1e-4)
