"""The data module of a task's four splits, and the resumable loader that trains on one of them."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler
from torchdata.stateful_dataloader import StatefulDataLoader
from torchdata.stateful_dataloader.sampler import RandomSampler as StatefulRandomSampler

from lit_compressor.data.readers import Example
from lit_compressor.data.task import Split, TaskData
from lit_compressor.training.function_batches import (
    EpochFunctionBatches,
    FunctionBatch,
    FunctionBatches,
    PairGraph,
    evaluation_batches,
)

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

    ``function_batches`` (pair tasks): train on batches of functions drawn from the training split's pair graph,
    each function encoded once and every pair among them scored (:mod:`~lit_compressor.training.function_batches`;
    ``function_batches.size`` functions a batch instead of ``batch_size`` pairs), and, with ``eval_size``,
    validate and test in batches of functions too, each pair scored once.
    """

    train_split: Split = "labelled"

    def __init__(self, task: TaskData | None = None, batch_size: int = 16, eval_batch_size: int = 64,
                 block_size: int = 400, num_workers: int = 0, encoder: Encoder | None = None,
                 function_batches: FunctionBatches | dict | None = None):
        super().__init__()
        self.task = task or TaskData()
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.block_size = block_size
        self.num_workers = num_workers
        self.encoder = encoder
        self.order_seed: int | None = None
        self.function_batches = (FunctionBatches(**function_batches) if isinstance(function_batches, dict)
                                 else function_batches)
        self._splits: dict[str, list[Example]] = {}
        self._epochs: EpochFunctionBatches | None = None
        self._graphs: dict[str, PairGraph] = {}

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
        if examples and isinstance(examples[0], FunctionBatch):
            return self.function_batch(examples[0], self.train_split)
        return self.collate(examples)

    def function_batch(self, batch: FunctionBatch, split: Split) -> dict:
        """The inputs of ``batch``'s functions (one a row), ``pair_index`` ``[P, 2]`` (each scored pair's two rows
        of them), and the pairs' ``labels`` and ``ids``."""
        graph, examples = self.pair_graph(split), self.split(split)
        if self.encoder is None:
            raise RuntimeError("CodeDataModule has no encoder: give the model's (encoder=module.code_encoder)")
        encoded = self.encoder.encode_codes([[graph.codes[f]] for f in batch.functions])
        position = {f: i for i, f in enumerate(batch.functions)}
        encoded["pair_index"] = torch.tensor([[position[f] for f in graph.pairs[row]] for row in batch.pairs],
                                             dtype=torch.long).reshape(-1, 2)
        encoded["labels"] = torch.tensor([-1 if examples[row].label is None else examples[row].label
                                          for row in batch.pairs], dtype=torch.long)
        encoded["ids"] = [examples[row].id for row in batch.pairs]
        return encoded

    def pair_graph(self, split: Split) -> PairGraph:
        """The pair graph of ``split`` (its training epochs' when it is the training split)."""
        if split == self.train_split and self._epochs is not None:
            return self._epochs.graph
        if split not in self._graphs:
            self._graphs[split] = PairGraph(self.split(split))
        return self._graphs[split]

    def train_dataset(self) -> Dataset | list[Example]:
        """What an epoch trains on: the training split, or its epochs of function batches."""
        if self.function_batches is None or self.function_batches.size is None:
            return self.split(self.train_split)
        if self._epochs is None:
            self._epochs = EpochFunctionBatches(self.split(self.train_split), self.function_batches)
        return self._epochs

    def _loader(self, split: Split) -> DataLoader:
        trainer = self.trainer
        sharded = trainer is not None and trainer.world_size > 1  # a DistributedSampler pads with repeated batches
        if self.function_batches is None or self.function_batches.eval_size is None or sharded:
            return DataLoader(self.split(split), batch_size=self.eval_batch_size, collate_fn=self.collate,
                              num_workers=self.num_workers, persistent_workers=self.num_workers > 0)
        batches = evaluation_batches(self.pair_graph(split), self.function_batches.eval_size)
        return DataLoader(batches, batch_size=1, collate_fn=partial(self._collate_function_batch, split),
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def _collate_function_batch(self, split: Split, items: list[FunctionBatch]) -> dict:
        return self.function_batch(items[0], split)

    def train_dataloader(self) -> StatefulDataLoader:
        dataset = self.train_dataset()
        trainer = self.trainer
        world = (trainer.world_size, trainer.global_rank) if trainer is not None and trainer.world_size > 1 else None
        batch_size = 1 if isinstance(dataset, EpochFunctionBatches) else self.batch_size  # an item is a whole batch
        return train_loader(dataset, batch_size, self.train_collate, self.num_workers, self.order_seed, world)

    def val_dataloader(self) -> DataLoader:
        return self._loader("valid")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(self.split("unlabelled"), batch_size=self.eval_batch_size, collate_fn=self.collate,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)


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
