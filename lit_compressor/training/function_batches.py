"""Batches of functions drawn from a labelled pair graph: each function encoded once, every labelled pair scored.

A pair split is a graph: its unique functions are the nodes, its pairs the edges (BigCloneBench's labelled half:
31,828 pairs over 4,602 unique function texts, a median of 11 pairs a function and one in 1,299). A batch of pairs
encodes both functions of every pair, so a function in 14 pairs is encoded 14 times an epoch. A **function
batch** is a set of functions, each encoded once, and the loss covers every pair of the split among them.

An epoch is a greedy *cover* of the graph, drawn from ``(seed, epoch)`` alone:

1. take the next anchor (a permutation of the functions) that still has unscored pairs;
2. grow the batch until it holds ``size`` functions: each time add the function with the most unscored pairs to
   the batch's functions (ties: the fewest unscored pairs left outside the batch, then a random priority), or,
   when none is left and there is room for a pair, the next anchor;
3. every pair among the batch's functions is scored (pairs scored before included), and the next batch starts,
   until every pair of the split has been scored at least once.

Lightning needs the number of batches an epoch before the first one (the learning-rate schedule, validation
at the epoch's end), and a cover's count varies a little with the draw. So every epoch has the same count:
a *calibration* cover (drawn once from the seed) sets it, with a 2 % margin; an epoch whose cover is longer
draws again (up to :data:`RETRIES` times), then falls back to the calibration cover, and a shorter one repeats
some of its own batches until it has the count. Each draw depends only on ``(seed, epoch)``, so every DDP
rank builds the same epoch and a resumed fit rebuilds the interrupted one (the loader restores its position).

:func:`evaluation_batches` is one cover in which each pair is scored exactly once (in the batch that first
holds both its functions): validation and test then encode each function a few times instead of once per pair.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from lit_compressor.core.errors import UserError
from lit_compressor.data.readers import Example
from lit_compressor.training.seeding import epoch_generator

RETRIES = 8
"""Draws an epoch tries before it falls back to the calibration cover."""
MARGIN = 0.02
"""Batches an epoch may hold beyond the calibration cover's count, as a fraction of it."""
CALIBRATION_EPOCH = -1
"""The ``epoch`` of the calibration cover's generator (epochs count from 0)."""


@dataclass
class FunctionBatches:
    """Train (and evaluate) a pair task in batches of functions drawn from its pair graph."""

    size: int | None = 32
    """Functions a training batch encodes (``data.batch_size`` is not used for training then); None: train in
    batches of pairs (``data.batch_size``), evaluate in batches of functions."""
    eval_size: int | None = 256
    """Functions a validation/test batch encodes, each pair scored once (None: evaluate in batches of pairs)."""
    seed: int = 0


@dataclass(frozen=True)
class FunctionBatch:
    """One batch: rows of the graph's functions, and the examples (pairs of the split) it scores."""

    functions: tuple[int, ...]
    pairs: tuple[int, ...]


class PairGraph:
    """The unique functions (by text) of a pair split, and each example's two functions as rows of them."""

    def __init__(self, examples: Sequence[Example]):
        if any(len(example.codes) != 2 for example in examples):
            raise UserError("function batches are for pair tasks (two functions an example).",
                            "data.init_args.function_batches", "Remove function_batches for a single-function task.")
        rows: dict[str, int] = {}
        self.pairs = [tuple(rows.setdefault(code, len(rows)) for code in example.codes) for example in examples]
        self.codes = list(rows)
        self.partners: list[list[tuple[int, int]]] = [[] for _ in self.codes]
        """``partners[f]``: ``(other function, example row)`` of every pair of ``f`` (a pair of a function with
        itself once)."""
        for row, (first, second) in enumerate(self.pairs):
            self.partners[first].append((second, row))
            if second != first:
                self.partners[second].append((first, row))

    def __len__(self) -> int:
        return len(self.codes)

    def pairs_among(self, functions: Sequence[int]) -> tuple[int, ...]:
        """The example rows whose two functions are both among ``functions``, in row order."""
        members = set(functions)
        return tuple(sorted({row for f in functions for other, row in self.partners[f] if other in members}))


class _Cover:
    """The state of one greedy cover: which pairs are scored, how many each function has left."""

    def __init__(self, graph: PairGraph, generator: torch.Generator):
        self.graph = graph
        self.scored = [False] * len(graph.pairs)
        self.left = [len(partners) for partners in graph.partners]
        self.remaining = len(graph.pairs)
        self.anchors = torch.randperm(len(graph), generator=generator).tolist()
        self.priority = torch.rand(len(graph), generator=generator).tolist()
        self.next_anchor = 0

    def anchor(self, members: set[int]) -> int | None:
        """The next function of the permutation with pairs left to score, not in the batch yet."""
        while self.next_anchor < len(self.anchors) and self.left[self.anchors[self.next_anchor]] == 0:
            self.next_anchor += 1
        for f in self.anchors[self.next_anchor:]:
            if self.left[f] and f not in members:
                return f
        return None

    def batch(self, size: int) -> tuple[list[int], list[int]]:
        """``(functions, pairs first scored here)`` of the next batch."""
        members: list[int] = []
        inside: set[int] = set()
        gain: dict[int, int] = {}  # function outside the batch -> its unscored pairs with the batch's functions
        heap: list[tuple[int, int, float, int]] = []
        newly: list[int] = []
        while len(members) < size and self.remaining:
            chosen = None
            while heap:
                negative, _, _, f = heapq.heappop(heap)
                if f not in inside and gain.get(f) == -negative:
                    chosen = f
                    break
            if chosen is None:
                if members and len(members) > size - 2:
                    break  # a new anchor needs room for a partner, else it is encoded again in the next batch
                chosen = self.anchor(inside)
                if chosen is None:
                    break
            members.append(chosen)
            inside.add(chosen)
            gain.pop(chosen, None)
            for other, row in self.graph.partners[chosen]:
                if self.scored[row]:
                    continue
                if other in inside:
                    self.scored[row] = True
                    self.remaining -= 1
                    newly.append(row)
                    self.left[chosen] -= 1
                    if other != chosen:
                        self.left[other] -= 1
                else:
                    gain[other] = gain.get(other, 0) + 1
                    heapq.heappush(heap, (-gain[other], self.left[other] - gain[other], self.priority[other], other))
        return members, newly


def cover(graph: PairGraph, size: int, generator: torch.Generator) -> list[FunctionBatch]:
    """Batches of at most ``size`` functions that score every pair of ``graph`` at least once; each batch scores
    every pair among its functions."""
    if size < 2:
        raise UserError(f"function_batches.size must be at least 2 (a pair), got {size}.",
                        "data.init_args.function_batches.size")
    state = _Cover(graph, generator)
    batches = []
    while state.remaining:
        functions, _ = state.batch(size)
        batches.append(FunctionBatch(tuple(functions), graph.pairs_among(functions)))
    return batches


def evaluation_batches(graph: PairGraph, size: int) -> list[FunctionBatch]:
    """One cover (seed 0) in which each pair is scored exactly once: in the batch that first holds both its
    functions. Functions that a batch holds only for pairs scored elsewhere are not encoded there."""
    state = _Cover(graph, epoch_generator(0, 0))
    batches = []
    while state.remaining:
        functions, newly = state.batch(size)
        needed = {f for row in newly for f in graph.pairs[row]}
        batches.append(FunctionBatch(tuple(f for f in functions if f in needed), tuple(sorted(newly))))
    return batches


class EpochFunctionBatches(Dataset):
    """An epoch of :class:`FunctionBatch` items, the same count every epoch, redrawn by :meth:`set_epoch`
    (Lightning calls it through the training sampler). A loader serves them one at a time (``batch_size=1``)."""

    def __init__(self, examples: Sequence[Example], settings: FunctionBatches):
        self.graph = PairGraph(examples)
        self.settings = settings
        if settings.size is None:
            raise ValueError("FunctionBatches.size is None: the training split is served in batches of pairs")
        self.fallback = cover(self.graph, settings.size, epoch_generator(settings.seed, CALIBRATION_EPOCH))
        self.count = len(self.fallback) + math.ceil(MARGIN * len(self.fallback))
        self.batches: list[FunctionBatch] = []
        self.epoch = -1
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch = epoch
            self.batches = self.draw(epoch)

    def draw(self, epoch: int) -> list[FunctionBatch]:
        """The epoch's ``count`` batches: a cover of the graph (see the module docstring), padded with repeats."""
        generator = epoch_generator(self.settings.seed, epoch)
        batches = self.fallback
        for _ in range(RETRIES):
            drawn = cover(self.graph, self.settings.size, generator)
            if len(drawn) <= self.count:
                batches = drawn
                break
        repeats = torch.randint(len(batches), (self.count - len(batches),), generator=generator).tolist()
        return batches + [batches[i] for i in repeats]

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> FunctionBatch:
        return self.batches[index]

    def epoch_counts(self) -> dict[str, int]:
        """What the current epoch costs and scores: functions encoded, pairs scored (with repeats), the split's
        pairs, and, for comparison, the functions a batch of pairs would encode (two a pair)."""
        return {"batches": len(self.batches), "functions_encoded": sum(len(b.functions) for b in self.batches),
                "pairs_scored": sum(len(b.pairs) for b in self.batches), "pairs": len(self.graph.pairs),
                "unique_functions": len(self.graph), "pair_batch_encodings": 2 * len(self.graph.pairs)}
