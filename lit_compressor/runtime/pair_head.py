"""The pair head of an exported pair student, run on cached function vectors (``head_prepare.onnx``, ``head.onnx``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lit_compressor.core.errors import UserError
from lit_compressor.runtime.runners import ort_session

HEAD_FILE, PREPARE_FILE = "head.onnx", "head_prepare.onnx"


class PairHead:
    """The pair head ``dense -> tanh -> out_proj`` of one query against ``N`` cached vectors, in one run.

    The dense layer's weight is one ``H x H`` block per feature of ``[u, v]`` (concat) or
    ``[u, v, |u-v|, u*v]`` (interaction). :meth:`prepare` applies the blocks that read one function
    alone to every cached vector once; a query then costs an ``[N, H]`` addition (concat) or one
    ``[N, 2H] x [2H, H]`` product (interaction: ``(u*v) W^T = v (W * u)^T``), a ``tanh`` and the
    output layer, in ONNX Runtime (faster than numpy here, and the very graphs the Node runtime runs).
    """

    def __init__(self, folder: str | Path, threads: int | None = None, positive_label: int = 1):
        folder = Path(folder)
        for name in (PREPARE_FILE, HEAD_FILE):
            if not (folder / name).is_file():
                raise UserError(f"no {name} (the pair head's graphs).", folder,
                                f"Re-export the model: `lit-compressor export --model {folder} --output DIR`.")
        self.prepare_session = ort_session(folder / PREPARE_FILE, threads)
        self.session = ort_session(folder / HEAD_FILE, threads)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.positive_label = positive_label

    def prepare(self, vectors: np.ndarray) -> np.ndarray:
        """``[2, N, H]``: every vector's block as the first function of a pair and as the second.
        Compute it once per set of cached vectors."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(vectors) == 0:
            return np.empty((2, 0, vectors.shape[1]), dtype=np.float32)
        return np.stack(self.prepare_session.run(["first", "second"], {"vectors": vectors}))

    def logits(self, query: np.ndarray, vectors: np.ndarray, prepared: np.ndarray | None = None,
               query_first: bool = True) -> np.ndarray:
        """``[N, labels]`` logits of the pairs ``(query, vectors[i])``, or ``(vectors[i], query)`` when
        ``query_first`` is false (the head is not symmetric)."""
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        prepared = self.prepare(vectors) if prepared is None else prepared
        place = 0 if query_first else 1
        feeds = {"query": query, "vectors": vectors, "query_block": self.prepare(query)[place],
                 "prepared": np.ascontiguousarray(prepared[1 - place])}
        return self.session.run(["logits"], {name: feeds[name] for name in self.inputs})[0]

    def probabilities(self, query: np.ndarray, vectors: np.ndarray, prepared: np.ndarray | None = None,
                      query_first: bool = True) -> np.ndarray:
        """``[N]`` probability of the positive label (a clone) for each pair ``(query, vectors[i])``."""
        logits = self.logits(query, vectors, prepared, query_first).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp[:, self.positive_label] / exp.sum(axis=1)
