"""Time ``lit-compressor search`` as a whole process, beside Compressor's own ``searcher.py``.

    .venv/bin/python scripts/bench_search.py [--runs 5] [--compressor /tmp/compressor_ref] [--targets 3 25 50]

For each target, runs ``lit-compressor search --config configs/search/compressor_<T>mb.yaml --output DIR``
``--runs`` times (fresh output folders, so nothing is resumed), alternating with ``python searcher.py -t T``
in ``--compressor`` (a folder holding a copy of Compressor's ``searcher.py`` and ``flops.py``; never commit
it) when given, and prints a table of wall-time medians, the load average before and after, the genome each run
picked and whether a second run with the same seed wrote the same ``architecture.yaml``. Profile a run
with ``python -X importtime -m lit_compressor search ...`` (imports) or ``python -m cProfile``.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from lit_compressor.core.console import markdown_table
from lit_compressor.measure.bench import load_text, timed

ROOT = Path(__file__).resolve().parents[1]


def run(command: list[str], cwd: Path) -> tuple[float, str]:
    """Wall seconds and output of ``command``."""
    with timed() as clock:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return clock.seconds, done.stdout + done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--targets", type=int, nargs="+", default=[3])
    parser.add_argument("--compressor", type=Path, help="folder with a copy of searcher.py and flops.py")
    parser.add_argument("--searcher", default="searcher.py",
                        help="the script in --compressor to run (e.g. a copy whose main loop runs once)")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                        help="more arguments for lit-compressor search (e.g. --restarts 1 --plot false)")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "lit_compressor", "search"]
    print(f"before: {load_text()}")
    rows = []
    for target in args.targets:
        ours, theirs, files, picks, their_picks = [], [], [], set(), set()
        with tempfile.TemporaryDirectory() as folder:
            for repeat in range(args.runs):
                out = Path(folder) / f"run{repeat}"
                seconds, _ = run([*cli, "--config", f"configs/search/compressor_{target}mb.yaml",
                                  "--output", str(out), *args.extra], ROOT)
                ours.append(seconds)
                content = yaml.safe_load((out / "architecture.yaml").read_text())
                picks.add(tuple(content[k] for k in ("num_hidden_layers", "hidden_size", "num_attention_heads",
                                                     "intermediate_size", "vocab_size")))
                files.append((out / "architecture.yaml").read_bytes())
                if args.compressor:
                    seconds, log = run([sys.executable, args.searcher, "-t", str(target)], args.compressor)
                    theirs.append(seconds)
                    best = re.findall(r"the best one:\n.*? - (\{.*\})", log)
                    their_picks.add(best[-1] if best else "?")
        compressor = (f"{statistics.median(theirs):.2f} ({', '.join(f'{s:.2f}' for s in theirs)})"
                      if theirs else "n/a")
        rows.append([f"{target} MB", f"{statistics.median(ours):.2f} ({', '.join(f'{s:.2f}' for s in ours)})",
                     ", ".join(map(str, sorted(picks))), str(all(f == files[0] for f in files)), compressor,
                     "; ".join(sorted(their_picks))])
    print(markdown_table(["target", "ours: median s (runs)", "picked", "same architecture.yaml twice",
                          "searcher.py: median s (runs)", "its pick"], rows))
    print(f"after: {load_text()}")


if __name__ == "__main__":
    main()
