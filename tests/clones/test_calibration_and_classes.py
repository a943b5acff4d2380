"""Issue 24: the minimum size, calibrated probabilities at a project's base rate, and clone classes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_students import BCB, bcb_functions, exported_student

from lit_compressor.clones.calibration import (
    CALIBRATION_FILE,
    Calibration,
    closeness,
    fit_logistic,
    fit_weights,
    logit,
    sigmoid,
)
from lit_compressor.clones.classes import clone_classes
from lit_compressor.clones.extract import SourceFunction
from lit_compressor.clones.index import CloneIndex, ClonePair, IndexedFunction
from lit_compressor.clones.model import CloneModel
from lit_compressor.commands.calibrate import calibrate
from lit_compressor.commands.clones import clones
from lit_compressor.core.errors import UserError


def test_fit_logistic_recovers_known_weights():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40000, 2))
    labels = rng.random(40000) < sigmoid(x @ np.array([1.5, -0.7]) + 0.4)
    w = fit_logistic(x, labels)
    assert w == pytest.approx([1.5, -0.7, 0.4], abs=0.06)


def test_cosine_never_counts_against_a_pair():
    rng = np.random.default_rng(1)
    scores = sigmoid(rng.normal(size=20000) * 2)
    labels = rng.random(20000) < scores  # the score is calibrated as it is
    # closeness that, given the score, leans towards the non-clones: the free fit weights it negatively
    cosines = 1 - np.exp(-(3 + 2 * rng.random(20000) + 1.5 * ~labels))
    free = fit_logistic(np.stack([logit(scores), closeness(cosines)], axis=1), labels)
    assert free[1] < 0
    slope, closeness_slope, intercept = fit_weights(scores, cosines, labels)
    assert closeness_slope == 0.0
    assert (slope, intercept) == pytest.approx(tuple(fit_logistic(logit(scores)[:, None], labels)))
    assert slope == pytest.approx(1.0, abs=0.05) and intercept == pytest.approx(0.0, abs=0.05)
    # where closeness does carry evidence, the fit keeps its (positive) weight
    helpful = 1 - np.exp(-(3 + 2 * rng.random(20000) + 1.5 * labels))
    assert fit_weights(scores, helpful, labels)[1] > 0


def test_probability_moves_to_the_project_prior_by_bayes_rule(tmp_path):
    calibration = Calibration(0.5, 0.8, -1.0, valid_prior=0.6, prior=1e-3)
    score, cosine = np.array([0.2, 0.9, 0.997]), np.array([0.5, 0.99, 0.99999])
    at_valid = calibration.probability(score, cosine, 0.6)
    assert at_valid == pytest.approx(sigmoid(0.5 * logit(score) + 0.8 * closeness(cosine) - 1.0))
    at_project = calibration.probability(score, cosine)  # the stored default prior
    odds = lambda p: p / (1 - p)  # noqa: E731
    assert odds(at_project) / odds(at_valid) == pytest.approx(odds(1e-3) / odds(0.6))
    assert (at_project < at_valid).all() and calibration.probability(score, cosine, 0.6) == pytest.approx(at_valid)
    calibration.save(tmp_path)
    assert Calibration.load(tmp_path) == calibration and Calibration.load(tmp_path / "none") is None
    with pytest.raises(UserError, match="prior"):
        calibration.probability(score, cosine, 1.0)
    (tmp_path / CALIBRATION_FILE).write_text('{"format": 1, "slope": "x"}')
    with pytest.raises(UserError, match="unreadable calibration"):
        Calibration.load(tmp_path)


def entry(name: str, line: int = 1) -> IndexedFunction:
    return IndexedFunction(f"{name}.java", name, "java", line, line + 9, name)


def test_clone_classes_are_connected_components_ranked_by_size_then_probability():
    a, b, c, d, e, f, g = (entry(n) for n in "abcdefg")
    pair = lambda x, y, p: ClonePair(x, y, 0.9, (0.9, 0.9), 0.99, p)  # noqa: E731
    pairs = [pair(a, b, 0.2), pair(c, b, 0.4), pair(d, e, 0.9), pair(f, g, 0.3), pair(e, a, 0.1)]
    classes = clone_classes(pairs)
    assert [[m.name for m in k.members] for k in classes] == [["a", "b", "c", "d", "e"], ["f", "g"]]
    assert [k.pairs for k in classes] == [4, 1] and [k.probability for k in classes] == [0.9, 0.3]
    two = clone_classes([pair(f, g, 0.3), pair(c, d, 0.8)])  # equal sizes: the more probable first
    assert [[m.name for m in k.members] for k in two] == [["c", "d"], ["f", "g"]]
    assert clone_classes([]) == []


def test_minimum_size_leaves_short_functions_out_and_the_counts_round_trip(tmp_path):
    folder = exported_student("pair", "mean", "interaction")
    model = CloneModel.from_pretrained(folder)
    codes = [c for c in list(dict.fromkeys(bcb_functions().values()))[100:160] if len(model.token_ids(c)) > 30][:30]
    short = ["public int getX() { return x; }", "void close() throws IOException { in.close(); }"]
    functions = [SourceFunction(f"F{i}.java", f"f{i}", "java", 1, 9, code) for i, code in enumerate(codes + short)]
    index = CloneIndex(model)
    index.update(functions)
    assert index.tokens == [len(model.token_ids(f.code)) for f in functions]  # no duplicates among them
    assert max(index.tokens[-2:]) < 20 and min(index.tokens[:-2]) > 20
    everything = index.pairs(0.0, None, min_tokens=0)
    sized = index.pairs(0.0, None, min_tokens=20)
    assert len(everything) == 32 * 31 // 2 and len(sized) == 30 * 29 // 2
    assert not {"F30.java", "F31.java"} & ({p.first.path for p in sized} | {p.second.path for p in sized})
    index.save(tmp_path / "index")
    again = CloneIndex.load(tmp_path / "index", model)
    assert again.tokens == index.tokens
    assert [(p.first, p.second) for p in again.pairs(0.0, None, min_tokens=20)] == [(p.first, p.second) for p in sized]
    meta = json.loads((tmp_path / "index" / "index.json").read_text())
    meta["format"] = 1  # an index of the previous format: rebuilt, with a clear reason
    (tmp_path / "index" / "index.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="index format 1"):
        CloneIndex.load(tmp_path / "index", model)


def test_calibrate_then_clones_reports_probabilities_and_classes(tmp_path):
    """``calibrate`` fits on BigCloneBench's validation split and stores the fit; ``clones`` then thresholds the
    calibrated probability at the project's prior, and its JSON holds pairs and classes."""
    import shutil

    folder = tmp_path / "student"
    shutil.copytree(exported_student("pair", "mean", "interaction"), folder)
    fitted = calibrate(folder, data=str(BCB), prior=1e-3)
    stored = Calibration.load(folder)
    assert stored is not None and stored.prior == 1e-3 and stored.valid_prior == pytest.approx(1907 / 2851)
    assert fitted["fit"]["pairs"] == 2851 and fitted["fit"]["log_loss_calibrated"] <= fitted["fit"]["log_loss_raw"]
    project = tmp_path / "project"
    project.mkdir()
    codes = list(dict.fromkeys(bcb_functions().values()))[200:240]
    for i, code in enumerate(codes):
        (project / f"F{i}.java").write_text(f"class F{i} {{\n{code}\n}}\n")
    everything = clones(folder, project, threshold=0.0, per_function=None, min_tokens=0, show=0, copies=False)
    probabilities = [p["probability"] for p in everything["pairs"]]
    n = everything["functions"]
    assert len(probabilities) == n * (n - 1) // 2 and everything["prior"] == 1e-3
    for p in everything["pairs"][:50]:
        assert p["probability"] == pytest.approx(float(stored.probability(p["score"], p["similarity"])), abs=1e-12)
    assert probabilities == sorted(probabilities, reverse=True)
    cut = (probabilities[19] + probabilities[20]) / 2
    result = clones(folder, project, threshold=cut, per_function=None, min_tokens=0, copies=False,
                    output=tmp_path / "c.json", report="pairs", show=3)
    assert len(result["pairs"]) == 20 and result["index_update"]["embedded"] == 0
    written = json.loads((tmp_path / "c.json").read_text())
    members = {(m["path"], m["start_line"]) for c in written["classes"] for m in c["members"]}
    assert members == {(p[k]["path"], p[k]["start_line"]) for p in written["pairs"] for k in ("first", "second")}
    assert sum(c["pairs"] for c in written["classes"]) == 20
    default = clones(folder, project, show=0)
    assert default["threshold"] == 0.05 and default["min_tokens"] == 64 and default["per_function"] == 10
    assert default["copies"] and default["copy_tokens"] == 50  # the copy pass is on by default
    assert all(p["probability"] >= 0.05 for p in default["pairs"] if p["type"] == "semantic")
    assert all(p["covered"] > 0 for p in default["pairs"] if p["type"] != "semantic")
    assert default["compared"] == sum(t >= 64 for t in CloneIndex.load(project / ".lit-compressor-index",
                                                                        CloneModel.from_pretrained(folder)).tokens)
    higher_prior = clones(folder, project, threshold=cut, prior=1e-2, per_function=None, min_tokens=0, show=0,
                          copies=False)
    assert len(higher_prior["pairs"]) > 20  # a higher base rate makes every pair more probable
    with pytest.raises(UserError, match="prior"):
        clones(folder, project, prior=0.0, show=0)
