"""Time Compressor's search (population 50, 100 generations, 10 restarts) for 3, 25 and 50 MB targets.

    .venv/bin/python scripts/bench_search.py [--num-inputs 2] [--restarts 10]

Prints one row per target: wall time, best genome, its fp32 size, GFLOPs and fitness, next to the
paper's genome priced by the same cost model.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from lit_compressor.search.command import run_search
from lit_compressor.search.cost import cost
from lit_compressor.search.space import SearchSpace

PAPER = {3.0: (12, 96, 8, 64, 1000), 50.0: (6, 480, 16, 576, 6000)}  # A=16 lies outside our space


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-inputs", type=int, default=2, choices=(1, 2))
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    space = SearchSpace(num_inputs=args.num_inputs)
    print("| target MB | time s | L | H | A | D | V | MB fp32 | GFLOPs | fitness | paper genome fitness |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for target in (3.0, 25.0, 50.0):
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            result = run_search(space, target, restarts=args.restarts, seed=args.seed, output=Path(out),
                                plot=False)
            elapsed = time.perf_counter() - started
        best, a = result.report["best"], result.architecture
        paper = ""
        if target in PAPER:
            c = cost(PAPER[target], space)
            paper = f"{c.gflops - abs(c.size_mb - target):.3f} ({c.size_mb:.2f} MB)"
        print(f"| {target:g} | {elapsed:.2f} | {a.num_hidden_layers} | {a.hidden_size} | "
              f"{a.num_attention_heads} | {a.intermediate_size} | {a.vocab_size} | "
              f"{best['size_mb']:.3f} | {best['gflops']:.3f} | {best['fitness']:.3f} | {paper} |")


if __name__ == "__main__":
    main()
