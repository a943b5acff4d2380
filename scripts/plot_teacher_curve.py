"""The teacher's learning curve: test (and validation) accuracy against the labelled pairs it was fine-tuned on.

    python scripts/plot_teacher_curve.py --run 1000=runs/curve/teacher-1000 --run 31828=runs/full/teacher \\
        --output docs/teacher_curve.png

Each run folder holds the teacher's ``metrics.json`` (its test split, scored once) and, when given with
``NAME=FOLDER:METRICS_CSV``, the Lightning ``metrics.csv`` whose last ``val/accuracy`` is plotted beside it.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def last_validation(metrics_csv: Path) -> float | None:
    rows = [row for row in csv.DictReader(metrics_csv.open()) if row.get("val/accuracy")]
    return float(rows[-1]["val/accuracy"]) if rows else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", required=True, metavar="PAIRS=FOLDER[:METRICS_CSV]")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    points = []
    for entry in args.run:
        pairs, _, where = entry.partition("=")
        folder, _, metrics_csv = where.partition(":")
        test = json.loads((Path(folder) / "metrics.json").read_text())["accuracy"]
        valid = last_validation(Path(metrics_csv)) if metrics_csv else None
        points.append((int(pairs), test, valid))
    points.sort()
    print("| labelled pairs | validation | test |\n|---|---|---|")
    for pairs, test, valid in points:
        print(f"| {pairs:,} | {'' if valid is None else f'{valid:.4f}'} | {test:.4f} |")
    figure, axes = plt.subplots(figsize=(5, 3.2))
    axes.plot([p[0] for p in points], [p[1] for p in points], "o-", label="test (4,000 pairs)")
    if all(p[2] is not None for p in points):
        axes.plot([p[0] for p in points], [p[2] for p in points], "s--", label="validation (2,851 pairs)")
    axes.set_xscale("log")
    axes.set_xlabel("labelled pairs (one epoch)")
    axes.set_ylabel("accuracy")
    axes.set_title("MiniLM teacher, block 128, top 3 layers")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
