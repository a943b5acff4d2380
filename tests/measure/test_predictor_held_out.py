"""The accuracy predictor's held-out check: genomes distilled like the samples but never fitted, ranked by it."""

from __future__ import annotations

import random

import pytest

from lit_compressor.measure import distillation
from lit_compressor.measure.ide import PredictorSettings, accuracy_predictor
from lit_compressor.search.predictor import AccuracyPredictor, Scaler, kendall_tau
from lit_compressor.search.space import FloatGene, Gene, SearchSpace

SPACE = SearchSpace(num_hidden_layers=Gene(1, 6), hidden_size=Gene(16, 128, 16), intermediate_size=Gene(32, 256, 32),
                    vocab_size=Gene(1000, 8000, 1000), block_size=Gene(choices=[64, 128, 256]),
                    lr=FloatGene([1e-3, 3e-3]), num_inputs=2)


def truth(genome) -> float:
    """A smooth accuracy surface: more layers and more tokens help."""
    x = dict(zip(Scaler.of(SPACE).names, Scaler.of(SPACE)(genome), strict=True))
    return 0.6 + 0.1 * x["num_hidden_layers"] + 0.08 * x["block_size"] + 0.01 * x["hidden_size"]


def fake_distil(accuracy):
    def distil(genomes, space, fit, epochs, train_batches, output, on_done=None):
        return [{"genome": list(g), "accuracy": accuracy(g), "seconds": 1.0} for g in genomes]
    return distil


def test_held_out_genomes_are_never_fitted_and_tau_is_theirs(monkeypatch, tmp_path):
    monkeypatch.setattr(distillation, "distil", fake_distil(truth))
    settings = PredictorSettings(samples=12, held_out=6, fit="unused")
    predictor, report = accuracy_predictor(SPACE, settings, tmp_path, seed=0, accept=lambda g: True)
    fitted = [tuple(s[n] for n in SPACE.gene_names) for s in report["samples"]]
    unseen = [tuple(s[n] for n in SPACE.gene_names) for s in report["held_out"]["samples"]]
    assert (len(fitted), len(unseen)) == (12, 6)
    assert not set(fitted) & set(unseen)
    assert set(map(tuple, predictor.genomes)) == set(fitted)
    # the τ reported is that of a model fitted on the 12 samples alone, ranking the 6 others
    alone = AccuracyPredictor(SPACE, fitted, [truth(g) for g in fitted])
    predictions = [alone.predict(g) for g in unseen]
    assert [s["prediction"] for s in report["held_out"]["samples"]] == pytest.approx(predictions)
    assert report["held_out"]["kendall_tau"] == pytest.approx(kendall_tau(predictions, [truth(g) for g in unseen]))
    assert report["held_out"]["kendall_tau"] > 0.6  # a smooth surface is ranked from 12 samples


def test_held_out_accuracies_do_not_move_the_predictor(monkeypatch, tmp_path):
    """Garbage accuracies on the held-out genomes change their τ, never the fitted model."""
    settings = PredictorSettings(samples=10, held_out=5, fit="unused")
    monkeypatch.setattr(distillation, "distil", fake_distil(truth))
    clean, clean_report = accuracy_predictor(SPACE, settings, tmp_path, seed=1, accept=lambda g: True)
    unseen = {tuple(s[n] for n in SPACE.gene_names) for s in clean_report["held_out"]["samples"]}
    garbage = random.Random(0)
    monkeypatch.setattr(distillation, "distil", fake_distil(
        lambda g: garbage.random() if tuple(g) in unseen else truth(g)))
    noisy, noisy_report = accuracy_predictor(SPACE, settings, tmp_path, seed=1, accept=lambda g: True)
    probes = [tuple(SPACE.random_genome(random.Random(i))) for i in range(20)]
    assert [noisy.predict(g) for g in probes] == pytest.approx([clean.predict(g) for g in probes])
    assert noisy_report["loo_kendall_tau"] == clean_report["loo_kendall_tau"]
    assert noisy_report["held_out"]["kendall_tau"] != clean_report["held_out"]["kendall_tau"]


def test_a_genome_of_the_fit_set_is_refused_as_held_out():
    rng = random.Random(2)
    genomes = list(dict.fromkeys(tuple(SPACE.random_genome(rng)) for _ in range(8)))
    predictor = AccuracyPredictor(SPACE, genomes[:6], [truth(g) for g in genomes[:6]])
    with pytest.raises(ValueError, match="outside the fit set"):
        predictor.held_out([genomes[6], genomes[0]], [0.7, 0.8])
    assert predictor.held_out(genomes[6:], [truth(g) for g in genomes[6:]])["kendall_tau"] in (-1.0, 1.0)
