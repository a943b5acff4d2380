"""``lit-compressor robustness``: the table and the JSON report of a teacher and its shipped int8 student."""

from __future__ import annotations

import json

import pytest
from conftest import SHARED_DATA

from lit_compressor.commands.cli import main
from lit_compressor.commands.export import export
from lit_compressor.commands.robustness import robustness
from lit_compressor.data.task import load_task, seeded_sample
from lit_compressor.nn.folders import save_classifier
from lit_compressor.nn.student import build_student
from lit_compressor.nn.tokenization import train_student_tokenizer
from lit_compressor.search.architecture import StudentArchitecture

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


def constant_student(folder, label: int, functions: list[str]):
    """An exported pair student that predicts ``label`` whatever the code: its output layer's weights are 0."""
    import torch

    arch = StudentArchitecture(num_hidden_layers=1, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                               vocab_size=300)
    model = build_student(arch, num_inputs=2, max_positions=130, pooling="mean", pair_head="interaction")
    with torch.no_grad():
        model.classifier.out_proj.weight.zero_()
        model.classifier.out_proj.bias.copy_(torch.tensor([3.0, 0.0] if label == 0 else [0.0, 3.0]))
    save_classifier(model, train_student_tokenizer(functions, 300), folder / "trained", {"block_size": 128})
    export(folder / "trained", folder / "export", samples=4, full=True)  # the teacher side runs PyTorch: full/
    return folder / "export"


def test_models_that_cannot_flip_give_exact_figures(tmp_path):
    from tiny_students import BCB, bcb_functions

    functions = list(bcb_functions().values())[:200]
    always_clone = constant_student(tmp_path / "one", 1, functions)
    never_clone = constant_student(tmp_path / "zero", 0, functions)
    report = robustness(teacher=always_clone, student=never_clone, data=str(BCB), limit=8, sample_seed=4,
                        transformations=["rename_method+rename_parameters", "dead_code"], seeds=[9], threads=1)
    clones = sum(e.label for e in seeded_sample(load_task(BCB).read("test"), 8, 4))
    assert 0 < clones < 8
    assert report["clean"]["teacher"] == {"accuracy": clones / 8}
    assert report["clean"]["student"] == {"accuracy": 1 - clones / 8, "agreement_with_teacher": 0.0, "agreements": 0}
    for result in report["transformed"]:
        assert result["examples_changed"] == 8
        assert result["models"] == {"teacher": {"accuracy": clones / 8, "drop": 0.0, "flips": 0, "flip_rate": 0.0},
                                    "student": {"accuracy": 1 - clones / 8, "drop": 0.0, "flips": 0,
                                                "flip_rate": 0.0}}
