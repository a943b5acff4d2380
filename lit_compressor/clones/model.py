"""A student split for clone search: ``embed(code)`` once per function, the pair head on cached vectors.

:class:`CloneModel` runs the encoder graph (``encoder.optimized.onnx``/``encoder.onnx`` or
``encoder.int8.onnx``) one function at a time, so a function's vector never depends on what it was
batched with, and :class:`PairHead` evaluates the student's own head for one query against every
cached vector with numpy. ``probabilities(embed(a), [embed(b)])`` equals the pair model's
``predict(a, b)`` probability of a clone (same precision) up to float32 rounding.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from lit_compressor.clones.graphs import ENCODER_FILES
from lit_compressor.data.readers import normalize_whitespace
from lit_compressor.errors import UserError

PRECISIONS = ("fp32", "int8")


def code_hash(code: str) -> str:
    """The content key of a function: sha256 of its whitespace-normalised text (what the model reads)."""
    return hashlib.sha256(normalize_whitespace(code).encode("utf-8")).hexdigest()


class PairHead:
    """The pair head ``dense -> tanh -> out_proj`` over ``[u, v]`` or ``[u, v, |u-v|, u*v]``, vectorised.

    The dense layer's weight splits into one ``H x H`` block per feature; the block that reads ``v``
    is applied to every cached vector once (:meth:`prepare`), so a query costs one ``[N, 2H] x [2H, H]``
    product for the interaction head (``u*v @ W^T`` is ``v @ (W * u)^T``) and an ``[N, H]`` addition for
    the concat head.
    """

    def __init__(self, dense_weight: np.ndarray, dense_bias: np.ndarray, out_weight: np.ndarray,
                 out_bias: np.ndarray, pair_head: str, positive_label: int = 1):
        hidden = dense_weight.shape[0]
        blocks = 4 if pair_head == "interaction" else 2
        if dense_weight.shape[1] != blocks * hidden:
            raise UserError(f"the head's dense layer reads {dense_weight.shape[1]} features, not {blocks} x "
                            f"{hidden} for a {pair_head!r} pair head.", fix="Re-export the model.")
        self.pair_head, self.hidden, self.positive_label = pair_head, hidden, positive_label
        weight = dense_weight.astype(np.float32)
        self.w_query, self.w_vector = weight[:, :hidden], np.ascontiguousarray(weight[:, hidden:2 * hidden].T)
        if pair_head == "interaction":  # the |u-v| block (transposed) and the u*v block
            self.w_abs = np.ascontiguousarray(weight[:, 2 * hidden:3 * hidden].T)
            self.w_product = weight[:, 3 * hidden:]
        self.bias = dense_bias.astype(np.float32)
        self.out_weight, self.out_bias = out_weight.astype(np.float32).T.copy(), out_bias.astype(np.float32)
        if self.out_weight.shape[1] == 2:  # two labels: softmax is the sigmoid of the logit margin
            other = 1 - positive_label
            self.margin_weight = self.out_weight[:, positive_label] - self.out_weight[:, other]
            self.margin_bias = float(self.out_bias[positive_label] - self.out_bias[other])

    @classmethod
    def from_folder(cls, folder: Path, pair_head: str, positive_label: int = 1) -> PairHead:
        """The head weights of a pair model's ``model.safetensors`` (read with numpy, no torch)."""
        from safetensors import safe_open

        names = ("classifier.dense.weight", "classifier.dense.bias", "classifier.out_proj.weight",
                 "classifier.out_proj.bias")
        path = Path(folder) / "model.safetensors"
        if not path.is_file():
            raise UserError("no model.safetensors (the pair head's weights).", folder,
                            "Point --model at a folder written by `lit-compressor export`.")
        with safe_open(str(path), framework="np") as handle:
            missing = [name for name in names if name not in handle.keys()]
            if missing:
                raise UserError(f"no pair head in the weights ({missing[0]} missing).", path,
                                "Clone search needs a pair (clone detection) model.")
            tensors = [handle.get_tensor(name) for name in names]
        return cls(*tensors, pair_head=pair_head, positive_label=positive_label)

    def prepare(self, vectors: np.ndarray) -> np.ndarray:
        """``[2, N, H]``: the dense layer's blocks that read one vector alone, applied to every cached
        vector (as the first function of a pair, and as the second). Cache it with the vectors."""
        vectors = np.asarray(vectors, dtype=np.float32)
        return np.stack([vectors @ self.w_query.T, vectors @ self.w_vector])

    def hidden_states(self, query: np.ndarray, vectors: np.ndarray, prepared: np.ndarray | None = None,
                      query_first: bool = True) -> np.ndarray:
        """``[N, H]``: ``tanh(dense(features))`` of the pairs ``(query, vectors[i])`` (or reversed)."""
        query = np.asarray(query, dtype=np.float32)
        vectors = np.asarray(vectors, dtype=np.float32)
        prepared = self.prepare(vectors) if prepared is None else prepared
        own = self.w_query @ query if query_first else query @ self.w_vector
        if self.pair_head == "interaction":  # |u-v| and u*v are symmetric in u and v
            rows, hidden = vectors.shape
            features = np.empty((rows, 2 * hidden), dtype=np.float32)
            np.subtract(vectors, query, out=features[:, :hidden])
            np.abs(features[:, :hidden], out=features[:, :hidden])
            features[:, hidden:] = vectors
            pre = features @ np.concatenate([self.w_abs, (self.w_product * query).T])
            pre += prepared[1 if query_first else 0]
        else:
            pre = prepared[1 if query_first else 0].copy()
        pre += own + self.bias
        return np.tanh(pre, out=pre)

    def logits(self, query: np.ndarray, vectors: np.ndarray, prepared: np.ndarray | None = None,
               query_first: bool = True) -> np.ndarray:
        """``[N, labels]`` logits of the pairs ``(query, vectors[i])``, or ``(vectors[i], query)`` when
        ``query_first`` is false (the head is not symmetric)."""
        return self.hidden_states(query, vectors, prepared, query_first) @ self.out_weight + self.out_bias

    def probabilities(self, query: np.ndarray, vectors: np.ndarray, prepared: np.ndarray | None = None,
                      query_first: bool = True) -> np.ndarray:
        """``[N]`` probability of the positive label (a clone) for each pair ``(query, vectors[i])``."""
        if self.out_weight.shape[1] == 2:
            margin = self.hidden_states(query, vectors, prepared, query_first) @ self.margin_weight + self.margin_bias
            return 1.0 / (1.0 + np.exp(-margin.astype(np.float64)))
        logits = self.logits(query, vectors, prepared, query_first).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp[:, self.positive_label] / exp.sum(axis=1)


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

    def __init__(self, folder: Path, precision: str = "fp32", threads: int | None = None):
        import onnxruntime as ort
        from transformers import AutoTokenizer

        from lit_compressor.inference import DEFAULT_BLOCK_SIZE
        from lit_compressor.models.hf_folder import read_metadata
        from lit_compressor.tokenization import CodeEncoder

        self.folder = Path(folder)
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
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(self.graph), options, providers=["CPUExecutionProvider"])
        self._head: PairHead | None = None

    @classmethod
    def from_pretrained(cls, folder: str | Path, precision: str = "fp32", threads: int | None = None) -> CloneModel:
        return cls(Path(folder), precision, threads)

    @property
    def head(self) -> PairHead:
        """The pair head (a UserError for single-function models, which have none)."""
        if self.num_inputs != 2:
            raise UserError("this model reads one function at a time (vulnerability-style); it has no pair head "
                            "to compare two functions.", self.folder,
                            "Use a clone detection (pair) model for clone search.")
        if self._head is None:
            self._head = PairHead.from_folder(self.folder, self.pair_head, self.positive_label)
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
        digest = hashlib.sha256()
        for path in (self.graph, self.folder / "tokenizer.json"):
            digest.update(path.read_bytes() if path.is_file() else b"")
        digest.update(f"{self.block_size}|{self.pooling}".encode())
        return digest.hexdigest()[:32]
