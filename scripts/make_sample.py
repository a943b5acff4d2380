"""Cut a small real BigCloneBench sample for the quick start and tests (a few MB, shipped in the repo).

Pairs are drawn at random per split (per label for labelled splits, keeping the split's class
balance) among functions of at most ``--max-chars`` characters, preferring pairs whose functions are
already in the sample, so a couple of thousand functions cover every split.

    python scripts/make_sample.py --source ../shared/data/bigclonebench --output data/bigclonebench-sample
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

PAIRS = {"test.txt": 600, "valid.txt": 300, "label_train.txt": 1000, "unlabel_train.txt": 2000}


def pick(rows: list[list[str]], quota: int, used: set[str]) -> list[list[str]]:
    """``quota`` rows, first those adding no new function to ``used``, then one, then two."""
    picked: list[list[str]] = []
    taken: set[int] = set()
    for new_allowed in (0, 1, 2):
        for position, row in enumerate(rows):
            if len(picked) == quota:
                return picked
            if position not in taken and sum(idx not in used for idx in row[:2]) == new_allowed:
                picked.append(row)
                taken.add(position)
                used.update(row[:2])
    return picked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, default=Path("../shared/data/bigclonebench"))
    parser.add_argument("--output", type=Path, default=Path("data/bigclonebench-sample"))
    parser.add_argument("--max-chars", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with (args.source / "data.jsonl").open() as handle:
        functions = {record["idx"]: record["func"] for record in map(json.loads, handle)}
    rng = random.Random(args.seed)
    args.output.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for name, size in PAIRS.items():
        rows = [line.rstrip("\n").split("\t") for line in (args.source / name).open()]
        groups: dict[str, list[list[str]]] = {}
        for row in rows:
            groups.setdefault(row[2] if len(row) > 2 else "", []).append(row)
        chosen: list[list[str]] = []
        for group in groups.values():
            short = [row for row in group if all(len(functions[idx]) <= args.max_chars for idx in row[:2])]
            rng.shuffle(short)
            chosen += pick(short, round(size * len(group) / len(rows)), used)
        rng.shuffle(chosen)
        (args.output / name).write_text("".join("\t".join(row) + "\n" for row in chosen))
        print(f"{name}: {len(chosen)} pairs {dict(Counter(row[2] for row in chosen if len(row) > 2))}")
    with (args.output / "data.jsonl").open("w") as handle:
        for idx in sorted(used, key=int):
            handle.write(json.dumps({"func": functions[idx], "idx": idx}) + "\n")
    size = sum(path.stat().st_size for path in args.output.iterdir())
    print(f"{len(used)} functions, {size / 1e6:.2f} MB in {args.output}")


if __name__ == "__main__":
    main()
