"""Transformed copies of the unlabelled functions for robust distillation: one copy a function, its
transformation drawn per function, so caching the teacher's view of them costs at most one more teacher pass
a function (``label`` with ``transformed``)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

from lit_compressor.data.transforms import MORPH_RENAMINGS, check_transformation, transform

DEFAULT_COPY_TRANSFORMATIONS = ("+".join(MORPH_RENAMINGS), "rename_locals", "dead_code", "swap_comparisons")
"""Morph's two renamings together, then the other three: every edit the robustness report measures."""

COPY_SEED = 1000
"""Away from the robustness report's seeds (0 by default): the report tests on draws training never saw."""


@dataclass(frozen=True)
class Copy:
    code: str
    """The original function."""
    copy: str
    transformation: str


def check_transformations(transformations: Sequence[str]) -> None:
    for transformation in transformations:
        for step in transformation.split("+"):
            check_transformation(step)


def _apply(code: str, language: str, transformation: str, seed: int) -> str:
    for step in transformation.split("+"):
        code = transform(code, language, step, seed).code
    return code


def transformed_copies(codes: Sequence[str], language: str, transformations: Sequence[str],
                       seed: int = COPY_SEED) -> list[Copy]:
    """One transformed copy of each function of ``codes`` that some transformation changes.

    Each function's transformations are tried in an order drawn from ``(seed, its text)``; the first that
    changes it makes its copy. Functions none changes (unparsed, nothing to rename) get none."""
    check_transformations(transformations)
    copies = []
    for code in dict.fromkeys(codes):
        order = list(transformations)
        random.Random(f"{seed}|{hashlib.sha256(code.encode('utf-8')).hexdigest()}").shuffle(order)
        for transformation in order:
            new = _apply(code, language, transformation, seed)
            if new != code:
                copies.append(Copy(code, new, transformation))
                break
    return copies
