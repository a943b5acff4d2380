"""A data-flow student against a plain student distilled from the same teacher under the same budget.

    nice .venv/bin/python scripts/compare_dataflow.py --config configs/bigclonebench/compress_graphcodebert.yaml \
        --output runs/bigclonebench/compare_dataflow

1. ``compress`` with ``--config`` (into ``OUTPUT/dataflow``): the GraphCodeBERT-layout teacher is fine-tuned
   with data-flow inputs, labels the unlabelled split, the search prices a data-flow student for the size
   budget, the student (which copies its teacher's inputs) is distilled, exported and benchmarked.
2. The plain student (``OUTPUT/plain``): the same teacher's soft labels, the same search config (same target
   size and seed) priced for plain inputs (``space.inputs: plain``), the same student config with ``inputs:
   plain``, exported and benchmarked beside the same teacher. Its stages are the data-flow run's stage
   files with those settings changed (written to ``OUTPUT/plain/stages``, skipped when current).
3. The cost of data flow: tree-sitter extraction of the unlabelled split's functions in one process, uncached,
   then through the graph cache (first run writes it, second reads it).

Prints a Markdown table; writes ``results.json`` with every figure and the load average before and after each
step.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from lit_compressor.commands.benchmark import benchmark as benchmark_command
from lit_compressor.commands.cli import run_function_command
from lit_compressor.commands.compress import Stages, run_command, run_fit
from lit_compressor.commands.export import export as export_command
from lit_compressor.commands.search import search as search_command
from lit_compressor.core.configs import deep_merge, read_yaml, with_checkpoint_folder
from lit_compressor.core.console import markdown_table
from lit_compressor.core.fingerprint import hash_files
from lit_compressor.measure.bench import load_text, timed


def step(what: str, log: list[dict[str, Any]], work) -> Any:
    """Run ``work()``, logging its wall seconds and the load average before and after."""
    with timed() as clock:
        result = work()
    log.append({"step": what, **clock.to_dict()})
    print(f"{what}: {clock.seconds:.1f} s; before: {load_text(clock.load_before)}; after: "
          f"{load_text(clock.load_after)}", flush=True)
    return result


def plain_student(dataflow: Path, output: Path) -> dict[str, float]:
    """Search, distil, export and benchmark the plain student from the data-flow run's teacher and soft labels;
    the seconds of each stage."""
    stages = Stages(output)
    teacher_hash = hash_files(dataflow / "teacher") if (dataflow / "teacher").is_dir() else None
    search = deep_merge(read_yaml(dataflow / "stages/search.yaml", "search"),
                        {"space": {"inputs": "plain"}, "output": str(output / "search")})
    stages.run("search", search, {"teacher": teacher_hash}, {"architecture": output / "search/architecture.yaml"},
               lambda path: run_command(search_command, path))
    student = read_yaml(dataflow / "stages/student.yaml", "student")
    architecture = output / "search/architecture.yaml"
    run_dir = output / "runs/student"
    student = deep_merge(student, {
        "model": {"init_args": {"architecture": str(architecture), "inputs": "plain",
                                "output_dir": str(output / "student")}},
        "trainer": with_checkpoint_folder({**student.get("trainer", {}), "default_root_dir": str(run_dir)},
                                          run_dir / "checkpoints")})
    upstream = {"soft_labels": hash_files(dataflow / "soft_labels.safetensors"),
                "architecture": architecture.read_text()}
    stages.run("student", student, upstream, {"student": output / "student/metrics.json"},
               lambda path: run_fit(path, run_dir / "checkpoints"))
    export = {**read_yaml(dataflow / "stages/export.yaml", "export"), "model": str(output / "student"),
              "output": str(output / "export")}
    stages.run("export", export, {"student": hash_files(output / "student")},
               {"export": output / "export/export.json"}, lambda path: run_command(export_command, path))
    benchmark = {**read_yaml(dataflow / "stages/benchmark.yaml", "benchmark"), "model": str(output / "export"),
                 "output": str(output / "benchmark.json")}
    stages.run("benchmark", benchmark, {"student": hash_files(output / "student")},
               {"benchmark": output / "benchmark.json"}, lambda path: run_command(benchmark_command, path))
    return {record.name: record.seconds for record in stages.records}


def extraction_cost(dataflow: Path) -> dict[str, Any]:
    """Functions per second of tree-sitter extraction on the unlabelled split: uncached, then via the cache."""
    from lit_compressor.data.task import load_task
    from lit_compressor.graphcodebert.dataflow import precompute_dataflow

    task = load_task(str(dataflow / "task.yaml"))
    language = read_yaml(dataflow / "stages/teacher.yaml", "teacher")["model"]["init_args"].get("language", "java")
    codes = list(dict.fromkeys(code for example in task.read("unlabelled") for code in example.codes))
    record: dict[str, Any] = {"functions": len(codes), "language": language}
    with timed() as uncached:
        precompute_dataflow(codes, language)
    record["uncached_s"], record["load_before"] = uncached.seconds, uncached.load_before
    with tempfile.TemporaryDirectory() as cache:
        for run in ("first_cached_run_s", "second_cached_run_s"):
            with timed() as clock:
                precompute_dataflow(codes, language, cache_dir=cache)
            record[run] = clock.seconds
    record["load_after"] = clock.load_after
    return record


def row(name: str, inputs: str, folder: Path, metrics: dict, timing: dict, search: dict | None,
        seconds: float | None) -> dict[str, Any]:
    systems = {s["name"]: s for s in timing["systems"]}
    own = "teacher (pytorch)" if name == "teacher" else "student (pytorch)"
    int8 = systems.get("student (onnx-int8)", {}) if name != "teacher" else {}
    genome = ""
    if search is not None:
        best = search["best"]
        genome = "/".join(str(best[k]) for k in ("num_hidden_layers", "hidden_size", "num_attention_heads",
                                                  "intermediate_size", "vocab_size"))
    return {"model": name, "inputs": inputs, "genome": genome, "folder": str(folder),
            **{k: metrics[k] for k in ("accuracy", "precision", "recall", "f1", "params", "size_mb",
                                       "prediction_counts")},
            "priced_gflops": search["best"]["gflops"] if search else None,
            "gflops_first_test_input": systems[own]["gflops_first_input"],
            "p50_ms": systems[own]["p50_ms"], "int8_p50_ms": int8.get("p50_ms"), "int8_mb": int8.get("size_mb"),
            "distill_s": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=Path("configs/bigclonebench/compress_graphcodebert.yaml"))
    parser.add_argument("--output", type=Path, default=Path("runs/bigclonebench/compare_dataflow"))
    args = parser.parse_args()
    log: list[dict[str, Any]] = []
    dataflow, plain = args.output / "dataflow", args.output / "plain"
    report = step("compress (data-flow student)", log, lambda: run_function_command(
        "compress", ["--config", str(args.config), "--output", str(dataflow)]))
    plain_stages = step("plain student (search, distil, export, benchmark)", log,
                         lambda: plain_student(dataflow, plain))
    extraction = step("data-flow extraction", log, lambda: extraction_cost(dataflow))

    def stage_seconds(folder: Path, name: str) -> float | None:
        report_file = folder / "report.json"
        if report_file.is_file():
            stages = {s["name"]: s for s in json.loads(report_file.read_text())["stages"]}
            return stages.get(name, {}).get("seconds")
        return None

    rows = [
        row("teacher", "dataflow", dataflow / "teacher",
            json.loads((dataflow / "teacher_test/metrics.json").read_text()),
            json.loads((dataflow / "benchmark.json").read_text()), None, None),
        row("data-flow student", "dataflow", dataflow / "student",
            json.loads((dataflow / "student/metrics.json").read_text()),
            json.loads((dataflow / "benchmark.json").read_text()),
            json.loads((dataflow / "search/report.json").read_text()), stage_seconds(dataflow, "student")),
        row("plain student", "plain", plain / "student", json.loads((plain / "student/metrics.json").read_text()),
            json.loads((plain / "benchmark.json").read_text()), json.loads((plain / "search/report.json").read_text()),
            plain_stages.get("student")),
    ]
    results = {"config": str(args.config), "rows": rows, "extraction": extraction, "log": log,
               "cpu_count": os.cpu_count(), "report_teacher_vs_dataflow_student": report}
    (args.output / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    columns = ["model", "inputs", "L/H/A/D/V", "params", "MB", "GFLOPs (priced)", "accuracy", "precision",
               "recall", "F1", "p50 ms (PyTorch)", "p50 ms (int8)", "distil s"]
    table = [[r["model"], r["inputs"], r["genome"], f"{r['params']:,}", f"{r['size_mb']:.2f}",
              "" if r["priced_gflops"] is None else f"{r['priced_gflops']:.3f}", f"{r['accuracy']:.4f}",
              f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}", f"{r['p50_ms']:.1f}",
              "" if r["int8_p50_ms"] is None else f"{r['int8_p50_ms']:.1f}",
              "" if r["distill_s"] is None else f"{r['distill_s']:.0f}"] for r in rows]
    print("\n" + markdown_table(columns, table) + "\n")
    per_second = extraction["functions"] / extraction["uncached_s"]
    print(f"data-flow extraction ({extraction['language']}, {extraction['functions']:,} unique unlabelled "
          f"functions): uncached {extraction['uncached_s']:.2f} s ({per_second:.0f} functions/s, 1 process); "
          f"cache first run {extraction['first_cached_run_s']:.2f} s, second {extraction['second_cached_run_s']:.2f} s")
    for entry in log:
        print(f"- {entry['step']}: {entry['seconds']:.1f} s; before: {load_text(entry['load_before'])}; "
              f"after: {load_text(entry['load_after'])}")


if __name__ == "__main__":
    main()
