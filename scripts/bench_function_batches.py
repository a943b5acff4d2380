"""The teacher fine-tuned in batches of pairs (today) and in batches of functions from the labelled pair graph.

    nice python scripts/bench_function_batches.py --labelled 4000 --epochs 2 --output runs/function_batches \
        --runs pairs:5e-5 functions:5e-5 functions-top3-cached:5e-5

Every run fine-tunes the same teacher (``configs/bigclonebench/teacher.yaml``'s MiniLM, mean pooling, interaction
head) on the same seeded sample of labelled pairs, for the same number of epochs, with the same seed; keeps the
checkpoint with the best validation accuracy (on a fixed seeded part of the valid split); and records each
training epoch's wall and CPU seconds (validation excluded), functions encoded and pairs scored. Modes: ``pairs``
(today: batches of ``--batch-size`` pairs), ``functions`` (batches of ``--size`` functions from the labelled pair
graph), ``functions-top3-cached`` (the same, fine-tuning the top 3 layers only, the frozen ones computed once per
function: ``trainable_layers: 3, cache_frozen: true``). A run is ``MODE:LR``; of each mode's runs the one with the
best validation accuracy is that mode's final model, scored on the test split (all of it by default), once. Each
run's record is written to ``OUTPUT/<run>.json`` as it ends, and a run already recorded is not run again. Prints a
Markdown table, and the time and accuracy of function batches against pair batches.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any

from lit_compressor.core.console import markdown_table
from lit_compressor.measure.bench import load_text

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MODES = ("pairs", "functions", "functions-top3-cached")


def task_for(args: argparse.Namespace):
    from lit_compressor.data.task import TaskData

    return TaskData(data_dir=args.data, limit={"labelled": args.labelled, "valid": args.valid, "test": args.test})


def build(mode: str, lr: float, args: argparse.Namespace, folder: Path):
    """The teacher module, its data module, the trainer and its cost callback for one run."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from lit_compressor.training.callbacks import TrainingCost
    from lit_compressor.training.datamodule import CodeDataModule
    from lit_compressor.training.function_batches import FunctionBatches
    from lit_compressor.training.teacher import TeacherModule

    L.seed_everything(args.seed)
    cached = mode == "functions-top3-cached"
    module = TeacherModule(args.teacher, pooling="mean", pair_head="interaction", num_inputs=2,
                           block_size=args.block_size, lr=lr, warmup_ratio=0.1, trainable_layers=3 if cached else None,
                           cache_frozen=cached)
    # evaluation in batches of functions for both modes: the same logits as pair batches (tested), fewer passes
    batches = FunctionBatches(size=None if mode == "pairs" else args.size, eval_size=256, seed=args.seed)
    data = CodeDataModule(task_for(args), batch_size=args.batch_size, eval_batch_size=64,
                          block_size=args.block_size, encoder=module.code_encoder, function_batches=batches)
    cost = TrainingCost()
    checkpoint = ModelCheckpoint(dirpath=folder / "checkpoints", monitor="val/accuracy", mode="max")
    trainer = L.Trainer(max_epochs=args.epochs, accelerator="cpu", devices=1, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        callbacks=[checkpoint, cost], default_root_dir=folder)
    return module, data, trainer, cost, checkpoint


def fit(mode: str, lr: float, args: argparse.Namespace) -> dict[str, Any]:
    """Fit one (mode, lr); the record of its epochs and its best validation accuracy (no test)."""
    name = f"{mode}-lr{lr:g}"
    record_file = args.output / f"{name}.json"
    if record_file.is_file():
        return json.loads(record_file.read_text())
    folder = args.output / name
    module, data, trainer, cost, checkpoint = build(mode, lr, args, folder)
    load_before = load_text()
    trainer.fit(module, datamodule=data)
    record = {"name": name, "mode": mode, "lr": lr, "epochs": cost.epochs,
              "best_val": float(checkpoint.best_model_score), "best_checkpoint": checkpoint.best_model_path,
              "load_before": load_before, "load_after": load_text(),
              "labelled_pairs": len(data.split("labelled")), "valid_pairs": len(data.split("valid"))}
    record_file.write_text(json.dumps(record, indent=1))
    return record


def test(record: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Score the run's best checkpoint on the test split, once (the score is kept in its record)."""
    if "test" in record:
        return record
    module, data, trainer, _, _ = build(record["mode"], record["lr"], args, args.output / record["name"])
    trainer.test(module, datamodule=data, ckpt_path=record["best_checkpoint"], verbose=False)
    record["test"] = module.test_results
    record["test_pairs"] = len(data.split("test"))
    (args.output / f"{record['name']}.json").write_text(json.dumps(record, indent=1))
    return record


def standard_error(accuracy: float, count: int) -> float:
    return math.sqrt(accuracy * (1 - accuracy) / count)


def table(records: list[dict[str, Any]]) -> str:
    columns = ["mode", "lr", "epochs", "s / epoch (wall)", "CPU s / epoch", "functions encoded / epoch",
               "pairs scored / epoch", "pairs / encoded function", "best val", "test accuracy (± SE)"]
    rows = []
    for r in records:
        epochs = r["epochs"]
        mean = {k: sum(e[k] for e in epochs) / len(epochs) for k in ("epoch_seconds", "epoch_cpu_seconds",
                                                                        "functions_encoded", "examples_scored")}
        tested = r.get("test")
        score = (f"{tested['accuracy']:.4f} ± {standard_error(tested['accuracy'], r['test_pairs']):.4f}"
                 if tested else "not scored (not chosen on validation)")
        rows.append([r["mode"], f"{r['lr']:g}", str(len(epochs)), f"{mean['epoch_seconds']:.0f}",
                     f"{mean['epoch_cpu_seconds']:.0f}", f"{mean['functions_encoded']:,.0f}",
                     f"{mean['examples_scored']:,.0f}", f"{mean['examples_scored'] / mean['functions_encoded']:.2f}",
                     f"{r['best_val']:.4f}", score])
    return markdown_table(columns, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/bigclonebench")
    parser.add_argument("--teacher", default=MINILM)
    parser.add_argument("--labelled", type=int, default=4000, help="seeded sample of labelled pairs")
    parser.add_argument("--valid", type=int, default=1000, help="seeded part of the valid split (choices)")
    parser.add_argument("--test", type=int, default=None, help="test pairs (default: the whole split)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16, help="pairs a batch of pairs")
    parser.add_argument("--size", type=int, default=32, help="functions a batch of functions")
    parser.add_argument("--runs", nargs="+", default=["pairs:5e-5", "functions:5e-5"], help="MODE:LR runs")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output", type=Path, default=Path("runs/function_batches"))
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args.output.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[float]] = {}
    for run in args.runs:
        mode, lr = run.split(":")
        if mode not in MODES:
            parser.error(f"unknown mode {mode!r} (modes: {', '.join(MODES)})")
        runs.setdefault(mode, []).append(float(lr))
    records = []
    for mode, rates in runs.items():
        fitted = [fit(mode, lr, args) for lr in rates]
        chosen = max(fitted, key=lambda r: r["best_val"])
        records += [test(r, args) if r is chosen else r for r in fitted]
    print(table(records))
    scored = {r["mode"]: r for r in records if "test" in r}
    seconds = {name: sum(e["epoch_seconds"] for e in r["epochs"]) for name, r in scored.items()}
    cpu = {name: sum(e["epoch_cpu_seconds"] for e in r["epochs"]) for name, r in scored.items()}
    pairs = scored.get("pairs")
    for mode, record in scored.items():
        if pairs is None or mode == "pairs":
            continue
        difference = record["test"]["accuracy"] - pairs["test"]["accuracy"]
        print(f"\n{mode} / pairs: training time {seconds[mode] / seconds['pairs']:.2f} (CPU "
              f"{cpu[mode] / cpu['pairs']:.2f}); test accuracy difference {difference:+.4f} (one standard error of "
              f"the pair batches' accuracy: {standard_error(pairs['test']['accuracy'], pairs['test_pairs']):.4f})")
    print(load_text())

if __name__ == "__main__":
    main()
