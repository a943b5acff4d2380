"""Compressor's released GraphCodeBERT 3 MB students, imported and evaluated on the real test splits.

Imports ``GraphCodeBERT_clone_detection_3MB.bin`` and ``GraphCodeBERT_vulnerability_prediction_3MB.bin``
(with their BPE tokenizers) through ``import_compressor``, then scores each on its test split:
BigCloneBench's 4,000 pairs and Devign's 274 functions. Each row: accuracy, precision, recall and F1 of
the positive class (clone, vulnerable), wall seconds and the load average (``os.getloadavg``) around it.
With ``--plain-too`` the same weights are also run on plain inputs (no data flow), to show what wrong
inputs give. It also measures the data-flow extraction: functions per second without a cache, and
the time to read the cache back.

    nice .venv/bin/python scripts/eval_compressor_release.py --plain-too --output runs/compressor-release
"""

from __future__ import annotations

import argparse
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lit_compressor.commands.import_compressor import import_compressor
from lit_compressor.core.console import markdown_table
from lit_compressor.data.readers import Example
from lit_compressor.data.task import load_task
from lit_compressor.graphcodebert.dataflow import precompute_dataflow
from lit_compressor.graphcodebert.folder import graph_encoder, load_graph_classifier
from lit_compressor.measure.bench import timed
from lit_compressor.nn.folders import load_classifier
from lit_compressor.nn.tokenization import CodeEncoder
from lit_compressor.runtime.evaluate import batched_logits
from lit_compressor.runtime.runners import TorchRunner
from lit_compressor.training.metrics import classification_metrics, scalar_metrics

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@dataclass(frozen=True)
class Student:
    name: str
    checkpoint: str
    tokenizer: str
    data: str  # folder under shared/data
    inputs_flag: str | None  # --inputs for the import (None: read from the keys)


STUDENTS = (
    Student("clone detection", "GraphCodeBERT_clone_detection_3MB.bin", "clone_detection_BPE_1000.json",
            "bigclonebench", None),
    Student("vulnerability prediction", "GraphCodeBERT_vulnerability_prediction_3MB.bin",
            "vulnerability_prediction_BPE_1000.json", "devign", "dataflow"),
)


def scores(probabilities: np.ndarray, examples: list[Example]) -> dict[str, float]:
    """Accuracy, and precision/recall/F1 of the positive class (index 1), as training reports them."""
    metrics = classification_metrics(2)
    metrics.update(torch.from_numpy(probabilities), torch.tensor([e.label for e in examples]))
    return scalar_metrics(metrics)


def timed_row(name: str, inputs: str, model, encoder, examples: list[Example], batch_size: int) -> dict:
    with timed() as clock:
        logits = batched_logits(TorchRunner(model), encoder, examples, batch_size)
    probabilities = torch.from_numpy(logits).softmax(-1).numpy()
    return {"student": name, "inputs": inputs, "examples": len(examples), **scores(probabilities, examples),
            "seconds": clock.seconds, "load_before": clock.load_before, "load_after": clock.load_after,
            "probabilities": probabilities[:, 1].round(6).tolist()}


def extraction_cost(codes: list[str], language: str, cache_dir: Path, workers: int, sample: int) -> dict:
    """Functions per second of data-flow extraction (no cache, on a seeded sample), and the whole set's
    extraction through the cache (a first run writes it, later runs read it)."""
    unique = sorted(set(codes))
    probe = random.Random(0).sample(unique, min(sample, len(unique)))
    with timed() as cold:
        precompute_dataflow(probe, language, None, 1)
    hit = any(cache_dir.glob(f"dataflow-{language}-*.json"))
    with timed() as whole:
        precompute_dataflow(unique, language, cache_dir, workers)
    return {"language": language, "functions": len(unique), "probe_functions": len(probe),
            "uncached_functions_per_s_1_process": len(probe) / cold.seconds,
            "whole_set_seconds": whole.seconds, "whole_set_from_cache": hit, "workers": workers,
            "load_average": whole.load_after}


def evaluate(student: Student, release: Path, data: Path, output: Path, limit: int | None, batch_size: int,
             plain_too: bool, workers: int, probe: int) -> tuple[list[dict], dict]:
    folder = import_compressor(release / student.checkpoint, release / student.tokenizer, output / student.data,
                               inputs=student.inputs_flag)
    examples = load_task(data / student.data).read("test")
    if limit is not None and limit < len(examples):
        examples = sorted(random.Random(0).sample(examples, limit), key=lambda e: e.id)
    model, tokenizer, metadata = load_graph_classifier(folder)
    encoder = graph_encoder(tokenizer, metadata, cache_dir=output / "dataflow-cache", workers=workers)
    codes = [encoder.source(code) for e in examples for code in e.codes]
    cost = extraction_cost(codes, metadata["language"], output / "dataflow-cache", workers, probe)
    encoder.prepare(examples)
    rows = [timed_row(student.name, "data flow", model, encoder, examples, batch_size)]
    if plain_too:  # the same weights as a plain classifier, on CodeBERT students' inputs (block 400)
        plain_model, _, _ = load_classifier(folder)
        rows.append(timed_row(student.name, "plain (wrong)", plain_model.eval(), CodeEncoder(tokenizer, 400),
                              examples, batch_size))
    return rows, cost


def markdown(rows: list[dict], costs: list[dict]) -> str:
    students = [[r["student"], r["inputs"], f"{r['examples']:,}", f"{r['accuracy']:.4f}", f"{r['precision']:.4f}",
                 f"{r['recall']:.4f}", f"{r['f1']:.4f}", f"{r['seconds']:.0f}",
                 f"{r['load_before'][0]:.2f} → {r['load_after'][0]:.2f}"] for r in rows]
    extraction = [[c["language"], f"{c['functions']:,}", f"{c['uncached_functions_per_s_1_process']:.1f}",
                   "read from cache" if c["whole_set_from_cache"] else f"extracted ({c['workers']} workers), cached",
                   f"{c['whole_set_seconds']:.2f}", f"{c['load_average'][0]:.2f}"] for c in costs]
    return (markdown_table(["student", "inputs", "examples", "accuracy", "precision", "recall", "F1", "seconds",
                            "load avg (1 min)"], students) + "\n\n"
            + markdown_table(["language", "functions", "uncached functions/s (1 process)", "whole set", "seconds",
                              "load avg"], extraction))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", type=Path, default=SHARED / "compressor-release")
    parser.add_argument("--data", type=Path, default=SHARED / "data")
    parser.add_argument("--output", type=Path, default=ROOT / "runs" / "compressor-release")
    parser.add_argument("--limit", type=int, default=None, help="a seeded sample of each test split")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="processes extracting data flow")
    parser.add_argument("--probe", type=int, default=300, help="functions timed without a cache")
    parser.add_argument("--plain-too", action="store_true", help="also run the weights on plain inputs")
    parser.add_argument("--only", choices=[s.data for s in STUDENTS], default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows, costs = [], []
    for student in STUDENTS:
        if args.only and student.data != args.only:
            continue
        more, cost = evaluate(student, args.release, args.data, args.output, args.limit, args.batch_size,
                              args.plain_too, args.workers, args.probe)
        rows += more
        costs.append(cost)
    table = markdown(rows, costs)
    print(table)
    args.output.mkdir(parents=True, exist_ok=True)
    name = f"eval-{args.only or 'all'}{'' if args.limit is None else f'-{args.limit}'}.json"
    report = {"rows": rows, "dataflow_extraction": costs, "threads": args.threads, "cpu_count": os.cpu_count(),
              "load_average": os.getloadavg()}
    (args.output / name).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.output / name}")


if __name__ == "__main__":
    main()
