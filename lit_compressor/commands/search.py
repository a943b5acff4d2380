"""``lit-compressor search``: find the student architecture (Compressor's GA, or NSGA-II for an IDE budget).

:func:`search` is the CLI (jsonargparse reads its signature); :func:`run_search` is the Python API.
Both write ``architecture.yaml``, ``report.json``, ``search.png`` and a generation checkpoint
(``checkpoint.json``) to the output folder; a search finding a checkpoint of the same settings resumes
from it and ends as an uninterrupted run with the same seed would. An NSGA-II search with a predictor
also keeps its sampled distillations under ``samples/`` (each a cached unit), and its timings in the
latency cache, so a killed search resumes to the same front.

Light: importing this module imports neither torch, transformers nor Lightning (nor numpy, beyond
DEAP's own import); timing and distilling are imported only when an NSGA-II search measures.

Under DDP only rank 0 searches: when ``RANK`` or ``LOCAL_RANK`` is set and not 0, nothing is done and
``None`` is returned (other ranks read ``architecture.yaml`` after a barrier).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from deap import tools
from rich.progress import Progress

from lit_compressor.core.errors import UserError
from lit_compressor.core.metadata import teacher_head
from lit_compressor.data.task import TaskData
from lit_compressor.measure import ide as measurements
from lit_compressor.measure.ide import LatencySettings, PredictorSettings
from lit_compressor.search import checkpoint, nsga, report
from lit_compressor.search.architecture import StudentArchitecture
from lit_compressor.search.compressor import check_space, compressor_cost
from lit_compressor.search.cost import Cost, cost, size_bounds
from lit_compressor.search.ga import (
    CostModel,
    EvolutionState,
    Operators,
    compressor_fitness,
    define_type,
    evaluate_all,
    evolve,
    ga_record,
    initial_population,
    make_toolbox,
    pricer,
    select_best,
)
from lit_compressor.search.latency_model import LatencyModel
from lit_compressor.search.nsga import INFEASIBLE, Flips, Pick
from lit_compressor.search.space import Genome, SearchSpace

TARGET_TOLERANCE = 0.05
CHECKPOINT_SECONDS = 0.5
DEFAULT_TOKENIZER_CACHE = Path("runs/cache/tokenizers")


@dataclass
class SearchResult:
    architecture: StudentArchitecture
    cost: Cost
    report: dict
    output: Path
    extras: dict[str, Any]
    """The searched genes beyond the architecture (``block_size``, ``lr``, ``dropout``)."""


def is_rank_zero() -> bool:
    return all(os.environ.get(name, "0") == "0" for name in ("RANK", "LOCAL_RANK"))


def _check_flips(mode: str, flips: str, max_flip_rate: float | None, predictor: PredictorSettings | None) -> None:
    if flips == "off":
        if max_flip_rate is not None:
            raise UserError(f"max_flip_rate={max_flip_rate} is set but flips is off.",
                            fix="Set flips: constraint (or objective, to cap the pick), or remove max_flip_rate.")
        return
    if mode != "nsga2" or predictor is None:
        raise UserError(f"flips: {flips} needs the NSGA-II search with an accuracy predictor (its sampled "
                        "distillations measure the flips).", fix="Use mode: nsga2 with a predictor, or flips: off.")
    if flips == "constraint" and max_flip_rate is None:
        raise UserError("flips: constraint needs max_flip_rate (the highest predicted flip rate allowed).",
                        fix="Set max_flip_rate, e.g. 0.05.")
    if max_flip_rate is not None and not 0.0 <= max_flip_rate <= 1.0:
        raise UserError(f"max_flip_rate is a share of examples, between 0 and 1; got {max_flip_rate}.")


def _check(space: SearchSpace, mode: str, target_mb: float, population: int, generations: int, restarts: int,
           crossover_rate: float, size_kind: str, max_size_mb: float | None, cost_model: str,
           operators: str) -> None:
    if population < 2 or generations < 0 or restarts < 1 or not 0.0 <= crossover_rate <= 1.0:
        raise UserError("need population >= 2, generations >= 0, restarts >= 1 and 0 <= crossover_rate <= 1;"
                        f" got {population}, {generations}, {restarts}, {crossover_rate}.")
    if population > space.size():
        raise UserError(f"population {population} is larger than the search space ({space.size()} genomes).")
    if cost_model == "compressor" or operators == "compressor":
        check_space(space)
        if cost_model == "compressor" and (mode != "ga" or size_kind != "fp32"):
            raise UserError("cost_model: compressor prices fp32 weights for the GA (Compressor's fitness) only.",
                            fix="Use mode: ga and size_kind: fp32, or cost_model: exact.")
    low, high = size_bounds(space, size_kind)
    if cost_model == "compressor":
        values = space.values
        low = compressor_cost((values[0][0], values[1][0], values[2][0], values[3][0], values[4][0])).size_mb
        high = compressor_cost((values[0][-1], values[1][-1], values[2][-1], values[3][-1], values[4][-1])).size_mb
    reachable = low * (1 - TARGET_TOLERANCE) <= target_mb <= high * (1 + TARGET_TOLERANCE)
    if mode == "ga" and not reachable:
        raise UserError(f"no genome in the search space is within 5% of target_mb={target_mb}: its "
                        f"{size_kind} sizes range from {low:.4f} MB to {high:.2f} MB.",
                        fix="Choose a target in that range or widen the search space.")
    if mode == "nsga2" and max_size_mb is not None and max_size_mb < low:
        raise UserError(f"max_size_mb={max_size_mb} is below the smallest genome of the space "
                        f"({low:.4f} MB).")


def describe(genome: Genome, space: SearchSpace, price: Callable[[Genome], Cost] | None = None) -> dict:
    """A genome's genes and price (the exact model's, or ``price``'s with the exact one as ``built``)."""
    genes = dict(zip(space.gene_names, genome, strict=True))
    exact = cost(genome, space).to_dict()
    if price is None:
        return {**genes, **exact}
    return {**genes, **price(genome).to_dict(), "built": exact}


def run_search(space: SearchSpace | None = None, target_mb: float = 3.0, mode: Literal["ga", "nsga2"] = "ga",
               population: int = 50, generations: int = 100, crossover_rate: float = 0.6, restarts: int = 10,
               local_mutation: float = 0.8, seed: int = 42, size_kind: Literal["fp32", "int8"] = "fp32",
               pick_rule: Pick = "max_accuracy", max_size_mb: float | None = None,
               max_latency_ms: float | None = None, output: Path = Path("runs/search"), resume: bool = True,
               plot: bool = True, cost_model: CostModel = "exact", operators: Operators = "local",
               latency: LatencySettings | None = None, predictor: PredictorSettings | None = None,
               task: TaskData | None = None, tokenizer_cache: Path = DEFAULT_TOKENIZER_CACHE,
               latency_model: LatencyModel | None = None, progress: bool = True, flips: Flips = "off",
               max_flip_rate: float | None = None) -> SearchResult | None:
    """Search an architecture and write the output folder; see :func:`search` for the arguments.

    ``latency_model`` replaces measuring (tests, or a model fitted elsewhere).
    """
    if not is_rank_zero():
        return None
    space = space or SearchSpace()
    _check(space, mode, target_mb, population, generations, restarts, crossover_rate, size_kind, max_size_mb,
           cost_model, operators)
    _check_flips(mode, flips, max_flip_rate, predictor)
    started = time.perf_counter()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    latency = latency or LatencySettings()
    settings = json.loads(json.dumps({
        "mode": mode, "seed": seed, "space": asdict(space), "target_mb": target_mb, "population": population,
        "crossover_rate": crossover_rate, "restarts": restarts, "local_mutation": local_mutation,
        "size_kind": size_kind, "cost_model": cost_model, "operators": operators,
        **({"max_size_mb": max_size_mb, "max_latency_ms": max_latency_ms, "latency": asdict(latency),
            "predictor": asdict(predictor) if predictor else None,
            "task": task.to_dict() if task else None} if mode == "nsga2" else {}),
        # only when on: a search without flips resumes from a checkpoint written before flips existed
        **({"flips": flips, "max_flip_rate": max_flip_rate} if flips != "off" else {}),
        # a finished restart cannot be extended: only a single-restart search resumes to more generations
        "generations": generations if restarts > 1 else None}, default=str))

    rng = random.Random(seed)
    price = pricer(space, cost_model)
    result: dict = {"mode": mode, "seed": seed, "settings": {**settings, "generations": generations}}
    # a bar on a terminal only (transient: gone when done); silent in logs and pipes
    with Progress(transient=True, disable=not (progress and sys.stdout.isatty())) as bars:
        if mode == "ga":
            individual = define_type("CompressorGenome", (1.0,))
            evaluate, select = compressor_fitness(space, target_mb, size_kind, cost_model), select_best
        else:
            individual = define_type("ParetoFlipsGenome" if flips == "objective" else "ParetoGenome",
                                     nsga.weights(flips))
            evaluate, measured, flip_rate = _pareto_objectives(space, price, size_kind, max_size_mb, max_latency_ms,
                                                               latency, predictor, task, tokenizer_cache,
                                                               latency_model, seed, output, bars, flips,
                                                               max_flip_rate)
            select = tools.selNSGA2
            result.update(measured)
        toolbox = make_toolbox(space, rng, individual, evaluate, select, crossover_rate, local_mutation, operators)
        record = ga_record if mode == "ga" else nsga.nsga_record

        ckpt_path = output / checkpoint.CHECKPOINT_NAME
        state = checkpoint.load(ckpt_path, settings) if resume else None
        if state is not None and state.history[-1]["generation"] > generations:
            raise UserError(f"the checkpoint is at generation {state.history[-1]['generation']}, past "
                            f"generations={generations}.", where=ckpt_path,
                            fix="Ask for at least that many generations, or use another --output.")
        if state is not None and state.generation < 0 and state.history[-1]["generation"] < generations:
            # a finished single-restart search asked for more generations: reopen its last restart
            state = EvolutionState(state.restart - 1, state.history[-1]["generation"], state.finished[-1],
                                   state.rng_state, state.history, state.finished[:-1], state.tags)
        state = state or EvolutionState(0, -1, [], rng.getstate())
        bar = bars.add_task(f"{mode} search", total=restarts * generations)
        state = _run_restarts(state, restarts, generations, population, seed, rng, toolbox, individual, record,
                              ckpt_path, settings,
                              lambda s: bars.update(bar, completed=s.restart * generations + s.generation))

    distinct = {tuple(genome): None for pop in state.finished for genome in pop}
    everyone = [individual(genome) for genome in distinct]
    evaluate_all(toolbox, everyone)
    final = select(everyone, population)
    shown = price if cost_model != "exact" else None
    if mode == "ga":
        best = tuple(final[0])
        chosen = {**describe(best, space, shown), "fitness": final[0].fitness.values[0]}
        result["population"] = [{**describe(tuple(ind), space, shown), "objectives": list(ind.fitness.values)}
                                for ind in final]
    else:
        front = nsga.pareto_front(final)
        best = nsga.pick(front, pick_rule, max_size_mb, max_latency_ms, max_flip_rate, flip_rate)
        values = {tuple(ind): ind.fitness.values for ind in final}
        chosen = _point(best, values[best], space, result, flip_rate)
        result["pick"] = {"rule": pick_rule, "max_size_mb": max_size_mb, "max_latency_ms": max_latency_ms,
                          **({"flips": flips, "max_flip_rate": max_flip_rate} if flips != "off" else {})}
        result["pareto_front"] = [_point(tuple(ind), ind.fitness.values, space, result, flip_rate) for ind in front]
        result["population"] = [_point(tuple(ind), ind.fitness.values, space, result, flip_rate) for ind in final]
    result["best"] = chosen
    result["history"] = list(state.history)
    result["elapsed_s"] = round(time.perf_counter() - started, 3)

    architecture = space.architecture(best)
    extras = space.extras(best)
    report.write_architecture(output / "architecture.yaml", architecture, priced_for(space, best), extras)
    report.write_report(output / "report.json", result)
    if plot:
        title = f"{mode} search, seed {seed}"
        if mode == "ga":
            report.plot_fitness(output / "search.png", state.history, f"{title}, target {target_mb} MB")
        else:
            report.plot_front(output / "search.png", result, size_kind, title)
    return SearchResult(architecture, cost(best, space), result, output, extras)


def _pareto_objectives(space: SearchSpace, price, size_kind: str, max_size_mb: float | None,
                       max_latency_ms: float | None, latency: LatencySettings, predictor: PredictorSettings | None,
                       task: TaskData | None, tokenizer_cache: Path, model: LatencyModel | None, seed: int,
                       output: Path, progress: Progress, flips: Flips = "off", max_flip_rate: float | None = None
                       ) -> tuple[Callable, dict, Callable[[Genome], float] | None]:
    """The NSGA-II evaluation (accuracy, latency, size, and the predicted flip rate with ``flips: objective``;
    size-penalised, and flip-penalised with ``flips: constraint``), what was measured for it, and the predicted
    flip rate (None without a flip predictor)."""
    measured: dict = {}
    accept = measurements.within_size(space, size_kind, max_size_mb)
    if model is None:
        model, measured["latency_model"] = measurements.latency_model(space, latency, task, tokenizer_cache, seed,
                                                                      accept, progress)
    else:
        measured["latency_model"] = {"runtime": model.runtime, "given": True}
    latency_cache: dict[Genome, float] = {}

    def latency_ms(genome: Genome) -> float:
        if genome not in latency_cache:
            latency_cache[genome] = model.latency_ms(genome, space)
        return latency_cache[genome]

    flip_rate = None
    if predictor is not None:
        fast = (lambda g: accept(g) and latency_ms(g) <= max_latency_ms) if max_latency_ms is not None else accept
        fitted, flip_model, measured["predictor"] = measurements.predictors(space, predictor, output, seed, fast,
                                                                            progress)
        for sample in measured["predictor"]["samples"]:
            sample["latency_ms"] = latency_ms(tuple(sample[name] for name in space.gene_names))
        accuracy, measured["objective"] = fitted.predict, "predicted accuracy"
        if flip_model is not None:
            flip_cache: dict[Genome, float] = {}

            def flip_rate(genome: Genome) -> float:
                if genome not in flip_cache:
                    flip_cache[genome] = flip_model.predict(genome)
                return flip_cache[genome]
        elif flips != "off":
            raise UserError(f"flips: {flips} needs every sampled distillation's flip rate: "
                            f"{measured['predictor']['flips']['reason']}.", output / "samples",
                            "Remove the samples without flip_rate in their result.json (the search distils them "
                            "again), or set flips: off.")
    else:
        accuracy, measured["objective"] = (lambda g: price(g).gflops), "GFLOPs (no predictor: a training-free proxy)"
    evaluate = nsga.objectives(price, accuracy, latency_ms, size_kind, flip_rate if flips == "objective" else None)
    if flips == "constraint":
        evaluate = nsga.flip_penalty(evaluate, flip_rate, max_flip_rate)
    evaluate = nsga.size_penalty(evaluate, price, size_kind, max_size_mb, flips)
    return evaluate, measured, flip_rate


def _point(genome: Genome, objectives: tuple[float, ...], space: SearchSpace, result: dict,
           flip_rate: Callable[[Genome], float] | None = None) -> dict:
    accuracy, latency, size = objectives[:3]
    samples = {tuple(s[name] for name in space.gene_names): s["accuracy"]
               for s in result.get("predictor", {}).get("samples", [])}
    key = "predicted_accuracy" if "predictor" in result else "gflops_objective"
    if latency >= INFEASIBLE[1]:  # over the size budget or the flip cap: DeltaPenalty's values, not the genome's
        return {**describe(genome, space), key: None, "latency_ms": None, "objective_size_mb": None,
                "feasible": False}
    point = {**describe(genome, space), key: accuracy, "latency_ms": latency, "objective_size_mb": size}
    if flip_rate is not None:
        point["predicted_flip_rate"] = flip_rate(genome)
    if genome in samples:
        point["measured_accuracy"] = samples[genome]
    return point


def with_teacher_head(space: SearchSpace, teacher: str) -> SearchSpace:
    head = teacher_head(teacher)
    return replace(space, family=head["family"], pair_head=head["pair_head"], num_inputs=head["num_inputs"],
                   num_labels=head["num_labels"], inputs=space.inputs or head["inputs"])


def priced_for(space: SearchSpace, genome: Genome) -> dict:
    """The settings besides the genes that the exact price depends on, and that price in parameters: what
    distillation builds and checks."""
    return {"family": space.family, "pair_head": space.pair_head, "num_inputs": space.num_inputs,
            "num_labels": space.num_labels, "block_size": space.block_of(genome),
            "max_positions": space.positions_of(genome), "inputs": space.inputs or "plain",
            "params": cost(genome, space).params}


def _run_restarts(state: EvolutionState, restarts: int, generations: int, population: int, seed: int,
                  rng: random.Random, toolbox, individual: type, record, ckpt_path: Path, settings: dict,
                  on_progress) -> EvolutionState:
    """Run the missing restarts and generations, checkpointing after each restart and, within one, after a
    generation when the last checkpoint is ``CHECKPOINT_SECONDS`` old (a checkpoint rewrites the whole
    history: after every generation it would cost more than the search)."""
    last_save = [time.perf_counter()]

    def on_generation(s: EvolutionState) -> None:
        if time.perf_counter() - last_save[0] >= CHECKPOINT_SECONDS:
            checkpoint.save(ckpt_path, s, settings)
            last_save[0] = time.perf_counter()
        on_progress(s)

    while state.restart < restarts:
        if state.generation < 0:  # a restart not started yet
            rng.seed(f"{seed}:{state.restart}")
            start = initial_population(toolbox, population)
            state.history.record(restart=state.restart, generation=0, **record(start))
            state = EvolutionState(state.restart, 0, [list(ind) for ind in start], rng.getstate(), state.history,
                                   state.finished, [ind.tag for ind in start])
        rng.setstate(state.rng_state)
        _, state = evolve(toolbox, rng, state, individual, generations, record, on_generation=on_generation)
        state = EvolutionState(state.restart + 1, -1, [], rng.getstate(), state.history,
                               state.finished + [state.population], state.tags)  # the tags of finished[-1]
        checkpoint.save(ckpt_path, state, settings)
    return state


def search(space: SearchSpace | None = None, target_mb: float = 3.0, mode: Literal["ga", "nsga2"] = "ga",
           population: int = 50, generations: int = 100, crossover_rate: float = 0.6, restarts: int = 10,
           local_mutation: float = 0.8, operators: Operators = "local", cost_model: CostModel = "exact",
           seed: int = 42, size_kind: Literal["fp32", "int8"] = "fp32", pick: Pick = "max_accuracy",
           max_size_mb: float | None = None, max_latency_ms: float | None = None,
           latency: LatencySettings | None = None, predictor: PredictorSettings | None = None,
           task: TaskData | None = None, tokenizer_cache: Path = DEFAULT_TOKENIZER_CACHE,
           output: Path = Path("runs/search"), resume: bool = True, plot: bool = True,
           teacher: str | None = None, flips: Flips = "off", max_flip_rate: float | None = None) -> dict | None:
    """Search a student architecture with Compressor's GA or NSGA-II, and write it to ``output``.

    Args:
        space: Genes (ranges or choices; ``block_size`` fixed or a gene; optional ``lr``/``dropout`` genes)
            and fixed student settings (inputs, family, head).
        target_mb: GA only: the size the fitness ``GFLOPs - |MB - target_mb|`` aims at.
        mode: ``ga`` (Compressor's single objective) or ``nsga2`` (accuracy, latency and size: an IDE budget).
        population: Genomes per generation.
        generations: Generations to run (a resumed search runs only the missing ones).
        crossover_rate: Probability of one-point crossover; otherwise both parents are mutated.
        restarts: Independent runs (Compressor's searcher.py: 10); the best genome (GA) or the joint front wins.
        local_mutation: ``operators: local``: probability that a mutated gene moves to a near value.
        operators: ``local`` (ours) or ``compressor`` (searcher.py's crossover and mutation exactly).
        cost_model: ``exact`` (params and FLOPs of the module distillation builds) or ``compressor``
            (Compressor's flops.py formula, 514 tokens).
        seed: Seed of the search's own random generators: same seed, same result.
        size_kind: The size the search sees: ``fp32`` weights (Compressor) or ``int8`` (dynamic quantization).
        pick: NSGA-II: which front member to return (``max_accuracy``, ``min_latency``, ``min_size``).
        max_size_mb: NSGA-II: size budget (genomes over it are infeasible).
        max_latency_ms: NSGA-II: latency budget of the pick (p50 on the shipped runtime, this machine).
        latency: NSGA-II: how latency is measured (runtime, threads, inputs, genomes, cache).
        predictor: NSGA-II: the accuracy predictor's distillations (samples, the student fit config, slice);
            without it the accuracy objective is GFLOPs.
        task: NSGA-II: the task whose test inputs are timed and whose unlabelled code trains tokenizers.
        tokenizer_cache: Folder of the student BPE tokenizers (shared with distillation).
        output: Folder for architecture.yaml, report.json, search.png, the checkpoint and samples/.
        resume: Resume from ``output/checkpoint.json`` when it exists.
        plot: Draw ``search.png`` (matplotlib: about half a second).
        teacher: A fine-tuned teacher folder: the student's family, pair head, inputs and labels are its
            (they replace the space's; ``space.inputs``, when set, is kept), so the search prices the student
            distillation will build.
        flips: NSGA-II with a predictor: prediction flips under Morph's two renamings, predicted by a second
            Gaussian process fitted to the sampled distillations' flip rates. ``off`` (default), ``objective``
            (a fourth minimised objective) or ``constraint`` (genomes predicted over ``max_flip_rate`` are
            infeasible).
        max_flip_rate: The highest predicted flip rate (share of examples) allowed: the constraint's cap, and
            with ``objective`` a cap on the pick.
    """
    if teacher is not None:
        space = with_teacher_head(space or SearchSpace(), teacher)
    result = run_search(space, target_mb, mode, population, generations, crossover_rate, restarts,
                        local_mutation, seed, size_kind, pick_rule=pick, max_size_mb=max_size_mb,
                        max_latency_ms=max_latency_ms, output=output, resume=resume, plot=plot,
                        cost_model=cost_model, operators=operators, latency=latency, predictor=predictor, task=task,
                        tokenizer_cache=tokenizer_cache, flips=flips, max_flip_rate=max_flip_rate)
    if result is None:
        return None
    best = result.report["best"]
    genes = {**result.architecture.to_dict(), **result.extras}
    if mode == "nsga2":
        accuracy = best.get("predicted_accuracy")
        what = f"predicted accuracy {accuracy:.3f}, " if accuracy is not None else ""
        if best.get("predicted_flip_rate") is not None:
            what += f"predicted flip rate {best['predicted_flip_rate']:.4f}, "
        summary = (f"{what}{best['latency_ms']:.2f} ms p50 ({result.report['latency_model']['runtime']}), "
                   f"{best['size_mb']:.3f} MB fp32, {best['int8_mb']:.3f} MB int8")
    elif cost_model == "compressor":
        summary = (f"Compressor's count: {best['params']:,} params, {best['size_mb']:.4f} MB, "
                   f"{best['gflops']:.4f} GFLOPs, fitness {best['fitness']:.4f}; built: {best['built']['params']:,} "
                   f"params")
    else:
        summary = (f"{best['size_mb']:.3f} MB fp32, {best['int8_mb']:.3f} MB int8, {best['gflops']:.3f} GFLOPs, "
                   f"fitness {best['fitness']:.4f}")
    print(f"best: {genes}  {summary} -> {result.output / 'architecture.yaml'}")
    return best
