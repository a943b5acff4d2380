"""The teacher module on tiny random RoBERTa and BERT encoders, and the metrics."""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch

from lit_compressor.nn.folders import load_classifier
from lit_compressor.training.datamodule import CodeDataModule
from lit_compressor.training.metrics import classification_metrics, scalar_metrics
from lit_compressor.training.teacher import TeacherModule


def test_metrics_on_hand_made_batch():
    metrics = classification_metrics(2)
    preds = torch.tensor([1, 1, 0, 0, 1, 0])
    labels = torch.tensor([1, 0, 0, 1, 1, 0])
    metrics.update(preds, labels)
    values = scalar_metrics(metrics, positive_label=1)
    # TP=2 FP=1 FN=1 TN=2
    assert values["accuracy"] == pytest.approx(4 / 6)
    assert values["precision"] == pytest.approx(2 / 3)
    assert values["recall"] == pytest.approx(2 / 3)
    assert values["f1"] == pytest.approx(2 / 3)
    assert scalar_metrics(metrics, positive_label=0)["precision"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("family", ["roberta", "bert"])
def test_teacher_fits_and_loss_goes_down(family, request, sample_task, tmp_path):
    folder = request.getfixturevalue(f"tiny_{family}")
    torch.manual_seed(0)
    module = TeacherModule(str(folder), num_inputs=2, block_size=64, lr=3e-3, warmup_ratio=0.0,
                           output_dir=str(tmp_path / "teacher"))
    sample_task.limit["labelled"] = 16
    data = CodeDataModule(sample_task, batch_size=16, block_size=64, encoder=module.code_encoder)
    module_batch = module.collate(data.split("labelled"))
    assert module_batch["input_ids"].shape[:2] == (16, 2) and module_batch["input_ids"].shape[2] <= 64

    def loss() -> float:
        module.eval()
        with torch.no_grad():
            return float(torch.nn.functional.cross_entropy(module(module_batch), module_batch["labels"]))

    before = loss()
    # Overfit the one training batch: the loss on it must fall.
    trainer = L.Trainer(max_epochs=25, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        num_sanity_val_steps=0, limit_val_batches=1, check_val_every_n_epoch=25)
    trainer.fit(module, datamodule=data)
    assert loss() < before * 0.5
    trainer.test(module, datamodule=data)
    model, _, metadata = load_classifier(tmp_path / "teacher")
    assert metadata["num_inputs"] == 2 and metadata["block_size"] == 64
    metrics = (tmp_path / "teacher" / "metrics.json").read_text()
    assert '"accuracy"' in metrics and '"size_mb"' in metrics


def test_trainable_layers_freezes_the_embeddings_and_the_lower_layers(tiny_roberta, sample_task, tmp_path):
    from lit_compressor.core.errors import UserError

    module = TeacherModule(str(tiny_roberta), num_inputs=2, block_size=64, lr=1e-2, trainable_layers=1)
    encoder = module.model.encoder
    frozen = {name: p.detach().clone() for name, p in module.named_parameters() if not p.requires_grad}
    assert {n.split(".")[2] for n in frozen} == {"embeddings", "encoder"}
    assert all(".layer.0." in n for n in frozen if ".encoder.layer." in n)
    assert all(p.requires_grad for p in encoder.encoder.layer[1].parameters())
    sample_task.limit["labelled"] = 16
    trainer = L.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        limit_val_batches=0, default_root_dir=tmp_path)
    top = encoder.encoder.layer[1].attention.self.query.weight.detach().clone()
    trainer.fit(module, datamodule=CodeDataModule(sample_task, batch_size=8, block_size=64,
                                                  encoder=module.code_encoder))
    assert all(torch.equal(p, frozen[n]) for n, p in module.named_parameters() if n in frozen)
    assert not torch.equal(encoder.encoder.layer[1].attention.self.query.weight, top)
    with pytest.raises(UserError, match="between 0 and the encoder's 2 layers"):
        TeacherModule(str(tiny_roberta), trainable_layers=3)


class FallingScore(TeacherModule):
    """A teacher whose monitored score falls every validation: its best checkpoint is the first."""

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self.log("val/score", -float(self.current_epoch))


def test_save_model_folder_writes_the_best_checkpoint_and_keeps_the_last_weights(tiny_roberta, sample_task, tmp_path):
    """The SaveModelFolder callback every module brings: the folder holds the best checkpoint's weights (epoch 0
    of 3 here), the module keeps the weights it ended with, and ``test`` writes metrics.json beside them."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from lit_compressor.training.callbacks import SaveModelFolder
    from lit_compressor.training.resume import load_checkpoint_state

    torch.manual_seed(0)
    module = FallingScore(str(tiny_roberta), num_inputs=2, block_size=64, lr=1e-2, warmup_ratio=0.0,
                          output_dir=str(tmp_path / "teacher"))
    sample_task.limit["labelled"] = 8
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "checkpoints", monitor="val/score", mode="max", save_top_k=1)
    trainer = L.Trainer(max_epochs=3, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, limit_val_batches=1, callbacks=[checkpoint])
    data = CodeDataModule(sample_task, batch_size=8, block_size=64, encoder=module.code_encoder)
    trainer.fit(module, datamodule=data)
    assert sum(isinstance(c, SaveModelFolder) for c in trainer.callbacks) == 1
    assert "epoch=0" in checkpoint.best_model_path
    best = {k[len("model."):]: v for k, v in load_checkpoint_state(checkpoint.best_model_path).items()
            if k.startswith("model.")}
    saved, _, _ = load_classifier(tmp_path / "teacher")
    assert saved.state_dict().keys() == best.keys()
    assert all(torch.equal(value, best[key]) for key, value in saved.state_dict().items())
    last = module.model.state_dict()
    assert not all(torch.equal(last[key], best[key]) for key in best)  # the module kept its own last weights
    assert not (tmp_path / "teacher" / "metrics.json").exists()
    trainer.test(module, datamodule=data)
    assert sum(isinstance(c, SaveModelFolder) for c in trainer.callbacks) == 1  # not attached twice
    metrics = json.loads((tmp_path / "teacher" / "metrics.json").read_text())
    assert metrics["params"] == sum(p.numel() for p in module.model.parameters())
    assert sum(metrics["prediction_counts"]) == len(data.split("test"))


def test_cached_frozen_layers_give_the_full_forward_and_are_computed_once_per_function(tiny_bert, sample_task,
                                                                                          tmp_path):
    """cache_frozen: the top layer runs on the cached output of the frozen ones; logits are the model's own full
    forward, each function's frozen states are computed once however often it is encoded, and only the top
    layer and the head learn."""
    from lit_compressor.core.errors import UserError

    torch.manual_seed(0)
    module = TeacherModule(str(tiny_bert), num_inputs=2, block_size=64, lr=1e-2, trainable_layers=1,
                           cache_frozen=True, output_dir=str(tmp_path / "teacher"))
    sample_task.limit.update(labelled=48, valid=16)
    data = CodeDataModule(sample_task, block_size=64, encoder=module.code_encoder,
                          function_batches={"size": 8, "eval_size": 16})
    pairs = data.collate(data.split("labelled")[:12])
    functions = data.train_collate([data.train_dataset()[0]])
    module.eval()
    with torch.no_grad():
        cached = module(pairs), module(functions)
        module.frozen_cache, cache = None, module.frozen_cache
        full = module(pairs), module(functions)
        module.frozen_cache = cache
    for got, expected in zip(cached, full, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    frozen = {name: p.detach().clone() for name, p in module.named_parameters() if not p.requires_grad}
    top = module.model.encoder.encoder.layer[1].attention.self.query.weight.detach().clone()
    trainer = L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        num_sanity_val_steps=0, default_root_dir=tmp_path)
    trainer.fit(module, datamodule=data)
    unique = {tuple(data.encoder.encode(code)) for split in ("labelled", "valid") for e in data.split(split)
              for code in e.codes}  # functions as the model reads them (two texts may share their first 64 tokens)
    assert cache.computed == len(cache) == len(unique)  # 2 epochs, 2 validations: once each
    assert all(torch.equal(p, frozen[n]) for n, p in module.named_parameters() if n in frozen)
    assert not torch.equal(module.model.encoder.encoder.layer[1].attention.self.query.weight, top)
    with pytest.raises(UserError, match="needs trainable_layers"):
        TeacherModule(str(tiny_bert), cache_frozen=True)
