"""``lit-compressor benchmark``: a student beside its teacher, measured in one run on one machine.

For each system (teacher in PyTorch; student in PyTorch and ONNX Runtime): size on disk, parameters,
FLOPs of one real input, p50/p95 latency of one prediction (batch 1, tokenisation included, real
test inputs at their own length), throughput at batch 32, and peak memory. Latency runs round-robin
over the systems, input by input, so a busy machine slows every system alike.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lit_compressor.core.console import print_table
from lit_compressor.core.errors import UserError
from lit_compressor.core.files import atomic_write_json
from lit_compressor.core.fingerprint import hash_files, hash_json
from lit_compressor.core.metadata import read_metadata
from lit_compressor.data.readers import Example
from lit_compressor.data.task import TaskData, load_task, read_functions_cached, seeded_sample
from lit_compressor.measure.bench import PeakRss
from lit_compressor.nn.classifier import CodeClassifier
from lit_compressor.nn.folders import WEIGHT_FILES, load_pretrained_encoder
from lit_compressor.nn.tokenization import CodeEncoder, train_student_tokenizer
from lit_compressor.runtime.folder import DEFAULT_BLOCK_SIZE, load_folder
from lit_compressor.runtime.onnx import ONNX_FILES, export_chain
from lit_compressor.runtime.runners import OrtRunner, TorchRunner, onnx_file

IDE_BUDGET_MS = 100.0  # the paper's budget: 0.1 s per prediction on a laptop CPU
CODEBERT_SHAPE = "codebert-shape"
MEMORY_METHOD = ("peak process RSS (psutil, sampled every 1 ms) while loading the system and running its "
                 "warm-up predictions, minus the RSS just before; systems load smallest first")


@dataclass
class System:
    """One model in one backend, ready to time."""

    name: str
    runner: Callable[..., np.ndarray]  # (input_ids, attention_mask[, position_ids]) -> logits
    encoder: CodeEncoder
    model: torch.nn.Module  # the PyTorch model (for parameters and FLOPs, whatever the backend)
    size_bytes: int
    size_note: str
    role: str = "student"  # student, teacher or proxy (a stand-in of another teacher's shape)
    backend: str = "pytorch"
    peak_rss_mb: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def predict(self, rows: Sequence[Sequence[str]]) -> np.ndarray:
        return self.runner(**self.encoder.encode_codes(rows))


def codebert_shape(num_inputs: int) -> CodeClassifier:
    """A randomly initialised RoBERTa of CodeBERT's shape (125M parameters), for timing without downloads."""
    from transformers import AutoModel, RobertaConfig

    config = RobertaConfig(vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                           intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1,
                           pad_token_id=1, bos_token_id=0, eos_token_id=2)
    torch.manual_seed(0)  # the same weights every time, so its cached ONNX graphs are this very model
    encoder = AutoModel.from_config(config, add_pooling_layer=False)
    return CodeClassifier(encoder, num_inputs=num_inputs).eval()


def proxy_tokenizer(texts: list[str], cache_dir: Path, vocab_size: int = 50265):
    """A byte-level BPE of CodeBERT's vocabulary size (cased; fewer tokens if the code yields fewer) trained on
    the task's code (cached).

    Trained on the code itself, it splits code into no more tokens than CodeBERT's own tokenizer
    (trained on text and code), so the teacher's inputs are if anything short: its latency is not inflated.
    """
    return train_student_tokenizer(texts, vocab_size, cache_dir, lowercase=False, exact_size=False)


def corpus(task: TaskData, examples: list[Example]) -> list[str]:
    """The task's code for a proxy tokenizer: every function of ``data.jsonl``, else the unlabelled split's."""
    if task.format == "bigclonebench":
        return list(read_functions_cached(Path(task.data_dir) / "data.jsonl").values())
    try:
        return [code for e in task.read("unlabelled") for code in e.codes]
    except UserError:  # a task without an unlabelled split: the test inputs themselves
        return [code for e in examples for code in e.codes]


def weights_size(folder: Path) -> int:
    return sum((folder / name).stat().st_size for name in WEIGHT_FILES if (folder / name).is_file())


def load_teacher(teacher: str, num_inputs: int, block_size: int, task: TaskData, examples: list[Example],
                 cache_dir: Path, block_size_given: bool = False, role: str = "teacher") -> System:
    """A teacher in PyTorch: a saved classifier folder, a HF encoder (seeded random head), or ``codebert-shape``.

    A saved classifier reads its own block size unless ``block_size_given``."""
    name = f"{role if teacher != CODEBERT_SHAPE else CODEBERT_SHAPE} (pytorch)"
    if teacher == CODEBERT_SHAPE:
        model = codebert_shape(num_inputs)
        tokenizer = proxy_tokenizer(corpus(task, examples), cache_dir)
        size = 4 * sum(p.numel() for p in model.parameters())
        note = "fp32 weights (computed: random CodeBERT-shaped model, not on disk)"
    elif Path(teacher).is_dir() and read_metadata(teacher):  # a fine-tuned folder, plain or data-flow
        opened = load_folder(teacher, block_size=block_size if block_size_given else None, cache_size=0)
        return System(name, opened.runner, opened.encoder, opened.model, weights_size(Path(teacher)),
                      "weight files on disk", role)
    else:
        encoder, tokenizer = load_pretrained_encoder(teacher)
        torch.manual_seed(0)
        model = CodeClassifier(encoder, num_inputs=num_inputs).eval()  # random head: fine for timing
        folder = Path(teacher) if Path(teacher).is_dir() else None
        size = weights_size(folder) if folder else 4 * sum(p.numel() for p in model.parameters())
        note = "weight files on disk" if folder else "fp32 weights (computed)"
    block_size = min(block_size, model.config.max_position_embeddings - 2)
    return System(name, TorchRunner(model), CodeEncoder(tokenizer, block_size, cache_size=0), model, size, note,
                  role)


def through_export_chain(system: System, backend: str, teacher: str, cache_dir: Path, threads: int | None,
                         sample: Sequence[Sequence[str]]) -> System:
    """``system`` (a teacher in PyTorch) through the chain a student ships by (``export_onnx`` ->
    ``optimize_onnx`` -> ``quantize_onnx``), its graphs cached under ``cache_dir`` by the teacher's identity."""
    identity = hash_files(teacher) if Path(teacher).is_dir() else teacher
    folder = cache_dir / "teacher-onnx" / hash_json(identity, system.model.num_inputs, type(system.model).__name__)
    path = folder / ONNX_FILES[backend]
    if not path.is_file():
        export_chain(system.model, system.encoder.encode_codes(sample), folder)
    return System(system.name.replace("(pytorch)", f"({backend})"), OrtRunner(path, threads), system.encoder,
                  system.model, path.stat().st_size, path.name, system.role, backend)


def load_student(folder: Path, backend: str, threads: int | None) -> System:
    """The student folder in ``backend`` ('pytorch', 'onnx' or 'onnx-int8')."""
    opened = load_folder(folder, backend, threads, cache_size=0)  # data flow is parsed in every prediction
    model = opened.model if opened.model is not None else load_folder(folder).model  # parameters and FLOPs
    path = folder / "model.safetensors" if backend == "pytorch" else onnx_file(folder, backend)
    return System(f"student ({backend})", opened.runner, opened.encoder, model, path.stat().st_size, path.name,
                  "student", backend)


def flops(system: System, codes: Sequence[str]) -> int:
    """FLOPs of one prediction (``FlopCounterMode``: matrix products, 2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    batch = system.encoder.encode_codes([codes])
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        system.model(**batch)
    return counter.get_total_flops()


def measure(systems: list[System], examples: list[Example], batch_size: int = 32, warmup: int = 3,
            budget_ms: float = IDE_BUDGET_MS) -> list[dict[str, Any]]:
    """Time every system; latency round-robin input by input, then throughput system by system."""
    rows = [e.codes for e in examples]
    for system in systems:
        for codes in rows[:warmup]:
            system.predict([codes])
    for codes in rows:
        for system in systems:
            start = time.perf_counter()
            system.predict([codes])
            system.latencies.append(time.perf_counter() - start)
    batch = [rows[i % len(rows)] for i in range(batch_size)]
    results = []
    for system in systems:
        start = time.perf_counter()
        system.predict(batch)
        seconds = time.perf_counter() - start
        p50, p95 = (float(np.percentile(system.latencies, q) * 1000) for q in (50, 95))
        results.append({
            "name": system.name,
            "role": system.role,
            "backend": system.backend,
            "size_mb": system.size_bytes / 1e6,
            "size_source": system.size_note,
            "parameters": sum(p.numel() for p in system.model.parameters()),
            "gflops_first_input": flops(system, rows[0]) / 1e9,
            "tokens_first_input": [len(system.encoder.encode(code)) for code in rows[0]],
            "mean_tokens_per_function": statistics.fmean(len(system.encoder.encode(code))
                                                         for codes in rows for code in codes),
            "p50_ms": p50,
            "p95_ms": p95,
            "mean_ms": statistics.fmean(system.latencies) * 1000,
            f"throughput_batch{batch_size}_per_s": batch_size / seconds,
            "peak_rss_mb": system.peak_rss_mb,
            "within_budget": bool(p95 <= budget_ms),
        })
    return results


SHIPPED = "onnx-int8"


def like_for_like(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The student's p50 speed-up and size ratio over each teacher (and proxy): runtime against the same runtime,
    then the shipped student (int8) against the teacher in eager PyTorch, the comparison papers often make."""
    students = {r["backend"]: r for r in results if r["role"] == "student"}
    ratios = []
    for role in ("teacher", "proxy"):
        references = {r["backend"]: r for r in results if r["role"] == role}
        pairs = [(backend, backend) for backend in students if backend in references]
        if SHIPPED in students and "pytorch" in references:
            pairs.append((SHIPPED, "pytorch"))
        for student_backend, reference_backend in pairs:
            student, reference = students[student_backend], references[reference_backend]
            ratios.append({
                "reference": reference["name"].rsplit(" (", 1)[0], "role": role,
                "student_backend": student_backend, "reference_backend": reference_backend,
                "like_for_like": student_backend == reference_backend,
                "student_p50_ms": student["p50_ms"], "reference_p50_ms": reference["p50_ms"],
                "times_faster_p50": reference["p50_ms"] / student["p50_ms"],
                "times_smaller": reference["size_mb"] / student["size_mb"],
                "tokens_per_function": [student["mean_tokens_per_function"], reference["mean_tokens_per_function"]],
            })
    return ratios


def load_measured(loader: Callable[[], System], warm_codes: Sequence[Sequence[str]]) -> System:
    """Load a system and run its warm-up predictions, recording the peak memory it added."""
    with PeakRss() as memory:
        system = loader()
        for codes in warm_codes:
            system.predict([codes])
    system.peak_rss_mb = memory.delta_mb
    return system


def environment(threads: int) -> dict[str, Any]:
    import onnxruntime
    import transformers

    return {"cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "threads": threads, "load_average": os.getloadavg(), "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__, "transformers": transformers.__version__,
            "python": platform.python_version()}


def print_results(results: list[dict[str, Any]], ratios: list[dict[str, Any]], title: str,
                  budget_ms: float = IDE_BUDGET_MS) -> None:
    throughput = next(k for k in results[0] if k.startswith("throughput"))
    columns = ["system", "MB", "params", "GFLOPs", "tokens/function", "p50 ms", "p95 ms",
               f"{throughput[11:-6]} /s", "peak RSS MB", f"p95 <= {budget_ms:g} ms"]
    rows = [[r["name"], f"{r['size_mb']:.2f}", f"{r['parameters']:,}", f"{r['gflops_first_input']:.2f}",
             f"{r['mean_tokens_per_function']:.0f}", f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}",
             f"{r[throughput]:.1f}", f"{r['peak_rss_mb']:.0f}", "pass" if r["within_budget"] else "FAIL"]
            for r in results]
    print_table(title, columns, rows)
    if ratios:
        columns = ["student vs", "runtimes", "p50 ms", "times faster (p50)", "times smaller", "tokens/function"]
        rows = [[r["reference"], f"{r['student_backend']} / {r['reference_backend']}"
                 + ("" if r["like_for_like"] else " (not like for like)"),
                 f"{r['student_p50_ms']:.1f} / {r['reference_p50_ms']:.1f}", f"{r['times_faster_p50']:.1f}x",
                 f"{r['times_smaller']:.1f}x", "{:.0f} / {:.0f}".format(*r["tokens_per_function"])] for r in ratios]
        print_table("speed-ups, runtime against the same runtime (part of each ratio is the student reading "
                    "fewer tokens)", columns, rows, right_from=2)


def benchmark(model: Path, data: str, teacher: str = CODEBERT_SHAPE, output: Path | None = None,
              samples: int = 50, threads: int | None = None, backends: list[str] | None = None,
              batch_size: int = 32, budget_ms: float = IDE_BUDGET_MS, cache_dir: Path | None = None,
              teacher_block_size: int | None = None, proxy: str | None = None,
              proxy_block_size: int | None = None) -> dict[str, Any]:
    """Benchmark a student against its teacher on real test inputs, like for like; print tables, write JSON.

    Every system runs in every backend of ``backends``: the teachers go through the very export chain the student
    ships by (``export_onnx`` -> ``optimize_onnx`` -> ``quantize_onnx``), so each speed-up compares a runtime with
    itself (eager with eager, ONNX with ONNX, int8 with int8); the shipped student (int8) against the eager teacher
    is listed beside them.

    Args:
        model: The student folder (an exported folder for the ONNX backends).
        data: The task whose test inputs are timed: a task YAML or a task folder (format inferred).
        teacher: A saved classifier folder, a HF encoder folder or hub id (random head), or
            ``codebert-shape`` (random weights of CodeBERT's shape; no download).
        output: Where to write the JSON report (default: only print).
        samples: Test inputs timed one by one, per system.
        threads: CPU threads for every system (default: PyTorch's default for this machine).
        backends: Backends among pytorch, onnx, onnx-int8, for the student and the teachers alike (default: all).
        batch_size: Batch size of the throughput run.
        budget_ms: The per-prediction budget (p95) of the pass/fail column.
        cache_dir: Cache for the codebert-shape proxy tokenizer and the teachers' ONNX graphs (default
            ~/.cache/lit_compressor).
        teacher_block_size: Tokens per function for the teacher (default: a saved teacher's own, else the
            student's), e.g. 400 to time ``codebert-shape`` at the paper's block size beside a student that
            reads fewer tokens.
        proxy: A second teacher timed beside the first (e.g. ``codebert-shape`` beside a fine-tuned MiniLM): a
            stand-in for the size of teacher a user would otherwise ship. Its own row, never the teacher's.
        proxy_block_size: Tokens per function for the proxy (e.g. 400, the paper's).
    """
    model = Path(model)
    backends = backends or ["pytorch", "onnx", SHIPPED]
    if threads:
        torch.set_num_threads(threads)
    threads = threads or torch.get_num_threads()
    task = load_task(data)
    examples = seeded_sample(task.read("test"), samples, 0)
    metadata = read_metadata(model)
    if not metadata:
        raise UserError("not a lit-compressor student folder (no lit_compressor block in config.json).",
                        model)
    warm = [e.codes for e in examples[:3]]
    systems = [load_measured(lambda b=b: load_student(model, b, threads), warm) for b in backends]
    cache = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "lit_compressor"
    num_inputs, block = int(metadata.get("num_inputs", 1)), int(metadata.get("block_size", DEFAULT_BLOCK_SIZE))
    references = [("teacher", teacher, teacher_block_size)] + ([("proxy", proxy, proxy_block_size)] if proxy else [])
    for role, spec, given in references:
        eager = load_measured(lambda spec=spec, given=given, role=role: load_teacher(
            spec, num_inputs, given or block, task, examples, cache, block_size_given=given is not None, role=role),
            warm)
        for backend in backends:
            systems.append(eager if backend == "pytorch" else load_measured(
                lambda eager=eager, backend=backend, spec=spec: through_export_chain(
                    eager, backend, spec, cache, threads, warm[:2]), warm))
    before = os.getloadavg()
    results = measure(systems, examples, batch_size, budget_ms=budget_ms)
    ratios = like_for_like(results)
    report = {"model": str(model), "teacher": teacher, "proxy": proxy,
              "teacher_block_size": next(s for s in systems if s.role == "teacher").encoder.block_size,
              "proxy_block_size": next((s.encoder.block_size for s in systems if s.role == "proxy"), None),
              "data": str(data), "samples": len(examples),
              "budget_ms": budget_ms, "budget_statistic": "p95", "memory_method": MEMORY_METHOD,
              "environment": {**environment(threads), "load_average_before": before}, "systems": results,
              "ratios": ratios}
    against = f"{teacher} and {proxy}" if proxy else teacher
    title = f"{model.name} vs {against}: {len(examples)} real inputs, {threads} threads"
    print_results(results, ratios, title, budget_ms)
    if output is not None:
        atomic_write_json(output, report)
    return report
