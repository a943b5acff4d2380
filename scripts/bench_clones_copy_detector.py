"""Compare a `lit-compressor clones` report with a copy detector's (jscpd's JSON report) on the same tree.

    jscpd --format java,c --reporters json,silent --output OUT --no-gitignore PROJECT
    lit-compressor clones --model SHIPPED --project PROJECT --output clones.json
    python scripts/bench_clones_copy_detector.py --clones clones.json --jscpd OUT/jscpd-report.json

jscpd reports duplicated line ranges; a range pair becomes a *function-level duplicate pair* (f, g) when
the range in f's file covers at least half of f's lines, the range in g's file at least half of g's,
and f and g start at the same offset within their ranges (within 3 lines). Only functions the
clones report compared count (at least its ``min_tokens``, read from the index). Prints the report's
size, how many of those pairs it found (as a pair, or with both functions in one clone class), what it
reports that jscpd does not, and its best pairs.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

Place = tuple[str, int]  # (path, start line)


def duplicate_pairs(report: dict, functions: list[dict], cover: float = 0.5,
                    slack: int = 3) -> set[tuple[Place, Place]]:
    by_file = defaultdict(list)
    for function in functions:
        by_file[function["path"]].append(function)

    def covered(function: dict, part: dict) -> float:
        overlap = min(function["end_line"], part["end"]) - max(function["start_line"], part["start"]) + 1
        return overlap / (function["end_line"] - function["start_line"] + 1)

    found = set()
    for duplicate in report["duplicates"]:
        a, b = duplicate["firstFile"], duplicate["secondFile"]
        for f in by_file[a["name"]]:
            for g in by_file[b["name"]]:
                if f is g or covered(f, a) < cover or covered(g, b) < cover:
                    continue
                if abs((f["start_line"] - a["start"]) - (g["start_line"] - b["start"])) <= slack:
                    found.add(tuple(sorted([(f["path"], f["start_line"]), (g["path"], g["start_line"])])))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clones", type=Path, required=True, help="the JSON `lit-compressor clones --output` wrote")
    parser.add_argument("--jscpd", type=Path, required=True, help="jscpd's jscpd-report.json on the same tree")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    result = json.loads(args.clones.read_text())
    index = json.loads((Path(result["index"]) / "index.json").read_text())
    tokens = dict(zip(index["hashes"], index["tokens"], strict=True))
    compared = [e for e in index["entries"] if tokens[e["hash"]] >= result["min_tokens"]]
    duplicates = duplicate_pairs(json.loads(args.jscpd.read_text()), compared)

    def place(entry: dict) -> Place:
        return entry["path"], entry["start_line"]

    reported = {tuple(sorted([place(p["first"]), place(p["second"])])) for p in result["pairs"]}
    class_of = {place(m): k for k, c in enumerate(result["classes"]) for m in c["members"]}
    in_class = {d for d in duplicates if d[0] in class_of and class_of[d[0]] == class_of.get(d[1])}
    functions = result["functions"]
    rows = [
        ("functions (all / compared: >= min_tokens)",
         f"{functions} / {len(compared)} (min_tokens {result['min_tokens']})"),
        ("threshold (probability at prior)", f"{result['threshold']} at {result['prior']}"),
        ("reported pairs / classes", f"{len(reported)} / {len(result['classes'])}"),
        ("pairs per 20 functions", f"{20 * len(reported) / functions:.2f}"),
        ("classes per 20 functions", f"{20 * len(result['classes']) / functions:.2f}"),
        ("jscpd duplicates (ranges) / function-level pairs", f"{len(json.loads(args.jscpd.read_text())['duplicates'])}"
                                                             f" / {len(duplicates)}"),
        ("of those found as a pair", f"{len(duplicates & reported)} ({_share(duplicates & reported, duplicates)})"),
        ("of those found in one class", f"{len(in_class)} ({_share(in_class, duplicates)})"),
        ("reported pairs jscpd does not report", f"{len(reported - duplicates)}"),
        ("seconds (scan, index, pairs)", json.dumps(result["seconds"])),
        ("index update", json.dumps(result["index_update"])),
    ]
    print(f"## {result['project']}\n\n| measure | value |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(f"\nbest {args.top} pairs:\n")
    for k, pair in enumerate(result["pairs"][:args.top], 1):
        key = tuple(sorted([place(pair["first"]), place(pair["second"])]))
        print(f"{k}. {pair['probability']:.3f} (score {pair['score']:.4f}, cos {pair['similarity']:.5f}) "
              f"{_where(pair['first'])} ~ {_where(pair['second'])}{' [jscpd]' if key in duplicates else ''}")
    missed = sorted(duplicates - reported)
    print(f"\njscpd pairs not reported ({len(missed)}), first 10: {missed[:10]}")


def _share(part: set, whole: set) -> str:
    return f"{len(part) / len(whole):.0%}" if whole else "n/a"


def _where(entry: dict) -> str:
    return f"{entry['path']}:{entry['start_line']}-{entry['end_line']} {entry['name']}"


if __name__ == "__main__":
    main()
