"""Compare fine-tuned teacher folders on a whole validation split: accuracy, and the paired difference from the first.

    python scripts/validate_teachers.py --config configs/quickstart.yaml --valid ../shared/data/bigclonebench \
        runs/quickstart/teacher runs/teacher_top3

Every teacher classifies the same pairs (each unique function encoded once, as ``ablate_distillation.py`` scores
students), so the difference from the first teacher is paired: its standard error is that of the per-pair
difference of correctness, far below the √(2·p(1−p)/n) of two independent splits. The test split is never read.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ablate_distillation import pair_correct, with_validation_from

from lit_compressor.core.console import markdown_table
from lit_compressor.measure.bench import load_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("teachers", nargs="+", help="fine-tuned teacher folders; the first is the reference")
    parser.add_argument("--config", type=Path, required=True, help="a compress config: its task and block size")
    parser.add_argument("--valid", type=Path, default=None,
                        help="a task folder whose whole validation split replaces the config's (same format)")
    args = parser.parse_args()

    from lit_compressor.core.configs import read_yaml
    from lit_compressor.data.task import TaskData
    from lit_compressor.training.labelling import TeacherPredictor

    config = read_yaml(args.config, "compress")
    task, block_size = TaskData(**config["task"]), config.get("block_size", 128)
    if args.valid is not None:
        task = with_validation_from(task, args.valid)
    examples = task.read("valid")
    correct = []
    for teacher in args.teachers:
        predictor = TeacherPredictor(teacher, block_size)
        correct.append(pair_correct(predictor.model, predictor.code_encoder, examples).float())
    rows = []
    for teacher, right in zip(args.teachers, correct, strict=True):
        accuracy = float(right.mean())
        diff = right - correct[0]
        se = float(diff.std()) / math.sqrt(len(diff)) if len(diff) > 1 else 0.0
        rows.append([teacher, f"{accuracy:.4f} ± {math.sqrt(accuracy * (1 - accuracy) / len(right)):.4f}",
                     f"{float(diff.mean()):+.4f} ± {se:.4f}"])
    print(f"\nvalidation: {len(examples):,} pairs ({task.path('valid')}), block {block_size}; {load_text()}\n")
    print(markdown_table(["teacher", "val accuracy ± SE", "paired diff from the first ± SE"], rows))


if __name__ == "__main__":
    main()
