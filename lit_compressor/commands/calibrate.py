"""``lit-compressor calibrate``: fit a pair student's clone scores to probabilities on a validation split.

Scores every pair of the split the way ``lit-compressor clones`` scores a project's pairs (each function
encoded once by the folder's encoder graph, the pair head in both orders, their mean, and the cosine of
the two vectors), fits the logistic calibration on them (:mod:`lit_compressor.clones.calibration`) and
writes ``calibration.json`` into the model folder, where ``clones`` and the Node runtime read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from rich.console import Console

from lit_compressor.clones.calibration import (
    DEFAULT_PRIOR,
    Calibration,
    fit_logistic,
    fit_weights,
    log_loss,
    logit,
    sigmoid,
)
from lit_compressor.clones.model import CloneModel, default_precision
from lit_compressor.core.errors import UserError
from lit_compressor.data.readers import Example
from lit_compressor.data.task import load_task
from lit_compressor.runtime.clone_graphs import ensure_clone_graphs
from lit_compressor.runtime.folder import FULL, SHIPPED

MIN_PAIRS = 20  # fewer labelled pairs than this fit nothing worth storing (compress skips the stage below it)


def pair_scores(model: CloneModel, examples: list[Example]) -> tuple[np.ndarray, np.ndarray]:
    """What clone search reads of each pair: the mean of the head's two orders on the functions' vectors, and
    the vectors' cosine (float64)."""
    vectors = {}
    for example in examples:
        for code in example.codes:
            if code not in vectors:
                vectors[code] = model.embed(code)
    scores, cosines = np.empty(len(examples)), np.empty(len(examples))
    for k, example in enumerate(examples):
        first, second = (vectors[code] for code in example.codes)
        forward = model.head.probabilities(first, second[None])[0]
        backward = model.head.probabilities(second, first[None])[0]
        scores[k] = (forward + backward) / 2
        cosines[k] = cosine(first, second)
    return scores, cosines


def cosine(u: np.ndarray, v: np.ndarray) -> float:
    u, v = u.astype(np.float64), v.astype(np.float64)
    return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def calibrate(model: Path, data: str = "../shared/data/bigclonebench", split: Literal["valid", "labelled"] = "valid",
              prior: float = DEFAULT_PRIOR, precision: Literal["fp32", "int8"] | None = None) -> dict[str, Any]:
    """Fit the clone scores of an exported pair student to probabilities (Platt scaling) and store the fit.

    Args:
        model: An exported pair student: its shipped folder (``export/shipped``) or a full export
            (``export/full``); ``calibration.json`` is written there. Given the export folder itself (without
            ``precision``), each of its ``shipped/`` and ``full/`` is calibrated on the graph it runs by default
            (int8 and fp32: their scores differ), one pass over the split each.
        data: The task whose ``split`` the fit reads: a task YAML or a task folder (BigCloneBench).
        split: The labelled split to fit on (never the test split: it scores the model).
        prior: The default share of clone pairs among a project's function pairs, stored with the fit
            (``clones --prior`` overrides it per project).
        precision: Encoder graph (default: the folder's own); calibrate the one ``clones`` will run.

    Returns:
        The fit of one folder; for an export folder, ``{"shipped": fit, "full": fit}`` (those it holds).
    """
    model = Path(model)
    if not 0.0 < prior < 1.0:
        raise UserError(f"prior {prior} is not a probability strictly between 0 and 1.", fix="Pass e.g. --prior 1e-3.")
    subfolders = [model / sub for sub in (SHIPPED, FULL) if (model / sub / "config.json").is_file()]
    exported = precision is None and not (model / "config.json").is_file() and bool(subfolders)
    models = [pair_model(folder, precision) for folder in (subfolders if exported else [model])]
    examples = [e for e in load_task(data).read(split) if e.label is not None]
    if len(examples) < MIN_PAIRS:
        raise UserError(f"the {split} split has {len(examples)} labelled pairs, too few to fit on.",
                        fix="Calibrate on a split of at least a few hundred labelled pairs.")
    fits = {clone_model.folder.name: fit_folder(clone_model, examples, data, split, prior) for clone_model in models}
    return fits if exported else next(iter(fits.values()))


def pair_model(folder: Path, precision: str | None) -> CloneModel:
    """The clone model of ``folder`` on ``precision`` (default: the folder's own), its clone graphs written first
    when a training folder predates them; a UserError for a single-function model."""
    precision = precision or default_precision(folder)
    ensure_clone_graphs(folder, int8=precision == "int8")
    clone_model = CloneModel.from_pretrained(folder, precision)
    clone_model.head  # noqa: B018 -- a single-function model stops here
    return clone_model


def fit_folder(clone_model: CloneModel, examples: list[Example], data: str, split: str, prior: float
               ) -> dict[str, Any]:
    """Fit ``clone_model``'s scores of ``examples`` and write ``calibration.json`` into its folder."""
    labels = np.array([e.label == clone_model.positive_label for e in examples], dtype=np.float64)
    scores, cosines = pair_scores(clone_model, examples)
    slope, closeness_slope, intercept = fit_weights(scores, cosines, labels)
    score_only = fit_logistic(logit(scores)[:, None], labels)
    valid_prior = float(labels.mean())
    calibrated = Calibration(slope, closeness_slope, intercept, valid_prior, prior).probability(
        scores, cosines, valid_prior)
    fit = {"data": str(data), "split": split, "pairs": len(examples), "clones": int(labels.sum()),
           "precision": clone_model.precision, "log_loss_raw": round(log_loss(scores, labels), 4),
           "log_loss_score_only": round(log_loss(sigmoid(score_only[0] * logit(scores) + score_only[1]), labels), 4),
           "log_loss_calibrated": round(log_loss(calibrated, labels), 4),
           "auc_score": round(auc(scores, labels), 4), "auc_cosine": round(auc(cosines, labels), 4),
           "auc_calibrated": round(auc(calibrated, labels), 4)}
    fitted = Calibration(float(slope), float(closeness_slope), float(intercept), valid_prior, prior, fit)
    path = fitted.save(clone_model.folder)
    Console().print(f"calibrated on {len(examples)} {split} pairs ({valid_prior:.1%} clones, {clone_model.precision} "
                    f"encoder): p = sigmoid({slope:.4f} * logit(score) + {closeness_slope:.4f} * -log(1 - cos) + "
                    f"{intercept:.4f}); log-loss {fit['log_loss_raw']} raw, {fit['log_loss_score_only']} score only, "
                    f"{fit['log_loss_calibrated']}; AUC {fit['auc_score']} score, {fit['auc_cosine']} cosine, "
                    f"{fit['auc_calibrated']} both; default project prior {prior:g}. Wrote {path}")
    return {"path": str(path), "slope": slope, "closeness_slope": closeness_slope, "intercept": intercept,
            "valid_prior": valid_prior, "prior": prior, "fit": fit}


def auc(values: np.ndarray, labels: np.ndarray) -> float:
    """The chance that a random clone ranks above a random non-clone (ties count half)."""
    positives, negatives = values[labels > 0], values[labels <= 0]
    above = (positives[:, None] > negatives[None, :]).mean() + 0.5 * (positives[:, None] == negatives[None, :]).mean()
    return float(above)
