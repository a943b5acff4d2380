"""Compressor's genetic algorithm on DEAP, and the generation loop NSGA-II shares.

Mirrors ``searcher.py`` of the Compressor research code (soarsmu/Compressor):

- a population of ``mu`` distinct genomes, drawn at random (a duplicate is mutated until new);
- each generation breeds ``mu`` children: two parents drawn uniformly at random (no fitness-based
  parent selection), crossover with probability 0.6, else both parents mutated; a child equal to a
  genome already in the population or among the children is mutated until new;
- survival is elitist (mu + lambda) truncation: parents and children are ranked by fitness and the
  best ``mu`` survive (:func:`select_best`, DEAP's ``tools.selBest``), so the best genome is never lost;
- fitness ``GFLOPs - |size_MB - target_MB|``;
- the search runs ``restarts`` times and the best genome of all is kept (``searcher.py``'s ``main``
  loops ``for i in tqdm(range(10))``: ten searches).

With ``operators: compressor`` the variation is ``searcher.py``'s exactly
(:mod:`~lit_compressor.search.compressor`); with ``operators: local`` (our default) a mutated gene
moves to a near value with probability ``local_mutation`` and genes are crossed and mutated in the
order V, L, H, A, D (see :mod:`~lit_compressor.search.operators`). Either way H % A == 0 is kept by
repair and restart r draws from its own ``random.Random(f"{seed}:{r}")``, never from the global RNG.

Each generation's record goes to a DEAP ``tools.Logbook`` (the search's history), its figures compiled by
``tools.Statistics`` (:func:`ga_record`; NSGA-II's is :func:`~lit_compressor.search.nsga.nsga_record`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Literal

from deap import base, creator, tools

from lit_compressor.search import compressor
from lit_compressor.search.cost import Cost, cost, size_of
from lit_compressor.search.operators import make_unique, one_point_crossover, resample_mutation, vary
from lit_compressor.search.space import Genome, SearchSpace

CostModel = Literal["exact", "compressor"]
Operators = Literal["local", "compressor"]


def define_type(name: str, weights: tuple[float, ...]) -> type:
    """``creator`` fitness + individual types, created once per process (DEAP keeps them global).

    An individual is a list of gene values with a ``fitness`` and a ``tag`` (Compressor's operators
    record the genome's key order in it; 0 otherwise)."""
    fitness_name = f"{name}Fitness"
    if not hasattr(creator, fitness_name):
        creator.create(fitness_name, base.Fitness, weights=weights)
    if not hasattr(creator, name):
        creator.create(name, list, fitness=getattr(creator, fitness_name), tag=0)
    return getattr(creator, name)


def pricer(space: SearchSpace, cost_model: CostModel = "exact") -> Callable[[Genome], Cost]:
    """``genome -> Cost`` under the exact model (the module we build) or Compressor's formula."""
    if cost_model == "compressor":
        return compressor.compressor_cost
    return lambda genome: cost(genome, space)


def compressor_fitness(space: SearchSpace, target_mb: float, size_kind: str = "fp32",
                       cost_model: CostModel = "exact") -> Callable:
    """``genome -> (GFLOPs - |MB - target|,)``, Compressor's single objective."""
    if cost_model == "compressor":
        return lambda genome: (compressor.compressor_fitness(genome, target_mb),)
    price = pricer(space, cost_model)

    def evaluate(genome: list) -> tuple[float]:
        c = price(tuple(genome))
        return (c.gflops - abs(size_of(c, size_kind) - target_mb),)

    return evaluate


def select_best(individuals: list, k: int) -> list:
    """Elitist truncation: the ``k`` fittest, ties in their current order — DEAP's ``tools.selBest``, sorting on
    ``fitness.wvalues`` (what ``Fitness`` comparisons compare) rather than through them: 3.5x faster, saving
    0.1 s of a 10 x 100-generation search."""
    return sorted(individuals, key=_weighted, reverse=True)[:k]


_weighted = attrgetter("fitness.wvalues")

Record = Callable[[list], dict]
"""``population -> the figures a generation's logbook entry holds`` besides its restart and generation."""


def _mean(values: tuple[float, ...]) -> float:
    """``sum / len``, as reports before the logbook recorded it (``statistics.fmean`` can differ in the last bit)."""
    return sum(values) / len(values)


FITNESS_STATISTICS = tools.Statistics(key=lambda ind: ind.fitness.values[0])
FITNESS_STATISTICS.register("best_fitness", max)
FITNESS_STATISTICS.register("mean_fitness", _mean)


def ga_record(population: list) -> dict:
    """The GA's generation record: best and mean fitness, and the best genome (the first of equals)."""
    return {**FITNESS_STATISTICS.compile(population), "best": list(select_best(population, 1)[0])}


def logbook(entries: Iterable[dict] = ()) -> tools.Logbook:
    """A logbook holding ``entries`` (a checkpoint's history)."""
    book = tools.Logbook()
    for entry in entries:
        book.record(**entry)
    return book


def make_toolbox(space: SearchSpace, rng: random.Random, individual: type, evaluate: Callable,
                 select: Callable, crossover_rate: float = 0.6, local_mutation: float = 0.8,
                 operators: Operators = "local") -> base.Toolbox:
    """A toolbox with the operators registered: individual, clone, mate, mutate, vary, unique, evaluate, select.

    ``operators``: ``local`` (ours, see :mod:`~lit_compressor.search.operators`) or ``compressor``
    (``searcher.py``'s exactly, see :mod:`~lit_compressor.search.compressor`)."""
    toolbox = base.Toolbox()
    toolbox.register("clone", clone, individual=individual)
    toolbox.register("individual", lambda: individual(space.random_genome(rng)))
    if operators == "compressor":
        toolbox.register("mate", compressor.crossover, space=space, rng=rng)
        toolbox.register("mutate", compressor.mutation, space=space, rng=rng)
    else:
        toolbox.register("mate", one_point_crossover, space=space, rng=rng)
        toolbox.register("mutate", resample_mutation, space=space, rng=rng, local_rate=local_mutation)
    toolbox.register("vary", vary, clone=toolbox.clone, mate=toolbox.mate, mutate=toolbox.mutate,
                     crossover_rate=crossover_rate, rng=rng)
    toolbox.register("unique", make_unique, mutate=toolbox.mutate)
    cache: dict[tuple, tuple[float, ...]] = {}

    def cached(ind: list) -> tuple[float, ...]:
        key = tuple(ind)
        values = cache.get(key)
        if values is None:
            values = cache[key] = evaluate(ind)
        return values

    toolbox.register("evaluate", cached)
    toolbox.register("select", select)
    return toolbox


def clone(ind: list, individual: type) -> list:
    """A fresh individual with ``ind``'s genes and tag and an empty fitness (cheaper than deepcopy)."""
    copy = individual(ind)
    copy.tag = ind.tag
    return copy


def restore(individual: type, genome: list, tag: int = 0) -> list:
    ind = individual(genome)
    ind.tag = tag
    return ind


@dataclass
class EvolutionState:
    """Everything the rest of a search depends on: what a checkpoint stores."""

    restart: int
    generation: int
    population: list[list]
    rng_state: tuple
    history: tools.Logbook = field(default_factory=tools.Logbook)
    """One entry a generation, every restart's (``restart``, ``generation`` and the search's record)."""
    finished: list[list[list]] = field(default_factory=list)
    """Final populations of the restarts already run."""
    tags: list[int] = field(default_factory=list)
    """Each member's ``tag`` (Compressor's operators: its key order), parallel to ``population``."""


def evaluate_all(toolbox: base.Toolbox, individuals: list) -> None:
    for ind in individuals:
        if not ind.fitness.valid:
            ind.fitness.values = toolbox.evaluate(ind)


def initial_population(toolbox: base.Toolbox, size: int) -> list:
    seen: set[tuple[int, ...]] = set()
    population = []
    for _ in range(size):
        ind = toolbox.unique(toolbox.individual(), seen)
        seen.add(tuple(ind))
        population.append(ind)
    evaluate_all(toolbox, population)
    return population


def breed(toolbox: base.Toolbox, rng: random.Random, population: list, count: int) -> list:
    """``count`` new children, none equal to a parent or to another child."""
    seen = {tuple(ind) for ind in population}
    children: list = []
    size, draw = len(population), rng.random
    while len(children) < count:
        first = int(draw() * size)  # two distinct parents, uniformly (as random.sample(population, 2))
        second = int(draw() * (size - 1))
        second += second >= first
        for child in toolbox.vary(population[first], population[second])[: count - len(children)]:
            seen.add(tuple(toolbox.unique(child, seen)))
            children.append(child)
    evaluate_all(toolbox, children)
    return children


def evolve(toolbox: base.Toolbox, rng: random.Random, state: EvolutionState, individual: type,
           generations: int, record: Record,
           on_generation: Callable[[EvolutionState], None] | None = None) -> tuple[list, EvolutionState]:
    """Run generations ``state.generation + 1 .. generations``; survival is ``toolbox.select``; each generation
    is recorded in ``state.history``."""
    tags = state.tags or [0] * len(state.population)
    population = [restore(individual, genome, tag) for genome, tag in zip(state.population, tags, strict=True)]
    evaluate_all(toolbox, population)
    mu = len(population)
    for generation in range(state.generation + 1, generations + 1):
        children = breed(toolbox, rng, population, mu)
        population = toolbox.select(population + children, mu)
        state.history.record(restart=state.restart, generation=generation, **record(population))
        state = EvolutionState(state.restart, generation, [list(ind) for ind in population], rng.getstate(),
                               state.history, state.finished, [ind.tag for ind in population])
        if on_generation is not None:
            on_generation(state)
    return population, state


def best_genome(population: list) -> Genome:
    return tuple(select_best(population, 1)[0])
