"""Multi-objective search: NSGA-II (``tools.selNSGA2``) over size (min), FLOPs (max), latency (min).

Breeding is the GA's (uniform parents, crossover else mutation, no duplicates); survival is
``selNSGA2`` over parents + children. The result is the first non-dominated front of the final
population, from which :func:`pick` chooses one genome by the config's rule within its budgets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from deap import tools

from lit_compressor.errors import UserError
from lit_compressor.search.cost import cost, size_of
from lit_compressor.search.latency import LatencyTable
from lit_compressor.search.space import Genome, SearchSpace

WEIGHTS = (-1.0, 1.0, -1.0)  # size MB, GFLOPs, latency ms
Pick = Literal["max_flops", "min_latency", "min_size"]


def pareto_objectives(space: SearchSpace, latency: LatencyTable, size_kind: str = "fp32") -> Callable:
    """``genome -> (size MB, GFLOPs, latency ms)``."""

    def evaluate(genome: list[int]) -> tuple[float, float, float]:
        c = cost(tuple(genome), space)
        return size_of(c, size_kind), c.gflops, latency.latency_ms(tuple(genome), space)

    return evaluate


def pareto_front(population: list) -> list:
    """The first non-dominated front, sorted by size."""
    front = tools.sortNondominated(population, len(population), first_front_only=True)[0]
    return sorted(front, key=lambda ind: (ind.fitness.values, tuple(ind)))


def pick(front: list, rule: Pick = "max_flops", max_size_mb: float | None = None,
         max_latency_ms: float | None = None) -> Genome:
    """The front member within both budgets that is best by ``rule``."""
    inside = [ind for ind in front
              if (max_size_mb is None or ind.fitness.values[0] <= max_size_mb)
              and (max_latency_ms is None or ind.fitness.values[2] <= max_latency_ms)]
    if not inside:
        smallest = min(ind.fitness.values[0] for ind in front)
        fastest = min(ind.fitness.values[2] for ind in front)
        raise UserError(f"no genome on the Pareto front fits max_size_mb={max_size_mb} and "
                        f"max_latency_ms={max_latency_ms} (smallest {smallest:.3f} MB, "
                        f"fastest {fastest:.2f} ms).",
                        fix="Relax a budget.")
    key = {"max_flops": lambda ind: -ind.fitness.values[1],
           "min_latency": lambda ind: ind.fitness.values[2],
           "min_size": lambda ind: ind.fitness.values[0]}[rule]
    return tuple(min(inside, key=lambda ind: (key(ind), tuple(ind))))  # type: ignore[return-value]
