"""The data module: the four splits of a task, batched by the model's own encoder."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
from torch.utils.data import DataLoader

from lit_compressor.data.readers import Example
from lit_compressor.data.task import Split, TaskData


class CodeDataModule(L.LightningDataModule):
    """Serves the labelled, unlabelled, valid and test splits of one task.

    Batches are encoded by the attached model's ``collate`` (its own tokenizer: the teacher's or a
    student's), so one data config serves every stage. The model also says which split it trains on
    (``train_split``: the teacher the labelled half, a distilled student the unlabelled half).
    """

    def __init__(self, task: TaskData | None = None, batch_size: int = 16, eval_batch_size: int = 64,
                 block_size: int = 400, num_workers: int = 0):
        super().__init__()
        self.task = task or TaskData()
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.block_size = block_size
        self.num_workers = num_workers
        self.collate_fn: Callable[[list[Example]], dict] | None = None
        self._splits: dict[str, list[Example]] = {}

    def split(self, name: Split) -> list[Example]:
        if name not in self._splits:
            self._splits[name] = self.task.read(name)
        return self._splits[name]

    def _collate(self) -> Callable[[list[Example]], dict]:
        if self.collate_fn is not None:
            return self.collate_fn
        if self.trainer is not None and hasattr(self.trainer.lightning_module, "collate"):
            return self.trainer.lightning_module.collate
        raise RuntimeError("CodeDataModule needs a collate_fn or a model with a collate method")

    def _loader(self, dataset, train: bool = False) -> DataLoader:
        return DataLoader(dataset, batch_size=self.batch_size if train else self.eval_batch_size,
                          shuffle=train, collate_fn=self._collate(), num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        model = self.trainer.lightning_module if self.trainer is not None else None
        if hasattr(model, "train_dataset"):  # e.g. the unlabelled split plus each epoch's augmented pairs
            dataset = model.train_dataset(self)
        else:
            dataset = self.split(getattr(model, "train_split", "labelled"))
        return self._loader(dataset, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.split("valid"))

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.split("test"))

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.split("unlabelled"))
