"""Compare a `lit-compressor clones` report with a copy detector's (jscpd's JSON report) on the same tree.

    jscpd --format java,c --reporters json,silent --output OUT --no-gitignore PROJECT
    lit-compressor clones --model SHIPPED --project PROJECT --output clones.json
    python scripts/bench_clones_copy_detector.py --clones clones.json --jscpd OUT/jscpd-report.json

jscpd reports duplicated line ranges; a range pair becomes a *function-level duplicate pair* (f, g) when
the range in f's file covers at least half of f's lines, the range in g's file at least half of g's,
and f and g start at the same offset within their ranges (within 3 lines). Only functions the
clones report compared count (at least its ``min_tokens``, read from the index); a second count keeps
the pairs whose two functions also have at least the copy pass's ``copy_tokens`` language tokens
(jscpd's own minimum: a shorter function can only be part of a duplicate that spans several), and a
third the pairs whose duplicated range holds at least that many code tokens (jscpd's default mode,
``mild``, counts comments as tokens; ``--mode weak`` leaves them out, as the copy pass does). Prints
the report's size by type (copies: type 1, type 2; the model's: semantic), how many of jscpd's pairs
it found (as a pair, or with both functions in one clone class; and by the copies alone), what the
model adds beyond the copies, and the best pairs.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

from lit_compressor.clones.copies import DEFAULT_COPY_TOKENS
from lit_compressor.clones.extract import EXTENSIONS, scan_project
from lit_compressor.data.parsing import get_parser, iter_nodes

Place = tuple[str, int]  # (path, start line)


def duplicate_pairs(report: dict, functions: list[dict], cover: float = 0.5,
                    slack: int = 3) -> dict[tuple[Place, Place], list[dict]]:
    """jscpd's function-level pairs, each with the duplicates (range pairs) that make it one."""
    by_file = defaultdict(list)
    for function in functions:
        by_file[function["path"]].append(function)

    def covered(function: dict, part: dict) -> float:
        overlap = min(function["end_line"], part["end"]) - max(function["start_line"], part["start"]) + 1
        return overlap / (function["end_line"] - function["start_line"] + 1)

    found = defaultdict(list)
    for duplicate in report["duplicates"]:
        a, b = duplicate["firstFile"], duplicate["secondFile"]
        for f in by_file[a["name"]]:
            for g in by_file[b["name"]]:
                if f is g or covered(f, a) < cover or covered(g, b) < cover:
                    continue
                if abs((f["start_line"] - a["start"]) - (g["start_line"] - b["start"])) <= slack:
                    pair = tuple(sorted([(f["path"], f["start_line"]), (g["path"], g["start_line"])]))
                    if duplicate not in found[pair]:
                        found[pair].append(duplicate)
    return found


def code_tokens_per_line(path: Path) -> Counter:
    """Language tokens (tree-sitter's leaves, comments left out: what the copy pass reads) per line of a file."""
    data = path.read_bytes()
    tree = get_parser(EXTENSIONS[path.suffix]).parse(data)
    counts = Counter()
    for node in iter_nodes(tree.root_node):
        if "comment" not in node.type and node.child_count == 0 and node.end_byte > node.start_byte:
            counts[node.start_point[0] + 1] += 1
    return counts


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
    ranges = duplicate_pairs(json.loads(args.jscpd.read_text()), compared)
    duplicates = set(ranges)

    def place(entry: dict) -> Place:
        return entry["path"], entry["start_line"]

    def key(pair: dict) -> tuple[Place, Place]:
        return tuple(sorted([place(pair["first"]), place(pair["second"])]))

    reported = {key(p) for p in result["pairs"]}
    copied = {key(p) for p in result["pairs"] if p.get("type", "semantic") != "semantic"}
    semantic_only = reported - copied
    window = result.get("copy_tokens") or DEFAULT_COPY_TOKENS
    language_tokens = {(f.path, f.start_line): len(f.tokens) for f in scan_project(result["project"]).functions}
    long_enough = {d for d in duplicates if min(language_tokens.get(d[0], 0), language_tokens.get(d[1], 0)) >= window}
    per_line = {}

    def code_in(part: dict) -> int:
        if part["name"] not in per_line:
            per_line[part["name"]] = code_tokens_per_line(Path(result["project"]) / part["name"])
        return sum(per_line[part["name"]][line] for line in range(part["start"], part["end"] + 1))

    # jscpd's default mode counts comments as tokens: pairs whose duplicated range holds >= window code tokens
    code_sized = {d for d, found in ranges.items() if max(code_in(r["firstFile"]) for r in found) >= window}
    kinds = result.get("kinds") or {}
    class_of = {place(m): k for k, c in enumerate(result["classes"]) for m in c["members"]}
    in_class = {d for d in duplicates if d[0] in class_of and class_of[d[0]] == class_of.get(d[1])}
    functions = result["functions"]
    rows = [
        ("functions (all / compared: >= min_tokens)",
         f"{functions} / {len(compared)} (min_tokens {result['min_tokens']})"),
        ("threshold (probability at prior)", f"{result['threshold']} at {result['prior']}"),
        ("reported pairs / classes", f"{len(reported)} / {len(result['classes'])}"),
        ("pairs by type (type 1 / type 2 / semantic only)",
         f"{kinds.get('type 1', 0)} / {kinds.get('type 2', 0)} / {kinds.get('semantic', len(reported))}"),
        ("pairs per 20 functions", f"{20 * len(reported) / functions:.2f}"),
        ("classes per 20 functions", f"{20 * len(result['classes']) / functions:.2f}"),
        ("jscpd duplicates (ranges) / function-level pairs", f"{len(json.loads(args.jscpd.read_text())['duplicates'])}"
                                                             f" / {len(duplicates)}"),
        ("of those found as a pair", f"{len(duplicates & reported)} ({_share(duplicates & reported, duplicates)})"),
        ("of those found in one class", f"{len(in_class)} ({_share(in_class, duplicates)})"),
        ("of those found by the copies alone",
         f"{len(duplicates & copied)} ({_share(duplicates & copied, duplicates)})"),
        ("of those found by the model alone (semantic pairs)",
         f"{len(duplicates & semantic_only)} ({_share(duplicates & semantic_only, duplicates)})"),
        (f"jscpd pairs with both functions >= {window} language tokens / found as a pair",
         f"{len(long_enough)} / {len(long_enough & reported)} ({_share(long_enough & reported, long_enough)})"),
        (f"jscpd pairs from a range of >= {window} code tokens (comments left out) / found as a pair",
         f"{len(code_sized)} / {len(code_sized & reported)} ({_share(code_sized & reported, code_sized)})"),
        ("what the model adds: semantic pairs that are no copy / of them jscpd reports",
         f"{len(semantic_only)} / {len(semantic_only & duplicates)}"),
        ("reported pairs jscpd does not report", f"{len(reported - duplicates)}"),
        ("seconds (scan, index, pairs)", json.dumps(result["seconds"])),
        ("index update", json.dumps(result["index_update"])),
    ]
    print(f"## {result['project']}\n\n| measure | value |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(f"\nbest {args.top} pairs:\n")
    for k, pair in enumerate(result["pairs"][:args.top], 1):
        where = key(pair)
        covered = "" if pair.get("covered") is None else f" covered {pair['covered']:.2f}"
        print(f"{k}. {pair.get('type', 'semantic')}{covered}, p {pair['probability']:.3f} (score {pair['score']:.4f}, "
              f"cos {pair['similarity']:.5f}) {_where(pair['first'])} ~ {_where(pair['second'])}"
              f"{' [jscpd]' if where in duplicates else ''}")
    missed = sorted(duplicates - reported)
    print(f"\njscpd pairs not reported ({len(missed)}), first 10: {missed[:10]}")


def _share(part: set, whole: set) -> str:
    return f"{len(part) / len(whole):.0%}" if whole else "n/a"


def _where(entry: dict) -> str:
    return f"{entry['path']}:{entry['start_line']}-{entry['end_line']} {entry['name']}"


if __name__ == "__main__":
    main()
