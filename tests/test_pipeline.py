"""The one-shot pipeline on a tiny random teacher: every stage runs, then a second run redoes nothing."""

from __future__ import annotations

import json

from conftest import SAMPLE

from lit_compressor.data.task import TaskData
from lit_compressor.pipeline import Hardware, SearchStage, StudentStage, TeacherStage, compress
from lit_compressor.search.architecture import StudentArchitecture


def test_compress_runs_every_stage_then_skips_them(tiny_bert, tmp_path):
    task = TaskData(data_dir=str(SAMPLE), limit={"labelled": 32, "unlabelled": 48, "valid": 16, "test": 32})
    settings = dict(
        task=task, output=tmp_path / "run", block_size=64,
        teacher=TeacherStage(model_name_or_path=str(tiny_bert), epochs=1, lr=1e-3),
        search=SearchStage(target_mb=0.6, population=50, generations=40, restarts=1),
        student=StudentStage(epochs=1, batch_size=16),
        hardware=Hardware(accelerator="cpu"), benchmark_samples=3,
    )
    report = compress(**settings)
    run = tmp_path / "run"
    for path in ("teacher/model.safetensors", "soft_labels.safetensors", "search/architecture.yaml",
                 "student/model.safetensors", "student/tokenizer.json", "export/model.onnx", "report.md"):
        assert (run / path).exists(), path
    assert [s["name"] for s in report["stages"]] == ["teacher", "search", "distillation", "export"]
    assert not any(s["skipped"] for s in report["stages"])
    student = report["student"]
    assert 0.0 <= student["accuracy"] <= 1.0 and student["p50_ms"] > 0
    assert abs(student["size_mb"] - 0.6) < 0.6 * 0.05  # the searched size
    assert report["teacher"]["params"] > student["params"]
    assert json.loads((run / "report.json").read_text())["student"]["f1"] == student["f1"]

    stamps = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file() and "report" not in p.name}
    again = compress(**settings)
    assert all(s["skipped"] for s in again["stages"])
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_compress_with_a_given_teacher_evaluates_it_on_this_test_split(tiny_bert, tmp_path):
    from lit_compressor.modules.teacher import TeacherModule

    TeacherModule(str(tiny_bert), num_inputs=2, block_size=64).save_model_folder(tmp_path / "teacher")
    task = TaskData(data_dir=str(SAMPLE), limit={"labelled": 8, "unlabelled": 32, "valid": 16, "test": 24})
    report = compress(task=task, output=tmp_path / "run", block_size=64,
                      teacher=TeacherStage(finetuned=str(tmp_path / "teacher")),
                      student=StudentStage(architecture=StudentArchitecture(1, 32, 2, 64, 400), epochs=1),
                      hardware=Hardware(accelerator="cpu"), export=False, benchmark_samples=2)
    assert [s["name"] for s in report["stages"]] == ["teacher evaluation", "distillation"]
    evaluated = json.loads((tmp_path / "run" / "teacher_eval" / "metrics.json").read_text())
    assert report["teacher"]["accuracy"] == evaluated["accuracy"]
    assert not (tmp_path / "teacher" / "metrics.json").exists()  # the given folder is left as it was
