"""The model card: Hugging Face front matter that parses, and a body whose figures are the reports' own.

``tests/commands/test_compress.py`` checks the card of a real run against its report.json; these check the
parts a small run does not reach: the shipped graph's metrics, robustness and agreement figures, the base model."""

from __future__ import annotations

import json

import yaml

from lit_compressor.runtime.card import read_card, write_model_card

EXPORT = {"parameters": 707074, "int8": {"agreement_with_fp32": 0.995, "max_abs_prob_diff": 0.03},
          "check_inputs": "200 test examples from runs/q/task.yaml", "onnx_max_abs_diff": {"model.onnx": 1.2e-6},
          "accuracy": {"pytorch": 0.775, "model.int8.onnx": 0.78},
          "shipped": {"files": {"README.md": 10, "config.json": 1000, "model.int8.onnx": 772364,
                                "tokenizer.json": 55000}, "bytes": 828374}}


def run_report(tmp_path, **extra) -> dict:
    stage = tmp_path / "teacher.yaml"
    stage.write_text(yaml.safe_dump({"model": {"init_args": {"model_name_or_path": "microsoft/codebert-base"}}}))
    metrics = {"accuracy": 0.81694, "precision": 0.75, "recall": 0.96, "f1": 0.84210}
    return {"task": {"format": "bigclonebench", "data_dir": "data/bigclonebench-sample", "files": None, "limit": None},
            "teacher": {**metrics, "params": 23156354, "size_mb": 92.625416, "p50_ms": 167.1,
                        "folder": "runs/q/teacher"},
            "student": {"accuracy": 0.78644, "precision": 0.71428, "recall": 0.96666, "f1": 0.82152,
                        "params": 707074, "size_mb": 2.828296, "prediction_counts": [184, 406], "p50_ms": 15.08,
                        "shipped_p50_ms": 7.1123, "shipped_backend": "student (onnx-int8)", "shipped_mb": 0.772364},
            "student_over_teacher": {"accuracy_kept": 0.9627},
            "timing": {"cpu": "x86_64", "cpu_count": 2, "threads": 2, "load_average": [3.38, 3.1, 2.0]},
            "stages": [{"name": "teacher", "config": str(stage)}], **extra}


def shipped_folder(tmp_path):
    folder = tmp_path / "shipped"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "bert", "hidden_size": 128, "num_hidden_layers": 3,
        "lit_compressor": {"num_inputs": 2, "block_size": 128}}))
    return folder


def test_card_front_matter_parses_and_its_figures_are_the_reports(tmp_path):
    report = run_report(tmp_path)
    meta, body = read_card(write_model_card(shipped_folder(tmp_path), EXPORT, report))
    assert meta["library_name"] == "lit-compressor" and meta["pipeline_tag"] == "text-classification"
    assert meta["datasets"] == ["google/code_x_glue_cc_clone_detection_big_clone_bench"]
    assert meta["base_model"] == "microsoft/codebert-base"  # the teacher stage's pre-trained checkpoint
    assert {"clone-detection", "java", "int8"} <= set(meta["tags"])
    values = {m["type"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert values == {"accuracy": 0.7864, "precision": 0.7143, "recall": 0.9667, "f1": 0.8215}
    assert "| teacher | 0.8169 | 0.7500 | 0.9600 | 0.8421 |" in body
    assert "| student: fp32 PyTorch | 0.7864 | 0.7143 | 0.9667 | 0.8215 |" in body
    assert "## Accuracy on the test split (590 examples)" in body
    assert "7.11 ms on x86_64 (2 cores, 2 threads, load average 3.38)" in body
    assert "the files of this folder come to 0.83 MB (this card aside)" in body  # 828,364 bytes without README
    assert "## Robustness" not in body and "## Agreement" not in body  # no such figures in this report


def test_card_prefers_the_shipped_graphs_metrics_and_shows_robustness_and_agreement(tmp_path):
    shipped = {"backend": "onnx-int8", "accuracy": 0.78983, "precision": 0.7, "recall": 0.97, "f1": 0.82}
    report = run_report(tmp_path, agreement={"test": 0.912}, robustness={"rename_identifiers": {"accuracy": 0.7511}})
    report["student"]["shipped_metrics"] = shipped
    meta, body = read_card(write_model_card(shipped_folder(tmp_path), EXPORT, report))
    assert {m["type"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}["accuracy"] == 0.7898
    assert "| student: shipped graph (onnx-int8) | 0.7898 |" in body
    assert "## Agreement\n\n- test: 0.9120" in body
    assert "## Robustness\n\n- rename_identifiers.accuracy: 0.7511" in body


def test_card_without_a_run_report_says_what_the_export_measured(tmp_path):
    folder = shipped_folder(tmp_path)
    path = write_model_card(folder, EXPORT)
    meta, body = read_card(path)
    assert "model-index" not in meta and "base_model" not in meta and "datasets" not in meta
    assert "the int8 graph's accuracy is 0.7800 (PyTorch fp32: 0.7750)" in body and "99.5%" in body
    stamp = path.stat().st_mtime_ns
    write_model_card(folder, EXPORT)  # the same card: the file is left as it is
    assert path.stat().st_mtime_ns == stamp
