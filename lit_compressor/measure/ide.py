"""What an IDE search measures before it evolves: real timings (the latency model) and short real
distillations (the accuracy predictor). The measuring itself is done by :mod:`lit_compressor.measure`,
imported only here and only when asked, so the search's light core never imports torch.

Genome choice is seeded and space-filling: candidates are drawn at random among the genomes within the
budgets, then taken in random order unless too close (in the predictor's scaled gene space) to one already
taken (see :func:`spread`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.progress import Progress

from lit_compressor.core.errors import UserError
from lit_compressor.search.cost import cost, size_of
from lit_compressor.search.latency_model import FEATURES, LatencyModel, Timing, fit, median
from lit_compressor.search.predictor import AccuracyPredictor, FlipPredictor, Scaler
from lit_compressor.search.space import Genome, SearchSpace

MAX_DRAWS = 200_000


@dataclass
class LatencySettings:
    """How latency is measured: on which runtime, with how many threads, on how many inputs and genomes."""

    runtime: Literal["onnx-int8", "onnx", "pytorch"] = "onnx-int8"
    """The runtime that ships: int8 ONNX (``lit-compressor export``'s ``model.int8.onnx``), fp32 ONNX, or PyTorch."""
    threads: int | None = None
    """CPU threads (default: PyTorch's default on this machine); give the benchmark the same."""
    samples: int = 30
    """Real test inputs timed per genome (the seeded sample ``lit-compressor benchmark`` times)."""
    repeats: int = 3
    """Rounds over the inputs; each input's time is its fastest round."""
    clock: Literal["wall", "cpu"] = "wall"
    """``wall``: elapsed time; ``cpu`` (needs ``threads: 1``): the thread's CPU time, what the prediction
    takes on an idle core, unaffected by other processes."""
    fit_genomes: int = 16
    """Genomes timed to fit the model."""
    check_genomes: int = 5
    """Further random genomes timed to report the model's error (not used to fit it)."""
    vocab_grid: int = 3
    """Tokenizers trained (vocabulary sizes spread over the space's range) to interpolate token counts."""
    cache: Path | None = None
    """Cache of timings (default ``~/.cache/lit_compressor`` or ``$LIT_COMPRESSOR_CACHE``)."""


@dataclass
class PredictorSettings:
    """The accuracy predictor: how many genomes are distilled, with which fit config, on which slice."""

    samples: int = 12
    """Genomes distilled (Avatar distils 20)."""
    fit: str | None = None
    """The student's fit config file (a DistillationModule ``fit`` config: its soft labels, teacher, task and
    tokenizer cache); ``compress`` writes its own student stage's to ``stages/search_student.yaml``."""
    epochs: int = 1
    """Epochs of each short distillation."""
    train_batches: int | None = 40
    """Batches of the unlabelled split per epoch (the slice); null: the whole split."""
    held_out: int = 0
    """Further genomes distilled the same way but never fitted: the predictor's Kendall τ on them (report
    ``held_out``) says how well it ranks genomes it has not seen, which the search relies on."""


def default_cache() -> Path:
    import os

    return Path(os.environ.get("LIT_COMPRESSOR_CACHE", Path.home() / ".cache" / "lit_compressor"))


def feasible(space: SearchSpace, rng: random.Random, count: int, accept: Callable[[Genome], bool],
             what: str, vocab: list[int] | None = None) -> list[Genome]:
    """Up to ``count`` distinct random genomes that ``accept`` takes (a UserError when none); with
    ``vocab``, their vocabulary size is drawn from it."""
    found: dict[Genome, None] = {}
    for _ in range(MAX_DRAWS):
        if len(found) >= count:
            break
        genome = space.random_genome(rng)
        if vocab is not None:
            genome[4] = rng.choice(vocab)
        genome = tuple(genome)
        if genome not in found and accept(genome):
            found[genome] = None
    if not found:
        raise UserError(f"no genome of the search space fits the budgets ({what}).",
                        fix="Relax max_size_mb / max_latency_ms or widen the search space.")
    return list(found)


def spread(candidates: list[Genome], count: int, scaler: Scaler, rng: random.Random) -> list[Genome]:
    """``count`` of the random candidates, none closer than a radius to another (in the scaled gene space).

    Candidates are taken in a seeded random order and skipped when too close to one already taken; the
    radius starts at the spacing of ``count`` points on a grid of the unit cube and shrinks by a fifth until
    ``count`` are taken. Unlike max-min picking this does not favour the corners of the space (one-layer,
    16-wide students are poor probes of what a budget allows)."""
    count = min(count, len(candidates))
    points = {g: scaler(g) for g in candidates}
    order = list(candidates)
    rng.shuffle(order)
    dims = max(1, len(scaler.names))
    radius = math.sqrt(dims) * count ** (-1 / dims)
    while True:
        chosen: list[Genome] = []
        for genome in order:
            if all(_distance(points[genome], points[other]) >= radius for other in chosen):
                chosen.append(genome)
                if len(chosen) == count:
                    return chosen
        radius *= 0.8


def _distance(a: list[float], b: list[float]) -> float:
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))


def vocab_grid(space: SearchSpace, count: int) -> list[int]:
    """``count`` allowed vocabulary sizes spread evenly in log scale over the space's range."""
    values = space.values[4]
    if count <= 1 or len(values) == 1:
        return [values[0]]
    low, high = math.log(values[0]), math.log(values[-1])
    targets = [low + (high - low) * i / (count - 1) for i in range(count)]
    return sorted({min(values, key=lambda v: (abs(math.log(v) - t), v)) for t in targets})


def within_size(space: SearchSpace, size_kind: str, max_size_mb: float | None) -> Callable[[Genome], bool]:
    return lambda g: max_size_mb is None or size_of(cost(g, space), size_kind) <= max_size_mb


def latency_model(space: SearchSpace, settings: LatencySettings, task, tokenizer_cache: Path, seed: int,
                  accept: Callable[[Genome], bool], progress: Progress | None = None) -> tuple[LatencyModel, dict]:
    """Time genomes (cached), fit the model, and check it on ``check_genomes`` further random genomes
    (a ``progress`` bar counts them)."""
    if task is None:
        raise UserError("latency is timed on the task's test inputs, but the search has no task.",
                        fix="Give --task (a task YAML or mapping), as compress does.")
    from lit_compressor.measure.timing import Timer

    timer = Timer(space, task, settings.runtime, settings.threads, settings.samples, settings.repeats,
                  settings.cache or default_cache(), tokenizer_cache, clock=settings.clock)
    grid = vocab_grid(space, settings.vocab_grid)
    rng = random.Random(f"{seed}:latency")
    on_grid = feasible(space, rng, 20 * settings.fit_genomes, accept, "latency genomes", vocab=grid)
    to_fit = spread(on_grid, settings.fit_genomes, Scaler.of(space), rng)
    others = feasible(space, random.Random(f"{seed}:latency-check"), settings.check_genomes + len(to_fit),
                      lambda g: g not in to_fit and accept(g), "latency check genomes")[: settings.check_genomes]
    bar = progress.add_task("timing genomes", total=len(to_fit) + len(others)) if progress else None
    timings: list[Timing] = []
    for genome in to_fit + others:
        timings.append(timer.time(genome))
        if progress:
            progress.advance(bar)
    fitted, checks = timings[: len(to_fit)], timings[len(to_fit):]
    model = LatencyModel(fit(fitted, space), grid, [timer.token_counts(v) for v in grid], settings.runtime,
                         timer.machine, fitted)
    rows = []
    for timing in checks:
        measured, predicted = median(timing.ms), model.latency_ms(tuple(timing.genome), space)
        rows.append({"genome": timing.genome, "measured_p50_ms": measured, "predicted_p50_ms": predicted,
                     "relative_error": (predicted - measured) / measured})
    errors = [abs(r["relative_error"]) for r in rows]
    report = {"runtime": settings.runtime, "threads": timer.threads, "clock": settings.clock,
              "inputs": len(timer.inputs),
              "repeats": settings.repeats, "machine": timer.machine, "vocab_grid": grid,
              "coefficients": dict(zip(FEATURES, model.coefficients, strict=True)),
              "fit_genomes": [t.genome for t in fitted],
              "fit_p50_ms": [median(t.ms) for t in fitted],
              "check": rows,
              "check_mean_abs_relative_error": sum(errors) / len(errors) if errors else None,
              "check_max_abs_relative_error": max(errors) if errors else None}
    return model, report


def accuracy_predictor(space: SearchSpace, settings: PredictorSettings, output: Path, seed: int,
                       accept: Callable[[Genome], bool], progress: Progress | None = None
                       ) -> tuple[AccuracyPredictor, dict]:
    """The accuracy predictor of :func:`predictors` and its report."""
    accuracy, _, report = predictors(space, settings, output, seed, accept, progress)
    return accuracy, report


def predictors(space: SearchSpace, settings: PredictorSettings, output: Path, seed: int,
               accept: Callable[[Genome], bool], progress: Progress | None = None
               ) -> tuple[AccuracyPredictor, FlipPredictor | None, dict]:
    """Distil ``samples`` spread-out genomes within the budgets (cached units) and fit the accuracy predictor,
    and the flip predictor when every fitted sample measured its flip rate (None otherwise: results written
    before flips were measured, or a task of unknown language). A ``progress`` bar counts the units."""
    if settings.samples < 3:
        raise UserError(f"the accuracy predictor needs at least 3 samples, got {settings.samples}.")
    from lit_compressor.measure.distillation import distil

    rng = random.Random(f"{seed}:predictor")
    total = settings.samples + settings.held_out
    candidates = feasible(space, rng, 50 * total, accept, "predictor samples")
    genomes = spread(candidates, total, Scaler.of(space), rng)
    held_out = set(random.Random(f"{seed}:held-out").sample(range(len(genomes)), min(settings.held_out,
                                                                                      len(genomes) - 3)))
    bar = progress.add_task("distilling samples", total=len(genomes)) if progress else None
    results = distil(genomes, space, settings.fit, settings.epochs, settings.train_batches, output,
                     on_done=(lambda done: progress.update(bar, completed=done)) if progress else None)
    fitted = [r for i, r in enumerate(results) if i not in held_out]
    unseen = [r for i, r in enumerate(results) if i in held_out]
    predictor = AccuracyPredictor(space, [tuple(r["genome"]) for r in fitted], [r["accuracy"] for r in fitted])
    report = predictor.report()
    report["samples"] = [_sample(space, r, loo_prediction=p)
                         for r, p in zip(fitted, report.pop("loo_predictions"), strict=True)]
    if unseen:
        check = predictor.held_out([tuple(r["genome"]) for r in unseen], [r["accuracy"] for r in unseen])
        report["held_out"] = {"kendall_tau": check["kendall_tau"], "mean_abs_error": check["mean_abs_error"],
                              "samples": [_sample(space, r, prediction=p)
                                          for r, p in zip(unseen, check["predictions"], strict=True)]}
    report["epochs"], report["train_batches"] = settings.epochs, settings.train_batches
    flips = None
    if all(r.get("flip_rate") is not None for r in fitted):
        flips = FlipPredictor(space, [tuple(r["genome"]) for r in fitted], [r["flip_rate"] for r in fitted])
        report["flips"] = {"fitted": True, **flips.report()}
        for sample, loo in zip(report["samples"], report["flips"].pop("loo_predictions"), strict=True):
            sample["loo_flip_prediction"] = loo
        report["flips"]["measured"] = ("share of valid examples whose predicted class changes under "
                                       f"{fitted[0].get('flip_transformation', 'the renamings')}")
        if unseen and all(r.get("flip_rate") is not None for r in unseen):
            check = flips.held_out([tuple(r["genome"]) for r in unseen], [r["flip_rate"] for r in unseen])
            report["flips"]["held_out"] = {"kendall_tau": check["kendall_tau"],
                                           "mean_abs_error": check["mean_abs_error"]}
            for sample, prediction in zip(report["held_out"]["samples"], check["predictions"], strict=True):
                sample["flip_prediction"] = prediction
    else:
        missing = sum(r.get("flip_rate") is None for r in fitted)
        why = next((r["flips_skipped"] for r in fitted if "flips_skipped" in r), "sampled before flips were measured")
        report["flips"] = {"fitted": False, "reason": f"{missing} of {len(fitted)} samples have no flip_rate ({why})"}
    return predictor, flips, report


def _sample(space: SearchSpace, result: dict, **prediction: float) -> dict:
    flips = {"flip_rate": result["flip_rate"]} if result.get("flip_rate") is not None else {}
    return {**dict(zip(space.gene_names, result["genome"], strict=True)), "accuracy": result["accuracy"],
            **flips, **prediction, "seconds": result["seconds"]}
