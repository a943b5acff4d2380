"""Scoring a runner on examples: logits in batches, accuracy, and the seeded test sample every check reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lit_compressor.data.readers import Example
from lit_compressor.data.task import load_task, seeded_sample


def sample_test_split(data: str | Path, limit: int | None = None, seed: int = 0) -> list[Example]:
    """A seeded sample of ``limit`` examples of the test split of the task ``data`` (a task YAML or folder),
    read with the task's own format and field names, in file order."""
    return seeded_sample(load_task(data).read("test"), limit, seed)


def batched_logits(runner, encoder, examples: list[Example], batch_size: int = 8) -> np.ndarray:
    """Logits of every example, batches padded to their longest function.

    A graph quantised at run time (``runner.batch_dependent``) runs each example alone: batched, a prediction
    would depend on its neighbours (2 to 3 of Devign's 274 test functions change with the batch size), and a
    flip under a transformation could be the batch's. Alone it is what a plug-in scoring one example gets."""
    if getattr(runner, "batch_dependent", False):
        batch_size = 1
    out = []
    for start in range(0, len(examples), batch_size):
        batch = encoder.encode_codes([e.codes for e in examples[start:start + batch_size]])
        out.append(runner(**batch))
    return np.concatenate(out)


def accuracy(logits: np.ndarray, examples: list[Example]) -> float | None:
    labels = np.array([-1 if e.label is None else e.label for e in examples])
    known = labels >= 0
    return float((logits.argmax(-1)[known] == labels[known]).mean()) if known.any() else None




def scores(logits: np.ndarray, examples: list[Example], positive_label: int = 1) -> dict[str, float | list[int]] | None:
    """Accuracy, and precision, recall and F1 of the positive class, and the predicted class counts, on the
    examples that have a label (None when none has)."""
    labels = np.array([-1 if e.label is None else e.label for e in examples])
    known = labels >= 0
    if not known.any():
        return None
    predicted, truth = logits.argmax(-1)[known], labels[known]
    hits = int(((predicted == positive_label) & (truth == positive_label)).sum())
    precision = hits / max(int((predicted == positive_label).sum()), 1)
    recall = hits / max(int((truth == positive_label).sum()), 1)
    return {"accuracy": float((predicted == truth).mean()), "precision": precision, "recall": recall,
            "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "prediction_counts": np.bincount(predicted, minlength=logits.shape[-1]).tolist()}
