"""``lit-compressor benchmark``: the JSON report has every figure, and the figures are plausible."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SHARED_DATA

from lit_compressor.commands.benchmark import benchmark, codebert_shape
from lit_compressor.commands.export import export
from lit_compressor.data.readers import read_functions
from lit_compressor.nn.folders import load_classifier, save_classifier
from lit_compressor.nn.student import build_student
from lit_compressor.nn.tokenization import train_student_tokenizer
from lit_compressor.search.architecture import StudentArchitecture

BCB = SHARED_DATA / "bigclonebench"
KEYS = {"name", "role", "backend", "size_mb", "parameters", "gflops_first_input", "p50_ms", "p95_ms",
        "throughput_batch4_per_s", "peak_rss_mb", "within_budget", "mean_tokens_per_function"}


@pytest.fixture(scope="module")
def exported_student(tmp_path_factory) -> Path:
    import torch

    torch.manual_seed(0)
    code = list(read_functions(BCB / "data.jsonl").values())[:300]
    tokenizer = train_student_tokenizer(code, 500)
    arch = StudentArchitecture(num_hidden_layers=2, hidden_size=64, num_attention_heads=2,
                               intermediate_size=128, vocab_size=500)
    root = tmp_path_factory.mktemp("bench")
    save_classifier(build_student(arch, num_inputs=2, max_positions=130), tokenizer, root / "student",
                    {"block_size": 128})
    export(root / "student", root / "exported", full=True)
    return root / "exported" / "full"


def test_benchmark_report_is_complete_and_plausible(tmp_path, exported_student):
    output = tmp_path / "bench.json"
    report = benchmark(exported_student, BCB, teacher="sentence-transformers/all-MiniLM-L6-v2", output=output,
                       samples=4, threads=1, batch_size=4, teacher_block_size=48, backends=["pytorch", "onnx-int8"],
                       cache_dir=tmp_path / "cache")
    assert json.loads(output.read_text()) == json.loads(json.dumps(report))
    names = [row["name"] for row in report["systems"]]
    assert names == ["student (pytorch)", "student (onnx-int8)", "teacher (pytorch)", "teacher (onnx-int8)"]
    student_model, _, _ = load_classifier(exported_student)
    for row in report["systems"]:
        assert KEYS <= set(row), KEYS - set(row)
        assert 0 < row["p50_ms"] <= row["p95_ms"]
        assert isinstance(row["within_budget"], bool)
        assert row["size_mb"] > 0 and row["gflops_first_input"] > 0 and row["throughput_batch4_per_s"] > 0
        assert row["peak_rss_mb"] >= 0
    student, _, teacher, teacher_int8 = report["systems"]
    assert student["parameters"] == sum(p.numel() for p in student_model.parameters())
    assert teacher["parameters"] > 10 * student["parameters"] and teacher["size_mb"] > 10 * student["size_mb"]
    assert teacher["gflops_first_input"] > student["gflops_first_input"]
    assert teacher_int8["parameters"] == teacher["parameters"]  # one teacher, through the student's export chain
    assert 0.2 < teacher_int8["size_mb"] / teacher["size_mb"] < 0.4  # int8 weights: about a quarter of fp32
    assert (tmp_path / "cache" / "teacher-onnx").is_dir()
    assert report["environment"]["threads"] == 1 and report["budget_statistic"] == "p95"
    assert report["teacher_block_size"] == 48 and max(teacher["tokens_first_input"]) == 48  # the student reads 128
    by_runtimes = {(r["student_backend"], r["reference_backend"]): r for r in report["ratios"]}
    assert sorted(by_runtimes) == [("onnx-int8", "onnx-int8"), ("onnx-int8", "pytorch"), ("pytorch", "pytorch")]
    shipped = by_runtimes[("onnx-int8", "onnx-int8")]
    assert shipped["like_for_like"] and not by_runtimes[("onnx-int8", "pytorch")]["like_for_like"]
    assert shipped["times_faster_p50"] == teacher_int8["p50_ms"] / report["systems"][1]["p50_ms"]
    assert shipped["tokens_per_function"][1] <= 48 < 128


def test_codebert_shape_has_codebert_size():
    model = codebert_shape(num_inputs=2)
    encoder_params = sum(p.numel() for p in model.encoder.parameters())
    assert encoder_params == 124_645_632 - 590_592  # roberta-base without its pooler
    assert model.config.vocab_size == 50265 and model.config.max_position_embeddings == 514


def test_benchmark_table_is_whole_when_stdout_is_a_file(tmp_path, exported_student):
    """Redirected to a file (not a terminal), every header and number of the table is printed whole."""
    import subprocess
    import sys

    log = tmp_path / "bench.log"
    with log.open("w") as handle:
        subprocess.run([sys.executable, "-m", "lit_compressor", "benchmark", "--model", str(exported_student),
                        "--data", str(BCB), "--teacher", "codebert-shape", "--samples", "2", "--threads", "1",
                        "--batch_size", "2", "--backends", '["pytorch"]', "--output", str(tmp_path / "b.json")],
                       stdout=handle, check=True, env={**__import__("os").environ, "COLUMNS": "80"})
    text = log.read_text()
    report = json.loads((tmp_path / "b.json").read_text())
    for header in ("system", "params", "GFLOPs", "p50 ms", "peak RSS MB", "times faster (p50)"):
        assert f" {header} |" in text, header
    teacher = report["systems"][-1]
    assert f"{teacher['parameters']:,}" in text and "…" not in text
