"""How closely a student copies its teacher on a task's test split: both accuracies, how often the two
predict the same class (fidelity), and the accuracy of each where they disagree.

    .venv/bin/python scripts/teacher_agreement.py --teacher runs/devign/compress_cpu/teacher \
        --student runs/devign/compress_cpu/student --data runs/devign/compress_cpu/task.yaml

On a small test split (Devign's 274 functions) accuracy moves by a point per 2.7 functions; agreement says
whether a gap to the teacher is the student failing to copy it, or noise in what both get right.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from lit_compressor.data.task import load_task
from lit_compressor.runtime.classifier import TinyClassifier


def labels_of(folder: Path, rows: list[tuple[str, ...]]) -> np.ndarray:
    model = TinyClassifier.from_pretrained(folder)
    return np.array([p.label for p in model.predict_batch(rows)])


def agreement(teacher: Path, student: Path, data: str) -> dict[str, float | int]:
    examples = load_task(data).read("test")
    rows = [e.codes for e in examples]
    truth = np.array([e.label for e in examples])
    taught, learnt = labels_of(teacher, rows), labels_of(student, rows)
    same = taught == learnt
    return {
        "examples": len(examples),
        "teacher_accuracy": float((taught == truth).mean()),
        "student_accuracy": float((learnt == truth).mean()),
        "agreement": float(same.mean()),
        "agreement_standard_error": math.sqrt(same.mean() * (1 - same.mean()) / len(examples)),
        "disagreements": int((~same).sum()),
        "teacher_right_where_they_disagree": int((taught[~same] == truth[~same]).sum()),
        "student_right_where_they_disagree": int((learnt[~same] == truth[~same]).sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", type=Path, required=True)
    parser.add_argument("--student", type=Path, required=True)
    parser.add_argument("--data", required=True, help="a task YAML or folder")
    args = parser.parse_args()
    print(json.dumps(agreement(args.teacher, args.student, args.data), indent=2))


if __name__ == "__main__":
    main()
