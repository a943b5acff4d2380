"""Robust distillation, measured: a teacher and several students (e.g. the plain recipe's and the robust one's) on
one transformed split, each transformed copy predicted by every model, so the teacher runs once for all.

    python scripts/bench_robust_distillation.py --teacher runs/quickstart/teacher \\
        --student plain=runs/robust/plain/export --student robust=runs/robust/robust/export \\
        --data runs/quickstart/task.yaml --split valid --output runs/robust/valid.json

Choose on ``--split valid``; score ``--split test`` once. Prints the robustness table (accuracy, drop and flips
of each model under each transformation; each student's clean agreement with the teacher).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from lit_compressor.commands.robustness import print_report
from lit_compressor.data.task import load_task, seeded_sample
from lit_compressor.data.transforms import language_of
from lit_compressor.measure.bench import load_text
from lit_compressor.runtime.robustness import MORPH, folder_predictor, measure_robustness

TRANSFORMATIONS = [MORPH, "rename_locals", "dead_code", "swap_comparisons"]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--student", action="append", required=True, metavar="NAME=FOLDER")
    parser.add_argument("--data", required=True, help="a task YAML or folder")
    parser.add_argument("--split", choices=["valid", "test"], default="valid")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--transformations", nargs="+", default=TRANSFORMATIONS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--student-backend", default="onnx-int8")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    task = load_task(args.data)
    examples = seeded_sample(task.read(args.split), args.limit, 0)
    predictors = {"teacher": folder_predictor(args.teacher, "pytorch", args.threads)}
    for entry in args.student:
        name, folder = entry.split("=", 1)
        predictors[name] = folder_predictor(folder, args.student_backend, args.threads)
    started = time.perf_counter()
    report = measure_robustness(predictors, examples, language_of(task.format), args.transformations, args.seeds,
                                progress=lambda message: print(message, file=sys.stderr, flush=True))
    report.update(split=args.split, students=dict(entry.split("=", 1) for entry in args.student),
                  student_backend=args.student_backend, seconds=round(time.perf_counter() - started, 1),
                  load=load_text())
    print_report(report, f"{len(examples):,} {args.split} examples of {args.data}: teacher (pytorch), students "
                         f"({args.student_backend}); drop = clean - transformed accuracy; flips over all examples")
    print(f"{report['seconds']:.0f} s, {report['load']}")
    if args.output is not None:
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
