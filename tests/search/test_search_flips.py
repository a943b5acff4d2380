"""Prediction flips in the IDE search: the flip predictor, flips as a fourth objective or as a constraint, the pick."""

from __future__ import annotations

import json
import random

import pytest

from lit_compressor.commands.search import run_search
from lit_compressor.core.errors import UserError
from lit_compressor.measure import distillation
from lit_compressor.measure.ide import PredictorSettings, spread
from lit_compressor.search import nsga
from lit_compressor.search.ga import define_type
from lit_compressor.search.latency_model import LatencyModel
from lit_compressor.search.predictor import FlipPredictor, Scaler, kendall_tau
from lit_compressor.search.space import FloatGene, Gene, SearchSpace

SPACE = SearchSpace(num_hidden_layers=Gene(1, 6), hidden_size=Gene(16, 128, 16), intermediate_size=Gene(32, 256, 32),
                    vocab_size=Gene(1000, 8000, 1000), block_size=Gene(choices=[64, 128, 256]),
                    lr=FloatGene([1e-3, 1.5e-3, 2e-3, 3e-3, 4e-3, 6e-3, 8e-3]), num_inputs=2)
SCALER = Scaler.of(SPACE)


def _latency_model() -> LatencyModel:
    rng = random.Random(0)
    small = [[rng.randint(40, 600), rng.randint(40, 600)] for _ in range(9)]
    tokens = [small, [[max(3, c // 2) for c in pair] for pair in small]]
    return LatencyModel([0.3, 0.01, 1e-4, 2e-6, 1e-9, 3e-10, 1e-8, 2e-6, 1e-7, 2e-8], [1000, 8000], tokens,
                        "onnx-int8", {"cpu": "made up"})


def _x(genome) -> dict[str, float]:
    return dict(zip(SCALER.names, SCALER(genome), strict=True))


def accuracy(genome) -> float:
    """More layers and tokens help; a larger learning rate costs a little accuracy..."""
    x = _x(genome)
    return 0.6 + 0.1 * x["num_hidden_layers"] + 0.08 * x["block_size"] - 0.01 * x["lr"]


def flip_rate(genome) -> float:
    """...and flips much less: a known monotone function of the learning-rate gene alone."""
    return 0.02 + 0.1 * (1 - _x(genome)["lr"]) ** 2


def fake_distil(flips=flip_rate):
    def distil(genomes, space, fit, epochs, train_batches, output, on_done=None):
        return [{"genome": list(g), "accuracy": accuracy(g), "seconds": 1.0,
                 **({"flip_rate": flips(g)} if flips else {})} for g in genomes]
    return distil


def _search(tmp_path, name: str, **settings):
    return run_search(SPACE, mode="nsga2", population=24, generations=12, restarts=1, max_size_mb=1.0, seed=3,
                      latency_model=_latency_model(), predictor=PredictorSettings(samples=20, fit="unused"),
                      output=tmp_path / name, plot=False, progress=False, **settings)


def test_flip_predictor_ranks_a_monotone_flip_rate():
    """20 samples (Avatar's count): with 12 this curved surface in 7 genes gets a τ of 0.70-0.83 (seeds 0-5)."""
    rng = random.Random(5)
    genomes = spread([tuple(SPACE.random_genome(rng)) for _ in range(400)], 20, SCALER, rng)
    predictor = FlipPredictor(SPACE, genomes, [flip_rate(g) for g in genomes])
    report = predictor.report()
    assert report["loo_kendall_tau"] >= 0.8
    assert report["loo_kendall_tau"] == pytest.approx(kendall_tau(predictor.leave_one_out(),
                                                                  [flip_rate(g) for g in genomes]))
    unseen = [tuple(SPACE.random_genome(rng)) for _ in range(30)]
    assert kendall_tau([predictor.predict(g) for g in unseen], [flip_rate(g) for g in unseen]) >= 0.6
    assert min(predictor.predict(g) for g in unseen) >= 0.0


def test_a_four_objective_front_keeps_the_steadiest_genome_the_old_three_drop():
    individual = define_type("ParetoFlipsGenome", nsga.FLIP_WEIGHTS)
    values = {(1,): (0.90, 1.0, 1.0, 0.10),  # best on accuracy, latency and size
              (2,): (0.80, 2.0, 2.0, 0.02),  # dominated on those three, fewest flips
              (3,): (0.70, 3.0, 3.0, 0.05)}  # dominated on all four by (2,)
    population = []
    for genome, fitness in values.items():
        population.append(individual(genome))
        population[-1].fitness.values = fitness
    front = {tuple(ind) for ind in nsga.pareto_front(population)}
    assert front == {(1,), (2,)}
    old = define_type("ParetoGenome", nsga.WEIGHTS)
    three = []
    for genome, fitness in values.items():
        three.append(old(genome))
        three[-1].fitness.values = fitness[:3]
    assert {tuple(ind) for ind in nsga.pareto_front(three)} == {(1,)}
    assert nsga.nsga_record(population)["min_flip_rate"] == 0.02


def test_flips_as_an_objective_puts_steadier_dominated_genomes_on_the_front(monkeypatch, tmp_path):
    monkeypatch.setattr(distillation, "distil", fake_distil())
    result = _search(tmp_path, "objective", flips="objective")
    report = json.loads((tmp_path / "objective" / "report.json").read_text())
    assert report["predictor"]["flips"]["fitted"] and report["predictor"]["flips"]["loo_kendall_tau"] >= 0.8
    assert all("flip_rate" in s and "loo_flip_prediction" in s for s in report["predictor"]["samples"])
    front = report["pareto_front"]
    old = [(-p["predicted_accuracy"], p["latency_ms"], p["objective_size_mb"]) for p in front]

    def dominates(a, b):
        return all(x <= y for x, y in zip(a, b, strict=True)) and a != b

    kept = [p for p, a in zip(front, old, strict=True)
            if any(dominates(b, a) and q["predicted_flip_rate"] > p["predicted_flip_rate"]
                   for q, b in zip(front, old, strict=True))]
    assert kept  # on the front only for its flips
    feasible = [p for p in report["population"] if p.get("feasible", True)]
    steadiest = min(p["predicted_flip_rate"] for p in feasible)
    assert min(p["predicted_flip_rate"] for p in front) == steadiest == report["history"][-1]["min_flip_rate"]
    assert result.report["settings"]["flips"] == "objective"
    # flips off: the same search, three objectives, and no front member is dominated on them
    off = _search(tmp_path, "off").report
    three = [(-p["predicted_accuracy"], p["latency_ms"], p["objective_size_mb"]) for p in off["pareto_front"]]
    assert not any(dominates(b, a) for a in three for b in three)
    assert "flips" not in off["settings"] and "min_flip_rate" not in off["history"][-1]


def test_flips_as_a_constraint_never_picks_a_genome_over_the_cap(monkeypatch, tmp_path):
    monkeypatch.setattr(distillation, "distil", fake_distil())
    free = _search(tmp_path, "free").report["best"]  # flips off: the most accurate, whatever its flips
    cap = 0.05
    assert free["predicted_flip_rate"] > cap  # so the cap has something to refuse
    constrained = _search(tmp_path, "constraint", flips="constraint", max_flip_rate=cap).report
    assert constrained["best"]["predicted_flip_rate"] <= cap
    assert all(p["predicted_flip_rate"] <= cap for p in constrained["pareto_front"])
    assert constrained["pick"]["max_flip_rate"] == cap
    # flips as an objective with a cap: the pick is the most accurate predicted within it
    capped = _search(tmp_path, "capped", flips="objective", max_flip_rate=cap).report
    inside = [p for p in capped["pareto_front"] if p["predicted_flip_rate"] <= cap]
    assert capped["best"]["predicted_flip_rate"] <= cap
    assert capped["best"]["predicted_accuracy"] == max(p["predicted_accuracy"] for p in inside)


def test_pick_with_a_flip_cap():
    individual = define_type("ParetoGenome", nsga.WEIGHTS)
    front = []
    for genome, fitness in {(1,): (0.9, 1.0, 1.0), (2,): (0.8, 2.0, 1.0), (3,): (0.7, 0.5, 0.5)}.items():
        front.append(individual(genome))
        front[-1].fitness.values = fitness
    flips = {(1,): 0.2, (2,): 0.04, (3,): 0.01}.__getitem__
    assert nsga.pick(front) == (1,)
    assert nsga.pick(front, max_flip_rate=0.05, flip_rate=flips) == (2,)
    assert nsga.pick(front, "min_latency", max_flip_rate=0.05, flip_rate=flips) == (3,)
    with pytest.raises(UserError, match="fewest predicted flips 0.0100"):
        nsga.pick(front, max_flip_rate=0.001, flip_rate=flips)


def test_old_samples_without_flip_rates_load_and_flips_are_refused_clearly(monkeypatch, tmp_path):
    monkeypatch.setattr(distillation, "distil", fake_distil(flips=None))
    report = _search(tmp_path, "old").report  # flips off: old samples still make a search
    assert report["predictor"]["flips"]["fitted"] is False
    assert "20 of 20 samples have no flip_rate" in report["predictor"]["flips"]["reason"]
    assert all("predicted_flip_rate" not in p for p in report["pareto_front"])
    with pytest.raises(UserError, match="needs every sampled distillation's flip rate"):
        _search(tmp_path, "old-flips", flips="objective")
    with pytest.raises(UserError, match="needs max_flip_rate"):
        _search(tmp_path, "no-cap", flips="constraint")
    with pytest.raises(UserError, match="flips is off"):
        _search(tmp_path, "off-cap", max_flip_rate=0.1)
    with pytest.raises(UserError, match="needs the NSGA-II search with an accuracy predictor"):
        run_search(SPACE, mode="nsga2", population=8, generations=1, restarts=1, latency_model=_latency_model(),
                   output=tmp_path / "no-predictor", plot=False, progress=False, flips="objective")
