"""Teacher-labelled pair augmentation: fresh pairs of cached functions every epoch, labelled by the
teacher's own head on their cached vectors (microseconds a pair, no teacher pass).

Two ways to train on them (``mode``):

- ``pairs``: ``pairs_per_epoch`` extra pairs join the split's pairs each epoch; a batch is pairs, and
  each pair's two functions are encoded. ``random`` draws both functions uniformly; ``neighbours``
  draws an anchor uniformly and its partner among the anchor's ``neighbours`` nearest functions by
  the teacher's cosine similarity, so the pairs the teacher calls clones are not swamped by easy
  negatives.
- ``functions``: a batch is functions — groups of ``group_size``: an anchor and, with ``neighbours``,
  some of its nearest functions — and *every ordered pair* of the batch's functions is a training
  pair. Each function is encoded once a batch however many pairs it is in, so an epoch (every
  cached function once as an anchor) costs a fraction of an epoch of pairs and sees many more pairs.
  For a single-function task each function of the batch is one example, labelled by the teacher's head:
  an epoch is every cached function (the labelled split's too when ``label`` cached them).
  With ``transformed`` (robust distillation), each function of a group is, with that chance, its transformed
  copy (renamed, with dead code, ...) that ``label --transformed`` cached with the teacher's vector of it: the
  student learns the teacher's own view of edited code, and so the teacher's invariances.

What epoch ``e`` serves depends only on ``(seed, e)``: every DDP rank builds the same list and its
sampler takes its own share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch.utils.data import Dataset

from lit_compressor.data.readers import Example
from lit_compressor.labels.soft_labels import TeacherFunctions
from lit_compressor.training.seeding import epoch_generator

AUGMENTED = "aug:"


@dataclass
class Augmentation:
    """Extra teacher-labelled examples per epoch, drawn from the soft-label file's function cache."""

    pairs_per_epoch: int = 0
    """``pairs`` mode (pair tasks): extra pairs each epoch (0: none)."""
    mode: Literal["pairs", "functions"] = "pairs"
    strategy: Literal["random", "neighbours"] = "neighbours"
    neighbours: int = 10
    """``neighbours``: a partner is one of the anchor's this many nearest functions."""
    group_size: int = 4
    """``functions`` mode: functions per group (an anchor and ``group_size - 1`` of its neighbours)."""
    transformed: float = 0.0
    """``functions`` mode: the chance that a function of a group is its cached transformed copy (0: never)."""
    copy_targets: Literal["copy", "original"] = "copy"
    """What a drawn copy is taught: the teacher's view of the copy, or of the original function (the edit should
    not change what the student reads: invariance, the teacher's own sensitivity left out)."""
    seed: int = 0

    @property
    def enabled(self) -> bool:
        return self.mode == "functions" or self.pairs_per_epoch > 0


def nearest_neighbours(vectors: torch.Tensor, count: int, chunk: int = 1024) -> torch.Tensor:
    """``[F, count]``: each row's ``count`` most cosine-similar other rows (ties by index)."""
    unit = torch.nn.functional.normalize(vectors.float(), dim=-1)
    count = min(count, len(unit) - 1)
    rows = []
    for start in range(0, len(unit), chunk):
        similarity = unit[start:start + chunk] @ unit.T
        similarity[torch.arange(len(similarity)), torch.arange(start, start + len(similarity))] = -2.0
        rows.append(similarity.topk(count, dim=-1).indices)
    return torch.cat(rows)


def draw_pairs(settings: Augmentation, epoch: int, num_functions: int,
               neighbours: torch.Tensor | None) -> torch.Tensor:
    """``[pairs_per_epoch, 2]`` cache rows of the epoch's extra pairs, from ``(seed, epoch)`` alone."""
    generator = epoch_generator(settings.seed, epoch)
    count = settings.pairs_per_epoch
    anchors = torch.randint(num_functions, (count,), generator=generator)
    if settings.strategy == "neighbours" and neighbours is not None and neighbours.shape[1] > 0:
        pick = torch.randint(neighbours.shape[1], (count,), generator=generator)
        partners = neighbours[anchors, pick]
    else:
        partners = torch.randint(num_functions, (count,), generator=generator)
    swap = torch.rand(count, generator=generator) < 0.5  # a pair's order matters to a concat head
    return torch.where(swap[:, None], torch.stack([partners, anchors], 1), torch.stack([anchors, partners], 1))


class EpochDraws(Dataset):
    """What an epoch serves, drawn from the function cache: :meth:`set_epoch` redraws it once per epoch."""

    def __init__(self, functions: TeacherFunctions, settings: Augmentation, with_neighbours: bool):
        self.functions, self.settings = functions, settings
        self.neighbours = nearest_neighbours(functions.vectors, settings.neighbours) if with_neighbours else None
        self.classifier = functions.classifier()  # the teacher's head
        self.epoch = -1

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch = epoch
            self.draw(epoch)

    def draw(self, epoch: int) -> None:
        raise NotImplementedError


class EpochPairs(EpochDraws):
    """The unlabelled split plus this epoch's teacher-labelled pairs; :meth:`set_epoch` redraws them."""

    def __init__(self, examples: list[Example], functions: TeacherFunctions, codes: dict[str, str],
                 settings: Augmentation):
        super().__init__(functions, settings, with_neighbours=settings.strategy == "neighbours")
        self.examples, self.codes = examples, codes
        self.extra: list[Example] = []
        self.targets: dict[str, torch.Tensor] = {}
        self.set_epoch(0)

    def draw(self, epoch: int) -> None:
        rows = draw_pairs(self.settings, epoch, len(self.functions.keys), self.neighbours)
        logits = self.functions.logits(rows, self.classifier)
        keys = self.functions.keys
        self.extra = [Example(f"{AUGMENTED}{keys[a]}:{keys[b]}:{epoch}:{i}", (self.codes[keys[a]], self.codes[keys[b]]))
                      for i, (a, b) in enumerate(rows.tolist())]
        self.targets = {example.id: row for example, row in zip(self.extra, logits, strict=True)}

    def __len__(self) -> int:
        return len(self.examples) + self.settings.pairs_per_epoch

    def __getitem__(self, index: int) -> Example:
        return self.examples[index] if index < len(self.examples) else self.extra[index - len(self.examples)]


@dataclass(frozen=True)
class FunctionGroup:
    """Rows of the function cache that a batch of ``functions`` mode holds together."""

    rows: tuple[int, ...]


class EpochFunctions(EpochDraws):
    """``functions`` mode: every cached function once a epoch as an anchor, in groups with its neighbours; a row
    ``F + v`` (F cached functions) is the transformed copy ``v``."""

    def __init__(self, functions: TeacherFunctions, settings: Augmentation):
        super().__init__(functions, settings,
                         with_neighbours=settings.strategy == "neighbours" and settings.group_size > 1)
        self.groups: list[FunctionGroup] = []
        self.set_epoch(0)

    def draw(self, epoch: int) -> None:
        generator = epoch_generator(self.settings.seed, epoch)
        count = len(self.functions.keys)
        anchors = torch.randperm(count, generator=generator)
        others = self.settings.group_size - 1
        if self.neighbours is not None:
            picks = torch.rand(count, self.neighbours.shape[1], generator=generator).argsort(-1)[:, :others]
            partners = self.neighbours[anchors[:, None], picks]
        else:
            partners = torch.randint(count, (count, others), generator=generator)
        rows = torch.cat([anchors[:, None], partners], dim=1)
        copies = self.functions.copies
        if self.settings.transformed > 0 and copies is not None:  # a copy is row F + its index
            copy = copies.of[rows]
            swap = (torch.rand(rows.shape, generator=generator) < self.settings.transformed) & (copy >= 0)
            rows = torch.where(swap, count + copy, rows)
        self.groups = [FunctionGroup(tuple(group)) for group in rows.tolist()]

    def __len__(self) -> int:
        return len(self.functions.keys)

    def __getitem__(self, index: int) -> FunctionGroup:
        return self.groups[index]


def all_pairs(count: int) -> torch.Tensor:
    """``[count * (count - 1), 2]``: every ordered pair of distinct indices below ``count``."""
    first, second = torch.meshgrid(torch.arange(count), torch.arange(count), indexing="ij")
    keep = first != second
    return torch.stack([first[keep], second[keep]], dim=1)
