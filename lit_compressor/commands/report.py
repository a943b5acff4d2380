"""The compression report: teacher and student side by side, stage times, and warnings worth reading."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lit_compressor.core.console import markdown_table, print_table
from lit_compressor.data.task import TaskData

COLLAPSE_SHARE = 0.99
COLUMNS = (("accuracy", "accuracy", "{:.4f}"), ("precision", "precision", "{:.4f}"), ("recall", "recall", "{:.4f}"),
           ("f1", "F1", "{:.4f}"), ("params", "params", "{:,}"), ("size_mb", "MB", "{:.2f}"),
           ("p50_ms", "p50 ms (PyTorch)", "{:.1f}"), ("shipped_p50_ms", "p50 ms (shipped)", "{:.1f}"))


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


def _shipped(systems: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The student as shipped: the first non-PyTorch student backend timed, else None."""
    return next((s for s in systems if s["name"].startswith("student") and "pytorch" not in s["name"]), None)


def build_report(task: TaskData, teacher_folder: Path, teacher_metrics: Path, student_folder: Path,
                 benchmark_file: Path, records: list, wall_seconds: float) -> dict[str, Any]:
    """Teacher and student: test metrics, params, MB, p50 latency; stage times; collapse warnings."""
    timing = json.loads(benchmark_file.read_text())
    systems = {s["name"]: s for s in timing["systems"]}
    shipped = _shipped(timing["systems"])
    rows, warnings = {}, []
    for name, folder, metrics_file in (("teacher", teacher_folder, teacher_metrics),
                                       ("student", student_folder, student_folder / "metrics.json")):
        metrics = json.loads(metrics_file.read_text())
        timed = systems.get(f"{name} (pytorch)", {})
        rows[name] = {**{k: metrics.get(k) for k in ("accuracy", "precision", "recall", "f1", "params", "size_mb",
                                                      "prediction_counts")},
                      "p50_ms": timed.get("p50_ms"), "p95_ms": timed.get("p95_ms"), "folder": str(folder),
                      "shipped_p50_ms": None}
        if message := collapse_warning(name, metrics):
            warnings.append(message)
    if shipped is not None:
        rows["student"].update(shipped_p50_ms=shipped["p50_ms"], shipped_backend=shipped["name"],
                               shipped_mb=shipped["size_mb"])
    teacher, student = rows["teacher"], rows["student"]
    if timing.get("teacher") not in (None, str(teacher_folder)):  # the benchmark timed another teacher
        teacher["timed_as"] = f"{timing['teacher']} (block {timing.get('teacher_block_size')})"
    ratio = {
        "accuracy_kept": student["accuracy"] / teacher["accuracy"] if teacher["accuracy"] else None,
        "times_smaller": teacher["size_mb"] / student["size_mb"],
        "times_faster_p50": teacher["p50_ms"] / student["p50_ms"] if teacher["p50_ms"] and student["p50_ms"] else None,
        "times_faster_p50_shipped": (teacher["p50_ms"] / student["shipped_p50_ms"]
                                     if teacher["p50_ms"] and student["shipped_p50_ms"] else None),
    }
    return {"task": task.to_dict(), "teacher": teacher, "student": student, "student_over_teacher": ratio,
            "warnings": warnings, "wall_seconds": round(wall_seconds, 1),
            "stages": [asdict(r) for r in records], "timing": timing["environment"]}


def _cell(value: Any, template: str) -> str:
    return "n/a" if value is None else template.format(value)


def summary(report: dict[str, Any]) -> str:
    ratio = report["student_over_teacher"]
    text = (f"The student keeps {ratio['accuracy_kept']:.1%} of the teacher's test accuracy and is "
            f"{ratio['times_smaller']:.1f}x smaller")
    if ratio["times_faster_p50"]:
        timed = report["teacher"].get("timed_as")
        text += (f"; p50 at batch 1 on this CPU{f' (teacher timed as {timed})' if timed else ''}: "
                 f"{ratio['times_faster_p50']:.1f}x faster in PyTorch")
    if ratio["times_faster_p50_shipped"]:
        text += f", {ratio['times_faster_p50_shipped']:.1f}x as shipped ({report['student']['shipped_backend']})"
    return text + "."


def disk_note(report: dict[str, Any]) -> str:
    return f"; {report['disk_bytes'] / 1e6:.1f} MB on disk" if report.get("disk_bytes") is not None else ""


def write_report(output: Path, report: dict[str, Any]) -> None:
    """``report.json``, ``report.md`` and the tables on stdout."""
    output.mkdir(parents=True, exist_ok=True)
    (output / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    columns = ["model"] + [title for _, title, _ in COLUMNS]
    rows = [[name] + [_cell(report[name].get(key), template) for key, _, template in COLUMNS]
            for name in ("teacher", "student")]
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
