"""Multi-objective search for an IDE budget: NSGA-II (``tools.selNSGA2``) over accuracy, latency and size.

Objectives: **accuracy** (maximise: the accuracy predictor's estimate, or GFLOPs as a training-free
proxy when no predictor is configured), **latency** (minimise: p50 ms on the shipped runtime, from the
latency model) and **size** (minimise: fp32 or int8 MB). Genomes over ``max_size_mb`` are infeasible:
DEAP's ``tools.DeltaPenalty`` gives them a fitness worse than any feasible genome's, graded by how far
over they are, so the front holds only genomes within the size budget.

Breeding is the GA's (uniform parents, crossover else mutation, no duplicates); survival is
``selNSGA2`` over parents + children. The result is the first non-dominated front of the final
population, from which :func:`pick` takes the best genome within ``max_latency_ms`` and
``max_size_mb`` by the config's rule (default: the most accurate). Each generation's logbook entry
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
Pick = Literal["max_accuracy", "min_latency", "min_size"]
INFEASIBLE = (0.0, 1e9, 1e9)


def objectives(price: Callable[[Genome], Cost], accuracy: Callable[[Genome], float],
               latency: Callable[[Genome], float], size_kind: str = "fp32") -> Callable:
    """``genome -> (accuracy, latency ms, size MB)``."""

    def evaluate(genome: list) -> tuple[float, float, float]:
        key = tuple(genome)
        return accuracy(key), latency(key), size_of(price(key), size_kind)

    return evaluate


def size_penalty(evaluate: Callable, price: Callable[[Genome], Cost], size_kind: str,
                 max_size_mb: float | None) -> Callable:
    """``evaluate`` with genomes over the size budget penalised by ``tools.DeltaPenalty``."""
    if max_size_mb is None:
        return evaluate

    def excess(genome: list) -> float:
        return size_of(price(tuple(genome)), size_kind) - max_size_mb

    return tools.DeltaPenalty(lambda genome: excess(genome) <= 0, INFEASIBLE, excess)(evaluate)


def pareto_front(population: list) -> list:
    """The first non-dominated front, sorted by latency (then accuracy, genes)."""
    front = tools.sortNondominated(population, len(population), first_front_only=True)[0]
    return sorted(front, key=lambda ind: (ind.fitness.values[1], -ind.fitness.values[0], tuple(ind)))


def _best(reduce: Callable, objective: int, values: tuple[tuple[float, ...], ...]) -> float:
    return reduce(v[objective] for v in values)


OBJECTIVE_STATISTICS = tools.Statistics(key=attrgetter("fitness.values"))
OBJECTIVE_STATISTICS.register("max_accuracy", _best, max, 0)
OBJECTIVE_STATISTICS.register("min_latency_ms", _best, min, 1)
OBJECTIVE_STATISTICS.register("min_size_mb", _best, min, 2)


def nsga_record(population: list) -> dict:
    """NSGA-II's generation record: the first front's size and each objective's best value."""
    return {"front_size": len(pareto_front(population)), **OBJECTIVE_STATISTICS.compile(population)}


def pick(front: list, rule: Pick = "max_accuracy", max_size_mb: float | None = None,
         max_latency_ms: float | None = None) -> Genome:
    """The front member within both budgets that is best by ``rule``."""
    inside = [ind for ind in front
              if (max_size_mb is None or ind.fitness.values[2] <= max_size_mb)
              and (max_latency_ms is None or ind.fitness.values[1] <= max_latency_ms)]
    if not inside:
        smallest = min(ind.fitness.values[2] for ind in front)
        fastest = min(ind.fitness.values[1] for ind in front)
        raise UserError(f"no genome on the Pareto front fits max_size_mb={max_size_mb} and "
                        f"max_latency_ms={max_latency_ms} (smallest {smallest:.3f} MB, "
                        f"fastest {fastest:.2f} ms).",
                        fix="Relax a budget.")
    key = {"max_accuracy": lambda ind: -ind.fitness.values[0],
           "min_latency": lambda ind: ind.fitness.values[1],
           "min_size": lambda ind: ind.fitness.values[2]}[rule]
    return tuple(min(inside, key=lambda ind: (key(ind), tuple(ind))))
