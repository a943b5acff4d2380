"""The data module of a task's four splits, and the resumable loader that trains on one of them."""

from __future__ import annotations

import os
from collections.abc import Callable

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler
from torchdata.stateful_dataloader import StatefulDataLoader
from torchdata.stateful_dataloader.sampler import RandomSampler as StatefulRandomSampler

from lit_compressor.data.readers import Example
from lit_compressor.data.task import Split, TaskData

Encoder = Callable[[list], dict]
"""Turns a list of examples into a batch of model inputs (a model's ``CodeEncoder``, ``GraphCodeEncoder``...)."""


class CodeDataModule(L.LightningDataModule):
    """Serves the labelled, unlabelled, valid and test splits of one task, training on the labelled one.

    Batches are encoded by ``encoder``: the batch builder of the model's own tokenizer (a teacher's, a
    Theseus successor's), which ``LitCompressorCLI`` links from the model (in Python, pass
    ``encoder=module.code_encoder``). A distilled student's data module owns its tokenizer instead
    (:class:`~lit_compressor.training.distillation_data.DistillationDataModule`).

    The training loader is torchdata's ``StatefulDataLoader``, reshuffled every epoch; with ``order_seed``
    (set by :class:`~lit_compressor.training.resume.ExactResume`) its order comes from a generator of its
    own whose state is in the loader's ``state_dict``, so a resumed fit continues the interrupted epoch.
    """

    train_split: Split = "labelled"

    def __init__(self, task: TaskData | None = None, batch_size: int = 16, eval_batch_size: int = 64,
                 block_size: int = 400, num_workers: int = 0, encoder: Encoder | None = None):
        super().__init__()
        self.task = task or TaskData()
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.block_size = block_size
        self.num_workers = num_workers
        self.encoder = encoder
        self.order_seed: int | None = None
        self._splits: dict[str, list[Example]] = {}

    def split(self, name: Split) -> list[Example]:
        if name not in self._splits:
            self._splits[name] = self.task.read(name)
        return self._splits[name]

    def collate(self, examples: list) -> dict:
        """A batch of ``examples``, encoded for the model."""
        if self.encoder is None:
            raise RuntimeError("CodeDataModule has no encoder: give the model's (encoder=module.code_encoder)")
        return self.encoder(examples)

    def train_collate(self, examples: list) -> dict:
        """A training batch of ``examples`` (a subclass adds what the training step needs besides the inputs)."""
        return self.collate(examples)

    def train_dataset(self) -> Dataset | list[Example]:
        """What an epoch trains on."""
        return self.split(self.train_split)

    def _loader(self, examples: list[Example]) -> DataLoader:
        return DataLoader(examples, batch_size=self.eval_batch_size, collate_fn=self.collate,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> StatefulDataLoader:
        dataset = self.train_dataset()
        trainer = self.trainer
        world = (trainer.world_size, trainer.global_rank) if trainer is not None and trainer.world_size > 1 else None
        return train_loader(dataset, self.batch_size, self.train_collate, self.num_workers, self.order_seed, world)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.split("valid"))

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.split("test"))

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.split("unlabelled"))


# --- the training loader ----------------------------------------------------------------------------
class _DrawsEpochs:
    """Lightning calls a training loader's ``sampler.set_epoch(epoch)`` when each epoch starts: pass it on to a
    dataset whose examples are drawn per epoch (:mod:`~lit_compressor.training.augmentation`)."""

    epoch_dataset: Dataset

    def set_epoch(self, epoch: int) -> None:
        parent = getattr(super(), "set_epoch", None)
        if parent is not None:
            parent(epoch)
        self.epoch_dataset.set_epoch(epoch)


class EpochRandomSampler(_DrawsEpochs, RandomSampler):
    def __init__(self, dataset: Dataset, generator: torch.Generator | None = None):
        super().__init__(dataset, generator=generator)
        self.epoch_dataset = dataset


class EpochStatefulRandomSampler(_DrawsEpochs, StatefulRandomSampler):
    def __init__(self, dataset: Dataset, generator: torch.Generator | None = None):
        super().__init__(dataset, generator=generator)
        self.epoch_dataset = dataset


class EpochDistributedSampler(_DrawsEpochs, DistributedSampler):
    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.epoch_dataset = dataset


def train_loader(dataset: Dataset | list, batch_size: int, collate_fn: Encoder, num_workers: int = 0,
                 order_seed: int | None = None, world: tuple[int, int] | None = None) -> StatefulDataLoader:
    """A training loader that Lightning checkpoints (it has ``state_dict``/``load_state_dict``), reshuffled each epoch.

    ``order_seed`` None: torch's ``RandomSampler``, each epoch's order drawn from the global generator, exactly as
    ``DataLoader(shuffle=True)``. An int: torchdata's stateful ``RandomSampler`` on a generator of its own seeded
    with it, whose state at the epoch's start the loader's state holds (worker seeds come from another one). ``world``
    (processes, rank) under DDP: a ``DistributedSampler`` as Lightning would put in (seeded by
    ``seed_everything``), built here when the dataset draws its examples per epoch so that ``set_epoch`` reaches it.
    """
    draws = callable(getattr(dataset, "set_epoch", None))
    if world is not None and draws:
        sampler = EpochDistributedSampler(dataset, world[0], world[1], int(os.environ.get("PL_GLOBAL_SEED", 0)))
    elif order_seed is not None:
        order = torch.Generator().manual_seed(order_seed)
        sampler = (EpochStatefulRandomSampler if draws else StatefulRandomSampler)(dataset, generator=order)
    else:
        sampler = (EpochRandomSampler if draws else RandomSampler)(dataset)
    # worker seeds from a generator of their own: one shared with the order would be a draw behind after a
    # restore (the loader restores the order's generator to the epoch's start, then draws the epoch's order only)
    workers = torch.Generator().manual_seed(order_seed) if order_seed is not None else None
    return StatefulDataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate_fn,
                              num_workers=num_workers, persistent_workers=num_workers > 0, generator=workers)
