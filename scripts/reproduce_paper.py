"""Reproduce the paper's table: BigCloneBench and Devign compressed to 3, 25 and 50 MB through ``compress``.

    nice -n 10 .venv/bin/python scripts/reproduce_paper.py --scale tiny --output runs/paper-tiny
    .venv/bin/python scripts/reproduce_paper.py --scale full --teacher /models/codebert-base --output runs/paper

``--scale`` sets the data limits, block size, epochs and search effort: ``tiny`` is a smoke run
(dozens of examples, one epoch, a small GA: minutes on a laptop), ``cpu`` a few thousand examples,
``full`` the paper's setting (no limits, 400-token blocks, population 50 x 100 generations, 10 restarts).

Each task's teacher is fine-tuned once (in its first target's folder) and reused by the later
targets, whose soft labels are copied from the first run (``label`` sees them current and skips).
The search's vocabulary gene is capped at the number of BPE tokens the (limited) unlabelled split can
yield: the GA may otherwise ask a small corpus for a 40,000-token vocabulary. Writes ``results.md``,
``results.json`` and ``accuracy_vs_size.png`` in ``--output`` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lit_compressor.core.console import markdown_table
from lit_compressor.measure.bench import load_text, timed

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
TASKS = {"bigclonebench": "BigCloneBench (clone detection)", "devign": "Devign (vulnerability prediction)"}
TARGETS = (3.0, 25.0, 50.0)


@dataclass(frozen=True)
class Scale:
    """How much data and effort one ``--scale`` spends."""

    limit: dict[str, int] | None
    block_size: int
    teacher_epochs: int
    student_epochs: int
    population: int
    generations: int
    restarts: int
    benchmark_samples: int


SCALES = {
    "tiny": Scale({"labelled": 32, "unlabelled": 64, "valid": 16, "test": 16}, 64, 1, 1, 10, 5, 1, 5),
    "cpu": Scale({"labelled": 2000, "unlabelled": 2000, "valid": 500, "test": 500}, 256, 2, 5, 50, 100, 3, 30),
    "full": Scale(None, 400, 2, 10, 50, 100, 10, 100),
}


@dataclass
class ResultRow:
    """One task at one target size: the student against its teacher on the test split."""

    task: str
    target_mb: float
    student_mb: float
    params: int
    accuracy: float
    f1: float
    teacher_accuracy: float
    teacher_mb: float
    p50_ms: float | None
    teacher_p50_ms: float | None
    architecture: dict[str, int]

    @property
    def accuracy_kept(self) -> float | None:
        return self.accuracy / self.teacher_accuracy if self.teacher_accuracy else None

    @property
    def speed_up(self) -> float | None:
        return self.teacher_p50_ms / self.p50_ms if self.p50_ms and self.teacher_p50_ms else None


def row_from_report(task: str, target_mb: float, report: dict[str, Any], architecture: dict[str, int]) -> ResultRow:
    """A results row from the report dict ``compress`` returns."""
    student, teacher = report["student"], report["teacher"]
    return ResultRow(task, target_mb, student["size_mb"], student["params"], student["accuracy"], student["f1"],
                     teacher["accuracy"], teacher["size_mb"], student["p50_ms"], teacher["p50_ms"], architecture)


def _fmt(value: float | None, template: str) -> str:
    return "n/a" if value is None else template.format(value)


def results_table(rows: list[ResultRow]) -> str:
    """The markdown table of every task and target."""
    genes = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size", "vocab_size")
    return markdown_table(
        ["task", "target MB", "student MB", "params", "L-H-A-D-V", "accuracy", "F1", "teacher accuracy",
         "accuracy kept", "p50 ms", "speed-up"],
        [[r.task, f"{r.target_mb:g}", f"{r.student_mb:.2f}", f"{r.params:,}",
          "-".join(str(r.architecture[k]) for k in genes), f"{r.accuracy:.4f}", f"{r.f1:.4f}",
          f"{r.teacher_accuracy:.4f}", _fmt(r.accuracy_kept and 100 * r.accuracy_kept, "{:.1f}%"),
          _fmt(r.p50_ms, "{:.1f}"), _fmt(r.speed_up, "{:.1f}x")] for r in rows])


def results_markdown(rows: list[ResultRow], settings: dict[str, Any]) -> str:
    """``results.md``: the settings, the table and the teachers' sizes."""
    teachers = {r.task: (r.teacher_mb, r.teacher_p50_ms) for r in rows}
    teacher_lines = [f"- {task}: {mb:.1f} MB, p50 {_fmt(ms, '{:.1f}')} ms" for task, (mb, ms) in teachers.items()]
    setting_lines = [f"- {key}: {value}" for key, value in settings.items()]
    return ("# Compressor reproduction: accuracy against size\n\n" + "\n".join(setting_lines) + "\n\n"
            + results_table(rows) + "\n\nTeachers (fp32 MB; p50 ms at batch 1 on this CPU, "
            "as timed in the last target's run):\n\n"
            + "\n".join(teacher_lines) + "\n\nAccuracy and F1 on the test split; MB are fp32 weights (1e6 bytes); "
            "p50 is one example at a time on this CPU; speed-up is the teacher's p50 over the student's.\n")


def plot_accuracy_vs_size(rows: list[ResultRow], path: Path) -> Path:
    """Accuracy against student size, one line per task, each teacher as a dashed horizontal line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for index, task in enumerate(dict.fromkeys(r.task for r in rows)):
        task_rows = sorted((r for r in rows if r.task == task), key=lambda r: r.student_mb)
        color = f"C{index}"
        axes.plot([r.student_mb for r in task_rows], [r.accuracy for r in task_rows], "o-", color=color,
                  label=f"{task} student")
        axes.axhline(task_rows[0].teacher_accuracy, color=color, linestyle="--",
                     label=f"{task} teacher ({task_rows[0].teacher_mb:.0f} MB)")
    axes.set_xlabel("student size (MB, fp32)")
    axes.set_ylabel("test accuracy")
    axes.set_title("Accuracy against size")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def write_results(rows: list[ResultRow], output: Path, settings: dict[str, Any]) -> str:
    """``results.md``, ``results.json`` and ``accuracy_vs_size.png`` in ``output``; returns the markdown."""
    output.mkdir(parents=True, exist_ok=True)
    markdown = results_markdown(rows, settings)
    (output / "results.md").write_text(markdown)
    records = [{**asdict(r), "accuracy_kept": r.accuracy_kept, "speed_up": r.speed_up} for r in rows]
    (output / "results.json").write_text(json.dumps({"settings": settings, "rows": records}, indent=2) + "\n")
    plot_accuracy_vs_size(rows, output / "accuracy_vs_size.png")
    return markdown


# --- running ------------------------------------------------------------------------------------
def vocab_ceiling(task, step: int = 1000) -> int:
    """The largest vocabulary (multiple of ``step``) a byte-level BPE can learn from the unlabelled split."""
    from lit_compressor.nn.tokenization import train_student_tokenizer
    from lit_compressor.training.datamodule import CodeDataModule

    codes = list(dict.fromkeys(c for e in CodeDataModule(task).split("unlabelled") for c in e.codes))
    return len(train_student_tokenizer(codes, 50_000, exact_size=False)) // step * step


def run_task(name: str, data_dir: Path, scale: Scale, teacher: str, output: Path, seed: int,
             export: bool) -> list[ResultRow]:
    """Every target of one task; the first target's run fine-tunes and labels, the later ones reuse it."""
    import yaml

    from lit_compressor.commands.compress import compress
    from lit_compressor.data.task import TaskData

    task = TaskData(format=name, data_dir=str(data_dir), limit=dict(scale.limit) if scale.limit else None)
    max_vocab = vocab_ceiling(task)
    if max_vocab < 1000:
        raise SystemExit(f"{name}: the unlabelled split yields fewer than 1,000 BPE tokens; use a larger --scale.")
    configs = ROOT / "configs"
    rows, first = [], None
    for target in TARGETS:
        folder = output / name / f"{target:g}mb"
        search = {"config": str(configs / "search" / "ga_3mb.yaml"), "target_mb": target,
                  "population": scale.population, "generations": scale.generations, "restarts": scale.restarts,
                  "space": {"vocab_size": {"min": 1000, "max": min(50_000, max_vocab), "step": 1000}}}
        student = {"config": str(configs / name / "distill_3mb.yaml"), "trainer": {"max_epochs": scale.student_epochs}}
        if first is None:
            teacher_stage = {"teacher": {"config": str(configs / name / "teacher.yaml"), "trainer": {
                "max_epochs": scale.teacher_epochs}, "model": {"init_args": {"model_name_or_path": teacher}}}}
        else:
            teacher_stage = {"teacher_folder": str(first / "teacher")}
            if not (folder / "soft_labels.safetensors").is_file():  # `label` sees them current and skips
                folder.mkdir(parents=True, exist_ok=True)
                shutil.copy2(first / "soft_labels.safetensors", folder / "soft_labels.safetensors")
        report = compress(task=task, block_size=scale.block_size, output=folder, search=search, student=student,
                          export=export, benchmark={"samples": scale.benchmark_samples},
                          trainer={"accelerator": "cpu"}, seed=seed, **teacher_stage)
        genes = yaml.safe_load((folder / "search" / "architecture.yaml").read_text())
        genes.pop("priced_for", None)
        rows.append(row_from_report(name, target, report, genes))
        first = first or folder
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="tiny")
    parser.add_argument("--teacher", default=MINILM, help="HF folder or hub id to fine-tune (the paper: CodeBERT)")
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=list(TASKS))
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="folder holding bigclonebench/ and devign/")
    parser.add_argument("--output", type=Path, default=Path("runs/paper"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--export", action="store_true", help="also export ONNX and int8 students")
    args = parser.parse_args()

    scale = SCALES[args.scale]
    rows = []
    with timed() as clock:
        for name in args.tasks:
            rows += run_task(name, args.data / name, scale, args.teacher, args.output, args.seed, args.export)
    settings = {"scale": args.scale, "teacher": args.teacher, "limits": scale.limit or "none (full splits)",
                "block size": scale.block_size, "teacher epochs": scale.teacher_epochs,
                "student epochs": scale.student_epochs,
                "search": f"population {scale.population}, generations {scale.generations}, restarts {scale.restarts}",
                "seed": args.seed, "wall time": f"{clock.seconds:.0f} s",
                "load average": f"{load_text(clock.load_before)} before, {load_text(clock.load_after)} after"}
    print(write_results(rows, args.output, settings))
    print(f"wrote {args.output / 'results.md'} and {args.output / 'accuracy_vs_size.png'}")


if __name__ == "__main__":
    main()
