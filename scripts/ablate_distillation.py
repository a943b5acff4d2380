"""Ablation of what the student learns from: logits only, + augmentation, + representation, both.

    nice .venv/bin/python scripts/ablate_distillation.py --teacher runs/quickstart/teacher \
        --config configs/bigclonebench/compress_cpu.yaml --steps 500 --output runs/ablation/bigclonebench

Every variant distils the same student genome with the same seed, batch size and number of optimiser
steps (the same compute: augmentation changes which pairs a step sees, not how many), keeps the
checkpoint with the best validation accuracy and scores it on the test split beside the teacher.
The teacher's soft labels (with the function cache) are computed once. Prints a Markdown table and
writes ``results.json`` in ``--output``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

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


def fit_variant(name: str, settings: dict[str, Any], args: argparse.Namespace, task, soft_labels: Path,
                architecture: str) -> dict[str, Any]:
    """Distil one variant; the best-validation checkpoint's test metrics and the wall time."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from lit_compressor.training.augmentation import Augmentation
    from lit_compressor.training.distillation import DistillationModule, Representation
    from lit_compressor.training.distillation_data import DistillationDataModule, teacher_record

    folder = args.output / name
    settings = json.loads(json.dumps(settings))
    if settings.get("augment", {}).get("pairs_per_epoch") == "unlabelled":
        settings["augment"]["pairs_per_epoch"] = len(task.read("unlabelled")) * args.augment_ratio
    if settings.get("augment", {}).get("mode") == "functions" and task.num_inputs == 1:
        settings["augment"].update(strategy="random", group_size=1)  # each cached function an example
    L.seed_everything(args.seed)
    module = DistillationModule(architecture, teacher_head=teacher_record(str(soft_labels)),
                                num_inputs=task.num_inputs, num_labels=task.num_labels, block_size=args.block_size,
                                lr=args.lr, output_dir=str(folder / "student"),
                                representation=Representation(**settings.get("representation", {})))
    augment = Augmentation(**settings.get("augment", {}), seed=args.seed)
    # the same compute a step: a batch of B examples encodes B * num_inputs functions, a batch of groups too
    batch_size = args.batch_size
    if settings.get("augment", {}).get("mode") == "functions":
        batch_size = task.num_inputs * args.batch_size // augment.group_size
    data = DistillationDataModule(task, soft_labels=str(soft_labels), augment=augment,
                                  tokenizer_cache=str(args.output / "tokenizers"), student=module.student_inputs,
                                  batch_size=batch_size, eval_batch_size=64, block_size=args.block_size)
    checkpoint = ModelCheckpoint(dirpath=folder / "checkpoints", monitor="val/accuracy", mode="max")
    trainer = L.Trainer(max_steps=args.steps, val_check_interval=args.val_every, check_val_every_n_epoch=None,
                        callbacks=[checkpoint], logger=False, enable_progress_bar=False, num_sanity_val_steps=0,
                        default_root_dir=folder)
    with timed() as fitting:
        trainer.fit(module, datamodule=data)
    trainer.test(module, datamodule=data, ckpt_path=checkpoint.best_model_path)
    metrics = json.loads((folder / "student" / "metrics.json").read_text())
    return {"variant": name, "settings": settings, "seconds": round(fitting.seconds, 1),
            "best_val_accuracy": float(checkpoint.best_model_score),
            **{k: metrics[k] for k in ("accuracy", "precision", "recall", "f1", "params")}}


def teacher_metrics(teacher: str, task, block_size: int, output: Path) -> dict[str, Any]:
    import lightning as L

    from lit_compressor.training.datamodule import CodeDataModule
    from lit_compressor.training.labelling import TeacherPredictor

    path = output / "teacher_test" / "metrics.json"
    if not path.is_file():
        predictor = TeacherPredictor(teacher, block_size, output_dir=str(path.parent))
        L.Trainer(logger=False, enable_progress_bar=False).test(predictor, datamodule=CodeDataModule(
            task, eval_batch_size=64, block_size=block_size, encoder=predictor.code_encoder))
    return json.loads(path.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", required=True, help="a fine-tuned teacher folder")
    parser.add_argument("--config", type=Path, required=True, help="a compress config: its task and block size")
    parser.add_argument("--architecture", default=None, help="architecture.yaml (default: the GA's for 3 MB)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--val-every", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--augment-ratio", type=int, default=1, help="augmented pairs per epoch / unlabelled pairs")
    parser.add_argument("--functions-from", nargs="+", default=["unlabelled"], choices=["unlabelled", "labelled"],
                        help="the splits whose functions the function cache holds")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output", type=Path, default=Path("runs/ablation"))
    args = parser.parse_args()

    from lit_compressor.commands.label import label
    from lit_compressor.commands.search import run_search
    from lit_compressor.core.configs import read_yaml
    from lit_compressor.data.task import TaskData
    from lit_compressor.search.space import SearchSpace

    config = read_yaml(args.config, "compress")
    task, args.block_size = TaskData(**config["task"]), config.get("block_size", 128)
    args.output.mkdir(parents=True, exist_ok=True)
    soft_labels = label(args.teacher, args.output / "soft_labels.safetensors", task, args.block_size,
                        functions_from=args.functions_from)
    architecture = args.architecture
    if architecture is None:
        from lit_compressor.commands.search import with_teacher_head

        space = with_teacher_head(SearchSpace(block_size=args.block_size), args.teacher)
        run_search(space, 3.0, seed=args.seed, output=args.output / "search", plot=False)
        architecture = str(args.output / "search" / "architecture.yaml")
    teacher = teacher_metrics(args.teacher, task, args.block_size, args.output)
    previous = {}
    results_file = args.output / "results.json"
    if results_file.is_file():
        previous = {r["variant"]: r for r in json.loads(results_file.read_text())["variants"]}
    rows = []
    for name in args.variants:
        rows.append(previous.get(name) or fit_variant(name, VARIANTS[name], args, task, soft_labels, architecture))
        results_file.write_text(json.dumps({"teacher": teacher, "variants": rows, "args": {
            k: str(v) for k, v in vars(args).items()}}, indent=2) + "\n")
    genes = yaml.safe_load(Path(architecture).read_text())
    genes.pop("priced_for", None)
    print(f"\nteacher accuracy {teacher['accuracy']:.4f}; student {genes}; {args.steps} steps of {args.batch_size}; "
          f"{load_text()}\n")
    print(markdown_table(["variant", "accuracy", "kept", "F1", "best val", "seconds"], [
        [r["variant"], f"{r['accuracy']:.4f}", f"{r['accuracy'] / teacher['accuracy']:.1%}", f"{r['f1']:.4f}",
         f"{r['best_val_accuracy']:.4f}", f"{r['seconds']:.0f}"] for r in rows]))


if __name__ == "__main__":
    main()
