"""``with_checkpoint_folder`` (every ``compress`` training stage): the best checkpoint keeps the weights only,
``last.ckpt`` the whole training state, and a run resumes from it."""

from __future__ import annotations

import importlib
from pathlib import Path

import lightning as L
import pytest
import torch

from lit_compressor.core.configs import with_checkpoint_folder


class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 2)

    def training_step(self, batch, batch_idx):
        return torch.nn.functional.cross_entropy(self.layer(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        self.log("val/accuracy", (self.layer(batch[0]).argmax(-1) == batch[1]).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.1)


def loader():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=generator)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long()), batch_size=8)


class StopAtEpoch(L.Callback):
    """Fails at the start of epoch ``epoch``, as a killed run stops (after that epoch's checkpoints)."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("stopped")


def callbacks(trainer_config: dict) -> list:
    built = []
    for spec in trainer_config["callbacks"]:
        module, _, name = spec["class_path"].rpartition(".")
        built.append(getattr(importlib.import_module(module), name)(**spec["init_args"]))
    return built


def test_best_checkpoint_is_weights_only_and_last_resumes(tmp_path):
    folder = tmp_path / "checkpoints"
    config = with_checkpoint_folder({"callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                                                    "init_args": {"monitor": "val/accuracy", "mode": "max",
                                                                  "save_last": True, "filename": "best-{epoch}"}}]},
                                    folder)
    assert with_checkpoint_folder(config, folder) == config  # a second call changes nothing
    options = dict(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer = L.Trainer(max_epochs=3, callbacks=[*callbacks(config), StopAtEpoch(2)], **options)
    with pytest.raises(RuntimeError, match="stopped"):  # a run stopped mid-way: its checkpoints are on disk
        trainer.fit(Tiny(), loader(), loader())
    assert sorted(p.name for p in folder.iterdir()) == sorted([Path(trainer.checkpoint_callback.best_model_path).name,
                                                               "last.ckpt"])
    best = Path(trainer.checkpoint_callback.best_model_path)  # what fit's test and the output folder read
    assert best.name.startswith("best-") and "optimizer_states" not in torch.load(best, weights_only=False)
    last = torch.load(folder / "last.ckpt", weights_only=False)
    assert last["optimizer_states"] and last["global_step"] == 8  # two epochs of 4 steps

    resumed = L.Trainer(max_epochs=3, callbacks=callbacks(config), **options)
    resumed.fit(Tiny(), loader(), loader(), ckpt_path=folder / "last.ckpt")
    assert resumed.global_step == 12 and resumed.current_epoch == 3
