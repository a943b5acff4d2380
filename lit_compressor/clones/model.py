"""A student split for clone search: ``embed(code)`` once per function, the pair head on cached vectors.

:class:`CloneModel` runs the encoder graph (``encoder.int8.onnx`` of a shipped folder, or a full export's
``encoder.optimized.onnx``/``encoder.onnx``) one function at a time, so a function's vector never depends on what it was
batched with, and :class:`PairHead` evaluates the student's own head for one query against every
cached vector in one ONNX Runtime call (``head_prepare.onnx``, ``head.onnx``: the graphs Node runs).
``probabilities(embed(a), [embed(b)])`` equals the pair model's ``predict(a, b)`` probability of a
clone (same precision) up to float32 rounding.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from lit_compressor.core.errors import UserError
from lit_compressor.core.fingerprint import hash_files, hash_json, hash_texts
from lit_compressor.core.metadata import read_metadata
from lit_compressor.data.readers import normalize_whitespace
from lit_compressor.nn.tokenization import CodeEncoder
from lit_compressor.runtime.clone_graphs import ENCODER_FILES
from lit_compressor.runtime.folder import DEFAULT_BLOCK_SIZE, resolve_folder
from lit_compressor.runtime.pair_head import PairHead
from lit_compressor.runtime.runners import ort_session

PRECISIONS = ("fp32", "int8")


def code_hash(code: str) -> str:
    """The content key of a function: sha256 of its whitespace-normalised text (what the model reads)."""
    return hash_texts([normalize_whitespace(code)])


def default_precision(folder: Path) -> str:
    """``fp32`` when ``folder`` itself holds the fp32 encoder graph (a full export), else ``int8`` (a shipped
    folder, or an export folder: its shipped/ subfolder)."""
    return "fp32" if any((Path(folder) / name).is_file() for name in ENCODER_FILES["fp32"]) else "int8"


def encoder_file(folder: Path, precision: str) -> Path:
    """The encoder graph of ``precision``, or a UserError saying how to make it."""
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}.", fix=f"Use one of {', '.join(PRECISIONS)}.")
    for name in ENCODER_FILES[precision]:
        if (folder / name).is_file():
            return folder / name
    raise UserError(f"no {' or '.join(ENCODER_FILES[precision])} (the encoder-only graph).", folder,
                    f"Run `lit-compressor export --model {folder} --output DIR` and load DIR.")


class CloneModel:
    """``embed(code)`` -> the student's pooled vector; :attr:`head` scores a query against many vectors."""

    def __init__(self, folder: Path, precision: str | None = None, threads: int | None = None):
        from transformers import AutoTokenizer

        precision = precision or default_precision(folder)
        if precision not in PRECISIONS:
            raise UserError(f"unknown precision {precision!r}.", fix=f"Use one of {', '.join(PRECISIONS)}.")
        self.folder = resolve_folder(folder, ENCODER_FILES[precision])
        if not (self.folder / "config.json").is_file():
            raise UserError("not a model folder (no config.json).", self.folder,
                            "Give a folder written by `lit-compressor export`.")
        metadata = read_metadata(self.folder)
        config = json.loads((self.folder / "config.json").read_text())
        self.precision = precision
        self.graph = encoder_file(self.folder, precision)
        self.num_inputs = int(metadata.get("num_inputs", 1))
        self.pooling, self.pair_head = metadata.get("pooling", "first"), metadata.get("pair_head", "concat")
        self.positive_label = int(metadata.get("positive_label", 1))
        self.block_size = int(metadata.get("block_size", DEFAULT_BLOCK_SIZE))
        self.hidden_size = int(config["hidden_size"])
        # a small memo: an index encodes each function once, and 10,000 cached texts would only cost memory
        self.encoder = CodeEncoder(AutoTokenizer.from_pretrained(self.folder), self.block_size, cache_size=1024)
        self.threads = threads
        self.session = ort_session(self.graph, threads)
        self._head: PairHead | None = None

    @classmethod
    def from_pretrained(cls, folder: str | Path, precision: str | None = None, threads: int | None = None
                        ) -> CloneModel:
        """``precision``: ``int8`` (a shipped folder's encoder) or ``fp32`` (a full export's: scores equal the
        pair model's); by default the folder's own (:func:`default_precision`)."""
        return cls(Path(folder), precision, threads)

    @property
    def head(self) -> PairHead:
        """The pair head (a UserError for single-function models, which have none)."""
        if self.num_inputs != 2:
            raise UserError("this model reads one function at a time (vulnerability-style); it has no pair head "
                            "to compare two functions.", self.folder,
                            "Use a clone detection (pair) model for clone search.")
        if self._head is None:
            self._head = PairHead(self.folder, self.threads, self.positive_label)
        return self._head

    def token_ids(self, code: str) -> list[int]:
        """The model's input ids of one function (normalised, truncated to the block, special tokens)."""
        return self.encoder.encode(code)

    def embed(self, code: str) -> np.ndarray:
        """The pooled ``[H]`` float32 vector of one function."""
        ids = np.asarray([self.token_ids(code)], dtype=np.int64)
        return self.session.run(["pooled"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0]

    def embed_many(self, codes: Sequence[str], on_each: Callable[[], None] | None = None) -> np.ndarray:
        """``[N, H]`` vectors, one graph run per function (``on_each`` after each: a progress bar)."""
        out = np.empty((len(codes), self.hidden_size), dtype=np.float32)
        for i, code in enumerate(codes):
            out[i] = self.embed(code)
            if on_each is not None:
                on_each()
        return out

    def pair_probability(self, code_a: str, code_b: str) -> float:
        """The clone probability of ``(code_a, code_b)`` from two embeddings and the head."""
        return float(self.head.probabilities(self.embed(code_a), self.embed(code_b)[None])[0])

    def fingerprint(self) -> str:
        """Changes whenever the vectors would: the encoder graph, the tokenizer or the block size."""
        tokenizer = self.folder / "tokenizer.json"
        return hash_json(hash_files(self.graph), hash_files(tokenizer) if tokenizer.is_file() else None,
                         self.block_size, self.pooling)
