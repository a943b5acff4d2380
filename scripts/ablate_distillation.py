"""Choose a distillation recipe and a student genome on the validation split: variants × genomes × seeds.

    nice python scripts/ablate_distillation.py --teacher runs/quickstart/teacher --config configs/quickstart.yaml \
        --valid ../shared/data/bigclonebench --seeds 1 2 3 --steps 210 --val-every 70 --output runs/ablation/quickstart

Every run distils one genome with one variant and one seed for the same number of optimiser steps and the same
compute a step (64 functions encoded: 32 pairs, or 16 groups of 4 functions), validating every ``--val-every``
steps; a run's score is its best validation accuracy (the checkpoint the shipped configs keep). The test split is
never read: choose here, then score the chosen configuration on test once (``lit-compressor compress``).

``--valid DIR`` replaces the config's validation split with DIR's whole one (e.g. the shared BigCloneBench
folder's 2,851 pairs, of which the quick-start sample's 300 are a subset): one 300-pair split has a standard error
of about 2 points, too noisy to separate recipes 1-2 points apart. The table gives each configuration's mean over
seeds with its standard error, and its paired difference from the first configuration (same seeds) with that
difference's standard error. The teacher's soft labels (with the function cache) are computed once; finished runs
are read back from ``results.json`` in ``--output``, so an interrupted ablation resumes.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch

from lit_compressor.core.console import markdown_table
from lit_compressor.measure.bench import load_text, timed

VARIANTS: dict[str, dict[str, Any]] = {
    "logits": {},
    "augment": {"augment": {"pairs_per_epoch": "unlabelled", "strategy": "neighbours"}},
    "representation": {"representation": {"weight": 1.0, "distance": "cosine"}},
    "both": {"augment": {"pairs_per_epoch": "unlabelled", "strategy": "neighbours"},
             "representation": {"weight": 1.0, "distance": "cosine"}},
    "functions": {"augment": {"mode": "functions", "strategy": "neighbours"}},
    "functions+representation": {"augment": {"mode": "functions", "strategy": "neighbours"},
                                 "representation": {"weight": 1.0, "distance": "cosine"}},
}


def pair_accuracy(model, encoder, examples, batch_size: int = 64) -> float:
    """Accuracy of ``model`` (a CodeClassifier) on labelled ``examples`` (see :func:`pair_correct`)."""
    return float(pair_correct(model, encoder, examples, batch_size).float().mean())


def pair_correct(model, encoder, examples, batch_size: int = 64) -> torch.Tensor:
    """Whether ``model`` (a CodeClassifier) classifies each labelled example right, each unique function encoded
    once and the head applied to the pooled vectors of each example's functions: what its pair forward computes,
    for the cost of the split's functions (660 for BigCloneBench's 2,851 validation pairs) instead of two a pair."""
    codes = list(dict.fromkeys(code for example in examples for code in example.codes))
    index = {code: i for i, code in enumerate(codes)}
    rows = torch.tensor([[index[code] for code in example.codes] for example in examples])
    labels = torch.tensor([example.label for example in examples])
    training = model.training
    model.eval()
    with torch.inference_mode():
        vectors = torch.cat([model.features(**encoder.encode_codes([[code] for code in codes[i:i + batch_size]]))
                             for i in range(0, len(codes), batch_size)])
        logits = model.head(vectors[rows].reshape(len(rows), -1))
    model.train(training)
    return logits.argmax(-1) == labels


class ValidationCurve(L.Callback):
    """Validation accuracy every ``every`` steps and after the last (:func:`pair_accuracy`), and the wall and CPU
    seconds spent validating."""

    def __init__(self, examples, every: int) -> None:
        self.examples, self.every = examples, every
        self.points: list[tuple[int, float]] = []
        self.seconds = self.cpu_seconds = 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step % self.every and step < trainer.max_steps:
            return
        started = time.perf_counter(), time.process_time()
        self.points.append((step, pair_accuracy(pl_module.model, trainer.datamodule.encoder, self.examples)))
        print(f"step {step}: validation accuracy {self.points[-1][1]:.4f}", flush=True)
        self.seconds += time.perf_counter() - started[0]
        self.cpu_seconds += time.process_time() - started[1]


def run_key(variant: str, architecture: str, seed: int, steps: int) -> str:
    return f"{variant}|{architecture}|{seed}|{steps}"


def fit_run(variant: str, architecture: Path, seed: int, args: argparse.Namespace, task,
            soft_labels: Path) -> dict[str, Any]:
    """Distil one (variant, genome, seed); its validation curve, best validation accuracy and seconds."""
    from lit_compressor.training.augmentation import Augmentation
    from lit_compressor.training.distillation import DistillationModule, Representation
    from lit_compressor.training.distillation_data import DistillationDataModule, teacher_record

    folder = args.output / f"{variant}-{architecture.stem}-s{seed}-{args.steps}"
    settings = json.loads(json.dumps(VARIANTS[variant]))
    if settings.get("augment", {}).get("pairs_per_epoch") == "unlabelled":
        settings["augment"]["pairs_per_epoch"] = len(task.read("unlabelled")) * args.augment_ratio
    if settings.get("augment", {}).get("mode") == "functions" and task.num_inputs == 1:
        settings["augment"].update(strategy="random", group_size=1)  # each cached function an example
    L.seed_everything(seed)
    module = DistillationModule(str(architecture), teacher_head=teacher_record(str(soft_labels)),
                                num_inputs=task.num_inputs, num_labels=task.num_labels, block_size=args.block_size,
                                lr=args.lr, representation=Representation(**settings.get("representation", {})))
    augment = Augmentation(**settings.get("augment", {}), seed=seed)
    # the same compute a step: a batch of B examples encodes B * num_inputs functions, a batch of groups too
    batch_size = args.batch_size
    if settings.get("augment", {}).get("mode") == "functions":
        batch_size = task.num_inputs * args.batch_size // augment.group_size
    data = DistillationDataModule(task, soft_labels=str(soft_labels), augment=augment,
                                  tokenizer_cache=str(args.output / "tokenizers"), student=module.student_inputs,
                                  batch_size=batch_size, eval_batch_size=64, block_size=args.block_size)
    curve = ValidationCurve(task.read("valid"), args.val_every)
    trainer = L.Trainer(max_steps=args.steps, limit_val_batches=0, callbacks=[curve], logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, default_root_dir=folder)
    cpu = time.process_time()
    with timed() as fitting:
        trainer.fit(module, datamodule=data)
    cpu = time.process_time() - cpu
    return {"variant": variant, "architecture": str(architecture), "seed": seed, "steps": args.steps,
            "settings": settings, "params": sum(p.numel() for p in module.model.parameters()),
            "curve": curve.points, "best_val_accuracy": max(a for _, a in curve.points),
            "final_val_accuracy": curve.points[-1][1],
            "seconds": round(fitting.seconds, 1), "train_seconds": round(fitting.seconds - curve.seconds, 1),
            "train_cpu_seconds": round(cpu - curve.cpu_seconds, 1), "load_before": fitting.load_before,
            "load_after": fitting.load_after}


def teacher_validation(teacher: str, task, block_size: int, output: Path) -> dict[str, Any]:
    """The teacher's accuracy on the validation split (cached in ``--output``): what "kept" divides by."""
    from lit_compressor.training.labelling import TeacherPredictor

    path = output / "teacher_valid.json"
    if not path.is_file():
        predictor = TeacherPredictor(teacher, block_size)
        accuracy = pair_accuracy(predictor.model, predictor.code_encoder, task.read("valid"))
        path.write_text(json.dumps({"teacher": teacher, "val/accuracy": accuracy}, indent=2) + "\n")
    return json.loads(path.read_text())


def mean_se(values: list[float]) -> tuple[float, float]:
    """The mean and its standard error (sample standard deviation / √n; 0 for one value)."""
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0)


def summary(rows: list[dict], teacher_accuracy: float) -> list[list[str]]:
    """One row a (variant, genome): runs, mean best and final validation accuracy ± SE, the paired difference
    from the first configuration's runs of the same seeds ± SE, and the mean training seconds."""
    configs: dict[tuple[str, str], dict[int, dict]] = {}
    for row in rows:
        configs.setdefault((row["variant"], Path(row["architecture"]).stem), {})[row["seed"]] = row
    reference = next(iter(configs.values()), {})
    table = []
    for (variant, architecture), runs in configs.items():
        best, se = mean_se([r["best_val_accuracy"] for r in runs.values()])
        final, final_se = mean_se([r["final_val_accuracy"] for r in runs.values()])
        shared = [s for s in runs if s in reference]
        diff = mean_se([runs[s]["best_val_accuracy"] - reference[s]["best_val_accuracy"] for s in shared])
        table.append([variant, architecture, str(len(runs)), f"{best:.4f} ± {se:.4f}", f"{best / teacher_accuracy:.1%}",
                      f"{final:.4f} ± {final_se:.4f}", f"{diff[0]:+.4f} ± {diff[1]:.4f}",
                      f"{statistics.fmean(r['train_seconds'] for r in runs.values()):.0f}",
                      f"{statistics.fmean(r['train_cpu_seconds'] for r in runs.values()):.0f}"])
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", required=True, help="a fine-tuned teacher folder")
    parser.add_argument("--config", type=Path, required=True, help="a compress config: its task and block size")
    parser.add_argument("--valid", type=Path, default=None,
                        help="a task folder whose whole validation split replaces the config's (same format)")
    parser.add_argument("--architectures", nargs="+", type=Path, default=None,
                        help="architecture.yaml files (default: the GA's for 3 MB)")
    parser.add_argument("--variants", nargs="+", default=["functions+representation"], choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[42])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--val-every", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--augment-ratio", type=int, default=1, help="augmented pairs per epoch / unlabelled pairs")
    parser.add_argument("--functions-from", nargs="+", default=["unlabelled"], choices=["unlabelled", "labelled"],
                        help="the splits whose functions the function cache holds")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--output", type=Path, default=Path("runs/ablation"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from lit_compressor.commands.label import label
    from lit_compressor.core.configs import read_yaml
    from lit_compressor.data.task import TaskData

    config = read_yaml(args.config, "compress")
    task, args.block_size = TaskData(**config["task"]), config.get("block_size", 128)
    if args.valid is not None:
        task = with_validation_from(task, args.valid)
    args.output.mkdir(parents=True, exist_ok=True)
    soft_labels = label(args.teacher, args.output / "soft_labels.safetensors", task, args.block_size,
                        functions_from=args.functions_from)
    architectures = args.architectures or [ga_architecture(args)]
    teacher = teacher_validation(args.teacher, task, args.block_size, args.output)
    results_file = args.output / "results.json"
    done = {}
    if results_file.is_file():
        done = {run_key(r["variant"], r["architecture"], r["seed"], r["steps"]): r
                for r in json.loads(results_file.read_text())["runs"]}
    rows = []
    for seed in args.seeds:  # every configuration's first seed first: an early look at all of them
        for architecture in architectures:
            for variant in args.variants:
                key = run_key(variant, str(architecture), seed, args.steps)
                done[key] = row = done.get(key) or fit_run(variant, architecture, seed, args, task, soft_labels)
                rows.append(row)
                results_file.write_text(json.dumps({"teacher_valid": teacher, "runs": list(done.values()), "args": {
                    k: str(v) for k, v in vars(args).items()}}, indent=2) + "\n")
    print(f"\nvalidation: {len(task.read('valid')):,} pairs ({task.path('valid')}); teacher validation accuracy "
          f"{teacher['val/accuracy']:.4f}; {args.steps} steps of {args.batch_size}; {load_text()}\n")
    print(markdown_table(["variant", "genome", "seeds", "best val (mean ± SE)", "kept", "final val", "paired diff",
                          "train s", "train CPU s"], summary(rows, teacher["val/accuracy"])))


def with_validation_from(task, folder: Path):
    """``task`` with ``folder``'s whole validation split (and its ``data.jsonl``); every other split as before."""
    from dataclasses import replace

    from lit_compressor.data.task import SPLITS

    files = {split: str(task.path(split).resolve()) for split in SPLITS if split != "valid"}
    limit = {k: v for k, v in (task.limit or {}).items() if k != "valid"}
    return replace(task, data_dir=str(folder), files=files, limit=limit or None)


def ga_architecture(args: argparse.Namespace) -> Path:
    from lit_compressor.commands.search import run_search, with_teacher_head
    from lit_compressor.search.space import SearchSpace

    space = with_teacher_head(SearchSpace(block_size=args.block_size), args.teacher)
    run_search(space, 3.0, seed=42, output=args.output / "search", plot=False)
    return args.output / "search" / "architecture.yaml"


if __name__ == "__main__":
    main()
