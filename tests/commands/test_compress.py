"""``compress`` on a tiny random teacher: the same commands and YAML files a user runs alone, composed."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import SAMPLE, SHARED_DATA

from lit_compressor.commands.cli import run_function_command
from lit_compressor.commands.compress import compress
from lit_compressor.data.task import TaskData

STUDENT = {"config": "configs/bigclonebench/distill_3mb.yaml", "data": {"batch_size": 16},
           "trainer": {"max_epochs": 1, "accelerator": "cpu"}}
SEARCH = {"config": "configs/search/ga_3mb.yaml", "target_mb": 0.6, "generations": 40, "restarts": 1}


def teacher_config(folder) -> dict:
    return {"config": "configs/bigclonebench/teacher.yaml", "model": {"init_args": {
        "model_name_or_path": str(folder), "pooling": "first", "pair_head": "concat", "lr": 1e-3}},
        "trainer": {"max_epochs": 1, "accelerator": "cpu"}}


def test_compress_runs_every_stage_then_skips_them(tiny_bert, tmp_path):
    task = TaskData(data_dir=str(SAMPLE), limit={"labelled": 32, "unlabelled": 48, "valid": 24, "test": 32})
    settings = dict(task=task, output=tmp_path / "run", block_size=64, teacher=teacher_config(tiny_bert),
                    search=SEARCH, student=STUDENT, benchmark={"samples": 3})
    report = compress(**settings)
    run = tmp_path / "run"
    for path in ("teacher/model.safetensors", "soft_labels.safetensors", "search/architecture.yaml",
                 "student/model.safetensors", "student/tokenizer.json", "export/shipped/model.int8.onnx", "report.md",
                 "benchmark.json"):
        assert (run / path).exists(), path
    names = ["teacher", "teacher_test", "label", "search", "student", "export", "calibrate", "robustness",
             "benchmark"]
    assert [s["name"] for s in report["stages"]] == names
    assert not any(s["skipped"] for s in report["stages"])
    stage_seconds = [s["seconds"] for s in report["stages"]]  # each rounded to 0.1 s
    assert all(seconds > 0 for seconds in stage_seconds)
    assert report["wall_seconds"] >= sum(stage_seconds) - 0.05 * len(stage_seconds)
    student, searched = report["student"], yaml.safe_load((run / "search/architecture.yaml").read_text())
    assert student["params"] == searched["priced_for"]["params"]  # the search priced what was built
    assert searched["priced_for"]["block_size"] == 64 and searched["priced_for"]["family"] == "bert"
    shipped = json.loads((run / "export/export.json").read_text())
    assert student["accuracy"] == shipped["accuracy"]["model.int8.onnx"]  # the shipped model's, on all 32 pairs
    assert student["accuracy_fp32"] == json.loads((run / "student/metrics.json").read_text())["accuracy"]
    assert student["accuracy_source"] == "int8 ONNX on 32 test examples from " + str(run / "task.yaml")
    assert sum(student["prediction_counts"]) == 32 and student["shipped_p50_ms"] > 0 and student["p50_ms"] > 0
    assert report["teacher"]["shipped_p50_ms"] > 0  # the teacher through the same int8 chain
    runtimes = {(r["student_backend"], r["reference_backend"]) for r in report["student_over_teacher"]["like_for_like"]}
    assert runtimes == {("pytorch", "pytorch"), ("onnx-int8", "onnx-int8"), ("onnx-int8", "pytorch")}
    assert json.loads((run / "report.json").read_text())["student"]["f1"] == student["f1"]
    assert "| stage | status | seconds |" in (run / "report.md").read_text()
    # one epoch on 32 pairs: the tiny teacher answers one class for every test pair, and the report says so
    assert report["teacher"]["prediction_counts"] in ([32, 0], [0, 32])
    assert report["warnings"][0].startswith("the teacher predicts class")
    assert report["warnings"][0] in (run / "report.md").read_text()
    # the robustness stage: Morph's two renamings, the shipped int8 student against the teacher on all 32 pairs
    robust = json.loads((run / "robustness.json").read_text())
    assert robust["transformations"] == ["rename_method+rename_parameters"] and robust["examples"] == 32
    assert robust["student"]["backend"] == "onnx-int8"
    assert robust["clean"]["student"]["accuracy"] == student["accuracy"]  # the export's own int8 check, same split
    assert robust["clean"]["teacher"]["accuracy"] == report["teacher"]["accuracy"]  # teacher_test's, same split
    collapsed_class = report["teacher"]["prediction_counts"].index(32)
    assert student["agreement_with_teacher"] == student["prediction_counts"][collapsed_class] / 32
    flips = robust["transformed"][0]["models"]
    assert student["renaming_flips"] == flips["student"]["flips"] <= robust["transformed"][0]["examples_changed"]
    assert report["teacher"]["renaming_flips"] == flips["teacher"]["flips"]
    assert "agreement_with_teacher" not in report["teacher"]
    table = (run / "report.md").read_text()
    assert "| agrees with teacher | renaming flips |" in table.splitlines()[2]
    assert (f"agrees with the teacher on {student['agreement_with_teacher']:.1%}; rename_method+rename_parameters "
            f"(seed 0) flips {student['renaming_flips']} of the student's") in table
    assert report["agreement"] == {"with_teacher_on_test": student["agreement_with_teacher"]}  # the model card's
    assert report["robustness"] == {"rename_method+rename_parameters (seed 0)": {
        "teacher_flips": report["teacher"]["renaming_flips"], "student_flips": student["renaming_flips"],
        "teacher_flip_rate": report["teacher"]["renaming_flips"] / 32,
        "student_flip_rate": student["renaming_flips"] / 32}}

    # the run keeps no checkpoints (the stages' folders hold the models), and says what each stage keeps on disk
    assert not list(run.rglob("*.ckpt"))
    disk = {s["name"]: s["disk_bytes"] for s in report["stages"]}
    calibrations = [run / "export" / sub / "calibration.json" for sub in ("shipped", "full")]
    assert disk["calibrate"] == sum(p.stat().st_size for p in calibrations)  # its files in export/ count for it
    assert disk["export"] + disk["calibrate"] == sum(p.stat().st_size for p in (run / "export").rglob("*")
                                                     if p.is_file())
    assert disk["label"] == (run / "soft_labels.safetensors").stat().st_size
    assert sum(disk.values()) < report["disk_bytes"]  # plus stages/, task.yaml, the tokenizer cache
    # the model card carries the report's figures
    from lit_compressor.runtime.card import read_card

    saved = json.loads((run / "report.json").read_text())
    meta, body = read_card(run / "export/shipped/README.md")
    values = {m["type"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert values == {k: round(saved["student"][k], 4) for k in ("accuracy", "precision", "recall", "f1")}
    assert "base_model" not in meta  # the teacher is a local folder, not a Hub id
    assert f"| teacher | {saved['teacher']['accuracy']:.4f} | {saved['teacher']['precision']:.4f} |" in body
    p50 = saved["student"]["shipped_p50_ms"]
    assert f"as shipped (student (onnx-int8), tokenisation included): {p50:.2f} ms" in body
    assert f"## Accuracy on the test split ({sum(saved['student']['prediction_counts'])} examples)" in body
    fit = saved["calibration"]["shipped"]
    assert (fit["pairs"], fit["split"], fit["precision"]) == (24, "valid", "int8")
    assert f"fit on 24 valid pairs with this folder's int8 encoder: AUC {fit['auc_calibrated']:.4f}" in body

    stamps = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file() and "report" not in p.name}
    again = compress(**settings)
    assert all(s["skipped"] for s in again["stages"])
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    # each stage's file re-runs that stage by hand, with the command a user would type
    teacher_stage = yaml.safe_load((run / "stages/teacher.yaml").read_text())
    assert teacher_stage["data"]["block_size"] == 64 and teacher_stage["model"]["init_args"]["output_dir"] == str(
        run / "teacher")
    run_function_command("search", ["--config", str(run / "stages/search.yaml"), "--output", str(tmp_path / "again")])
    assert (tmp_path / "again/architecture.yaml").read_text() == (run / "search/architecture.yaml").read_text()


def test_a_stage_reruns_exactly_when_a_data_file_it_reads_changes(tiny_bert, tmp_path):
    """Data enter each stage's key by content: touching a file re-runs nothing, editing the test split re-runs
    exactly the stages that read it (the teacher's test, the student — it is tested after its fit —, the
    export's checks, the robustness stage, the benchmark) and the calibration of the new export, never the teacher's
    fit or the labels."""
    from tiny_tasks import make_tiny_task

    data = make_tiny_task(tmp_path / "data", functions=13, valid=24)
    genes = tmp_path / "architecture.yaml"
    genes.write_text(yaml.safe_dump({"num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2,
                                     "intermediate_size": 32, "vocab_size": 300}))
    settings = dict(task=TaskData(data_dir=str(data)), output=tmp_path / "run", block_size=64,
                    teacher=teacher_config(tiny_bert), architecture=str(genes),
                    student=STUDENT, export={"samples": 4}, benchmark={"samples": 2})

    def ran(report) -> list[str]:
        return [s["name"] for s in report["stages"] if not s["skipped"]]

    assert ran(compress(**settings)) == ["teacher", "teacher_test", "label", "student", "export", "calibrate",
                                         "robustness", "benchmark"]
    assert ran(compress(**settings)) == []
    test_file = data / "test.txt"
    text = test_file.read_text()
    test_file.write_text(text)  # the same bytes, a new mtime
    assert ran(compress(**settings)) == []
    first = text.splitlines()[0].split("\t")
    test_file.write_text("\n".join(["\t".join([*first[:2], str(1 - int(first[2]))]), *text.splitlines()[1:]]) + "\n")
    # a re-export deletes calibration.json: the calibrate stage (it reads the valid split alone) runs again
    assert ran(compress(**settings)) == ["teacher_test", "student", "export", "calibrate", "robustness", "benchmark"]
    assert ran(compress(**settings)) == []


def test_compress_with_a_given_teacher_tests_it_on_this_task(tiny_bert, tmp_path):
    from lit_compressor.training.teacher import TeacherModule

    TeacherModule(str(tiny_bert), num_inputs=2, block_size=64).save_model_folder(tmp_path / "teacher")
    task = TaskData(data_dir=str(SAMPLE), limit={"labelled": 8, "unlabelled": 32, "valid": 16, "test": 24})
    report = compress(task=task, output=tmp_path / "run", block_size=64, teacher_folder=str(tmp_path / "teacher"),
                      architecture=None, student=STUDENT, export=False, benchmark={"samples": 2})
    assert [s["name"] for s in report["stages"]] == ["teacher_test", "label", "student", "robustness", "benchmark"]
    robust = json.loads((tmp_path / "run" / "robustness.json").read_text())
    assert robust["student"] == {"folder": str(tmp_path / "run" / "student"), "backend": "pytorch"}  # not exported
    assert robust["clean"]["student"]["accuracy"] == pytest.approx(report["student"]["accuracy"], abs=1e-7)  # fp32
    evaluated = json.loads((tmp_path / "run" / "teacher_test" / "metrics.json").read_text())
    assert report["teacher"]["accuracy"] == evaluated["accuracy"] and sum(evaluated["prediction_counts"]) == 24
    assert not (tmp_path / "teacher" / "metrics.json").exists()  # the given folder is left as it was
    assert (tmp_path / "run" / "teacher_test" / "config.yaml").is_file()  # not in the folder compress ran from
    assert report["student"]["params"] == 754_562 - (400 - 64) * 96  # the paper's genome, 64 positions fewer


def external_labels_settings(tmp_path, tiny_bert, **task_shape) -> dict:
    """A compress run on a tiny task (``make_tiny_task(**task_shape)``) whose soft labels are a teacher's outputs
    produced elsewhere (hard labels, smoothed): no teacher stage, a 1-layer student, export, benchmark."""
    from tiny_tasks import make_tiny_task

    data = make_tiny_task(tmp_path / "data", **task_shape)
    pairs = [line.split("\t")[:2] for line in (data / "unlabel_train.txt").read_text().splitlines()]
    predictions = tmp_path / "preds.txt"
    predictions.write_text("".join(f"{a}\t{b}\t{i % 2}\n" for i, (a, b) in enumerate(pairs)))
    genes = tmp_path / "architecture.yaml"
    genes.write_text(yaml.safe_dump({"num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2,
                                     "intermediate_size": 32, "vocab_size": 300}))
    student = {"config": "configs/bigclonebench/distill_paper_labels.yaml",
               "data": {"function_batches": {"size": 4, "eval_size": 8}},
               "trainer": {"max_epochs": 1, "accelerator": "cpu"}}
    return dict(task=TaskData(data_dir=str(data)), output=tmp_path / "run", block_size=64,
                label={"from_file": str(predictions), "kind": "label", "smoothing": 0.1},
                architecture=str(genes), student=student, export={"samples": 4},
                benchmark={"samples": 2, "teacher": str(tiny_bert)})


def test_compress_from_a_teachers_outputs_produced_elsewhere_runs_no_teacher(tiny_bert, tmp_path, capsys):
    """``label: {from_file: ...}``: the released-predictions path (compress_paper_labels_cpu.yaml) on a tiny task:
    hard labels -> a student in function batches of the unlabelled pair graph -> export -> benchmark."""
    settings = external_labels_settings(tmp_path, tiny_bert)
    predictions = tmp_path / "preds.txt"
    report = compress(**settings)
    run = tmp_path / "run"
    assert [s["name"] for s in report["stages"]] == ["label", "student", "export", "benchmark"]
    # 8 valid pairs: too few to calibrate on, said in one line (the run goes on)
    assert "stage calibrate: skipped, the valid split has 8 labelled pairs, too few to fit on (at least 20)" in (
        " ".join(capsys.readouterr().err.split()))
    assert not (run / "export/shipped/calibration.json").exists()
    assert not (run / "teacher").exists() and not (run / "teacher_test").exists()
    stage = yaml.safe_load((run / "stages/student.yaml").read_text())
    assert stage["data"]["init_args"]["function_batches"] == {"size": 4, "eval_size": 8}
    assert "teacher" not in stage["model"]["init_args"]
    from lit_compressor.labels.soft_labels import load_soft_labels

    labels = load_soft_labels(run / "soft_labels.safetensors")
    assert labels.functions is None and labels.metadata["source_kind"] == "label"
    assert labels.logits[:2].softmax(-1).flatten().tolist() == pytest.approx([0.95, 0.05, 0.05, 0.95])  # s = 0.1
    assert report["teacher"]["labels_from"] == str(predictions) and report["teacher"].get("accuracy") is None
    assert report["teacher"]["params"] > 0 and report["teacher"]["p50_ms"] > 0  # the benchmark's reference
    assert report["student_over_teacher"]["accuracy_kept"] is None
    assert "the teacher was not scored here" in (run / "report.md").read_text()
    assert all(s["skipped"] for s in compress(**settings)["stages"])


def test_compress_calibrates_a_pair_student_for_clones(tiny_bert, tmp_path, capsys):
    """The calibrate stage (issue 24): ``calibration.json`` fit on the valid split in ``export/shipped`` (its int8
    encoder) and ``export/full`` (fp32), read by ``clones`` without the "no calibration" warning; the stage's file
    re-runs it by hand; a second run skips it; an unknown setting is refused before any stage runs."""
    import math

    from lit_compressor.clones.calibration import DEFAULT_PRIOR, Calibration
    from lit_compressor.commands.clones import clones
    from lit_compressor.core.errors import UserError

    settings = external_labels_settings(tmp_path, tiny_bert, functions=13, valid=24)
    with pytest.raises(UserError, match="unknown calibrate setting"):
        compress(**settings, calibrate={"precision": "int8"})
    assert not (tmp_path / "run" / "stages").exists()
    report = compress(**settings)
    run = tmp_path / "run"
    assert [s["name"] for s in report["stages"]] == ["label", "student", "export", "calibrate", "benchmark"]
    stage = yaml.safe_load((run / "stages/calibrate.yaml").read_text())
    assert stage == {"prior": DEFAULT_PRIOR, "model": str(run / "export"), "data": str(run / "task.yaml"),
                     "split": "valid"}
    fits = {}
    for sub, precision in (("shipped", "int8"), ("full", "fp32")):
        fitted = Calibration.load(run / "export" / sub)
        assert fitted is not None and fitted.prior == DEFAULT_PRIOR and fitted.valid_prior == 0.5  # 12 of 24 clones
        assert all(math.isfinite(w) for w in (fitted.slope, fitted.closeness_slope, fitted.intercept))
        assert (fitted.fit["split"], fitted.fit["pairs"], fitted.fit["precision"]) == ("valid", 24, precision)
        assert report["calibration"][sub] == {"file": str(run / "export" / sub / "calibration.json"),
                                              **{k: fitted.fit[k] for k in ("precision", "split", "pairs", "clones",
                                                                            "auc_calibrated", "log_loss_raw",
                                                                            "log_loss_calibrated")}}
        fits[sub] = fitted
    assert fits["shipped"].slope != fits["full"].slope  # each folder's own encoder was scored
    summary = (run / "report.md").read_text()
    assert "Clone scores calibrated on 24 valid pairs (12 clones): shipped/ (int8) AUC" in summary

    # clones reads it, with no warning: every pair's probability at the stored prior, the calibrated default threshold
    project = tmp_path / "project"
    project.mkdir()
    codes = [json.loads(line)["func"] for line in (tmp_path / "data/data.jsonl").read_text().splitlines()]
    for i, code in enumerate(codes):
        (project / f"F{i}.java").write_text(f"class F{i} {{\n{code}\n}}\n")
    capsys.readouterr()
    for sub in ("shipped", "full"):
        found = clones(run / "export" / sub, project, index=tmp_path / f"index-{sub}", threshold=0.0, min_tokens=0,
                       per_function=None, copies=False, show=0)
        assert "no calibration" not in capsys.readouterr().out
        assert found["prior"] == DEFAULT_PRIOR and found["precision"] == fits[sub].fit["precision"]
        assert len(found["pairs"]) == found["functions"] * (found["functions"] - 1) // 2 > 0
        for pair in found["pairs"][:5]:
            expected = float(fits[sub].probability(pair["score"], pair["similarity"]))
            assert pair["probability"] == pytest.approx(expected, abs=1e-12)

    default = clones(run / "export", project, index=tmp_path / "index-shipped", show=0)  # the export: shipped/
    assert default["threshold"] == 0.05 and default["calibration"]["slope"] == fits["shipped"].slope
    assert default["index_update"]["embedded"] == 0 and "no calibration" not in capsys.readouterr().out
    # the stage's file re-runs it by hand: the same fits
    from lit_compressor.commands.cli import run_function_command

    again = run_function_command("calibrate", ["--config", str(run / "stages/calibrate.yaml")])
    assert {sub: fit["slope"] for sub, fit in again.items()} == pytest.approx(
        {sub: fitted.slope for sub, fitted in fits.items()}, abs=1e-9)
    # a second run finds the stage current, though calibration.json now sits in the folders it hashes
    stamps = {p: p.stat().st_mtime_ns for p in (run / "export").rglob("calibration.json")}
    rerun = compress(**settings)
    assert {s["name"]: s["skipped"] for s in rerun["stages"]}["calibrate"] is True
    assert all(s["skipped"] for s in rerun["stages"])
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps and len(stamps) == 2


def test_own_jsonl_data_runs_end_to_end(tiny_roberta, tmp_path, capsys):
    """A vulnerability data set with its own field names and file names, through every stage."""
    data = tmp_path / "mydata"
    data.mkdir()
    names = {"labelled": "train_a.jsonl", "unlabelled": "train_b.jsonl", "valid": "dev.jsonl", "test": "eval.jsonl"}
    sources = {"labelled": "label_train", "unlabelled": "unlabel_train", "valid": "valid", "test": "test"}
    for split, name in names.items():
        lines = (SHARED_DATA / "devign" / f"{sources[split]}.jsonl").read_text().splitlines()[:24]
        records = [json.loads(line) for line in lines]
        (data / name).write_text("".join(json.dumps({"id": f"fn{r['idx']}", "code": r["func"], **(
            {"vulnerable": r["target"]} if "target" in r else {})}) + "\n" for r in records))
    config = {"task": {"format": "jsonl", "data_dir": str(data), "files": names, "code_fields": ["code"],
                       "label_field": "vulnerable", "id_field": "id"},
              "block_size": 64, "output": str(tmp_path / "run"),
              "teacher": {"config": "configs/devign/teacher.yaml", "model": {"init_args": {
                  "model_name_or_path": str(tiny_roberta), "pooling": "first"}}, "trainer": {"max_epochs": 1}},
              "search": {**SEARCH, "target_mb": 0.4},
              "student": {**STUDENT, "config": "configs/devign/distill_3mb.yaml"},
              "trainer": {"accelerator": "cpu"}, "export": {"samples": 16}, "benchmark": {"samples": 2}}
    path = tmp_path / "compress.yaml"
    path.write_text(yaml.safe_dump(config))
    report = run_function_command("compress", ["--config", str(path)])
    export = json.loads((tmp_path / "run/export/export.json").read_text())
    assert export["check_inputs"].startswith("16 test examples") and export["num_inputs"] == 1
    assert sum(report["student"]["prediction_counts"]) == 16  # the shipped model's scores: on the 16 it checked
    assert report["student"]["accuracy_source"].startswith("int8 ONNX on 16 test examples")
    assert (tmp_path / "run/report.md").is_file()
    # the language of a jsonl task cannot be told: the robustness stage is skipped (robustness: {language: c} runs it)
    assert "robustness" not in [s["name"] for s in report["stages"]] and "agreement" not in report
    # one function at a time: no pair scores, so no calibrate stage, said in one line
    assert "calibrate" not in [s["name"] for s in report["stages"]] and "calibration" not in report
    assert "stage calibrate: skipped, a single-input task has no pair scores to calibrate" in " ".join(
        capsys.readouterr().err.split())
    assert not list((tmp_path / "run/export").rglob("calibration.json"))


def test_collapse_warning_names_the_class_the_share_and_the_causes():
    from lit_compressor.commands.report import collapse_warning

    message = collapse_warning("teacher", {"prediction_counts": [3, 297]})
    assert message.startswith("the teacher predicts class 1 for 99.0% of the test split (297 of 300)")
    assert "too few labelled examples" in message
    assert "collapsed teacher" in collapse_warning("student", {"prediction_counts": [300, 0]})
    assert collapse_warning("student", {"prediction_counts": [4, 296]}) is None  # 98.7 %: not collapsed
    assert collapse_warning("student", {}) is None
