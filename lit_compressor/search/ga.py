"""Compressor's genetic algorithm on DEAP, and the generation loop NSGA-II shares.

Mirrors ``searcher.py`` of the Compressor research code (soarsmu/Compressor):

- a population of ``mu`` distinct genomes, drawn at random (a duplicate is mutated until new);
- each generation breeds ``mu`` children: two parents drawn uniformly at random (no fitness-based
  parent selection), crossover with probability 0.6, else both parents mutated; a child equal to a
  genome already in the population or among the children is mutated until new;
- survival is elitist (mu + lambda) truncation: parents and children are ranked by fitness and the
  best ``mu`` survive (``tools.selBest``), so the best genome is never lost;
- fitness ``GFLOPs - |size_MB - target_MB|``;
- the whole search is repeated ``restarts`` times (Compressor: 10) and the best genome of all kept.

Differences: a mutated gene moves to a near value with probability ``local_mutation`` (0.8; 0 is
Compressor's uniform redraw, see :func:`~lit_compressor.search.operators.resample_mutation`); genes
are crossed and mutated in the order V, L, H, A, D; H % A == 0 is kept by repair; restart r draws
from its own ``random.Random(f"{seed}:{r}")``, never from the global RNG.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from deap import base, creator, tools

from lit_compressor.search.cost import cost, size_of
from lit_compressor.search.operators import make_unique, one_point_crossover, resample_mutation, vary
from lit_compressor.search.space import Genome, SearchSpace


def define_type(name: str, weights: tuple[float, ...]) -> type:
    """``creator`` fitness + individual types, created once per process (DEAP keeps them global)."""
    fitness_name = f"{name}Fitness"
    if not hasattr(creator, fitness_name):
        creator.create(fitness_name, base.Fitness, weights=weights)
    if not hasattr(creator, name):
        creator.create(name, list, fitness=getattr(creator, fitness_name))
    return getattr(creator, name)


def compressor_fitness(space: SearchSpace, target_mb: float, size_kind: str = "fp32") -> Callable:
    """``genome -> (GFLOPs - |MB - target|,)``, Compressor's single objective."""

    def evaluate(genome: list[int]) -> tuple[float]:
        c = cost(tuple(genome), space)
        return (c.gflops - abs(size_of(c, size_kind) - target_mb),)

    return evaluate


def make_toolbox(space: SearchSpace, rng: random.Random, individual: type, evaluate: Callable,
                 select: Callable, crossover_rate: float = 0.6, local_mutation: float = 0.8) -> base.Toolbox:
    """A toolbox with our operators registered: individual, mate, mutate, vary, unique, evaluate, select."""
    toolbox = base.Toolbox()
    toolbox.register("clone", individual)  # a fresh list with an empty fitness: cheaper than deepcopy
    toolbox.register("individual", lambda: individual(space.random_genome(rng)))
    toolbox.register("mate", one_point_crossover, space=space, rng=rng)
    toolbox.register("mutate", resample_mutation, space=space, rng=rng, local_rate=local_mutation)
    toolbox.register("vary", vary, clone=toolbox.clone, mate=toolbox.mate, mutate=toolbox.mutate,
                     crossover_rate=crossover_rate, rng=rng)
    toolbox.register("unique", make_unique, mutate=toolbox.mutate)
    cache: dict[tuple[int, ...], tuple[float, ...]] = {}
    toolbox.register("evaluate", lambda ind: cache.setdefault(tuple(ind), evaluate(ind)))
    toolbox.register("select", select)
    return toolbox


@dataclass
class EvolutionState:
    """Everything the rest of a search depends on: what a checkpoint stores."""

    restart: int
    generation: int
    population: list[list[int]]
    rng_state: tuple
    history: list[dict] = field(default_factory=list)
    finished: list[list[list[int]]] = field(default_factory=list)
    """Final populations of the restarts already run."""


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
    while len(children) < count:
        for child in toolbox.vary(*rng.sample(population, 2))[: count - len(children)]:
            seen.add(tuple(toolbox.unique(child, seen)))
            children.append(child)
    evaluate_all(toolbox, children)
    return children


def evolve(toolbox: base.Toolbox, rng: random.Random, state: EvolutionState, individual: type,
           generations: int, record: Callable[[int, int, list], dict],
           on_generation: Callable[[EvolutionState], None] | None = None) -> tuple[list, EvolutionState]:
    """Run generations ``state.generation + 1 .. generations``; survival is ``toolbox.select``."""
    population = [individual(genome) for genome in state.population]
    evaluate_all(toolbox, population)
    mu = len(population)
    for generation in range(state.generation + 1, generations + 1):
        children = breed(toolbox, rng, population, mu)
        population = toolbox.select(population + children, mu)
        history = state.history + [record(state.restart, generation, population)]
        state = EvolutionState(state.restart, generation, [list(ind) for ind in population], rng.getstate(),
                               history, state.finished)
        if on_generation is not None:
            on_generation(state)
    return population, state


def best_genome(population: list) -> Genome:
    return tuple(tools.selBest(population, 1)[0])  # type: ignore[return-value]
