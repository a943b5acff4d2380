"""Clone scores that read as precisions: a logistic calibration fit on a validation split, then a base-rate correction.

A pair student trained on BigCloneBench's pairs (two thirds of its validation pairs are clones) says
"clone" to most pairs of a project, where perhaps one function pair in several thousand is one. Its
pair head also saturates: its logits are bounded (``tanh`` then a linear layer), so the quick start's
student gives no pair more than ~0.997, and thousands of a project's pairs sit at that ceiling. The
cosine similarity of the two functions' pooled vectors (the head's own inputs) keeps ordering them,
and on BigCloneBench's validation split it separates clones at least as well (AUC 0.925 against
0.917 for the quick start's student).

So the calibration is Platt scaling with two inputs: ``P(clone) = sigmoid(a * logit(s) + c * closeness
+ b)``, ``s`` the pair score (the mean of the head's two orders), ``closeness = -log(1 - cos)`` of the
pooled vectors (``cos`` clipped below 1), fit by maximum likelihood on the validation pairs. Bayes'
rule then moves it from the validation split's clone rate ``pi_v`` to a project's ``pi`` by adding
``logit(pi) - logit(pi_v)`` to the log-odds. The result is the probability that such a pair is a
clone in a project with that base rate: the precision of the pairs reported around it, which a user
can pick as a threshold.

``calibration.json`` (beside the model's graphs; the Node runtime reads it too) holds ``a``, ``c``,
``b``, ``pi_v``, the default project prior and the fit's figures.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lit_compressor.core.errors import UserError
from lit_compressor.core.files import atomic_path

CALIBRATION_FILE = "calibration.json"
CALIBRATION_FORMAT = 1
SCORE_EPSILON = 1e-12  # scores are clipped to [eps, 1 - eps] before their logit: 0 and 1 have none
COSINE_EPSILON = 1e-7  # 1 - cos is clipped to at least this (float32 vectors: identical ones give ~1e-8)
# The default share of clone pairs among a project's function pairs above the minimum size: measured on
# commons-io and Lua (docs/benchmarks.md, issue 24); `--prior` sets a project's own.
DEFAULT_PRIOR = 3e-4


def logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), SCORE_EPSILON, 1 - SCORE_EPSILON)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray | float) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))  # stable at both ends


def closeness(cosine: np.ndarray | float) -> np.ndarray:
    """``-log(1 - cos)``: spreads the similarities near 1 where near-copies differ."""
    return -np.log(np.maximum(1 - np.asarray(cosine, dtype=np.float64), COSINE_EPSILON))


def fit_logistic(features: np.ndarray, labels: np.ndarray, iterations: int = 100) -> np.ndarray:
    """Maximum-likelihood weights (one per column, then the intercept) of ``P(clone) = sigmoid(features @ w + b)``
    (Newton's method; Platt's smoothed targets ``(n+ + 1) / (n+ + 2)`` and ``1 / (n- + 2)`` keep it finite on
    separable data)."""
    y = np.asarray(labels, dtype=np.float64)
    positives, negatives = y.sum(), len(y) - y.sum()
    if positives == 0 or negatives == 0:
        raise UserError("the calibration split holds only one label.", fix="Calibrate on a split with both labels.")
    target = np.where(y > 0, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    x = np.concatenate([np.asarray(features, dtype=np.float64), np.ones((len(y), 1))], axis=1)
    w = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = sigmoid(x @ w)
        hessian = x.T @ (x * (p * (1 - p))[:, None]) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hessian, x.T @ (p - target))
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w


def fit_weights(scores: np.ndarray, cosines: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """``(slope, closeness_slope, intercept)`` of the calibration on logit(score) and ``closeness(cosine)``.

    A pair must not become less likely a clone as its vectors grow closer: ``closeness`` is unbounded at cos = 1,
    so a negative weight would rank identical functions last. When the fit gives one, cosine adds nothing the
    score does not say, and the score alone is the fit (closeness weight 0).
    """
    slope, closeness_slope, intercept = fit_logistic(np.stack([logit(scores), closeness(cosines)], axis=1), labels)
    if closeness_slope < 0:
        (slope, intercept), closeness_slope = fit_logistic(logit(scores)[:, None], labels), 0.0
    return float(slope), float(closeness_slope), float(intercept)


@dataclass(frozen=True)
class Calibration:
    """``probability(score, cosine, prior)``: the chance that a pair with the student's ``score`` and vectors'
    ``cosine`` is a clone in a project where a share ``prior`` of the function pairs are clones."""

    slope: float  # of logit(score)
    closeness_slope: float  # of -log(1 - cos)
    intercept: float
    valid_prior: float  # the share of clones among the pairs the fit saw
    prior: float = DEFAULT_PRIOR  # the default project prior
    fit: dict = field(default_factory=dict)  # what it was fit on and how well (written, never read back)

    def shift(self, prior: float | None) -> float:
        prior = self.prior if prior is None else prior
        if not 0.0 < prior < 1.0:
            raise UserError(f"prior {prior} is not a probability strictly between 0 and 1.",
                            fix="Pass --prior, the share of clone pairs among a project's function pairs, e.g. 1e-3.")
        return float(logit(prior) - logit(self.valid_prior))

    def probability(self, score: np.ndarray | float, cosine: np.ndarray | float,
                    prior: float | None = None) -> np.ndarray:
        return sigmoid(self.slope * logit(score) + self.closeness_slope * closeness(cosine) + self.intercept
                       + self.shift(prior))

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / CALIBRATION_FILE
        with atomic_path(path) as tmp:
            data = {"format": CALIBRATION_FORMAT, "method": "platt: logit(score), -log(1 - cos)", **asdict(self)}
            tmp.write_text(json.dumps(data, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> Calibration | None:
        """The folder's calibration, or None when it has none."""
        path = Path(folder) / CALIBRATION_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            calibration = cls(float(data["slope"]), float(data["closeness_slope"]), float(data["intercept"]),
                              float(data["valid_prior"]), float(data.get("prior", DEFAULT_PRIOR)), data.get("fit", {}))
        except (ValueError, KeyError, TypeError) as error:
            raise UserError(f"unreadable calibration ({error}).", path,
                            "Run `lit-compressor calibrate` again to rewrite it.") from None
        weights = (calibration.slope, calibration.closeness_slope, calibration.intercept)
        if data.get("format") != CALIBRATION_FORMAT or not all(math.isfinite(w) for w in weights):
            raise UserError("not a calibration this version reads.", path, "Run `lit-compressor calibrate` again.")
        return calibration


def log_loss(probabilities: np.ndarray, labels: np.ndarray) -> float:
    p = np.clip(probabilities, SCORE_EPSILON, 1 - SCORE_EPSILON)
    y = np.asarray(labels, dtype=np.float64)
    return float(-(y * np.log(p) + (1 - y) * np.log1p(-p)).mean())
