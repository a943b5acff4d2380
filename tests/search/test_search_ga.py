"""Compressor's GA on DEAP: repair, determinism, paper result, resume, errors, outputs."""

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lit_compressor.commands.cli import main as cli_main
from lit_compressor.commands.search import run_search
from lit_compressor.core.errors import UserError
from lit_compressor.search import checkpoint
from lit_compressor.search.architecture import StudentArchitecture
from lit_compressor.search.cost import cost
from lit_compressor.search.operators import one_point_crossover, resample_mutation
from lit_compressor.search.space import Gene, SearchSpace

PAIRS = SearchSpace(num_inputs=2)


def _fitness(genome, space, target=3.0):
    c = cost(genome, space)
    return c.gflops - abs(c.size_mb - target)


def test_operators_keep_h_divisible_by_a():
    space = SearchSpace(hidden_size=Gene(10, 40, 5), num_attention_heads=Gene(choices=[3, 4, 7]))
    rng = random.Random(1)
    for _ in range(500):
        a, b = space.random_genome(rng), space.random_genome(rng)
        one_point_crossover(a, b, space, rng)
        resample_mutation(a, space, rng)
        for genome in (a, b):
            assert genome[1] % genome[2] == 0
            assert all(v in values for v, values in zip(genome, space.values, strict=True))


def test_repair_keeps_hidden_and_lowers_heads():
    space = SearchSpace(num_attention_heads=Gene(choices=[1, 2, 4, 8]), hidden_size=Gene(choices=[20, 48]))
    assert space.repair([1, 20, 8, 32, 1000]) == [1, 20, 4, 32, 1000]
    space = SearchSpace(num_attention_heads=Gene(choices=[4]), hidden_size=Gene(choices=[18, 22, 24]))
    assert space.repair([1, 22, 4, 32, 1000]) == [1, 24, 4, 32, 1000]


def test_paper_search_beats_paper_genome(tmp_path):
    result = run_search(PAIRS, 3.0, output=tmp_path, plot=False)
    paper = _fitness((12, 96, 8, 64, 1000), PAIRS)
    assert result.report["best"]["fitness"] >= paper - 1e-12
    assert result.architecture.num_hidden_layers == 12 and result.architecture.vocab_size == 1000
    assert abs(result.cost.size_mb - 3.0) < 0.05  # speed is measured by scripts/bench_search.py, not here


def test_same_seed_same_result_and_outputs(tmp_path):
    kwargs = dict(target_mb=3.0, generations=15, restarts=2, plot=True, resume=False)
    first = run_search(SearchSpace(), seed=7, output=tmp_path / "a", **kwargs)
    second = run_search(SearchSpace(), seed=7, output=tmp_path / "b", **kwargs)
    assert first.report["history"] == second.report["history"]
    assert first.report["population"] == second.report["population"]

    loaded = yaml.safe_load((tmp_path / "a" / "architecture.yaml").read_text())
    priced = loaded.pop("priced_for")
    assert list(loaded) == ["num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size",
                            "vocab_size"]
    assert StudentArchitecture(**loaded) == first.architecture
    assert priced == {"family": "roberta", "pair_head": "concat", "num_inputs": 1, "num_labels": 2, "block_size": 400,
                      "max_positions": 402, "inputs": "plain", "params": first.cost.params}
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["seed"] == 7 and len(report["population"]) == 50
    assert {"params", "size_mb", "gflops", "fitness"} <= report["best"].keys()
    assert len(report["history"]) == 2 * 16
    best = report["best"]
    genome = tuple(best[k] for k in loaded)
    assert best["fitness"] == pytest.approx(_fitness(genome, SearchSpace()))
    assert best["fitness"] == max(r["best_fitness"] for r in report["history"])
    history = report["history"]  # the logbook: one record a generation of each restart, in order
    assert [(r["restart"], r["generation"]) for r in history] == [(r, g) for r in range(2) for g in range(16)]
    for record in history:
        assert record["best_fitness"] == pytest.approx(_fitness(tuple(record["best"]), SearchSpace()))
        assert record["mean_fitness"] < record["best_fitness"]
    assert (tmp_path / "a" / "search.png").stat().st_size > 1000


def test_resume_to_more_generations_equals_uninterrupted(tmp_path):
    kwargs = dict(target_mb=3.0, restarts=1, seed=3, plot=False)
    run_search(PAIRS, generations=6, output=tmp_path / "resumed", **kwargs)
    resumed = run_search(PAIRS, generations=20, output=tmp_path / "resumed", **kwargs)
    straight = run_search(PAIRS, generations=20, output=tmp_path / "straight", **kwargs)
    assert resumed.report["history"] == straight.report["history"]
    assert resumed.report["population"] == straight.report["population"]
    assert resumed.architecture == straight.architecture


def test_killed_search_resumes_to_the_same_result(tmp_path):
    """The search process reports the moment its checkpoint after restart 1 is written and then waits: the test
    kills it exactly there (no polling, no race with a search that would finish first)."""
    out = tmp_path / "killed"
    code = ("import threading\n"
            "from lit_compressor.commands.search import run_search\n"
            "from lit_compressor.search import checkpoint\n"
            "from lit_compressor.search.space import SearchSpace\n"
            "save = checkpoint.save\n"
            "def reporting_save(path, state, settings):\n"
            "    save(path, state, settings)\n"
            "    if state.restart >= 1:\n"
            "        print('SAVED', state.restart, flush=True)\n"
            "        threading.Event().wait()  # until killed\n"
            "checkpoint.save = reporting_save\n"
            f"run_search(SearchSpace(num_inputs=2), 3.0, restarts=4, seed=5, output={str(out)!r},\n"
            "           plot=False)")
    process = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parents[2], stdout=subprocess.PIPE,
                               text=True)
    report = process.stdout.readline()  # blocks until the checkpoint is written
    process.kill()
    process.wait()
    ckpt = out / checkpoint.CHECKPOINT_NAME
    assert report.startswith("SAVED"), report
    state = json.loads(ckpt.read_text())
    assert not (out / "report.json").exists() and 1 <= state["restart"] < 4
    resumed = run_search(PAIRS, 3.0, restarts=4, seed=5, output=out, plot=False)
    straight = run_search(PAIRS, 3.0, restarts=4, seed=5, output=tmp_path / "straight", plot=False)
    assert resumed.report["history"] == straight.report["history"]
    assert resumed.architecture == straight.architecture


def test_checkpoint_of_other_settings_is_refused(tmp_path):
    run_search(PAIRS, 3.0, generations=2, restarts=1, output=tmp_path, plot=False)
    with pytest.raises(UserError, match="other settings"):
        run_search(PAIRS, 25.0, generations=2, restarts=1, output=tmp_path, plot=False)


def test_unreachable_target_names_the_space_sizes(tmp_path):
    with pytest.raises(UserError, match=r"from 0\.1000 MB to 497\.43 MB"):
        run_search(SearchSpace(), 0.01, output=tmp_path)
    with pytest.raises(UserError, match="within 5%"):
        run_search(SearchSpace(), 10_000.0, output=tmp_path)


def test_space_without_valid_genome(tmp_path):
    space = SearchSpace(hidden_size=Gene(choices=[17, 19, 23]), num_attention_heads=Gene(choices=[2, 4, 8]))
    with pytest.raises(UserError, match="no valid genome"):
        run_search(space, 3.0, output=tmp_path)


def test_non_zero_rank_does_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert run_search(SearchSpace(), 3.0, output=tmp_path / "x") is None
    assert not (tmp_path / "x").exists()


def test_cli_reads_a_config(tmp_path, capsys):
    config = tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump({
        "space": {"hidden_size": {"min": 16, "max": 256, "step": 16}, "num_inputs": 2},
        "target_mb": 3.0, "generations": 5, "restarts": 1, "seed": 1}))
    cli_main(["search", "--config", str(config), "--output", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert out.startswith("best:") and out.count("\n") == 1  # no progress bar where stdout is no terminal
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["settings"]["space"]["hidden_size"] == {"min": 16, "max": 256, "step": 16, "choices": None}
    assert report["settings"]["space"]["num_inputs"] == 2 and report["settings"]["generations"] == 5
