"""Teacher-labelled pair augmentation: fresh pairs of cached functions every epoch, labelled by the
teacher's own head on their cached vectors (microseconds a pair, no teacher pass).

``random`` draws both functions uniformly; ``neighbours`` draws an anchor uniformly and its partner among
the anchor's ``neighbours`` nearest functions by the teacher's cosine similarity, so the pairs the teacher
calls clones are not swamped by easy negatives. The pairs of epoch ``e`` depend only on ``(seed, e)``:
every DDP rank builds the same list and its sampler takes its own share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch.utils.data import Dataset

from lit_compressor.data.readers import Example
from lit_compressor.soft_labels import TeacherFunctions

AUGMENTED = "aug:"


@dataclass
class Augmentation:
    """Extra teacher-labelled pairs per epoch (pair tasks with a function cache only)."""

    pairs_per_epoch: int = 0
    strategy: Literal["random", "neighbours"] = "neighbours"
    neighbours: int = 10
    """``neighbours``: a partner is one of the anchor's this many nearest functions."""
    seed: int = 0


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
    generator = torch.Generator().manual_seed(settings.seed * 1_000_003 + epoch)
    count = settings.pairs_per_epoch
    anchors = torch.randint(num_functions, (count,), generator=generator)
    if settings.strategy == "neighbours" and neighbours is not None and neighbours.shape[1] > 0:
        pick = torch.randint(neighbours.shape[1], (count,), generator=generator)
        partners = neighbours[anchors, pick]
    else:
        partners = torch.randint(num_functions, (count,), generator=generator)
    swap = torch.rand(count, generator=generator) < 0.5  # a pair's order matters to a concat head
    return torch.where(swap[:, None], torch.stack([partners, anchors], 1), torch.stack([anchors, partners], 1))


class EpochPairs(Dataset):
    """The unlabelled split plus this epoch's teacher-labelled pairs; :meth:`set_epoch` redraws them."""

    def __init__(self, examples: list[Example], functions: TeacherFunctions, codes: dict[str, str],
                 settings: Augmentation):
        self.examples, self.functions, self.codes, self.settings = examples, functions, codes, settings
        self.neighbours = (nearest_neighbours(functions.vectors, settings.neighbours)
                           if settings.strategy == "neighbours" else None)
        self._classifier = functions.classifier()
        self.extra: list[Example] = []
        self.targets: dict[str, torch.Tensor] = {}
        self.epoch = -1
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        if epoch == self.epoch:
            return
        self.epoch = epoch
        rows = draw_pairs(self.settings, epoch, len(self.functions.keys), self.neighbours)
        logits = self.functions.logits(rows, self._classifier)
        keys = self.functions.keys
        self.extra = [Example(f"{AUGMENTED}{keys[a]}:{keys[b]}:{epoch}:{i}", (self.codes[keys[a]], self.codes[keys[b]]))
                      for i, (a, b) in enumerate(rows.tolist())]
        self.targets = {example.id: row for example, row in zip(self.extra, logits, strict=True)}

    def __len__(self) -> int:
        return len(self.examples) + self.settings.pairs_per_epoch

    def __getitem__(self, index: int) -> Example:
        return self.examples[index] if index < len(self.examples) else self.extra[index - len(self.examples)]
