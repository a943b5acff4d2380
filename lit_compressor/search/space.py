"""The search space: the genes, their allowed values, and the fixed settings of the student.

A genome is a tuple in :attr:`SearchSpace.gene_names` order: the five model genes of
:data:`GENE_ORDER` (L, H, A, D, V: the fields of :class:`StudentArchitecture`), then the optional
genes the space searches too, in this order: ``block_size`` (when it is a :class:`Gene`, not an int),
``lr`` and ``dropout`` (when set). Crossover cuts and mutation walks this order (see ``operators``).

The constraint "H divides by A" is kept by **repair**, never by rejection: :meth:`SearchSpace.repair`
keeps H and replaces A by the largest allowed head count ``<= A`` that divides H (else the smallest
that does); if no allowed A divides H, H moves to the nearest allowed value that has a divisor
(ties: the smaller H), then A is repaired. Repair consumes no random numbers, so a seeded search
stays reproducible, and every genome the operators return can be built.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from lit_compressor.core.errors import UserError
from lit_compressor.search.architecture import StudentArchitecture

GENE_ORDER = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size", "vocab_size")
"""The five model genes (the student's architecture), always the first five of a genome."""
TRAINING_GENES = ("lr", "dropout")
Genome = tuple  # tuple[int | float, ...]: the gene values in SearchSpace.gene_names order


@dataclass
class Gene:
    """Allowed values of an integer gene: ``choices``, or the range ``min..max`` (inclusive) by ``step``."""

    min: int | None = None
    max: int | None = None
    step: int = 1
    choices: list[int] | None = None

    def values(self, name: str = "gene") -> list[int]:
        if self.choices is not None:
            values = sorted(set(self.choices))
        elif self.min is None or self.max is None:
            raise UserError(f"search space gene {name!r} needs either choices or min and max.")
        elif self.step < 1 or self.min > self.max:
            raise UserError(f"search space gene {name!r}: empty range min={self.min} max={self.max} "
                            f"step={self.step}.")
        else:
            values = list(range(self.min, self.max + 1, self.step))
        if not values or values[0] < 1:
            raise UserError(f"search space gene {name!r} must allow only positive values, got {values[:5]}.")
        return values


@dataclass
class FloatGene:
    """Allowed values of a training gene (learning rate, dropout): a list of ``choices``."""

    choices: list[float]

    def values(self, name: str, low: float, high: float) -> list[float]:
        values = sorted(set(float(v) for v in self.choices))
        if not values or values[0] < low or values[-1] >= high:
            raise UserError(f"search space gene {name!r} needs choices in [{low:g}, {high:g}), got {self.choices}.")
        return values


@dataclass
class SearchSpace:
    """The genes the search chooses (defaults: the paper's space) and the fixed student settings."""

    num_hidden_layers: Gene = field(default_factory=lambda: Gene(1, 12, 1))
    hidden_size: Gene = field(default_factory=lambda: Gene(16, 768, 16))
    num_attention_heads: Gene = field(default_factory=lambda: Gene(choices=[1, 2, 4, 8]))
    intermediate_size: Gene = field(default_factory=lambda: Gene(32, 3072, 32))
    vocab_size: Gene = field(default_factory=lambda: Gene(1000, 50000, 1000))
    block_size: int | Gene = 400
    """Tokens per function (FLOPs and latency are priced at it): fixed, or a gene, e.g. ``{min: 128,
    max: 512, step: 64}``; the student is then trained and shipped with the block size the search chose."""
    lr: FloatGene | None = None
    """Training gene: the distillation's learning rate, e.g. ``{choices: [3.0e-4, 1.0e-3, 3.0e-3]}``."""
    dropout: FloatGene | None = None
    """Training gene: the student's dropout, e.g. ``{choices: [0.0, 0.1, 0.2]}``."""
    max_positions: int | None = None
    """Position embeddings of the student; default ``block_size + 2`` (RoBERTa's offset)."""
    num_inputs: Literal[1, 2] = 1
    """1: one function per example (vulnerability prediction), 2: a pair (clone detection)."""
    family: Literal["roberta", "bert"] = "roberta"
    num_labels: int = 2
    pair_head: Literal["concat", "interaction"] = "concat"
    """The pair head's input: ``[u, v]`` (Compressor) or ``[u, v, |u-v|, u*v]``."""
    inputs: Literal["plain", "dataflow"] | None = None
    """What the student reads: code sub-words (``plain``) or GraphCodeBERT's data-flow inputs too (``dataflow``,
    block_size = code + flow positions); None: the teacher's (plain without a teacher)."""

    @property
    def searches_block_size(self) -> bool:
        return not isinstance(self.block_size, int)

    @cached_property
    def gene_names(self) -> tuple[str, ...]:
        """Every gene of a genome, in order: the five model genes, then the searched extras."""
        extras = ("block_size",) if self.searches_block_size else ()
        return GENE_ORDER + extras + tuple(name for name in TRAINING_GENES if getattr(self, name) is not None)

    @cached_property
    def values(self) -> tuple[list, ...]:
        """Allowed values of each gene, in ``gene_names`` order; raises ``UserError`` if none is valid."""
        values = [getattr(self, name).values(name) for name in GENE_ORDER]
        heads = values[2]
        if not any(h % a == 0 for h in values[1] for a in heads):
            raise UserError(f"the search space has no valid genome: no hidden_size in {values[1][:8]}... "
                            f"divides by any num_attention_heads in {heads}.",
                            fix="Allow hidden sizes that are multiples of a head count.")
        if self.searches_block_size:
            values.append(self.block_size.values("block_size"))
        if self.lr is not None:
            values.append(self.lr.values("lr", 1e-12, 1.0))
        if self.dropout is not None:
            values.append(self.dropout.values("dropout", 0.0, 1.0))
        return tuple(values)

    @cached_property
    def _valid_hidden(self) -> list[int]:
        return [h for h in self.values[1] if any(h % a == 0 for a in self.values[2])]

    def block_of(self, genome: Genome) -> int:
        """The genome's block size: its gene, or the space's fixed one."""
        return genome[5] if self.searches_block_size else self.block_size

    def positions_of(self, genome: Genome) -> int:
        return self.block_of(genome) + 2 if self.max_positions is None else self.max_positions

    @property
    def positions(self) -> int:
        """Position embeddings of a space with a fixed block size."""
        if self.searches_block_size:
            raise ValueError("the block size is a gene: use positions_of(genome)")
        return self.positions_of(())

    def extras(self, genome: Genome) -> dict[str, int | float]:
        """The searched genes beyond the five model genes, by name (``block_size``, ``lr``, ``dropout``)."""
        return dict(zip(self.gene_names[5:], genome[5:], strict=True))

    def size(self) -> int:
        """Number of valid genomes."""
        layers, hidden, heads, inter, vocab = self.values[:5]
        count = len(layers) * len(inter) * len(vocab) * sum(h % a == 0 for h in hidden for a in heads)
        for values in self.values[5:]:
            count *= len(values)
        return count

    def repair(self, genome: list) -> list:
        """Make ``genome`` (in place) satisfy H % A == 0, keeping H when possible (see module doc)."""
        heads = self.values[2]
        hidden, count = genome[1], genome[2]
        if hidden % count == 0:
            return genome
        divisors = [a for a in heads if hidden % a == 0]
        if not divisors:
            hidden = min(self._valid_hidden, key=lambda h: (abs(h - hidden), h))
            divisors = [a for a in heads if hidden % a == 0]
        below = [a for a in divisors if a <= count]
        genome[1], genome[2] = hidden, (max(below) if below else min(divisors))
        return genome

    def random_genome(self, rng: random.Random) -> list:
        return self.repair([rng.choice(values) for values in self.values])

    @cached_property
    def _positions(self) -> tuple[dict, ...]:
        return tuple({v: i for i, v in enumerate(values)} for values in self.values)

    def resample(self, genome: list, index: int, rng: random.Random, window: int | None = None) -> None:
        """Give gene ``index`` another allowed value: any (Compressor), or within ``window`` steps of it."""
        values = self.values[index]
        count = len(values)
        if count < 2:
            return
        current = self._positions[index].get(genome[index], count)
        if window and current < count:
            low, high = max(0, current - window), min(count - 1, current + window)
        else:
            low, high = 0, count - 1
        pick = low + int(rng.random() * (high - low))  # one of the high - low other positions in [low, high]
        genome[index] = values[pick + (pick >= current)]

    def architecture(self, genome: Genome | list) -> StudentArchitecture:
        return StudentArchitecture(*genome[:5])


def genome_of(architecture: StudentArchitecture) -> Genome:
    return tuple(getattr(architecture, name) for name in GENE_ORDER)
