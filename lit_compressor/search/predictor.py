"""The accuracy predictor: a Gaussian-process regressor from genes to the accuracy of a short distillation;
and the flip predictor, a second one (same features and kernel) from genes to its prediction-flip rate.

Features: every searched gene, on a log scale (layers, hidden, heads, FFN, vocabulary, block size,
learning rate) or linear (dropout), scaled to [0, 1] by the space's allowed range (genes with one
allowed value are dropped). Targets: the validation accuracies of the sampled genomes' distillations,
standardised. Kernel: linear plus squared-exponential (one length scale) plus a noise term, chosen from
small grids by leave-one-out error, computed in closed form (Rasmussen & Williams, eq. 5.12).

The reported quality is **nested** leave-one-out: each sample is predicted by a model whose
hyper-parameters were chosen without it, and Kendall's τ-b ranks those predictions against the
measured accuracies. Away from the samples the prediction returns to their mean accuracy, so the search
is never lured far from what was measured.

numpy only (imported when a predictor is fitted): the search's light core stays importable without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lit_compressor.search.space import Genome, SearchSpace

LENGTH_SCALES = (0.15, 0.25, 0.4, 0.6, 1.0, 1.6)
NOISES = (0.03, 0.1, 0.3, 1.0)
LINEAR_WEIGHTS = (0.0, 0.03, 0.1, 0.3, 1.0)
LINEAR_GENES = ("dropout",)


def transform(name: str, value: float) -> float:
    return float(value) if name in LINEAR_GENES else math.log(value)


@dataclass
class Scaler:
    """Each varying gene's transformed range, to map a genome into [0, 1]^d."""

    names: list[str]
    low: list[float]
    high: list[float]
    indices: list[int]

    @classmethod
    def of(cls, space: SearchSpace) -> Scaler:
        names, low, high, indices = [], [], [], []
        for index, (name, values) in enumerate(zip(space.gene_names, space.values, strict=True)):
            lo, hi = transform(name, values[0]), transform(name, values[-1])
            if hi > lo:
                names.append(name)
                low.append(lo)
                high.append(hi)
                indices.append(index)
        return cls(names, low, high, indices)

    def __call__(self, genome: Genome) -> list[float]:
        return [(transform(name, genome[i]) - lo) / (hi - lo)
                for name, i, lo, hi in zip(self.names, self.indices, self.low, self.high, strict=True)]


class GaussianProcess:
    """GP regression on scaled genes with a linear plus squared-exponential kernel.

    ``k(x, x') = w · (x·x' + 1) + exp(-|x - x'|² / 2ℓ²)`` plus ``noise`` on the diagonal, on standardised
    targets: the linear part carries trends (more tokens, a larger learning rate) that 12 samples in 7
    dimensions can support, the squared-exponential part local departures from them. ``w``, ``ℓ`` and the
    noise are chosen from small grids by closed-form leave-one-out error (ties: the smoother model).
    """

    def __init__(self, x, y, params: tuple[float, float, float] | None = None):
        import numpy as np

        self.x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        self.mean, self.scale = float(y.mean()), float(y.std()) or 1.0
        self.y = (y - self.mean) / self.scale
        if params is None:
            params = min(((w, ls, nz) for w in LINEAR_WEIGHTS for ls in LENGTH_SCALES for nz in NOISES),
                         key=lambda p: (round(loo_error(self.x, self.y, *p), 12), -p[1], p[2], p[0]))
        self.linear_weight, self.length_scale, self.noise = params
        self.alpha = np.linalg.solve(kernel(self.x, self.x, self.linear_weight, self.length_scale)
                                     + self.noise * np.eye(len(self.y)), self.y)

    def predict(self, points) -> list[float]:
        import numpy as np

        k = kernel(np.asarray(points, dtype=float), self.x, self.linear_weight, self.length_scale)
        return [float(v) for v in self.mean + self.scale * (k @ self.alpha)]


def kernel(a, b, linear_weight: float, length_scale: float):
    import numpy as np

    distances = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return linear_weight * (a @ b.T + 1.0) + np.exp(-distances / (2 * length_scale**2))


def loo_predictions(x, y, linear_weight: float, length_scale: float, noise: float):
    """Closed-form leave-one-out means: ``y_i - [K^-1 y]_i / [K^-1]_ii``."""
    import numpy as np

    inverse = np.linalg.inv(kernel(x, x, linear_weight, length_scale) + noise * np.eye(len(y)))
    return y - (inverse @ y) / np.diag(inverse)


def loo_error(x, y, linear_weight: float, length_scale: float, noise: float) -> float:
    return float(((loo_predictions(x, y, linear_weight, length_scale, noise) - y) ** 2).mean())


def kendall_tau(a: list[float], b: list[float]) -> float:
    """Kendall's τ-b (ties in either ranking are allowed)."""
    concordant = discordant = ties_a = ties_b = 0
    for i in range(len(a)):
        for j in range(i + 1, len(a)):
            da, db = a[i] - a[j], b[i] - b[j]
            if da == 0 and db == 0:
                continue
            if da == 0:
                ties_a += 1
            elif db == 0:
                ties_b += 1
            elif (da > 0) == (db > 0):
                concordant += 1
            else:
                discordant += 1
    denominator = math.sqrt((concordant + discordant + ties_a) * (concordant + discordant + ties_b))
    return (concordant - discordant) / denominator if denominator else 0.0


@dataclass
class GenePredictor:
    """A GP fitted to one measured quantity of the sampled genomes, and how well it ranks unseen genomes
    (nested leave-one-out)."""

    space: SearchSpace
    genomes: list[Genome]
    targets: list[float]

    what = "a measured quantity"

    def __post_init__(self) -> None:
        if len(self.genomes) < 3:
            raise ValueError(f"a predictor of {self.what} needs at least 3 measured genomes")
        self.scaler = Scaler.of(self.space)
        self.model = GaussianProcess([self.scaler(g) for g in self.genomes], self.targets)

    def predict(self, genome: Genome) -> float:
        return self.model.predict([self.scaler(genome)])[0]

    def leave_one_out(self) -> list[float]:
        """Each sample's value predicted by a model (hyper-parameters included) fitted without it."""
        predictions = []
        for i in range(len(self.genomes)):
            rest = [j for j in range(len(self.genomes)) if j != i]
            model = GaussianProcess([self.scaler(self.genomes[j]) for j in rest], [self.targets[j] for j in rest])
            predictions.append(model.predict([self.scaler(self.genomes[i])])[0])
        return predictions

    def held_out(self, genomes: list[Genome], targets: list[float]) -> dict:
        """How well the fitted model ranks ``genomes`` it was not fitted on (a ValueError if one was fitted):
        Kendall's τ-b of its predictions against their measured ``targets``, and the mean absolute error."""
        seen = set(map(tuple, self.genomes))
        if overlap := [g for g in genomes if tuple(g) in seen]:
            raise ValueError(f"held-out genomes must be outside the fit set; fitted on {overlap}")
        predictions = [self.predict(tuple(g)) for g in genomes]
        errors = [abs(p - a) for p, a in zip(predictions, targets, strict=True)]
        return {"kendall_tau": kendall_tau(predictions, targets) if len(genomes) > 1 else None,
                "mean_abs_error": sum(errors) / len(errors) if errors else None, "predictions": predictions}

    def report(self) -> dict:
        loo = self.leave_one_out()
        errors = [abs(p - a) for p, a in zip(loo, self.targets, strict=True)]
        return {"kind": "gaussian process (linear + squared-exponential kernel on scaled genes)",
                "features": self.scaler.names, "linear_weight": self.model.linear_weight,
                "length_scale": self.model.length_scale, "noise": self.model.noise,
                "loo_kendall_tau": kendall_tau(loo, self.targets),
                "loo_mean_abs_error": sum(errors) / len(errors), "loo_predictions": loo}


class AccuracyPredictor(GenePredictor):
    """The accuracy of a genome's short distillation (its best validation accuracy)."""

    what = "accuracy"

    @property
    def accuracies(self) -> list[float]:
        return self.targets


class FlipPredictor(GenePredictor):
    """The flip rate of a genome's short distillation: the share of valid examples whose predicted class
    changes under Morph's two renamings (:mod:`~lit_compressor.measure.distillation`). Same features and
    kernel as the accuracy predictor; a prediction below 0 is read as 0."""

    what = "flip rate"

    def predict(self, genome: Genome) -> float:
        return max(0.0, super().predict(genome))
