"""Clone classes: the reported pairs grouped into sets of functions that are all copies of one another.

A class is a connected component of the graph whose edges are the reported pairs (what PMD's CPD
and NiCad call a clone class: every copy of one fragment together). Classes are ranked by size,
then by their best pair's rank (a copy's covered share, else the probability, or the score uncalibrated).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from lit_compressor.clones.index import ClonePair, IndexedFunction


@dataclass(frozen=True)
class CloneClass:
    members: tuple[IndexedFunction, ...]  # by path, then line
    pairs: int  # reported pairs inside the class
    score: float  # the best pair's score
    probability: float | None  # the best pair's calibrated probability (None without calibration)
    kinds: dict[str, int] = field(default_factory=dict)  # its pairs per type: "type 1", "type 2", "semantic"
    covered: float | None = None  # the best pair's covered share when it is a copy

    @property
    def rank(self) -> float:
        if self.covered is not None:
            return self.covered
        return self.score if self.probability is None else self.probability


def _place(entry: IndexedFunction) -> tuple[str, int, str]:
    return entry.path, entry.start_line, entry.name


def clone_classes(pairs: Sequence[ClonePair]) -> list[CloneClass]:
    """The connected components of ``pairs``, largest first (then best score, then first member's place)."""
    parent: dict[IndexedFunction, IndexedFunction] = {}

    def root(entry: IndexedFunction) -> IndexedFunction:
        parent.setdefault(entry, entry)
        while parent[entry] != entry:
            parent[entry] = parent[parent[entry]]
            entry = parent[entry]
        return entry

    for pair in pairs:
        a, b = root(pair.first), root(pair.second)
        if a != b:
            parent[max(a, b, key=_place)] = min(a, b, key=_place)
    groups: dict[IndexedFunction, list[ClonePair]] = {}
    for pair in pairs:
        groups.setdefault(root(pair.first), []).append(pair)
    classes = []
    for group in groups.values():
        members = sorted({e for pair in group for e in (pair.first, pair.second)}, key=_place)
        best = max(group, key=lambda pair: pair.rank)
        kinds = dict(sorted(Counter(pair.kind for pair in group).items()))
        classes.append(CloneClass(tuple(members), len(group), best.score, best.probability, kinds,
                                  best.covered))
    classes.sort(key=lambda c: (-len(c.members), -c.rank, _place(c.members[0])))
    return classes
