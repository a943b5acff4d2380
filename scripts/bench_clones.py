"""Clone search and the Node.js runtime, measured: Node against Python ONNX Runtime on the same model.

For one exported pair student, on real BigCloneBench code:

1. ``predict(code_a, code_b)`` latency at batch 1 (tokenisation included), Python ``TinyClassifier``
   against Node's, for the int8 and fp32 graphs (``--pairs`` test pairs, after a warm-up);
2. building a clone index of the first ``--functions`` distinct functions of ``data.jsonl`` (one
   encoder run each; the file repeats some functions under several ids), saving and reloading it, in
   Python and in Node;
3. a query against the whole index (embed the query + the pair head against every cached vector,
   top 10), p50/p95 over ``--queries`` functions not in the index, and the head alone;
   The CPU time the process spends on a query is reported too: on a busy machine the wall time
   includes waiting for a core, the CPU time much less so;
4. the peak resident memory of each process (VmHWM; Python's also holds transformers and torch, which
   its tokenizer wrapper imports).

Python and Node run in separate processes, one after the other, and print one table. ``--threads``
caps ONNX Runtime's intra-op threads in both and numpy's BLAS threads (``OPENBLAS_NUM_THREADS``) in
Python: on a busy machine a multi-threaded BLAS call waits for its sibling threads to be scheduled.

    python scripts/bench_clones.py --model /tmp/qs/export --functions 10000 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lit_compressor.core.console import print_table
from lit_compressor.measure.bench import call_times_ms, load_text, peak_rss_mb, timed

ROOT = Path(__file__).resolve().parents[1]
BCB = ROOT.parent / "shared" / "data" / "bigclonebench"


def percentiles(ms: list[float]) -> dict:
    return {"p50": float(np.percentile(ms, 50, method="nearest")),
            "p95": float(np.percentile(ms, 95, method="nearest")), "n": len(ms)}


def make_job(model: Path, data: Path, functions: int, queries: int, pairs: int, workdir: Path, threads: int,
             precision: str) -> dict:
    from lit_compressor.clones.extract import SourceFunction
    from lit_compressor.clones.model import code_hash
    from lit_compressor.data.readers import read_functions
    from lit_compressor.runtime.evaluate import sample_test_split

    codes = list({code_hash(code): code for code in read_functions(data / "data.jsonl").values()}.values())
    if len(codes) < functions + queries:
        raise SystemExit(f"{data / 'data.jsonl'} holds {len(codes)} distinct functions, fewer than {functions} + "
                         f"{queries}")
    indexed = [SourceFunction(f"F{i}.java", f"f{i}", "java", 1, 1, code) for i, code in enumerate(codes[:functions])]
    return {"model": str(model), "threads": threads, "precision": precision,
            "pairs": [list(e.codes) for e in sample_test_split(data, pairs, seed=1)],
            "functions": [f.__dict__ for f in indexed], "queries": codes[-queries:],
            "python_index": str(workdir / "python-index"), "node_index": str(workdir / "node-index")}


def run_python(job: dict) -> dict:
    """The Python half (call in a fresh process: its peak memory is reported)."""
    from lit_compressor.clones.extract import SourceFunction
    from lit_compressor.clones.index import CloneIndex
    from lit_compressor.clones.model import CloneModel
    from lit_compressor.runtime.classifier import TinyClassifier

    result: dict = {"latency": {}}
    for backend in ("onnx-int8", "onnx"):
        model = TinyClassifier.from_pretrained(job["model"], backend=backend, threads=job["threads"])
        for pair in job["pairs"][:5]:
            model.predict(*pair)
        result["latency"][backend] = percentiles(call_times_ms(lambda pair, m=model: m.predict(*pair),
                                                                 job["pairs"]))
    clone_model = CloneModel.from_pretrained(job["model"], job["precision"], job["threads"])
    # queries not seen before: no cached ids
    result["tokenize"] = percentiles(call_times_ms(clone_model.token_ids, job["queries"]))
    clone_model.encoder._cache.clear()
    index = CloneIndex(clone_model)
    with timed() as build:
        index.update([SourceFunction(**f) for f in job["functions"]])
    result["build_s"] = build.seconds
    result["rows"] = len(index.hashes)
    index.save(job["python_index"])
    with timed() as load:
        CloneIndex.load(job["python_index"], clone_model)
    result["load_ms"] = load.seconds * 1000
    for code in job["queries"][:3]:
        index.search(code, 10)
    query, head, cpu = [], [], []
    for code in job["queries"]:  # a query and, within it, the head alone
        started, cpu_started = time.perf_counter(), time.process_time()
        vector = clone_model.embed(code)
        embedded = time.perf_counter()
        index.search_vector(vector, 10)
        done = time.perf_counter()
        cpu.append((time.process_time() - cpu_started) * 1000)
        query.append((done - started) * 1000)
        head.append((done - embedded) * 1000)
    result["query"], result["head"], result["query_cpu"] = percentiles(query), percentiles(head), percentiles(cpu)
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def print_results(python: dict, node: dict, job: dict, model: Path) -> None:
    rows = []
    for backend in ("onnx-int8", "onnx"):
        for q in ("p50", "p95"):
            rows.append([f"predict(a, b) {backend} {q} ms ({python['latency'][backend]['n']} pairs)",
                         f"{python['latency'][backend][q]:.2f}", f"{node['latency'][backend][q]:.2f}"])
    for q in ("p50", "p95"):
        rows.append([f"  tokenize one function {q} ms", f"{python['tokenize'][q]:.2f}", f"{node['tokenize'][q]:.2f}"])
    rows.append([f"index build s ({len(job['functions'])} functions, {python['rows']} distinct)",
                 f"{python['build_s']:.1f}", f"{node['build_s']:.1f}"])
    rows.append(["index load ms", f"{python['load_ms']:.1f}", f"{node['load_ms']:.1f}"])
    for q in ("p50", "p95"):
        rows.append([f"query {q} ms (embed + head over {python['rows']})", f"{python['query'][q]:.2f}",
                     f"{node['query'][q]:.2f}"])
        rows.append([f"  head only {q} ms", f"{python['head'][q]:.2f}", f"{node['head'][q]:.2f}"])
        rows.append([f"  CPU time of a query {q} ms", f"{python['query_cpu'][q]:.2f}", f"{node['query_cpu'][q]:.2f}"])
    rows.append(["peak RSS MB", f"{python['peak_rss_mb']:.0f}", f"{node['peak_rss_mb']:.0f}"])
    print_table(f"{model} ({job['threads']} thread(s), encoder {job['precision']}), {load_text()}",
                ["measure", "Python", "Node.js"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="an exported pair student")
    parser.add_argument("--data", type=Path, default=BCB)
    parser.add_argument("--functions", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--precision", choices=("fp32", "int8"), default="fp32")
    parser.add_argument("--output", type=Path, help="write the measurements as JSON")
    parser.add_argument("--python-only", dest="job", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:  # the Python half, in its own process
        print(json.dumps(run_python(json.loads(args.job.read_text()))))
        return
    from lit_compressor.runtime.clone_graphs import ensure_clone_graphs

    ensure_clone_graphs(args.model)
    workdir = Path(tempfile.mkdtemp(prefix="bench-clones-"))
    try:
        job = make_job(args.model, args.data, args.functions, args.queries, args.pairs, workdir, args.threads,
                       args.precision)
        (workdir / "job.json").write_text(json.dumps(job))
        # numpy's BLAS (the Python pair head) gets the same thread count as ONNX Runtime
        env = {**os.environ, "OPENBLAS_NUM_THREADS": str(args.threads), "OMP_NUM_THREADS": str(args.threads)}
        with timed() as clock:
            python = json.loads(subprocess.run([sys.executable, __file__, "--model", str(args.model), "--python-only",
                                                str(workdir / "job.json")], check=True, capture_output=True,
                                               text=True, env=env).stdout.splitlines()[-1])
            subprocess.run(["node", str(ROOT / "scripts" / "bench_clones_node.mjs"), str(workdir / "job.json"),
                            str(workdir / "node.json")], check=True)
        node = json.loads((workdir / "node.json").read_text())
        print_results(python, node, job, args.model)
        result = {"python": python, "node": node, "load_average_before": clock.load_before,
                  "load_average_after": clock.load_after, "threads": args.threads, "precision": args.precision,
                  "functions": args.functions, "model": str(args.model)}
        if args.output:
            args.output.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
