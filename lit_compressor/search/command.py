"""``lit-compressor search``: find the student architecture (Compressor's GA, or NSGA-II).

:func:`search` is the CLI (jsonargparse reads its signature); :func:`run_search` is the Python API
the pipeline calls. Both write ``architecture.yaml``, ``report.json``, ``search.png`` and a
generation checkpoint (``checkpoint.json``) to the output folder; a search finding a checkpoint of
the same settings resumes from it and ends as an uninterrupted run with the same seed would.

Under DDP only rank 0 searches: when ``RANK`` or ``LOCAL_RANK`` is set and not 0, nothing is done and
``None`` is returned (other ranks read ``architecture.yaml`` after a barrier).
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

from deap import tools
from rich.progress import Progress

from lit_compressor.errors import UserError
from lit_compressor.search import checkpoint, report
from lit_compressor.search.architecture import StudentArchitecture, teacher_head
from lit_compressor.search.cost import Cost, cost, size_bounds
from lit_compressor.search.ga import (
    EvolutionState,
    compressor_fitness,
    define_type,
    evaluate_all,
    evolve,
    initial_population,
    make_toolbox,
)
from lit_compressor.search.latency import DEFAULT_CACHE, LatencyTable, load_or_measure
from lit_compressor.search.nsga import WEIGHTS, Pick, pareto_front, pareto_objectives, pick
from lit_compressor.search.space import Genome, SearchSpace

TARGET_TOLERANCE = 0.05


@dataclass
class SearchResult:
    architecture: StudentArchitecture
    cost: Cost
    report: dict
    output: Path


def is_rank_zero() -> bool:
    return all(os.environ.get(name, "0") == "0" for name in ("RANK", "LOCAL_RANK"))


def _check(space: SearchSpace, mode: str, target_mb: float, population: int, generations: int, restarts: int,
           crossover_rate: float, size_kind: str, max_size_mb: float | None) -> None:
    if population < 2 or generations < 0 or restarts < 1 or not 0.0 <= crossover_rate <= 1.0:
        raise UserError("need population >= 2, generations >= 0, restarts >= 1 and 0 <= crossover_rate <= 1;"
                        f" got {population}, {generations}, {restarts}, {crossover_rate}.")
    if population > space.size():
        raise UserError(f"population {population} is larger than the search space ({space.size()} genomes).")
    low, high = size_bounds(space, size_kind)
    reachable = low * (1 - TARGET_TOLERANCE) <= target_mb <= high * (1 + TARGET_TOLERANCE)
    if mode == "ga" and not reachable:
        raise UserError(f"no genome in the search space is within 5% of target_mb={target_mb}: its "
                        f"{size_kind} sizes range from {low:.4f} MB to {high:.2f} MB.",
                        fix="Choose a target in that range or widen the search space.")
    if mode == "nsga2" and max_size_mb is not None and max_size_mb < low:
        raise UserError(f"max_size_mb={max_size_mb} is below the smallest genome of the space "
                        f"({low:.4f} MB).")


def _describe(genome: Genome, space: SearchSpace) -> dict:
    return {**space.architecture(genome).to_dict(), **cost(genome, space).to_dict()}


def run_search(space: SearchSpace | None = None, target_mb: float = 3.0, mode: Literal["ga", "nsga2"] = "ga",
               population: int = 50, generations: int = 100, crossover_rate: float = 0.6, restarts: int = 10,
               local_mutation: float = 0.8, seed: int = 42, size_kind: Literal["fp32", "int8"] = "fp32",
               pick_rule: Pick = "max_flops",
               max_size_mb: float | None = None, max_latency_ms: float | None = None,
               latency_cache: Path = DEFAULT_CACHE, output: Path = Path("runs/search"), resume: bool = True,
               latency_table: LatencyTable | None = None, plot: bool = True) -> SearchResult | None:
    """Search an architecture and write the output folder; see :func:`search` for the arguments."""
    if not is_rank_zero():
        return None
    space = space or SearchSpace()
    _check(space, mode, target_mb, population, generations, restarts, crossover_rate, size_kind, max_size_mb)
    started = time.perf_counter()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    settings = json.loads(json.dumps({
        "mode": mode, "seed": seed, "space": asdict(space), "target_mb": target_mb, "population": population,
        "crossover_rate": crossover_rate, "restarts": restarts, "local_mutation": local_mutation,
        "size_kind": size_kind,
        # a finished restart cannot be extended: only a single-restart search resumes to more generations
        "generations": generations if restarts > 1 else None}))

    rng = random.Random(seed)
    if mode == "ga":
        individual = define_type("CompressorGenome", (1.0,))
        evaluate, select = compressor_fitness(space, target_mb, size_kind), tools.selBest
    else:
        individual = define_type("ParetoGenome", WEIGHTS)
        latency_table = latency_table or load_or_measure(latency_cache)
        evaluate, select = pareto_objectives(space, latency_table, size_kind), tools.selNSGA2
    toolbox = make_toolbox(space, rng, individual, evaluate, select, crossover_rate, local_mutation)
    record = _ga_record if mode == "ga" else _nsga_record

    ckpt_path = output / checkpoint.CHECKPOINT_NAME
    state = checkpoint.load(ckpt_path, settings) if resume else None
    if state is not None and state.history[-1]["generation"] > generations:
        raise UserError(f"the checkpoint is at generation {state.history[-1]['generation']}, past "
                        f"generations={generations}.", where=ckpt_path,
                        fix="Ask for at least that many generations, or use another --output.")
    if state is not None and state.generation < 0 and state.history[-1]["generation"] < generations:
        # a finished single-restart search asked for more generations: reopen its last restart
        state = EvolutionState(state.restart - 1, state.history[-1]["generation"], state.finished[-1],
                               state.rng_state, state.history, state.finished[:-1])
    state = state or EvolutionState(0, -1, [], rng.getstate())
    with Progress(*Progress.get_default_columns(), transient=True) as progress:
        bar = progress.add_task(f"{mode} search", total=restarts * generations)
        state = _run_restarts(state, restarts, generations, population, seed, rng, toolbox, individual, record,
                              ckpt_path, settings,
                              lambda s: progress.update(bar, completed=s.restart * generations + s.generation))

    distinct = {tuple(genome): None for pop in state.finished for genome in pop}
    everyone = [individual(genome) for genome in distinct]
    evaluate_all(toolbox, everyone)
    final = select(everyone, population)
    members = [{**_describe(tuple(ind), space), "objectives": list(ind.fitness.values)} for ind in final]
    result: dict = {"mode": mode, "seed": seed, "settings": {**settings, "generations": generations}}
    if mode == "ga":
        best = tuple(final[0])
        chosen = {**_describe(best, space), "fitness": final[0].fitness.values[0]}
        result["population"] = members
    else:
        front = pareto_front(final)
        best = pick(front, pick_rule, max_size_mb, max_latency_ms)
        size, gflops, latency = toolbox.evaluate(list(best))
        chosen = {**_describe(best, space), "latency_ms": latency, "objective_size_mb": size}
        result["pick"] = {"rule": pick_rule, "max_size_mb": max_size_mb, "max_latency_ms": max_latency_ms}
        result["pareto_front"] = [{**_describe(tuple(ind), space), "latency_ms": ind.fitness.values[2]}
                                  for ind in front]
        result["latency_table"] = asdict(latency_table)
    result["best"] = chosen
    result["history"] = state.history
    result["elapsed_s"] = round(time.perf_counter() - started, 3)

    architecture = space.architecture(best)
    report.write_architecture(output / "architecture.yaml", architecture, priced_for(space, best))
    report.write_report(output / "report.json", result)
    if plot:
        title = f"{mode} search, seed {seed}"
        if mode == "ga":
            report.plot_fitness(output / "search.png", state.history, f"{title}, target {target_mb} MB")
        else:
            population_points = [{**m, "latency_ms": m["objectives"][2]} for m in members]
            report.plot_front(output / "search.png", population_points, result["pareto_front"], chosen, title)
    return SearchResult(architecture, cost(best, space), result, output)


def with_teacher_head(space: SearchSpace, teacher: str) -> SearchSpace:
    head = teacher_head(teacher)
    return replace(space, family=head["family"], pair_head=head["pair_head"], num_inputs=head["num_inputs"],
                   num_labels=head["num_labels"], inputs=space.inputs or head["inputs"])


def priced_for(space: SearchSpace, genome: Genome) -> dict:
    """The settings besides the genes that the search's price depends on, and the price in parameters."""
    return {"family": space.family, "pair_head": space.pair_head, "num_inputs": space.num_inputs,
            "num_labels": space.num_labels, "block_size": space.block_size, "max_positions": space.positions,
            "inputs": space.inputs or "plain", "params": cost(genome, space).params}


def _run_restarts(state: EvolutionState, restarts: int, generations: int, population: int, seed: int,
                  rng: random.Random, toolbox, individual: type, record, ckpt_path: Path, settings: dict,
                  on_progress) -> EvolutionState:
    """Run the missing restarts and generations, checkpointing after each generation."""
    while state.restart < restarts:
        if state.generation < 0:  # a restart not started yet
            rng.seed(f"{seed}:{state.restart}")
            start = initial_population(toolbox, population)
            state = EvolutionState(state.restart, 0, [list(ind) for ind in start], rng.getstate(),
                                   state.history + [record(state.restart, 0, start)], state.finished)
            checkpoint.save(ckpt_path, state, settings)
        rng.setstate(state.rng_state)
        _, state = evolve(toolbox, rng, state, individual, generations, record,
                          on_generation=lambda s: (checkpoint.save(ckpt_path, s, settings), on_progress(s)))
        state = EvolutionState(state.restart + 1, -1, [], rng.getstate(), state.history,
                               state.finished + [state.population])
        checkpoint.save(ckpt_path, state, settings)
    return state


def _ga_record(restart: int, generation: int, population: list) -> dict:
    fitness = [ind.fitness.values[0] for ind in population]
    best = max(range(len(population)), key=lambda i: fitness[i])
    return {"restart": restart, "generation": generation, "best_fitness": fitness[best],
            "mean_fitness": sum(fitness) / len(fitness), "best": list(population[best])}


def _nsga_record(restart: int, generation: int, population: list) -> dict:
    values = [ind.fitness.values for ind in population]
    return {"restart": restart, "generation": generation, "front_size": len(pareto_front(population)),
            "min_size_mb": min(v[0] for v in values), "max_gflops": max(v[1] for v in values),
            "min_latency_ms": min(v[2] for v in values)}


def search(space: SearchSpace | None = None, target_mb: float = 3.0, mode: Literal["ga", "nsga2"] = "ga",
           population: int = 50, generations: int = 100, crossover_rate: float = 0.6, restarts: int = 10,
           local_mutation: float = 0.8, seed: int = 42,
           size_kind: Literal["fp32", "int8"] = "fp32", pick: Pick = "max_flops",
           max_size_mb: float | None = None, max_latency_ms: float | None = None,
           latency_cache: Path = DEFAULT_CACHE, output: Path = Path("runs/search"),
           resume: bool = True, teacher: str | None = None) -> dict | None:
    """Search a student architecture with Compressor's GA or NSGA-II, and write it to ``output``.

    Args:
        space: Genes (ranges or choices) and fixed student settings (block size, inputs, family, head).
        target_mb: GA only: the size the fitness ``GFLOPs - |MB - target_mb|`` aims at.
        mode: ``ga`` (Compressor's single objective) or ``nsga2`` (size, FLOPs and latency).
        population: Genomes per generation.
        generations: Generations to run (a resumed search runs only the missing ones).
        crossover_rate: Probability of one-point crossover; otherwise both parents are mutated.
        local_mutation: Probability that a mutated gene moves to a near value (0: Compressor's redraw).
        restarts: Independent runs (Compressor: 10); the best genome (GA) or the joint front (NSGA-II) wins.
        seed: Seed of the search's own random generator: same seed, same result.
        size_kind: The size the search sees: ``fp32`` weights (Compressor) or ``int8`` (dynamic quantization).
        pick: NSGA-II only: which front member to return (``max_flops``, ``min_latency``, ``min_size``).
        max_size_mb: NSGA-II only: size budget of the pick.
        max_latency_ms: NSGA-II only: latency budget of the pick (this machine's CPU).
        latency_cache: Folder of the cached per-layer latency table (NSGA-II).
        output: Folder for architecture.yaml, report.json, search.png and the checkpoint.
        resume: Resume from ``output/checkpoint.json`` when it exists.
        teacher: A fine-tuned teacher folder: the student's family, pair head, inputs and labels are its
            (they replace the space's; ``space.inputs``, when set, is kept), so the search prices the student
            distillation will build.
    """
    if teacher is not None:
        space = with_teacher_head(space or SearchSpace(), teacher)
    result = run_search(space, target_mb, mode, population, generations, crossover_rate, restarts,
                        local_mutation, seed, size_kind, pick, max_size_mb, max_latency_ms, latency_cache,
                        output, resume)
    if result is None:
        return None
    best = result.report["best"]
    print(f"best: {result.architecture.to_dict()}  {best['size_mb']:.3f} MB fp32, "
          f"{best['int8_mb']:.3f} MB int8, {best['gflops']:.3f} GFLOPs -> "
          f"{result.output / 'architecture.yaml'}")
    return best
