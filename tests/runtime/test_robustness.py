"""The robustness report: exact accuracies, drops, flips and agreement with models whose flips are known."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import SHARED_DATA

from lit_compressor.data.readers import Example
from lit_compressor.runtime.evaluate import batched_logits, sample_test_split
from lit_compressor.runtime.folder import load_folder
from lit_compressor.runtime.robustness import folder_predictor, measure_robustness, transform_split

FUNCTIONS = ["int add(int a, int b) {\n    return a + b;\n}",
             "void copy(String src) {\n    write(src);\n}",
             "int max(int a, int b) {\n    if (a < b) return b;\n    return a;\n}",
             "void run() {\n    go();\n}"]
SLICE = [Example(str(i), (code,), label) for i, (code, label) in enumerate(zip(FUNCTIONS, [1, 0, 1, 0], strict=True))]


def by_name(examples: list[Example]) -> np.ndarray:
    """Class 1 for the methods called add or max: right on the clean slice, wrong once a method is renamed."""
    return np.array([int(e.codes[0].split("(")[0].split()[-1] in ("add", "max")) for e in examples])


def by_semicolons(examples: list[Example]) -> np.ndarray:
    """The parity of the semicolons: blind to names, flipped by every dead statement (each adds one `;`)."""
    return np.array([e.codes[0].count(";") % 2 for e in examples])


@pytest.fixture(scope="module")
def report():
    return measure_robustness({"teacher": by_name, "student": by_semicolons}, SLICE, "java",
                              ["rename_method", "rename_parameters", "dead_code", "swap_comparisons",
                               "rename_method+rename_parameters"], seeds=[0, 1])


def row(report, transformation, seed=0):
    return next(r for r in report["transformed"] if r["transformation"] == transformation and r["seed"] == seed)


def test_clean_accuracy_and_agreement_with_the_teacher(report):
    assert report["examples"] == report["labelled"] == 4 and report["inputs_per_example"] == 1
    assert report["clean"]["teacher"] == {"accuracy": 1.0}
    # semicolons: 1, 1, 2, 1 -> classes 1, 1, 0, 1 against labels 1, 0, 1, 0 and the teacher's 1, 0, 1, 0
    assert report["clean"]["student"] == {"accuracy": 0.25, "agreement_with_teacher": 0.25, "agreements": 1}


def test_renaming_the_method_flips_exactly_the_name_readers_class_1(report):
    for seed in (0, 1):
        method = row(report, "rename_method", seed)
        assert method["examples_changed"] == 4 and method["functions"]["changed"] == 4
        assert method["models"]["teacher"] == {"accuracy": 0.5, "drop": 0.5, "flips": 2, "flip_rate": 0.5}
        assert method["models"]["student"] == {"accuracy": 0.25, "drop": 0.0, "flips": 0, "flip_rate": 0.0}
    chained = row(report, "rename_method+rename_parameters")
    assert chained["examples_changed"] == 4 and chained["models"]["teacher"]["flips"] == 2
    assert chained["functions"] == {"functions": 4, "changed": 4, "not_applicable": 0, "unparsed": 0, "refused": 0,
                                    "partial": 0}


def test_parameters_and_comparisons_flip_nobody_dead_code_flips_every_parity(report):
    parameters = row(report, "rename_parameters")
    assert parameters["examples_changed"] == 3  # run() has no parameter
    assert parameters["functions"]["not_applicable"] == 1
    assert all(model["flips"] == 0 and model["drop"] == 0.0 for model in parameters["models"].values())
    swap = row(report, "swap_comparisons")
    assert swap["examples_changed"] == 1 and swap["models"]["student"]["flips"] == 0  # only max() compares
    dead = row(report, "dead_code")
    assert dead["models"]["teacher"]["flips"] == 0
    # every class flips: 0, 0, 1, 0 against labels 1, 0, 1, 0
    assert dead["models"]["student"] == {"accuracy": 0.75, "drop": -0.5, "flips": 4, "flip_rate": 1.0}
    assert report["summary"]["dead_code"]["student"] == {"flips_mean": 4.0, "flip_rate_mean": 1.0, "drop_mean": -0.5}
    assert report["seeds"] == [0, 1]


def test_a_pair_is_transformed_on_both_sides_and_a_shared_function_alike():
    pairs = [Example("a", (FUNCTIONS[0], FUNCTIONS[1]), 1), Example("b", (FUNCTIONS[1], FUNCTIONS[3]), 0)]
    split = transform_split(pairs, "java", "rename_parameters", seed=3)
    first, second = split.examples
    assert first.codes[0] != FUNCTIONS[0] and first.codes[1] != FUNCTIONS[1]
    assert first.codes[1] == second.codes[0]  # copy() once, the same in both pairs
    assert second.codes[1] == FUNCTIONS[3]  # run() has nothing to rename
    assert split.changed.tolist() == [True, True] and split.stats.functions == 3 and split.stats.changed == 2


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs ../shared/data")
def test_a_real_folder_agrees_with_itself_and_its_flips_are_its_own_predictions():
    from tiny_students import BCB, exported_student

    folder = exported_student("pair", "mean", "interaction")
    examples = sample_test_split(BCB, 12, seed=2)
    same = folder_predictor(folder, "pytorch", threads=1)
    report = measure_robustness({"teacher": same, "student": same}, examples, "java", ["rename_locals"], seeds=[5])
    assert report["clean"]["student"]["agreement_with_teacher"] == 1.0
    result = report["transformed"][0]
    assert result["models"]["teacher"] == result["models"]["student"]
    # the flips are the changes of the folder's own predictions on the whole transformed split
    opened = load_folder(folder)
    split = transform_split(examples, "java", "rename_locals", seed=5)
    clean = batched_logits(opened.runner, opened.encoder, examples).argmax(-1)
    transformed = batched_logits(opened.runner, opened.encoder, split.examples).argmax(-1)
    assert result["models"]["student"]["flips"] == int((clean != transformed).sum())
    labels = np.array([e.label for e in examples])
    assert report["clean"]["teacher"]["accuracy"] == pytest.approx(float((clean == labels).mean()))
    assert result["examples_changed"] == int(split.changed.sum()) >= 10


def test_each_prediction_pass_and_transformation_is_timed():
    """What a report costs: the clean pass over all 4 examples, then only the 3 that renaming parameters changed."""
    def slow(examples: list[Example]) -> np.ndarray:
        time.sleep(0.05 * len(examples))
        return by_name(examples)

    timed = measure_robustness({"teacher": slow}, SLICE, "java", ["rename_parameters"])
    assert timed["clean_seconds"]["teacher"] >= 0.2
    seconds = timed["transformed"][0]["seconds"]
    assert set(seconds) == {"transform", "teacher"} and seconds["teacher"] >= 0.15 and seconds["transform"] >= 0
