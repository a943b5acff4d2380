"""Timing genomes as an IDE runs them, for the search's latency model (:mod:`lit_compressor.search.latency_model`).

A genome is built with random weights (``build_student``: latency does not depend on the values),
exported to the runtime that ships (``onnx-int8``: ``export_onnx`` → ``optimize_onnx`` →
``quantize_onnx``, as ``lit-compressor export`` does; ``onnx``: the fused fp32 graph; ``pytorch``:
eager), and timed at batch 1 on real test inputs of the task, tokenised by a BPE tokenizer of its own
vocabulary size trained on the task's unlabelled code (the one distillation trains), with the
configured threads — tokenisation included, as ``lit-compressor benchmark`` times it. ``clock: wall``
times what a user waits on this machine as loaded now; ``clock: cpu`` (one thread: the runtime then
computes in the calling thread) times the thread's CPU time, which is what the prediction takes on an
otherwise idle core, and which other processes cannot inflate — the stable choice on a shared machine.
Each input's
time is the fastest of ``repeats`` rounds (other processes only ever add time; a genome whose rounds
already took ``ROUNDS_SECONDS`` gets no more); rounds go over all inputs in turn, so a burst of load
hits every input alike.

Timings are cached as one JSON file per genome under ``cache/latency/<key>/``, where the key covers
the machine (CPU, cores, node), the runtime and its version, the threads, the student's fixed
settings and the inputs, so a search on the same machine never times a genome twice, and a search
killed while timing keeps every timing it finished.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import onnxruntime
import torch

from lit_compressor.core.errors import UserError
from lit_compressor.core.files import atomic_write_json
from lit_compressor.core.fingerprint import hash_json
from lit_compressor.data.readers import normalize_whitespace
from lit_compressor.data.task import TaskData, seeded_sample
from lit_compressor.nn.student import build_student
from lit_compressor.nn.tokenization import CodeEncoder, train_student_tokenizer
from lit_compressor.runtime.onnx import export_chain
from lit_compressor.runtime.runners import OrtRunner, TorchRunner
from lit_compressor.search.latency_model import RUNTIMES, Timing
from lit_compressor.search.space import Genome, SearchSpace

ROUNDS_SECONDS = 2.0
"""No further round over the inputs once a genome's rounds have taken this long."""


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_key(runtime: str, threads: int) -> dict:
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "node": platform.node(), "runtime": runtime,
            "threads": threads, "onnxruntime": onnxruntime.__version__, "torch": torch.__version__}


def test_inputs(task: TaskData, samples: int) -> list[tuple[str, ...]]:
    """The functions of ``samples`` test examples: the seeded sample ``lit-compressor benchmark`` times."""
    return [e.codes for e in seeded_sample(task.read("test"), samples, 0)]


def training_corpus(task: TaskData) -> list[str]:
    """The unlabelled split's distinct functions: what a student's BPE tokenizer is trained on."""
    return list(dict.fromkeys(code for example in task.read("unlabelled") for code in example.codes))


class Timer:
    """Times genomes of one space on one runtime, with tokenizers of the task's code, caching each timing."""

    def __init__(self, space: SearchSpace, task: TaskData, runtime: str = "onnx-int8", threads: int | None = None,
                 samples: int = 30, repeats: int = 3, cache_dir: Path | None = None,
                 tokenizer_cache: Path | None = None, pooling: str = "first", clock: str = "wall"):
        if runtime not in RUNTIMES:
            raise UserError(f"unknown runtime {runtime!r}.", fix=f"Use one of {', '.join(RUNTIMES)}.")
        self.space, self.task, self.runtime, self.pooling = space, task, runtime, pooling
        self.threads = threads or torch.get_num_threads()
        if clock == "cpu" and self.threads != 1:
            raise UserError(f"latency.clock: cpu times the calling thread, so it needs threads: 1 "
                            f"(got {self.threads}).",
                            fix="Set latency.threads: 1, or latency.clock: wall.")
        self.clock = time.thread_time if clock == "cpu" else time.perf_counter
        self.repeats = repeats
        self.inputs = test_inputs(task, samples)
        if not self.inputs:
            raise UserError("the task's test split is empty: latency is timed on its inputs.", task.path("test"))
        self._corpus: list[str] | None = None
        self.tokenizer_cache = Path(tokenizer_cache) if tokenizer_cache else None
        self.machine = machine_key(runtime, self.threads)
        fixed = {k: getattr(space, k) for k in ("num_inputs", "family", "num_labels", "pair_head", "max_positions")}
        inputs = hash_json(self.inputs)
        key = json.dumps({**self.machine, **fixed, "inputs": inputs, "repeats": repeats, "pooling": pooling,
                          "clock": clock}, sort_keys=True)
        self.folder = Path(cache_dir) / "latency" / hash_json(key) if cache_dir else None

    # --- tokens ---------------------------------------------------------------------------------
    def tokenizer(self, vocab: int):
        if self._corpus is None:
            self._corpus = training_corpus(self.task)
        return train_student_tokenizer(self._corpus, vocab, self.tokenizer_cache)

    def token_counts(self, vocab: int) -> list[list[int]]:
        """Untruncated token counts (special tokens included) of every input's functions."""
        tokenizer = self.tokenizer(vocab)
        return [[len(tokenizer(normalize_whitespace(code))["input_ids"]) for code in codes] for codes in self.inputs]

    # --- timing ---------------------------------------------------------------------------------
    def _path(self, genome: Genome) -> Path | None:
        if self.folder is None:
            return None
        return self.folder / ("-".join(str(v) for v in genome[:5]) + f"-b{self.space.block_of(genome)}.json")

    def time(self, genome: Genome) -> Timing:
        """The genome's per-input times, from the cache or measured now."""
        path = self._path(genome)
        if path is not None and path.is_file():
            return Timing(**json.loads(path.read_text()))
        timing = self._measure(genome)
        if path is not None:
            atomic_write_json(path, timing.__dict__)
        return timing

    def _measure(self, genome: Genome) -> Timing:
        space = self.space
        model = build_student(space.architecture(genome), space.num_inputs, space.family, space.positions_of(genome),
                              space.num_labels, 0.0, self.pooling, space.pair_head).eval()
        encoder = CodeEncoder(self.tokenizer(genome[4]), space.block_of(genome), cache_size=0)
        with tempfile.TemporaryDirectory(prefix="lit-compressor-latency-") as folder:
            runner = self._runner(model, encoder, Path(folder))
            for codes in self.inputs[:3]:  # warm-up
                runner(**encoder.encode_codes([codes]))
            best = [float("inf")] * len(self.inputs)
            started = time.perf_counter()
            for round_ in range(self.repeats):
                if round_ and time.perf_counter() - started > ROUNDS_SECONDS:
                    break  # a slow genome: its timings are long enough to be steady
                for i, codes in enumerate(self.inputs):
                    start = self.clock()
                    runner(**encoder.encode_codes([codes]))
                    best[i] = min(best[i], (self.clock() - start) * 1000)
        tokens = [max(len(encoder.encode(code)) for code in codes) for codes in self.inputs]
        del model
        torch.set_num_threads(self.threads)
        return Timing(list(genome), best, tokens)

    def _runner(self, model, encoder, folder: Path):
        if self.runtime == "pytorch":
            torch.set_num_threads(self.threads)
            return TorchRunner(model)
        sample = encoder.encode_codes(self.inputs[:2])
        files = export_chain(model, sample, folder, int8=self.runtime == "onnx-int8")
        return OrtRunner(files[self.runtime], self.threads)


def time_genomes(timer: Timer, genomes: Sequence[Genome], on_done=None) -> list[Timing]:
    timings = []
    for genome in genomes:
        timings.append(timer.time(genome))
        if on_done is not None:
            on_done(len(timings))
    return timings
