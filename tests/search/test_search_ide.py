"""The IDE search: latency model, accuracy predictor, NSGA-II front and pick, extra genes, resume."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tiny_tasks import ROOT, _env, sampled_unit_fit

from lit_compressor.commands.compress import search_config, searched_genes
from lit_compressor.commands.search import run_search
from lit_compressor.core.errors import UserError
from lit_compressor.data.task import TaskData
from lit_compressor.measure.ide import LatencySettings, PredictorSettings, spread, vocab_grid
from lit_compressor.search.cost import cost
from lit_compressor.search.latency_model import FEATURES, LatencyModel, Timing, features, fit, median
from lit_compressor.search.predictor import AccuracyPredictor, Scaler, kendall_tau
from lit_compressor.search.space import FloatGene, Gene, SearchSpace

IDE_SPACE = SearchSpace(num_hidden_layers=Gene(1, 6), hidden_size=Gene(16, 128, 16),
                        intermediate_size=Gene(32, 256, 32), vocab_size=Gene(1000, 8000, 1000),
                        block_size=Gene(choices=[64, 128, 256]), lr=FloatGene([1e-3, 3e-3]), num_inputs=2)
TRUE = [0.3, 0.01, 1e-4, 2e-6, 1e-9, 3e-10, 1e-8, 2e-6, 1e-7, 2e-8]


def _tokens(inputs: int = 9) -> list[list[list[int]]]:
    """Token counts of ``inputs`` pairs at vocabulary sizes 1000 and 8000 (fewer tokens with more vocabulary)."""
    rng = random.Random(0)
    small = [[rng.randint(40, 600), rng.randint(40, 600)] for _ in range(inputs)]
    return [small, [[max(3, c // 2) for c in pair] for pair in small]]


def _model(coefficients=TRUE) -> LatencyModel:
    return LatencyModel(list(coefficients), [1000, 8000], _tokens(), "onnx-int8", {"cpu": "made up"})


def test_extra_genes_extend_the_genome_and_the_price():
    space = IDE_SPACE
    assert space.gene_names[5:] == ("block_size", "lr")
    genome = (2, 64, 4, 128, 2000, 256, 3e-3)
    assert space.extras(genome) == {"block_size": 256, "lr": 3e-3}
    fixed = SearchSpace(num_inputs=2, block_size=256)
    assert cost(genome, space) == cost(genome[:5], fixed)  # positions 258 and FLOPs at 256 tokens
    assert cost(genome, space).params - cost((2, 64, 4, 128, 2000, 64, 3e-3), space).params == (256 - 64) * 64
    assert space.size() == 6 * 8 * 4 * 8 * 8 * 3 * 2
    with pytest.raises(UserError, match="dropout"):
        _ = SearchSpace(dropout=FloatGene([0.1, 1.5])).values


def test_latency_fit_recovers_known_coefficients_and_interpolates_tokens():
    space = IDE_SPACE
    model = _model()
    rng = random.Random(1)
    timings = []
    for _ in range(12):
        genome = tuple(space.random_genome(rng))
        seqs = model.tokens(genome[4], space.block_of(genome))
        ms = [sum(c * f for c, f in zip(TRUE, features(genome, space, s), strict=True)) for s in seqs]
        timings.append(Timing(list(genome), ms, seqs))
    fitted = fit(timings, space)
    assert len(fitted) == len(FEATURES) and min(fitted) >= 0
    for genome in (tuple(space.random_genome(rng)) for _ in range(20)):
        assert _model(fitted).latency_ms(genome, space) == pytest.approx(model.latency_ms(genome, space), rel=1e-6)
    # token counts: exact on the trained vocabularies, in between (log scale) elsewhere, truncated to the block
    assert model.tokens(1000, 10_000) == [max(pair) for pair in _tokens()[0]]
    assert model.tokens(8000, 64) == [min(64, max(pair)) for pair in _tokens()[1]]
    middle = model.tokens(2828, 10_000)
    assert all(b <= m <= a for m, a, b in zip(middle, model.tokens(1000, 10_000), model.tokens(8000, 10_000),
                                             strict=True))
    assert median([3.0, 1.0, 2.0, 10.0]) == 2.5


def test_kendall_tau_and_a_predictor_that_ranks_unseen_genomes():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    assert kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / (3 * 2) ** 0.5)
    space = IDE_SPACE
    scaler = Scaler.of(space)
    rng = random.Random(3)
    genomes = spread([tuple(space.random_genome(rng)) for _ in range(400)], 12, scaler, rng)

    def truth(genome):  # smooth in the genes: more layers and tokens help, a large lr hurts
        x = dict(zip(scaler.names, scaler(genome), strict=True))
        return 0.6 + 0.1 * x["num_hidden_layers"] + 0.08 * x["block_size"] - 0.05 * x["lr"] ** 2

    predictor = AccuracyPredictor(space, genomes, [truth(g) for g in genomes])
    report = predictor.report()
    assert report["loo_kendall_tau"] > 0.6
    unseen = [tuple(space.random_genome(rng)) for _ in range(30)]
    assert kendall_tau([predictor.predict(g) for g in unseen], [truth(g) for g in unseen]) > 0.5
    # space-filling samples: no two closer than a random pair typically is
    nearest = min(sum((a - b) ** 2 for a, b in zip(scaler(g), scaler(h), strict=True)) ** 0.5
                  for i, g in enumerate(genomes) for h in genomes[i + 1:])
    assert nearest > 0.3


def test_vocab_grid_spreads_in_log_scale():
    assert vocab_grid(IDE_SPACE, 3) == [1000, 3000, 8000]
    assert vocab_grid(IDE_SPACE, 1) == [1000]


def test_nsga2_front_within_budget_and_pick_the_most_accurate(tmp_path):
    space = SearchSpace(num_hidden_layers=Gene(1, 6), hidden_size=Gene(16, 128, 16),
                        intermediate_size=Gene(32, 256, 32), vocab_size=Gene(1000, 8000, 1000),
                        block_size=Gene(choices=[64, 128, 256]), num_inputs=2)
    result = run_search(space, mode="nsga2", population=24, generations=15, restarts=1, max_size_mb=1.0,
                        max_latency_ms=0.6, latency_model=_model(), output=tmp_path, plot=True)
    report = json.loads((tmp_path / "report.json").read_text())
    front = report["pareto_front"]
    assert front and all(p["size_mb"] <= 1.0 for p in front)
    points = [(-p["gflops_objective"], p["latency_ms"], p["size_mb"]) for p in front]
    for a in points:
        assert not any(all(x <= y for x, y in zip(b, a, strict=True)) and b != a for b in points)
    best = report["best"]
    inside = [p for p in front if p["latency_ms"] <= 0.6]
    assert best["latency_ms"] <= 0.6 and best["gflops_objective"] == max(p["gflops_objective"] for p in inside)
    assert best["latency_ms"] == pytest.approx(_model().latency_ms(tuple(best[k] for k in space.gene_names), space))
    architecture = yaml.safe_load((tmp_path / "architecture.yaml").read_text())
    assert architecture["block_size"] == best["block_size"] == architecture["priced_for"]["block_size"]
    assert architecture["priced_for"]["max_positions"] == best["block_size"] + 2
    assert result.extras == {"block_size": best["block_size"]}
    assert (tmp_path / "search.png").stat().st_size > 1000
    last, feasible = report["history"][-1], [p for p in report["population"] if p.get("feasible", True)]
    assert (last["restart"], last["generation"], last["front_size"]) == (0, 15, len(front))  # the logbook's record
    assert last["max_accuracy"] == max(p["gflops_objective"] for p in feasible)
    assert last["min_latency_ms"] == min(p["latency_ms"] for p in feasible)
    assert last["min_size_mb"] == min(p["objective_size_mb"] for p in feasible)
    with pytest.raises(UserError, match="no genome on the Pareto front"):
        run_search(space, mode="nsga2", population=24, generations=3, restarts=1, max_latency_ms=1e-6,
                   latency_model=_model(), output=tmp_path / "none", plot=False)


def test_compress_links_a_searched_block_size_and_training_genes(tmp_path):
    path = tmp_path / "architecture.yaml"
    path.write_text(yaml.safe_dump({"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
                                    "intermediate_size": 128, "vocab_size": 2000, "block_size": 256, "lr": 0.003,
                                    "priced_for": {"params": 1}}))
    assert searched_genes(path) == {"block_size": 256, "lr": 0.003}
    task = TaskData(format="bigclonebench", data_dir="data/bigclonebench-sample")
    base = yaml.safe_load(Path("configs/search/ide_bigclonebench.yaml").read_text())
    linked = search_config(base, task, 128, Path("t"), 5, Path("out"), Path("tok"), Path("stages/fit.yaml"))
    assert linked["space"]["block_size"] == base["space"]["block_size"]  # the gene stays a gene
    assert linked["predictor"]["fit"] == "stages/fit.yaml" and linked["task"]["data_dir"] == "data/bigclonebench-sample"
    ga = search_config({"space": {"block_size": 400}, "mode": "ga"}, task, 128, Path("t"), 5, Path("out"),
                       Path("tok"), Path("stages/fit.yaml"))
    assert ga["space"]["block_size"] == 128 and "task" not in ga and "predictor" not in ga


def _ide_run(tmp_path: Path) -> dict:
    task_dir, fit = sampled_unit_fit(tmp_path)
    fit_file = tmp_path / "student.yaml"
    fit_file.write_text(yaml.safe_dump(fit))
    space = SearchSpace(num_hidden_layers=Gene(1, 2), hidden_size=Gene(16, 32, 16),
                        num_attention_heads=Gene(choices=[2]), intermediate_size=Gene(32, 64, 32),
                        vocab_size=Gene(choices=[300, 400]),
                        block_size=Gene(choices=[32, 64]), lr=FloatGene([1e-3, 5e-3]), num_inputs=2)
    return {"space": space, "mode": "nsga2", "population": 8, "generations": 4, "restarts": 1, "seed": 1,
            "max_size_mb": 1.0, "plot": False, "progress": False,
            "task": TaskData(format="bigclonebench", data_dir=str(task_dir)),
            "tokenizer_cache": tmp_path / "tokenizers",
            "latency": LatencySettings(runtime="pytorch", threads=1, samples=4, repeats=1, fit_genomes=4,
                                       check_genomes=2, vocab_grid=2, cache=tmp_path / "cache"),
            "predictor": PredictorSettings(samples=3, fit=str(fit_file), epochs=1, train_batches=2)}


@pytest.mark.slow
def test_killed_ide_search_resumes_to_the_same_front(tmp_path):
    """Real timings (PyTorch runtime) and real distillations on a tiny task; killed after its first unit.

    Slow-marked: six short Lightning fits and a subprocess, 20-50 s on two cores."""
    settings = _ide_run(tmp_path)
    out = tmp_path / "killed"
    code = ("import pickle, sys, threading\n"
            "from lit_compressor.commands.search import run_search\n"
            "from lit_compressor.measure import distillation\n"
            "run = distillation._run\n"
            "def reporting_run(*args):\n"
            "    result = run(*args)\n"
            "    print('UNIT DONE', flush=True)\n"
            "    threading.Event().wait()  # until killed\n"
            "distillation._run = reporting_run\n"
            "run_search(output=sys.argv[2], **pickle.load(open(sys.argv[1], 'rb')))\n")
    import pickle

    (tmp_path / "settings.pkl").write_bytes(pickle.dumps(settings))
    process = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "settings.pkl"), str(out)], cwd=ROOT,
                               env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    report = process.stdout.readline()  # blocks until the first unit's result is written
    process.kill()
    _, stderr = process.communicate()
    assert report.startswith("UNIT DONE"), stderr[-2000:]
    done = list(out.glob("samples/*/result.json"))
    assert len(done) == 1 and not (out / "architecture.yaml").exists(), stderr[-2000:]
    resumed = run_search(output=out, **settings)
    assert len(list(out.glob("samples/*/result.json"))) == 3
    straight = run_search(output=tmp_path / "straight", **settings)
    assert resumed.report["pareto_front"] == straight.report["pareto_front"]
    def measured(report):  # a unit's wall seconds differ between runs, nothing else may
        return [{k: v for k, v in sample.items() if k != "seconds"} for sample in report["predictor"]["samples"]]

    assert measured(resumed.report) == measured(straight.report)

    report = resumed.report
    assert len(report["predictor"]["samples"]) == 3 and -1 <= report["predictor"]["loo_kendall_tau"] <= 1
    assert all(0 <= s["accuracy"] <= 1 and s["latency_ms"] > 0 for s in report["predictor"]["samples"])
    check = report["latency_model"]["check"]
    assert len(check) == 2 and all(c["measured_p50_ms"] > 0 and c["predicted_p50_ms"] > 0 for c in check)
    assert report["latency_model"]["runtime"] == "pytorch" and report["latency_model"]["threads"] == 1
    architecture = yaml.safe_load((out / "architecture.yaml").read_text())
    assert {"block_size", "lr"} <= architecture.keys() and architecture["block_size"] in (32, 64)
    assert set(report["best"]) >= {"predicted_accuracy", "latency_ms", "size_mb", "int8_mb", "lr"}
    # each unit measured its flips under Morph's renamings: a flip predictor, and flips as a fourth objective
    assert all(0 <= s["flip_rate"] <= 1 for s in report["predictor"]["samples"])
    assert report["predictor"]["flips"]["fitted"] and -1 <= report["predictor"]["flips"]["loo_kendall_tau"] <= 1
    shutil.copytree(out / "samples", tmp_path / "flips" / "samples")  # the same units: read back, not run again
    flips = run_search(output=tmp_path / "flips", **{**settings, "flips": "objective"}).report
    assert flips["predictor"]["samples"] == report["predictor"]["samples"]
    assert "min_flip_rate" in flips["history"][-1] and flips["best"]["predicted_flip_rate"] >= 0


def test_the_search_core_imports_no_deep_learning_library():
    code = ("import sys, lit_compressor.commands.search, lit_compressor.measure.ide, "
            "lit_compressor.search.predictor, lit_compressor.search.compressor\n"
            "print([m for m in ('torch', 'transformers', 'lightning') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr[-2000:]
