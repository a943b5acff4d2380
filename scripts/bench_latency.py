"""Latency goals of the paper's 3 MB student, measured beside a CodeBERT-shaped teacher in one run.

Builds the paper's genome (L=12, H=96, A=8, D=64, V=1000; pair head; block 400) with random weights
and a student BPE tokenizer trained on BigCloneBench's code, exports it (ONNX, ORT-fused ONNX, int8),
then times every variant on real BigCloneBench test pairs, round-robin, and checks two goals:

1. the student's p50 latency (batch 1) is at least 20x lower than the CodeBERT-shaped teacher's;
2. ONNX Runtime beats eager PyTorch for the student.

    .venv/bin/python scripts/bench_latency.py --samples 50 --threads 2 --output bench_latency.json
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from lit_compressor.commands.benchmark import (
    CODEBERT_SHAPE,
    System,
    environment,
    load_measured,
    load_teacher,
    measure,
    print_results,
)
from lit_compressor.commands.export import export
from lit_compressor.data.readers import read_functions
from lit_compressor.data.task import load_task
from lit_compressor.nn.folders import load_classifier, save_classifier
from lit_compressor.nn.student import build_student
from lit_compressor.nn.tokenization import CodeEncoder, train_student_tokenizer
from lit_compressor.runtime.evaluate import sample_test_split
from lit_compressor.runtime.runners import OrtRunner, TorchRunner
from lit_compressor.search.architecture import StudentArchitecture

BCB = Path("/work/shared/data/bigclonebench")
PAPER_GENOME = StudentArchitecture(12, 96, 8, 64, 1000)
BLOCK_SIZE = 400


class PadToBlock:
    """Pads every input to the block size, as a fixed-shape export would: to show what padding costs."""

    def __init__(self, runner, block_size: int, pad_id: int = 1):
        self.runner, self.block_size, self.pad_id = runner, block_size, pad_id

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        extra = self.block_size - input_ids.shape[-1]
        return self.runner(torch.nn.functional.pad(input_ids, (0, extra), value=self.pad_id),
                           torch.nn.functional.pad(attention_mask, (0, extra)))


def paper_student(workdir: Path, data: Path) -> Path:
    """The paper's 3 MB student (random weights, real tokenizer), exported; reused if present."""
    exported = workdir / "student-3mb-exported"
    if (exported / "export.json").is_file():
        return exported
    torch.manual_seed(0)
    code = list(read_functions(data / "data.jsonl").values())
    tokenizer = train_student_tokenizer(code, PAPER_GENOME.vocab_size, workdir / "tokenizers")
    model = build_student(PAPER_GENOME, num_inputs=2, max_positions=BLOCK_SIZE + 2)
    save_classifier(model, tokenizer, workdir / "student-3mb", {"block_size": BLOCK_SIZE})
    export(workdir / "student-3mb", exported, data=data, samples=100, overwrite=True)
    return exported


def student_variants(folder: Path, threads: int) -> list:
    """Loaders of the student in every backend and variant compared."""
    def make(name, runner_fn, file):
        def load() -> System:
            model, tokenizer, _ = load_classifier(folder)
            encoder = CodeEncoder(tokenizer, BLOCK_SIZE, cache_size=0)
            return System(name, runner_fn(model), encoder, model, (folder / file).stat().st_size, file)
        return load

    ort = lambda name, **kw: lambda model: OrtRunner(folder / name, threads, **kw)  # noqa: E731
    return [
        make("student pytorch eager", TorchRunner, "model.safetensors"),
        make("student pytorch, padded to 400", lambda m: PadToBlock(TorchRunner(m), BLOCK_SIZE),
             "model.safetensors"),
        make("student ORT model.onnx", ort("model.onnx"), "model.onnx"),
        make("student ORT model.onnx, spinning", ort("model.onnx", spin=True), "model.onnx"),
        make("student ORT fused", ort("model.optimized.onnx"), "model.optimized.onnx"),
        make("student ORT fused, padded to 400",
             lambda m: PadToBlock(OrtRunner(folder / "model.optimized.onnx", threads), BLOCK_SIZE),
             "model.optimized.onnx"),
        make("student ORT fused int8", ort("model.int8.onnx"), "model.int8.onnx"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=BCB)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workdir", type=Path, default=Path.home() / ".cache" / "lit_compressor" / "bench")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--no-teacher", action="store_true", help="student variants only (fast)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    folder = paper_student(args.workdir, args.data)
    examples = sample_test_split(args.data, args.samples)
    warm = [e.codes for e in examples[:3]]
    systems = [load_measured(loader, warm) for loader in student_variants(folder, args.threads)]
    if not args.no_teacher:
        systems.append(load_measured(lambda: load_teacher(CODEBERT_SHAPE, 2, BLOCK_SIZE, load_task(args.data), examples,
                                                          args.workdir / "tokenizers"), warm))
    load_before = os.getloadavg()
    results = measure(systems, examples, args.batch_size)
    env = {**environment(args.threads), "load_average_before": load_before}
    print_results(results, f"paper's 3 MB student vs CodeBERT shape: {len(examples)} BigCloneBench test pairs, "
                         f"batch 1, {args.threads} threads; load average {load_before[0]:.1f} -> "
                         f"{env['load_average'][0]:.1f}")
    by_name = {r["name"]: r for r in results}
    eager = by_name["student pytorch eager"]["p50_ms"]
    best_ort = min((r for r in results if "ORT" in r["name"] and "padded" not in r["name"]),
                   key=lambda r: r["p50_ms"])
    goals = {"ort_beats_eager": {"eager_p50_ms": eager, "best_ort": best_ort["name"],
                                 "best_ort_p50_ms": best_ort["p50_ms"], "met": best_ort["p50_ms"] < eager}}
    if "teacher (pytorch)" in by_name:
        teacher = by_name["teacher (pytorch)"]["p50_ms"]
        goals["student_20x_faster"] = {"teacher_p50_ms": teacher, "student_eager_speedup": teacher / eager,
                                       "best_ort_speedup": teacher / best_ort["p50_ms"],
                                       "met": teacher / min(eager, best_ort["p50_ms"]) >= 20}
    print(json.dumps(goals, indent=2))
    if args.output:
        report = {"environment": env, "systems": results, "goals": goals}
        args.output.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
