"""Every compression method on one task and slice, in one table.

Methods: the teacher itself, full fine-tuning of the teacher's encoder (the reference for LST), the
Compressor student (DistillationModule), BERT-of-Theseus, Ladder Side-Tuning and BiLSTM-soft. Soft
labels come from ``lit_compressor.commands.label.label``. Columns: test accuracy and F1, fp32 MB of what
deployment needs (for LST: backbone + side network), ms per example at batch 1 (tokenisation
included, median over the test slice), training wall time, and the peak CPU memory (torch allocator,
``torch.profiler``) of one training step on a fixed batch.

Default: the shipped sample (data/bigclonebench-sample), tiny limits, 2 epochs; without ``--teacher``
a MiniLM teacher is fine-tuned on the labelled slice first (written to ``<output>/teacher``).

    nice -n 10 .venv/bin/python scripts/compare_methods.py --output runs/compare
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import lightning as L
import torch

from lit_compressor.commands.label import label
from lit_compressor.core.console import markdown_table
from lit_compressor.data.task import TaskData
from lit_compressor.measure.bench import call_times_ms, load_text, timed
from lit_compressor.nn.folders import load_pretrained_encoder
from lit_compressor.search.architecture import StudentArchitecture
from lit_compressor.training.base import ClassifierModule, model_inputs
from lit_compressor.training.bilstm import BiLSTMModule
from lit_compressor.training.datamodule import CodeDataModule
from lit_compressor.training.distillation import DistillationModule
from lit_compressor.training.distillation_data import DistillationDataModule, teacher_record
from lit_compressor.training.labelling import TeacherPredictor
from lit_compressor.training.ladder import LadderSideModule, peak_training_memory_mb
from lit_compressor.training.teacher import TeacherModule
from lit_compressor.training.theseus import TheseusModule

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "bigclonebench-sample"


def trainer(epochs: int) -> L.Trainer:
    return L.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu")


def data_for(module: ClassifierModule, task: TaskData, args: argparse.Namespace, soft: Path | None = None,
             tokenizers: str | None = None) -> CodeDataModule:
    """The module's data module: its own tokenizer's, or a distilled student's (its BPE, the soft labels)."""
    sizes = {"batch_size": args.batch_size, "eval_batch_size": 32, "block_size": args.block_size}
    if isinstance(module, DistillationModule):
        return DistillationDataModule(task, soft_labels=str(soft), tokenizer_cache=tokenizers,
                                      student=module.student_inputs, **sizes)
    return CodeDataModule(task, encoder=module.code_encoder, **sizes)


def ms_per_example(module: ClassifierModule, data: CodeDataModule) -> float:
    """Median ms of one prediction at batch 1 (encoding included) over the test slice."""
    module.eval()
    with torch.no_grad():
        return statistics.median(call_times_ms(lambda example: module(data.collate([example])),
                                               data.split("test")))


def step_memory_mb(module: ClassifierModule, data: CodeDataModule, batch_size: int) -> float:
    batch = data.collate(data.split("labelled")[:batch_size])
    module.train()
    return peak_training_memory_mb(module.model, model_inputs(batch), batch["labels"])


def run(name: str, module: ClassifierModule, data: CodeDataModule, epochs: int, batch_size: int,
        size_mb: float | None = None) -> dict:
    fit = trainer(epochs)
    with timed() as training:
        if epochs > 0:
            fit.fit(module, datamodule=data)
    metrics = fit.test(module, datamodule=data, verbose=False)[0]
    params = sum(p.numel() for p in module.model.parameters())
    row = {"method": name, "accuracy": metrics["test/accuracy"], "f1": metrics["test/f1"],
           "mb": size_mb if size_mb is not None else params * 4 / 1e6, "ms": ms_per_example(module, data),
           "train_s": training.seconds, "step_mem_mb": step_memory_mb(module, data, batch_size) if epochs > 0 else None}
    print(json.dumps(row), flush=True)
    return row


def fine_tune_teacher(base: str, task: TaskData, args: argparse.Namespace, folder: Path) -> Path:
    module = TeacherModule(base, num_inputs=task.num_inputs, block_size=args.block_size, lr=5e-5)
    trainer(args.epochs).fit(module, datamodule=data_for(module, task, args))
    return module.save_model_folder(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", type=Path, help="a fine-tuned classifier folder (default: fine-tune one)")
    parser.add_argument("--teacher-base", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--data-dir", type=Path, default=SAMPLE)
    parser.add_argument("--limit", type=int, nargs=4, default=[64, 64, 32, 32],
                        metavar=("LABELLED", "UNLABELLED", "VALID", "TEST"))
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--student-epochs", type=int, default=5, help="for the small students (Compressor, BiLSTM)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--output", type=Path, default=Path("runs/compare"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    L.seed_everything(0)
    task = TaskData(format="bigclonebench", data_dir=str(args.data_dir),
                    limit=dict(zip(("labelled", "unlabelled", "valid", "test"), args.limit, strict=True)))
    common = {"num_inputs": task.num_inputs, "num_labels": task.num_labels, "block_size": args.block_size,
              "warmup_ratio": 0.1}
    teacher = args.teacher or fine_tune_teacher(args.teacher_base, task, args, args.output / "teacher")
    soft = label(str(teacher), args.output / "soft_labels.safetensors", task, args.block_size, accelerator="cpu")
    teacher_layers = load_pretrained_encoder(str(teacher))[0].config.num_hidden_layers
    tokenizers = str(args.output / "tokenizers")

    head = teacher_record(str(soft))

    def row(name: str, module: ClassifierModule, epochs: int, **kwargs) -> dict:
        return run(name, module, data_for(module, task, args, soft, tokenizers), epochs, args.batch_size, **kwargs)

    rows = [row("teacher", TeacherPredictor(str(teacher), args.block_size), 0)]
    rows.append(row("full fine-tuning", TeacherModule(str(teacher), **common, lr=5e-5), args.epochs))
    student = DistillationModule(StudentArchitecture(4, 96, 8, 64, 1000), teacher_head=head, **common, lr=1e-3)
    rows.append(row("compressor student", student, args.student_epochs))
    theseus = TheseusModule(str(teacher), successor_layers=max(1, teacher_layers // 2), replacement_epochs=1,
                            finetune_patience=1, monitor="val/accuracy", **common, lr=5e-5)
    rows.append(row(f"theseus (k={max(1, teacher_layers // 2)})", theseus, args.epochs))
    ladder = LadderSideModule(str(teacher), reduction=8, **common, lr=1e-3)
    rows.append(row("ladder side-tuning (r=8)", ladder, args.epochs, size_mb=ladder.size_mb()["total_mb"]))
    bilstm = BiLSTMModule(target_mb=3.0, teacher_head=head, **common, lr=1e-3)
    rows.append(row("bilstm-soft (3 MB)", bilstm, args.student_epochs))

    print("\n" + markdown_table(["method", "accuracy", "F1", "MB", "ms/example", "train s", "step MB"], [
        [r["method"], f"{r['accuracy']:.3f}", f"{r['f1']:.3f}", f"{r['mb']:.2f}", f"{r['ms']:.1f}",
         f"{r['train_s']:.1f}", "-" if r["step_mem_mb"] is None else f"{r['step_mem_mb']:.1f}"] for r in rows]))
    print(load_text())
    print(f"(LST side network alone: {ladder.size_mb()['side_mb']:.2f} MB)")
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "compare.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
