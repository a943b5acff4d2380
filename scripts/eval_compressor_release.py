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
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lit_compressor.commands.import_compressor import import_compressor
from lit_compressor.data.readers import Example
from lit_compressor.data.task import load_task
from lit_compressor.graphcodebert.dataflow import precompute_dataflow
from lit_compressor.graphcodebert.folder import graph_encoder, load_graph_classifier
from lit_compressor.nn.folders import load_classifier
from lit_compressor.nn.tokenization import CodeEncoder

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
    """Accuracy, and precision/recall/F1 of the positive class (index 1) at the 0.5 threshold."""
    labels = np.array([e.label for e in examples])
    predicted = (probabilities[:, 1] > 0.5).astype(int)
    true_positive = int(((predicted == 1) & (labels == 1)).sum())
    precision = true_positive / max(int(predicted.sum()), 1)
    recall = true_positive / max(int(labels.sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": float((predicted == labels).mean()), "precision": precision, "recall": recall, "f1": f1}


def predict(model: torch.nn.Module, encoder, examples: list[Example], batch_size: int) -> np.ndarray:
    """Softmax probabilities of every example (data-flow or plain batches)."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(examples), batch_size):
            if start and start % (50 * batch_size) == 0:
                print(f"  {start}/{len(examples)}", file=sys.stderr, flush=True)
            batch = encoder.encode_codes([e.codes for e in examples[start:start + batch_size]])
            extra = {"position_ids": batch["position_ids"]} if "position_ids" in batch else {}
            out.append(model(batch["input_ids"], batch["attention_mask"], **extra).softmax(-1).numpy())
    return np.concatenate(out)


def timed_row(name: str, inputs: str, model, encoder, examples: list[Example], batch_size: int) -> dict:
    load_before, start = os.getloadavg(), time.perf_counter()
    probabilities = predict(model, encoder, examples, batch_size)
    seconds = time.perf_counter() - start
    return {"student": name, "inputs": inputs, "examples": len(examples), **scores(probabilities, examples),
            "seconds": seconds, "load_before": load_before, "load_after": os.getloadavg(),
            "probabilities": probabilities[:, 1].round(6).tolist()}


def extraction_cost(codes: list[str], language: str, cache_dir: Path, workers: int, sample: int) -> dict:
    """Functions per second of data-flow extraction (no cache, on a seeded sample), and the whole set's
    extraction through the cache (a first run writes it, later runs read it)."""
    unique = sorted(set(codes))
    probe = random.Random(0).sample(unique, min(sample, len(unique)))
    start = time.perf_counter()
    precompute_dataflow(probe, language, None, 1)
    cold = time.perf_counter() - start
    hit = any(cache_dir.glob(f"dataflow-{language}-*.json"))
    start = time.perf_counter()
    precompute_dataflow(unique, language, cache_dir, workers)
    whole = time.perf_counter() - start
    return {"language": language, "functions": len(unique), "probe_functions": len(probe),
            "uncached_functions_per_s_1_process": len(probe) / cold,
            "whole_set_seconds": whole, "whole_set_from_cache": hit, "workers": workers,
            "load_average": os.getloadavg()}


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
    lines = ["| student | inputs | examples | accuracy | precision | recall | F1 | seconds | load avg (1 min) |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['student']} | {r['inputs']} | {r['examples']:,} | {r['accuracy']:.4f} | "
                     f"{r['precision']:.4f} | {r['recall']:.4f} | {r['f1']:.4f} | {r['seconds']:.0f} | "
                     f"{r['load_before'][0]:.2f} → {r['load_after'][0]:.2f} |")
    lines += ["", "| language | functions | uncached functions/s (1 process) | whole set | seconds | load avg |",
              "| --- | ---: | ---: | --- | ---: | ---: |"]
    for c in costs:
        source = "read from cache" if c["whole_set_from_cache"] else f"extracted ({c['workers']} workers), cached"
        lines.append(f"| {c['language']} | {c['functions']:,} | {c['uncached_functions_per_s_1_process']:.1f} | "
                     f"{source} | {c['whole_set_seconds']:.2f} | {c['load_average'][0]:.2f} |")
    return "\n".join(lines)


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
              "uptime": Path("/proc/loadavg").read_text().strip() if Path("/proc/loadavg").is_file() else None}
    (args.output / name).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.output / name}")


if __name__ == "__main__":
    main()
