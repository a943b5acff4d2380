"""The compression report: teacher and student side by side, stage times, and warnings worth reading."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lit_compressor.core.console import markdown_table, print_table
from lit_compressor.data.task import TaskData

COLLAPSE_SHARE = 0.99
COLUMNS = (("accuracy", "accuracy", "{:.4f}"), ("accuracy_fp32", "accuracy (fp32 PyTorch)", "{:.4f}"),
           ("precision", "precision", "{:.4f}"), ("recall", "recall", "{:.4f}"), ("f1", "F1", "{:.4f}"),
           ("params", "params", "{:,}"), ("size_mb", "MB", "{:.2f}"), ("shipped_mb", "MB shipped", "{:.2f}"),
           ("p50_ms", "p50 ms (PyTorch)", "{:.1f}"), ("shipped_p50_ms", "p50 ms (int8 ONNX)", "{:.1f}"),
           ("agreement_with_teacher", "agrees with teacher", "{:.1%}"), ("renaming_flips", "renaming flips", "{:,}"))
SHIPPED = "onnx-int8"


def collapse_warning(name: str, metrics: dict[str, Any]) -> str | None:
    """A warning when ``name`` predicts one class for at least 99 % of the test split, else None."""
    counts = metrics.get("prediction_counts")
    if not counts or sum(counts) == 0:
        return None
    top = max(range(len(counts)), key=counts.__getitem__)
    share = counts[top] / sum(counts)
    if share < COLLAPSE_SHARE:
        return None
    causes = ("too few labelled examples or epochs, a learning rate too high or too low, or a head that does not "
              "suit the encoder (e.g. `pooling: first` with a mean-pooled sentence encoder)" if name == "teacher"
              else "a collapsed teacher, too few unlabelled examples or epochs, a learning rate too high, or a "
              "temperature that flattens the targets")
    return (f"the {name} predicts class {top} for {share:.1%} of the test split ({counts[top]} of {sum(counts)}): "
            f"it has collapsed. Likely causes: {causes}.")


def _timed(timing: dict[str, Any], role: str) -> dict[str, Any]:
    """A role's p50 in eager PyTorch and as shipped (int8 ONNX), its int8 file's MB, from the benchmark."""
    rows = {s["backend"]: s for s in timing["systems"] if s.get("role") == role}
    eager, shipped = rows.get("pytorch", {}), rows.get(SHIPPED, {})
    return {"p50_ms": eager.get("p50_ms"), "p95_ms": eager.get("p95_ms"), "shipped_p50_ms": shipped.get("p50_ms"),
            "shipped_backend": shipped.get("name"), "shipped_mb": shipped.get("size_mb"),
            "name": (eager or shipped).get("name", role).rsplit(" (", 1)[0]}


def robustness_cells(robustness: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per model of a robustness report: its clean agreement with the teacher and its flips under the report's
    first transformation (in ``compress``: Morph's two renamings together)."""
    first = robustness["transformed"][0] if robustness["transformed"] else None
    cells: dict[str, dict[str, Any]] = {}
    for name, clean in robustness["clean"].items():
        cells[name] = {"agreement_with_teacher": clean.get("agreement_with_teacher")}
        if first is not None:
            cells[name].update(renaming_flips=first["models"][name]["flips"],
                               renaming_flip_rate=first["models"][name]["flip_rate"])
    return cells


def robustness_figures(robust: dict[str, Any], source: Path) -> dict[str, Any]:
    """The report's ``agreement`` (the student's with the teacher on the clean split) and ``robustness`` (each
    transformation's flips of both models), as the model card lists them."""
    figures: dict[str, Any] = {"robustness_file": str(source), "robustness_examples": robust["examples"],
                               "robustness_backends": {name: robust[name]["backend"] for name in robust["clean"]}}
    agreement = robust["clean"].get("student", {}).get("agreement_with_teacher")
    if agreement is not None:
        figures["agreement"] = {"with_teacher_on_test": agreement}
    figures["robustness"] = {f"{row['transformation']} (seed {row['seed']})": {
        **{f"{name}_flips": model["flips"] for name, model in row["models"].items()},
        **{f"{name}_flip_rate": model["flip_rate"] for name, model in row["models"].items()}}
        for row in robust["transformed"]}
    return figures


def build_report(task: TaskData, teacher_folder: Path | None, teacher_metrics: Path | None, student_folder: Path,
                 benchmark_file: Path, records: list, wall_seconds: float, export_file: Path | None = None,
                 robustness_file: Path | None = None, calibration_files: dict[str, Path] | None = None
                 ) -> dict[str, Any]:
    """Teacher, student (as shipped) and any proxy teacher: test metrics, size, p50 in eager PyTorch and as
    shipped; ratios like for like; stage times; collapse warnings; with ``robustness_file``, the student's agreement
    with the teacher and both models' prediction flips under the renaming the robustness stage measured; with
    ``calibration_files`` (``{folder: calibration.json}``), each clone-score calibration's fit.

    The student's scores are the shipped model's (int8 ONNX, from ``export.json``, on the test examples the export
    checked: the whole test split in ``compress``); ``accuracy_fp32`` is its PyTorch model's on the same split.
    Without a teacher folder (soft labels produced elsewhere) the teacher row is the benchmark's reference
    teacher: timed, parameters and size, no scores.
    """
    timing = json.loads(benchmark_file.read_text())
    rows, warnings = {}, []
    for name, folder, metrics_file in (("teacher", teacher_folder, teacher_metrics),
                                       ("student", student_folder, student_folder / "metrics.json")):
        if metrics_file is None:  # the benchmark's reference teacher: its parameters and size
            system = next(s for s in timing["systems"] if s.get("role") == name and s["backend"] == "pytorch")
            metrics = {"params": system["parameters"], "size_mb": system["size_mb"]}
        else:
            metrics = json.loads(metrics_file.read_text())
        rows[name] = {**{k: metrics.get(k) for k in ("accuracy", "precision", "recall", "f1", "params", "size_mb",
                                                      "prediction_counts")},
                      "accuracy_fp32": metrics.get("accuracy"), **_timed(timing, name), "folder": str(folder)}
        if message := collapse_warning(name, metrics):
            warnings.append(message)
    if export_file is not None and export_file.is_file():
        export = json.loads(export_file.read_text())
        if export.get("shipped_scores"):
            rows["student"].update(export["shipped_scores"], accuracy_source=f"int8 ONNX on {export['check_inputs']}")
    robust = None
    if robustness_file is not None and robustness_file.is_file():
        robust = json.loads(robustness_file.read_text())
        for name, cells in robustness_cells(robust).items():
            rows[name].update(cells)
        rows["teacher"].pop("agreement_with_teacher")  # the teacher is the reference: no agreement of its own
    rows["teacher"].pop("accuracy_fp32")  # the teacher's accuracy is its PyTorch model's: one column says it
    if timing.get("proxy"):
        rows["proxy"] = {"params": next(s["parameters"] for s in timing["systems"] if s.get("role") == "proxy"),
                         **_timed(timing, "proxy"), "block_size": timing.get("proxy_block_size")}
        rows["proxy"]["size_mb"] = next(s["size_mb"] for s in timing["systems"]
                                        if s.get("role") == "proxy" and s["backend"] == "pytorch")
    teacher, student = rows["teacher"], rows["student"]
    ratio = {
        "accuracy_kept": student["accuracy"] / teacher["accuracy"] if teacher.get("accuracy") else None,
        "times_smaller": teacher["size_mb"] / student["size_mb"],
        "like_for_like": timing.get("ratios", []),
    }
    extra = robustness_figures(robust, robustness_file) if robust is not None else {}
    if calibration_files:
        extra["calibration"] = calibration_figures(calibration_files)
    return {"task": task.to_dict(), **rows, "student_over_teacher": ratio, **extra,
            "warnings": warnings, "wall_seconds": round(wall_seconds, 1), "stages": [asdict(r) for r in records],
            "timing": timing["environment"]}


def calibration_figures(files: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """Per calibrated folder: the file, the encoder it scored with, and the fit's split, pairs, clones, AUC and
    log-loss (raw score and calibrated), as ``calibrate`` stored them."""
    figures = {}
    for name, path in files.items():
        fit = json.loads(path.read_text())["fit"]
        figures[name] = {"file": str(path), **{k: fit.get(k) for k in (
            "precision", "split", "pairs", "clones", "auc_calibrated", "log_loss_raw", "log_loss_calibrated")}}
    return figures


def _cell(value: Any, template: str) -> str:
    return "n/a" if value is None else template.format(value)


def summary(report: dict[str, Any]) -> str:
    ratio = report["student_over_teacher"]
    shipped = report["student"].get("accuracy_source", "PyTorch")
    kept = ratio["accuracy_kept"]
    text = (f"The student keeps {kept:.1%} of the teacher's test accuracy ({shipped}) and is "
            if kept is not None else
            f"The student scores {report['student']['accuracy']:.4f} on the test split ({shipped}); the teacher "
            f"was not scored here; the student is ") + f"{ratio['times_smaller']:.1f}x smaller"
    speeds = [r for r in ratio["like_for_like"] if r["like_for_like"]]
    if speeds:
        text += "; p50 at batch 1 on this CPU, runtime against the same runtime: " + ", ".join(
            f"{r['times_faster_p50']:.1f}x vs {r['reference']} ({r['student_backend']})" for r in speeds)
    text += "."
    if report.get("robustness_file"):
        student, teacher = report["student"], report["teacher"]
        text += (f" On the {report['robustness_examples']:,} test examples the student "
                 f"({report['robustness_backends']['student']}) agrees with the teacher on "
                 f"{student['agreement_with_teacher']:.1%}")
        if report["robustness"]:
            text += (f"; {next(iter(report['robustness']))} flips {student['renaming_flips']:,} of the student's "
                     f"predictions and {teacher['renaming_flips']:,} of the teacher's")
        text += "."
    if report.get("calibration"):
        fits = report["calibration"]
        first = next(iter(fits.values()))
        text += (f" Clone scores calibrated on {first['pairs']:,} {first['split']} pairs ({first['clones']:,} clones): "
                 + ", ".join(f"{name}/ ({fit['precision']}) AUC {fit['auc_calibrated']:.4f}, log-loss "
                             f"{fit['log_loss_raw']:.4f} raw -> {fit['log_loss_calibrated']:.4f}"
                             for name, fit in fits.items()) + " (`calibration.json`, read by `lit-compressor clones`).")
    return text


def disk_note(report: dict[str, Any]) -> str:
    return f"; {report['disk_bytes'] / 1e6:.1f} MB on disk" if report.get("disk_bytes") is not None else ""


def write_report(output: Path, report: dict[str, Any]) -> None:
    """``report.json``, ``report.md`` and the tables on stdout."""
    output.mkdir(parents=True, exist_ok=True)
    (output / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    columns = ["model"] + [title for _, title, _ in COLUMNS]
    names = [name for name in ("teacher", "student", "proxy") if name in report]
    rows = [[report[name].get("name", name) if name == "proxy" else name]
            + [_cell(report[name].get(key), template) for key, _, template in COLUMNS] for name in names]
    stage_rows = [[s["name"], "skipped" if s["skipped"] else "ran", f"{s['seconds']:.1f}",
                   _cell(None if s.get("disk_bytes") is None else s["disk_bytes"] / 1e6, "{:.1f}"), s["config"]]
                  for s in report["stages"]]
    stage_columns = ["stage", "status", "seconds", "MB on disk", "config (re-run it by hand)"]
    text = [summary(report), *[f"**Warning:** {w}" for w in report["warnings"]]]
    (output / "report.md").write_text(
        "# Compression report\n\n" + markdown_table(columns, rows) + "\n\n" + "\n\n".join(text)
        + f"\n\n## Stages ({report['wall_seconds']:.0f} s in all{disk_note(report)})\n\n"
        + markdown_table(stage_columns, stage_rows)
        + "\n")
    print_table(f"stages ({report['wall_seconds']:.0f} s in all)", stage_columns, stage_rows, right_from=2)
    print_table("teacher vs student (test split)", columns, rows)
    print("\n".join(text))
