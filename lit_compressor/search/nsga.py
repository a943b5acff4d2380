"""Multi-objective search for an IDE budget: NSGA-II (``tools.selNSGA2``) over accuracy, latency and size,
and optionally prediction flips.

Objectives: **accuracy** (maximise: the accuracy predictor's estimate, or GFLOPs as a training-free
proxy when no predictor is configured), **latency** (minimise: p50 ms on the shipped runtime, from the
latency model) and **size** (minimise: fp32 or int8 MB). Genomes over ``max_size_mb`` are infeasible:
DEAP's ``tools.DeltaPenalty`` gives them a fitness worse than any feasible genome's, graded by how far
over they are, so the front holds only genomes within the size budget.

**Flips** (``flips``, off by default): the flip predictor's estimate of the share of examples whose
predicted class changes when methods and parameters are renamed. ``objective``: a fourth minimised
objective (Morph's ``F = [size, -accuracy, n_flips, flops]``); ``constraint``: genomes predicted over
``max_flip_rate`` are penalised as those over the size budget are (:func:`flip_penalty`).

Breeding is the GA's (uniform parents, crossover else mutation, no duplicates); survival is
``selNSGA2`` over parents + children. The result is the first non-dominated front of the final
population, from which :func:`pick` takes the best genome within ``max_latency_ms``, ``max_size_mb`` and,
when given, ``max_flip_rate`` by the config's rule (default: the most accurate). Each generation's logbook entry
(:func:`nsga_record`) holds the front's size and the best value of each objective.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Literal

from deap import tools

from lit_compressor.core.errors import UserError
from lit_compressor.search.cost import Cost, size_of
from lit_compressor.search.space import Genome

WEIGHTS = (1.0, -1.0, -1.0)  # accuracy (or GFLOPs), latency ms, size MB
FLIP_WEIGHTS = (*WEIGHTS, -1.0)  # and the predicted flip rate
Pick = Literal["max_accuracy", "min_latency", "min_size"]
Flips = Literal["off", "objective", "constraint"]
INFEASIBLE = (0.0, 1e9, 1e9)
FLIP_INFEASIBLE = (*INFEASIBLE, 1e9)


def weights(flips: Flips = "off") -> tuple[float, ...]:
    return FLIP_WEIGHTS if flips == "objective" else WEIGHTS


def infeasible(flips: Flips = "off") -> tuple[float, ...]:
    return FLIP_INFEASIBLE if flips == "objective" else INFEASIBLE


def objectives(price: Callable[[Genome], Cost], accuracy: Callable[[Genome], float],
               latency: Callable[[Genome], float], size_kind: str = "fp32",
               flip_rate: Callable[[Genome], float] | None = None) -> Callable:
    """``genome -> (accuracy, latency ms, size MB)``, and the predicted flip rate fourth when ``flip_rate`` is
    given (``flips: objective``)."""

    def evaluate(genome: list) -> tuple[float, ...]:
        key = tuple(genome)
        values = accuracy(key), latency(key), size_of(price(key), size_kind)
        return values if flip_rate is None else (*values, flip_rate(key))

    return evaluate


def size_penalty(evaluate: Callable, price: Callable[[Genome], Cost], size_kind: str,
                 max_size_mb: float | None, flips: Flips = "off") -> Callable:
    """``evaluate`` with genomes over the size budget penalised by ``tools.DeltaPenalty``."""
    if max_size_mb is None:
        return evaluate

    def excess(genome: list) -> float:
        return size_of(price(tuple(genome)), size_kind) - max_size_mb

    return tools.DeltaPenalty(lambda genome: excess(genome) <= 0, infeasible(flips), excess)(evaluate)


def flip_penalty(evaluate: Callable, flip_rate: Callable[[Genome], float], max_flip_rate: float) -> Callable:
    """``evaluate`` with genomes predicted over ``max_flip_rate`` penalised by ``tools.DeltaPenalty`` (graded by
    how far over, so the search is led back under the cap)."""

    def excess(genome: list) -> float:
        return flip_rate(tuple(genome)) - max_flip_rate

    return tools.DeltaPenalty(lambda genome: excess(genome) <= 0, INFEASIBLE, excess)(evaluate)


def pareto_front(population: list) -> list:
    """The first non-dominated front, sorted by latency (then accuracy, genes)."""
    front = tools.sortNondominated(population, len(population), first_front_only=True)[0]
    return sorted(front, key=lambda ind: (ind.fitness.values[1], -ind.fitness.values[0], tuple(ind)))


def _best(reduce: Callable, objective: int, values: tuple[tuple[float, ...], ...]) -> float:
    return reduce(v[objective] for v in values)


BEST = (("max_accuracy", max), ("min_latency_ms", min), ("min_size_mb", min), ("min_flip_rate", min))


def objective_statistics(count: int) -> tools.Statistics:
    """The best value of each of the first ``count`` objectives (three, or four with flips)."""
    statistics = tools.Statistics(key=attrgetter("fitness.values"))
    for index, (name, best) in enumerate(BEST[:count]):
        statistics.register(name, _best, best, index)
    return statistics


def nsga_record(population: list) -> dict:
    """NSGA-II's generation record: the first front's size and each objective's best value."""
    count = len(population[0].fitness.values) if population else len(WEIGHTS)
    return {"front_size": len(pareto_front(population)), **objective_statistics(count).compile(population)}


def pick(front: list, rule: Pick = "max_accuracy", max_size_mb: float | None = None,
         max_latency_ms: float | None = None, max_flip_rate: float | None = None,
         flip_rate: Callable[[Genome], float] | None = None) -> Genome:
    """The front member within the budgets that is best by ``rule``; with ``max_flip_rate``, only members whose
    predicted ``flip_rate`` is at most that cap."""
    if max_flip_rate is not None and flip_rate is None:
        raise ValueError("a flip-rate cap needs the predicted flip rate")
    inside = [ind for ind in front
              if (max_size_mb is None or ind.fitness.values[2] <= max_size_mb)
              and (max_latency_ms is None or ind.fitness.values[1] <= max_latency_ms)
              and (max_flip_rate is None or flip_rate(tuple(ind)) <= max_flip_rate)]
    if not inside:
        smallest = min(ind.fitness.values[2] for ind in front)
        fastest = min(ind.fitness.values[1] for ind in front)
        steadiest = f", fewest predicted flips {min(flip_rate(tuple(ind)) for ind in front):.4f}" if flip_rate else ""
        raise UserError(f"no genome on the Pareto front fits max_size_mb={max_size_mb}, "
                        f"max_latency_ms={max_latency_ms} and max_flip_rate={max_flip_rate} (smallest "
                        f"{smallest:.3f} MB, fastest {fastest:.2f} ms{steadiest}).",
                        fix="Relax a budget.")
    key = {"max_accuracy": lambda ind: -ind.fitness.values[0],
           "min_latency": lambda ind: ind.fitness.values[1],
           "min_size": lambda ind: ind.fitness.values[2]}[rule]
    return tuple(min(inside, key=lambda ind: (key(ind), tuple(ind))))
