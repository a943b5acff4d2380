"""``lit-compressor robustness``: the table and the JSON report of a teacher and its shipped int8 student."""

from __future__ import annotations

import json

import pytest
from conftest import SHARED_DATA

from lit_compressor.commands.cli import main
from lit_compressor.commands.robustness import robustness

pytestmark = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs ../shared/data")


def test_robustness_prints_a_table_and_writes_the_report(tmp_path, capsys):
    from tiny_students import BCB, exported_student

    folder = exported_student("pair", "mean", "interaction")
    output = tmp_path / "robustness.json"
    report = robustness(teacher=folder, student=folder, data=str(BCB), output=output, teacher_backend="pytorch",
                        transformations=["rename_parameters", "rename_method+rename_parameters"], seeds=[3, 4],
                        limit=6, sample_seed=1, threads=1)
    assert json.loads(output.read_text()) == json.loads(json.dumps(report))
    assert report["student"] == {"folder": str(folder), "backend": "onnx-int8"}
    assert report["teacher"] == {"folder": str(folder), "backend": "pytorch"}
    assert report["sample"] == {"limit": 6, "seed": 1} and report["seeds"] == [3, 4]
    assert [(r["transformation"], r["seed"]) for r in report["transformed"]] == [
        ("rename_parameters", 3), ("rename_parameters", 4), ("rename_method+rename_parameters", 3),
        ("rename_method+rename_parameters", 4)]
    assert report["examples"] == 6 and report["inputs_per_example"] == 2 and report["language"] == "java"
    assert report["pairs"].startswith("both functions of a pair are transformed")
    for result in report["transformed"]:
        # one of the six pairs has no parameter on either side; every one has methods to rename
        assert result["examples_changed"] == (5 if result["transformation"] == "rename_parameters" else 6)
        for model in result["models"].values():
            assert model["flip_rate"] == model["flips"] / 6
            assert model["drop"] == pytest.approx(report["clean"]["teacher" if model is result["models"]["teacher"]
                                                                  else "student"]["accuracy"] - model["accuracy"])
    clean = report["clean"]["student"]
    assert clean["agreements"] == round(6 * clean["agreement_with_teacher"])
    printed = capsys.readouterr().out
    assert "| rename_method+rename_parameters | 4 | 6 |" in printed
    assert f"student agrees with the teacher on {clean['agreements']} of 6 clean examples" in printed
    functions = report["transformed"][0]["functions"]["functions"]
    assert f"{functions} distinct functions; 0 could not be parsed" in printed and 6 < functions <= 12


def test_bad_folders_and_transformations_are_clear_errors(tmp_path, capsys):
    from tiny_students import BCB, exported_student

    folder = exported_student("pair", "mean", "interaction")
    with pytest.raises(SystemExit) as stop:
        main(["robustness", "--teacher", str(tmp_path), "--student", str(folder), "--data", str(BCB)])
    assert stop.value.code == 2
    assert "not a model folder (no config.json)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["robustness", "--teacher", str(folder), "--student", str(folder), "--data", str(BCB),
              "--transformations", "[rename_method+rename_classes]"])
    assert stop.value.code == 2
    assert "unknown transformation 'rename_classes'" in capsys.readouterr().err
