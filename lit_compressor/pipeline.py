"""``lit-compressor compress``: every stage of the data flow, from a teacher to a shipped tiny model.

    fine-tuned teacher -> soft labels -> architecture search -> student tokenizer -> distillation
    -> export -> evaluation report

Each stage writes its output under ``output/`` with a ``.stage.json`` that records a hash of its
inputs; a stage whose record matches is skipped, so a second run redoes nothing and an interrupted
run resumes (training stages from the ``last.ckpt`` of a run with the same inputs). Runs in one
process on one device (CPU or one GPU); for multi-device training use ``fit`` and ``label`` with
``--trainer.strategy ddp``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from lit_compressor.data.task import TaskData
from lit_compressor.search.architecture import StudentArchitecture

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
SAMPLE_DIR = "data/bigclonebench-sample"


@dataclass
class TeacherStage:
    """The teacher: fine-tuned here from ``model_name_or_path``, or a given fine-tuned folder."""

    model_name_or_path: str = MINILM
    finetuned: str | None = None
    """A teacher folder already fine-tuned (written by a TeacherModule fit): skips fine-tuning."""
    kind: Literal["plain", "graphcodebert"] = "plain"
    pooling: Literal["first", "mean"] = "mean"
    """``mean`` suits sentence-transformers encoders (MiniLM); ``first`` is Compressor's (CodeBERT)."""
    pair_head: Literal["concat", "interaction"] = "interaction"
    """Pairs: ``interaction`` reads ``[u, v, |u-v|, u*v]``; ``concat`` is Compressor's ``[u, v]``."""
    epochs: int = 2
    lr: float = 5e-5
    batch_size: int = 16


@dataclass
class SearchStage:
    """Compressor's GA (or NSGA-II) towards ``target_mb``; skipped when ``StudentStage.architecture`` is set."""

    target_mb: float = 3.0
    mode: Literal["ga", "nsga2"] = "ga"
    population: int = 50
    generations: int = 100
    restarts: int = 10
    max_latency_ms: float | None = None


@dataclass
class StudentStage:
    """Distillation of the student on the unlabelled split from the teacher's soft labels."""

    architecture: StudentArchitecture | None = None
    family: Literal["auto", "roberta", "bert"] = "auto"
    """``auto``: the teacher's family when it is BERT or RoBERTa, else RoBERTa."""
    epochs: int = 8
    lr: float = 1e-3
    batch_size: int = 32
    temperature: float = 1.0
    alpha: float = 0.0


@dataclass
class Hardware:
    accelerator: str = "auto"
    devices: int = 1
    precision: str | None = None


@dataclass
class StageRecord:
    name: str
    skipped: bool
    output: str
    extra: dict[str, Any] = field(default_factory=dict)


def _digest(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_stage(name: str, folder: Path, inputs: dict[str, Any], work: Callable[[], Any]) -> StageRecord:
    """Run ``work`` unless ``folder/.stage.json`` records the same inputs; then record them."""
    from rich.console import Console

    marker = folder / ".stage.json"
    digest = _digest(inputs)
    if marker.is_file() and json.loads(marker.read_text()).get("inputs") == digest:
        Console().print(f"[dim]stage {name}: up to date ({folder}), skipped[/dim]")
        return StageRecord(name, True, str(folder))
    Console().rule(f"stage {name}")
    extra = work() or {}
    folder.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps({"inputs": digest, "settings": inputs}, indent=2, default=str))
    os.replace(tmp, marker)
    return StageRecord(name, False, str(folder), extra)


def _trainer(folder: Path, epochs: int, hardware: Hardware, monitor: str):
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar
    from lightning.pytorch.loggers import CSVLogger

    checkpoint = ModelCheckpoint(dirpath=folder / "checkpoints", monitor=monitor, mode="max", save_last=True)
    return L.Trainer(max_epochs=epochs, accelerator=hardware.accelerator, devices=hardware.devices,
                     precision=hardware.precision, callbacks=[checkpoint, RichProgressBar()],
                     logger=CSVLogger(folder, name="logs"), log_every_n_steps=10, default_root_dir=folder)


def _fit_and_test(module, data, folder: Path, epochs: int, hardware: Hardware, monitor: str) -> None:
    last = folder / "checkpoints" / "last.ckpt"
    trainer = _trainer(folder, epochs, hardware, monitor)
    trainer.fit(module, datamodule=data, ckpt_path=str(last) if last.is_file() else None)
    trainer.test(module, datamodule=data, ckpt_path=trainer.checkpoint_callback.best_model_path or None)


def _student_family(teacher_folder: Path, family: str) -> str:
    if family != "auto":
        return family
    model_type = json.loads((teacher_folder / "config.json").read_text()).get("model_type")
    return model_type if model_type in ("bert", "roberta") else "roberta"


def _teacher_head(teacher_folder: Path) -> tuple[str, str]:
    """The teacher's pooling and pair head, which the student copies."""
    from lit_compressor.models.hf_folder import read_metadata

    metadata = read_metadata(teacher_folder)
    return metadata.get("pooling", "first"), metadata.get("pair_head", "concat")


def compress(task: TaskData | None = None, output: Path = Path("runs/quickstart"), block_size: int = 128,
             teacher: TeacherStage | None = None, search: SearchStage | None = None,
             student: StudentStage | None = None, hardware: Hardware | None = None, eval_batch_size: int = 64,
             export: bool = True, benchmark_samples: int = 30, seed: int = 42) -> dict[str, Any]:
    """Compress a teacher into a tiny student, stage by stage, and report both side by side.

    The defaults are the quick start: the offline MiniLM teacher on the real BigCloneBench sample
    shipped in ``data/bigclonebench-sample``, at CPU scale (128-token blocks), to a 3 MB student.

    Args:
        task: The data (format, folder, split files, sample limits).
        output: The run folder: teacher/, soft_labels.safetensors, search/, student/, export/, report.*.
        block_size: Tokens per function (the paper: 400).
        teacher: The teacher to fine-tune, or an already fine-tuned folder.
        search: The architecture search (skipped when ``student.architecture`` is given).
        student: Distillation settings.
        hardware: Lightning accelerator, devices (one process) and precision.
        eval_batch_size: Batch size of labelling, validation and test.
        export: Also export ONNX and int8 (validated against PyTorch).
        benchmark_samples: Test inputs timed one by one for the report's latency.
        seed: Seed of every stage.
    """
    import lightning as L

    from lit_compressor.data.datamodule import CodeDataModule
    from lit_compressor.data.task import fingerprint
    from lit_compressor.label import label
    from lit_compressor.modules.distillation import DistillationModule
    from lit_compressor.modules.teacher import TeacherModule
    from lit_compressor.soft_labels import file_fingerprint

    task, teacher, search = task or TaskData(data_dir=SAMPLE_DIR), teacher or TeacherStage(), search or SearchStage()
    student, hardware = student or StudentStage(), hardware or Hardware()
    output = Path(output)
    data_inputs = {"task": asdict(task), "block_size": block_size, "seed": seed}
    records: list[StageRecord] = []

    # 1. teacher
    teacher_folder = Path(teacher.finetuned) if teacher.finetuned else output / "teacher"
    if not teacher.finetuned:
        def fit_teacher() -> None:
            L.seed_everything(seed)
            module = TeacherModule(teacher.model_name_or_path, kind=teacher.kind, pooling=teacher.pooling,
                                   pair_head=teacher.pair_head, num_inputs=task.num_inputs,
                                   num_labels=task.num_labels, block_size=block_size, lr=teacher.lr,
                                   output_dir=str(teacher_folder))
            data = CodeDataModule(task, teacher.batch_size, eval_batch_size, block_size)
            _fit_and_test(module, data, output / "teacher_run" / _digest(teacher_inputs), teacher.epochs, hardware,
                          "val/accuracy")

        teacher_inputs = {**data_inputs, **asdict(teacher)}
        records.append(run_stage("teacher", teacher_folder, teacher_inputs, fit_teacher))
        teacher_metrics = teacher_folder
    else:  # a given teacher is evaluated on this task's test split, like the student
        from lit_compressor.modules.labelling import TeacherPredictor

        teacher_metrics = output / "teacher_eval"

        def evaluate_teacher() -> None:
            predictor = TeacherPredictor(str(teacher_folder), block_size)
            predictor.output_dir = str(teacher_metrics)
            L.Trainer(accelerator=hardware.accelerator, devices=hardware.devices, precision=hardware.precision,
                      logger=False, enable_checkpointing=False).test(
                predictor, datamodule=CodeDataModule(task, eval_batch_size=eval_batch_size, block_size=block_size))

        records.append(run_stage("teacher evaluation", teacher_metrics,
                                 {**data_inputs, "teacher": file_fingerprint(teacher_folder)}, evaluate_teacher))

    # 2. soft labels (label() itself skips when the file matches this teacher and data)
    soft_labels = output / "soft_labels.safetensors"
    label(str(teacher_folder), soft_labels, task, block_size, eval_batch_size, hardware.accelerator,
          hardware.devices, precision=hardware.precision)

    # 3. architecture search
    family = _student_family(teacher_folder, student.family)
    pooling, pair_head = _teacher_head(teacher_folder)
    architecture = student.architecture
    if architecture is None:
        from lit_compressor.search.command import run_search
        from lit_compressor.search.space import SearchSpace

        space = SearchSpace(block_size=block_size, num_inputs=task.num_inputs, family=family,
                            num_labels=task.num_labels, pair_head=pair_head)
        search_folder = output / "search"

        def run() -> None:
            run_search(space, search.target_mb, search.mode, search.population, search.generations,
                       restarts=search.restarts, seed=seed, max_latency_ms=search.max_latency_ms,
                       output=search_folder)

        records.append(run_stage("search", search_folder, {"search": asdict(search), "space": asdict(space),
                                                           "seed": seed}, run))
        from lit_compressor.modules.distillation import load_architecture

        architecture = load_architecture(search_folder / "architecture.yaml")

    # 4+5. student tokenizer and distillation
    student_folder = output / "student"

    def distil() -> None:
        L.seed_everything(seed)
        module = DistillationModule(architecture, family=family, soft_labels=str(soft_labels), pooling=pooling,
                                    pair_head=pair_head,
                                    temperature=student.temperature, alpha=student.alpha, lr=student.lr,
                                    tokenizer_cache=str(output / "tokenizers"), num_inputs=task.num_inputs,
                                    num_labels=task.num_labels, block_size=block_size,
                                    output_dir=str(student_folder))
        data = CodeDataModule(task, student.batch_size, eval_batch_size, block_size)
        _fit_and_test(module, data, output / "student_run" / _digest(student_inputs), student.epochs, hardware,
                      "val/accuracy")

    student_inputs = {**data_inputs, **asdict(student), "architecture": architecture.to_dict(), "family": family,
                      "pooling": pooling, "pair_head": pair_head, "soft_labels": file_fingerprint(soft_labels)}
    records.append(run_stage("distillation", student_folder, student_inputs, distil))

    # 6. export
    export_folder = output / "export"
    if export:
        from lit_compressor.export import export as export_model

        records.append(run_stage("export", export_folder, {"student": file_fingerprint(student_folder)},
                                 lambda: export_model(student_folder, export_folder, overwrite=True,
                                                      data=Path(task.data_dir), samples=200) and None))

    # 7. report
    report = build_report(teacher_folder, teacher_metrics, student_folder, task, benchmark_samples, records,
                          fingerprint(CodeDataModule(task).split("test")))
    write_report(output, report)
    return report


def build_report(teacher_folder: Path, teacher_metrics: Path, student_folder: Path, task: TaskData, samples: int,
                 records: list[StageRecord], test_fingerprint: str) -> dict[str, Any]:
    """Teacher and student side by side: test metrics, params, MB on disk, p50 latency on this CPU."""
    from lit_compressor.benchmark import benchmark

    timing = benchmark(student_folder, Path(task.data_dir), teacher=str(teacher_folder), samples=samples,
                       backends=["pytorch"])
    systems = {row["name"].split(" ")[0]: row for row in timing["systems"]}
    rows = {}
    for name, folder, metrics_folder in (("teacher", teacher_folder, teacher_metrics),
                                         ("student", student_folder, student_folder)):
        metrics = json.loads((metrics_folder / "metrics.json").read_text())
        timed = systems.get(name, {})
        rows[name] = {**{k: metrics[k] for k in ("accuracy", "precision", "recall", "f1", "params", "size_mb")},
                      "p50_ms": timed.get("p50_ms"), "p95_ms": timed.get("p95_ms"), "folder": str(folder)}
    teacher_row, student_row = rows["teacher"], rows["student"]
    return {
        "task": asdict(task), "test_fingerprint": test_fingerprint, "teacher": teacher_row, "student": student_row,
        "student_over_teacher": {
            "accuracy_kept": student_row["accuracy"] / teacher_row["accuracy"] if teacher_row["accuracy"] else None,
            "times_smaller": teacher_row["size_mb"] / student_row["size_mb"],
            "times_faster_p50": (teacher_row["p50_ms"] / student_row["p50_ms"]
                                 if teacher_row["p50_ms"] and student_row["p50_ms"] else None)},
        "stages": [asdict(r) for r in records], "timing": timing["environment"],
    }


COLUMNS = (("accuracy", "accuracy", "{:.4f}"), ("precision", "precision", "{:.4f}"), ("recall", "recall", "{:.4f}"),
           ("f1", "F1", "{:.4f}"), ("params", "params", "{:,}"), ("size_mb", "MB", "{:.2f}"),
           ("p50_ms", "p50 ms", "{:.1f}"))


def _cell(value: Any, template: str) -> str:
    return "n/a" if value is None else template.format(value)


def write_report(output: Path, report: dict[str, Any]) -> None:
    """``report.json``, ``report.md`` and the table on the terminal."""
    from rich.console import Console
    from rich.table import Table

    output.mkdir(parents=True, exist_ok=True)
    (output / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    header = "| model | " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 1)]
    table = Table(title="teacher vs student (test split)")
    table.add_column("model")
    for _, title, _ in COLUMNS:
        table.add_column(title, justify="right")
    for name in ("teacher", "student"):
        cells = [_cell(report[name][key], template) for key, _, template in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
        table.add_row(name, *cells)
    ratio = report["student_over_teacher"]
    summary = (f"The student keeps {ratio['accuracy_kept']:.1%} of the teacher's accuracy, is "
               f"{ratio['times_smaller']:.1f}x smaller on disk"
               + (f" and {ratio['times_faster_p50']:.1f}x faster (p50, batch 1, this CPU)." if ratio[
                   "times_faster_p50"] else "."))
    (output / "report.md").write_text("# Compression report\n\n" + "\n".join(lines) + f"\n\n{summary}\n")
    console = Console()
    console.print(table)
    console.print(summary)
