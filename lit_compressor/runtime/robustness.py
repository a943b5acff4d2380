"""Robustness to the edits an IDE sees: accuracy, its drop and prediction flips under each transformation.

Each model predicts the clean test split once, then every transformed copy of it
(:mod:`~lit_compressor.data.transforms`). A *flip* is an example whose predicted class changes; the flip rate
is flips over all examples (Morph counts flips over the whole test split). Only the examples a transformation
changed are predicted again: an unchanged example keeps its clean prediction, so a flip is always the
transformation's doing. A function is transformed once, wherever it occurs: both functions of a pair are
transformed, and a function shared by several pairs gets the same new text in each. On the clean split the
report also gives every other model's agreement with the reference model (the teacher): how often it predicts
the teacher's class, and the wall seconds of each prediction pass and transformation (what the report costs).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from lit_compressor.data.readers import Example
from lit_compressor.data.transforms import MORPH_RENAMINGS, TRANSFORMATIONS, TransformStats, transform_all
from lit_compressor.runtime.evaluate import batched_logits
from lit_compressor.runtime.folder import load_folder

Predict = Callable[[list[Example]], np.ndarray]
"""The predicted class of each example."""

MORPH = "+".join(MORPH_RENAMINGS)
DEFAULT_TRANSFORMATIONS = (*TRANSFORMATIONS, MORPH)
"""The five transformations one by one, then Morph's two renamings together (Morph's metamorphic test)."""


@dataclass
class TransformedSplit:
    transformation: str
    seed: int
    examples: list[Example]
    changed: np.ndarray
    """Whether each example has at least one changed function."""
    stats: TransformStats
    """What the transformation did to the split's distinct functions."""


def transform_split(examples: Sequence[Example], language: str, transformation: str, seed: int) -> TransformedSplit:
    """Every distinct function of ``examples`` transformed once (``a+b`` applies ``a``, then ``b``)."""
    functions = list(dict.fromkeys(code for example in examples for code in example.codes))
    new, steps = functions, []
    for step in transformation.split("+"):
        new, step_stats = transform_all(new, language, step, seed)
        steps.append(step_stats)
    stats = steps[0]
    if len(steps) > 1:  # a chain: changed by any step; the first step tells what did not parse
        changed = sum(a != b for a, b in zip(functions, new, strict=True))
        stats = TransformStats(functions=len(functions), changed=changed, unparsed=stats.unparsed,
                               not_applicable=len(functions) - changed - stats.unparsed, partial=stats.partial)
    mapping = dict(zip(functions, new, strict=True))
    transformed = [replace(example, codes=tuple(mapping[code] for code in example.codes)) for example in examples]
    changed_mask = np.array([t.codes != e.codes for t, e in zip(transformed, examples, strict=True)], dtype=bool)
    return TransformedSplit(transformation, seed, transformed, changed_mask, stats)


def folder_predictor(folder: str | Path, backend: str = "pytorch", threads: int | None = None,
                     block_size: int | None = None, batch_size: int = 16) -> Predict:
    """A model folder's predictions through :func:`~lit_compressor.runtime.folder.load_folder` (any backend)."""
    opened = load_folder(folder, backend, threads, block_size)

    def predict(examples: list[Example]) -> np.ndarray:
        if not examples:
            return np.zeros(0, dtype=int)
        return batched_logits(opened.runner, opened.encoder, examples, batch_size).argmax(-1)

    return predict


def _accuracy(predictions: np.ndarray, labels: np.ndarray) -> float | None:
    known = labels >= 0
    return float((predictions[known] == labels[known]).mean()) if known.any() else None


def _drop(clean: float | None, transformed: float | None) -> float | None:
    return None if clean is None or transformed is None else clean - transformed


def measure_robustness(predictors: Mapping[str, Predict], examples: Sequence[Example], language: str,
                       transformations: Sequence[str] = DEFAULT_TRANSFORMATIONS, seeds: Sequence[int] = (0,),
                       reference: str = "teacher", progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The robustness report of every model of ``predictors`` (name -> predictions) on ``examples``.

    ``reference`` names the model the others' clean agreement is measured against (absent: no agreement)."""
    say = progress or (lambda message: None)
    examples = list(examples)
    labels = np.array([-1 if e.label is None else e.label for e in examples])
    inputs = max((len(e.codes) for e in examples), default=1)
    say(f"predicting {len(examples)} clean examples")
    clean, clean_seconds = {}, {}
    for name, predict in predictors.items():
        started = time.perf_counter()
        clean[name] = predict(examples)
        clean_seconds[name] = round(time.perf_counter() - started, 3)
    clean_report: dict[str, dict[str, Any]] = {name: {"accuracy": _accuracy(p, labels)} for name, p in clean.items()}
    if reference in clean:
        for name, predictions in clean.items():
            if name != reference:
                agreements = int((predictions == clean[reference]).sum())
                clean_report[name].update(agreement_with_teacher=agreements / len(examples), agreements=agreements)
    rows = []
    for transformation in transformations:
        for seed in seeds:
            started = time.perf_counter()
            split = transform_split(examples, language, transformation, seed)
            seconds = {"transform": round(time.perf_counter() - started, 3)}
            changed = [e for e, c in zip(split.examples, split.changed, strict=True) if c]
            say(f"{transformation} (seed {seed}): {len(changed)} of {len(examples)} examples changed")
            models = {}
            for name, predict in predictors.items():
                predictions = clean[name].copy()
                started = time.perf_counter()
                predictions[split.changed] = predict(changed)
                seconds[name] = round(time.perf_counter() - started, 3)
                flips = int((predictions != clean[name]).sum())
                accuracy = _accuracy(predictions, labels)
                models[name] = {"accuracy": accuracy, "drop": _drop(clean_report[name]["accuracy"], accuracy),
                                "flips": flips, "flip_rate": flips / len(examples)}
            rows.append({"transformation": transformation, "seed": seed, "functions": split.stats.to_dict(),
                         "examples_changed": int(split.changed.sum()), "models": models, "seconds": seconds})
    return {"examples": len(examples), "labelled": int((labels >= 0).sum()), "inputs_per_example": inputs,
            "language": language, "transformations": list(transformations), "seeds": list(seeds),
            "pairs": ("both functions of a pair are transformed; a function shared by pairs is transformed once"
                      if inputs > 1 else None),
            "flip_rate_over": "all examples", "drop": "clean accuracy minus transformed accuracy",
            "clean": clean_report, "clean_seconds": clean_seconds, "transformed": rows, "summary": summarise(rows)}


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float | None]]]:
    """Per transformation and model: the mean over seeds of flips, flip rate and drop."""
    summary: dict[str, dict[str, dict[str, float | None]]] = {}
    for transformation in dict.fromkeys(row["transformation"] for row in rows):
        chosen = [row for row in rows if row["transformation"] == transformation]
        summary[transformation] = {}
        for name in chosen[0]["models"]:
            values = [row["models"][name] for row in chosen]
            drops = [v["drop"] for v in values if v["drop"] is not None]
            summary[transformation][name] = {
                "flips_mean": statistics.fmean(v["flips"] for v in values),
                "flip_rate_mean": statistics.fmean(v["flip_rate"] for v in values),
                "drop_mean": statistics.fmean(drops) if drops else None}
    return summary
