"""The model card of a shipped folder: ``README.md`` with Hugging Face front matter (YAML between ``---`` lines).

Written by ``lit-compressor export`` from its own checks (``export.json``) and, when there is one, the run's
report (``report.json``: teacher beside student on the test split, latency on the measured CPU, stage
figures); ``compress`` rewrites it once the report exists. Every figure in the card is one of those files'
numbers, printed with the precision given here; :func:`read_card` parses a card back.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from lit_compressor.core.files import atomic_write_text

CARD_FILE = "README.md"
DATASETS = {  # the Hugging Face copies of CodeXGLUE's splits, which our task formats read
    "bigclonebench": "google/code_x_glue_cc_clone_detection_big_clone_bench",
    "devign": "google/code_x_glue_cc_defect_detection",
}
TASK_TAGS = {"bigclonebench": ["clone-detection", "java"],
             "devign": ["defect-detection", "vulnerability-detection", "c"]}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
METRICS = ("accuracy", "precision", "recall", "f1")


def megabytes(size: int) -> str:
    return f"{size / 1e6:.2f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"


def number(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def base_model(run_report: dict[str, Any] | None) -> str | None:
    """The teacher's pre-trained checkpoint as a Hub id, read from the run's teacher stage config (None when the
    teacher was given as a folder or is a local path)."""
    for stage in (run_report or {}).get("stages", []):
        if stage.get("name") == "teacher" and Path(stage.get("config", "")).is_file():
            config = yaml.safe_load(Path(stage["config"]).read_text()) or {}
            name = ((config.get("model") or {}).get("init_args") or {}).get("model_name_or_path")
            if isinstance(name, str) and HUB_ID.match(name) and not Path(name).exists():
                return name
    return None


def student_test_metrics(run_report: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The student's test-split metrics the card shows, and what model they are of: the shipped graph's when the
    report has them (``student.shipped_metrics``), else the student's own (fp32 PyTorch)."""
    student = run_report["student"]
    shipped = student.get("shipped_metrics")
    if shipped:
        return shipped, f"shipped graph ({shipped.get('backend', 'int8 ONNX')})"
    return student, "fp32 PyTorch"


def front_matter(export_report: dict[str, Any], run_report: dict[str, Any] | None, library: str) -> dict[str, Any]:
    task = (run_report or {}).get("task", {})
    fmt = task.get("format")
    tags = ["code", "lit-compressor", "knowledge-distillation", "onnx"]
    tags += ["int8"] if export_report.get("int8") else []
    tags += TASK_TAGS.get(fmt, [])
    meta: dict[str, Any] = {"library_name": library, "pipeline_tag": "text-classification", "tags": tags}
    if fmt in DATASETS:
        meta["datasets"] = [DATASETS[fmt]]
    meta["metrics"] = list(METRICS)
    if (base := base_model(run_report)) is not None:
        meta["base_model"] = base
    if run_report is not None:
        metrics, _ = student_test_metrics(run_report)
        dataset = {"name": fmt or "own task", "type": DATASETS.get(fmt, fmt or "jsonl"), "split": "test"}
        meta["model-index"] = [{"name": f"lit-compressor student ({fmt or 'own task'})", "results": [{
            "task": {"type": "text-classification"}, "dataset": dataset,
            "metrics": [{"type": key, "value": round(float(metrics[key]), 4)} for key in METRICS
                        if metrics.get(key) is not None]}]}]
    return meta


def intended_use(fmt: str | None, num_inputs: int) -> tuple[str, str]:
    """(intended use, limitations specific to the task)."""
    if fmt == "bigclonebench" or num_inputs == 2:
        return ("Flagging pairs of Java methods that implement the same functionality (clone detection), inside an "
                "IDE or a code-review tool, as a hint a person checks.",
                "BigCloneBench pairs are Java methods from open-source projects; other languages, generated code or "
                "very long methods are outside what it was trained and tested on.")
    if fmt == "devign":
        return ("Ranking C functions for a person to review first (possibly vulnerable, Devign's labels), as a hint "
                "in an IDE.",
                "Devign's labels come from vulnerability-fixing commits of FFmpeg and QEMU; its test accuracy is "
                "close to chance for teachers too. It is no security tool: a function it passes is not safe.")
    return ("Classifying functions of the task it was trained on, as a hint a person checks.",
            "It knows only the task's data; check it on your own code before relying on it.")


def shipped_form(export_report: dict[str, Any]) -> str:
    if export_report.get("int8"):
        return "dynamic int8 ONNX"
    return "fp32 ONNX" if "onnx_max_abs_diff" in export_report else "safetensors (PyTorch)"


def card_body(config: dict[str, Any], export_report: dict[str, Any], run_report: dict[str, Any] | None,
              shipped: dict[str, Any], library: str) -> str:
    meta = config.get("lit_compressor", {})
    num_inputs = int(meta.get("num_inputs", 1))
    kind = "pair (clone detection)" if num_inputs == 2 else "single-function"
    task = (run_report or {}).get("task", {})
    fmt = task.get("format")
    lines = [f"# lit-compressor student: {kind} classifier of code", "",
             f"A {export_report['parameters']:,}-parameter {config.get('model_type', '')} student "
             f"({config.get('num_hidden_layers')} layers, hidden size "
             f"{config.get('hidden_size')}, {meta.get('block_size')} tokens per function), distilled with "
             "lit-compressor and shipped as "
             f"{shipped_form(export_report)}: the files of this folder come to "
             f"{shipped['bytes'] / 1e6:.2f} MB (this card aside).", ""]
    if run_report is not None:
        teacher, student = run_report["teacher"], run_report["student"]
        metrics, what = student_test_metrics(run_report)
        tested = sum(student.get("prediction_counts") or []) or None
        base = base_model(run_report)
        lines += ["## Teacher, data and splits", "",
                  f"- Teacher: a fine-tuned {base or 'encoder'} ({teacher['params']:,} parameters, "
                  f"{number(teacher['size_mb'], 1)} MB; `{teacher['folder']}`).",
                  f"- Data: {fmt} from `{task.get('data_dir')}`"
                  + (f" (split files {task['files']})" if task.get("files") else "")
                  + (f", sampled: {task['limit']}" if task.get("limit") else "") + ". The teacher was fine-tuned on "
                  "the labelled split; the student learned from the teacher's outputs on the unlabelled split; "
                  "both were chosen on the validation split; the test split was scored once.", "",
                  f"## Accuracy on the test split{f' ({tested} examples)' if tested else ''}", "",
                  "| model | accuracy | precision | recall | F1 |", "| --- | --- | --- | --- | --- |",
                  f"| teacher | {' | '.join(number(teacher.get(k)) for k in METRICS)} |",
                  f"| student: {what} | {' | '.join(number(metrics.get(k)) for k in METRICS)} |", ""]
        if run_report.get("student_over_teacher", {}).get("accuracy_kept"):
            lines += [f"The student keeps {run_report['student_over_teacher']['accuracy_kept']:.1%} of the teacher's "
                      "test accuracy (its own figures against the teacher's).", ""]
        lines += speed_lines(run_report)
        lines += extra_figures(run_report)
    check = export_report.get("accuracy", {})
    graph = next((name for name in ("model.int8.onnx", "onnx/model_quantized.onnx") if name in check), None)
    if graph is not None and export_report.get("int8"):
        lines += ["## Export checks", "",
                  f"On {export_report['check_inputs']}: the ONNX graphs give PyTorch's logits within "
                  f"{max(export_report.get('onnx_max_abs_diff', {'': 0}).values()):.1e}; the int8 graph's accuracy "
                  f"is {number(check[graph])} (PyTorch fp32: {number(check.get('pytorch'))}), and it agrees with "
                  f"fp32 on {export_report['int8']['agreement_with_fp32']:.1%} of them.", ""]
    use, limits = intended_use(fmt, num_inputs)
    lines += ["## Intended use", "", use, "", "## Limitations", "",
              f"- {limits}",
              f"- Each function is cut to its first {meta.get('block_size')} tokens (whitespace collapsed first): "
              "what lies beyond does not count.",
              "- A student is a smaller copy of its teacher: it inherits the teacher's errors and biases and adds its "
              "own; its probabilities are not calibrated.", "",
              "## Files and how to run them", ""]
    lines += [f"- `{name}` ({megabytes(size)})" for name, size in shipped["files"].items()]
    lines += ["", "Python: `TinyClassifier.from_pretrained(folder).predict(...)` (the `lit-compressor` package); "
              "Node.js: `TinyClassifier.fromPretrained(folder)` (the `lit-compressor-runtime` package)."]
    if library == "transformers.js":
        lines += ["transformers.js: `pipeline(\"text-classification\", folder)` (the `onnx/` graphs take the "
                  "whole tokenization and cut it to the block as Python does)."]
    if num_inputs == 2:
        lines += ["Clone search over a project: `encoder.int8.onnx` embeds each function once, `head_prepare.onnx` "
                  "and `head.onnx` score one function against every cached vector (`lit-compressor clones`)."]
        fit = ((run_report or {}).get("calibration") or {}).get("shipped")
        if fit is not None:
            lines += [f"`calibration.json` turns those scores into clone probabilities at a project's base rate "
                      f"(Platt scaling fit on {fit['pairs']:,} {fit['split']} pairs with this folder's "
                      f"{fit['precision']} encoder: AUC {number(fit['auc_calibrated'])}, log-loss "
                      f"{number(fit['log_loss_raw'])} raw, {number(fit['log_loss_calibrated'])} calibrated), so that "
                      "`clones --threshold` reads as a precision."]
    if any(name.startswith("weights") for name in shipped["files"]):
        lines += ["The classifier and encoder graphs keep their common weights once, in the `weights*.bin` file "
                  "beside them (ONNX external data): keep the files together."]
    return "\n".join(lines) + "\n"


def speed_lines(run_report: dict[str, Any]) -> list[str]:
    student, env = run_report["student"], run_report.get("timing", {})
    if student.get("shipped_p50_ms") is None and student.get("p50_ms") is None:
        return []
    cpu = (f"{env.get('cpu', 'a CPU')} ({env.get('cpu_count')} cores, {env.get('threads')} threads, "
           f"load average {env['load_average'][0]:.2f})" if env.get("load_average") else env.get("cpu", "the CPU"))
    lines = ["## Speed and size", ""]
    if student.get("shipped_p50_ms") is not None:
        lines.append(f"- p50 latency of one prediction as shipped ({student.get('shipped_backend')}, tokenisation "
                     f"included): {student['shipped_p50_ms']:.2f} ms on {cpu}.")
    if student.get("p50_ms") is not None:
        lines.append(f"- fp32 PyTorch: {student['p50_ms']:.2f} ms; the teacher "
                     f"{run_report['teacher'].get('timed_as', '')}: {run_report['teacher']['p50_ms']:.2f} ms "
                     "(PyTorch), on the same machine, round-robin.")
    if student.get("shipped_mb") is not None:
        lines.append(f"- The shipped graph: {student['shipped_mb']:.2f} MB "
                     f"(fp32 weights: {student['size_mb']:.2f} MB; teacher {run_report['teacher']['size_mb']:.1f} MB).")
    return lines + [""]


def extra_figures(run_report: dict[str, Any]) -> list[str]:
    """Robustness and agreement figures, when the report has them (``robustness``, ``agreement``)."""
    lines = []
    for key in ("agreement", "robustness"):
        value = run_report.get(key, run_report["student"].get(key))
        if value is None:
            continue
        lines += [f"## {key.capitalize()}", ""]
        lines += [f"- {name}: {figure}" for name, figure in flatten(value)] + [""]
    return lines


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in flatten(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(value, float):
        return [(prefix or "value", f"{value:.4f}")]
    return [(prefix or "value", str(value))]


def model_card(config: dict[str, Any], export_report: dict[str, Any], shipped: dict[str, Any],
               run_report: dict[str, Any] | None = None, library: str = "lit-compressor") -> str:
    """The card's text: front matter (YAML) and body (Markdown)."""
    meta = front_matter(export_report, run_report, library)
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n\n" + card_body(
        config, export_report, run_report, shipped, library)


def write_model_card(folder: str | Path, export_report: dict[str, Any],
                     run_report: dict[str, Any] | None = None) -> Path:
    """(Re)write ``folder/README.md`` for the shipped folder ``folder``."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    library = "transformers.js" if "transformers.js_config" in config else "lit-compressor"
    files = {name: size for name, size in export_report["shipped"]["files"].items() if name != CARD_FILE}
    shipped = {"files": files, "bytes": sum(files.values())}
    text = model_card(config, export_report, shipped, run_report, library)
    path = folder / CARD_FILE
    if path.is_file() and path.read_text() == text:  # unchanged: leave the file (and its mtime) alone
        return path
    return atomic_write_text(path, text)


def read_card(path: str | Path) -> tuple[dict[str, Any], str]:
    """A card's front matter (parsed YAML) and body."""
    text = Path(path).read_text()
    if not text.startswith("---\n"):
        raise ValueError(f"{path}: no front matter")
    head, _, body = text[4:].partition("\n---\n")
    return yaml.safe_load(head), body
