"""Predict with a shipped student: the one import an IDE plug-in needs.

``TinyClassifier.from_pretrained(folder)`` reads the shipped folder ``lit-compressor export`` writes
(``export/shipped``: int8 ONNX), or a folder written by training or ``export --full true``, and runs it
with ONNX Runtime or PyTorch, with the folder's own tokenizer, whitespace normalisation and block size.
Importing this module never imports Lightning, DEAP or W&B.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lit_compressor.core.errors import UserError
from lit_compressor.graphcodebert.inputs import GraphCodeEncoder
from lit_compressor.nn.tokenization import CodeEncoder
from lit_compressor.runtime.folder import default_backend, load_folder
from lit_compressor.runtime.runners import softmax


@dataclass(frozen=True)
class Prediction:
    """A label, the probability of that label, and the probability of every label."""

    label: int
    probability: float
    probabilities: tuple[float, ...]


class TinyClassifier:
    """A student classifier with its tokenizer: ``predict(code)`` or ``predict(code_a, code_b)``."""

    def __init__(self, runner, encoder: CodeEncoder | GraphCodeEncoder, num_inputs: int, backend: str):
        self.runner = runner
        self.encoder = encoder
        self.num_inputs = num_inputs
        self.backend = backend

    @classmethod
    def from_pretrained(cls, folder: str | Path, backend: str = "auto", threads: int | None = None
                        ) -> TinyClassifier:
        """Load a shipped, exported or saved folder. ``backend``: ``auto`` (the folder's int8 graph when it has
        one, else PyTorch), ``onnx-int8``, ``onnx`` or ``pytorch``. ``threads`` caps CPU threads (for PyTorch,
        process-wide)."""
        backend = default_backend(folder) if backend == "auto" else backend
        opened = load_folder(folder, backend, threads)
        return cls(opened.runner, opened.encoder, opened.num_inputs, backend)

    def logits(self, rows: Sequence[Sequence[str]]) -> np.ndarray:
        """``[B, num_labels]`` logits of rows of ``num_inputs`` functions each."""
        return self.runner(**self.encoder.encode_codes(rows))  # a data-flow encoder adds position ids

    def predict(self, *codes: str | Sequence[str]) -> Prediction:
        """One function (single-input models) or two (pair models): ``predict(code_a, code_b)``, or the pair as
        one tuple, ``predict((code_a, code_b))``."""
        if len(codes) == 1 and not isinstance(codes[0], str):
            codes = tuple(codes[0])
        return self.predict_batch([codes])[0]

    def predict_batch(self, rows: Sequence[str | Sequence[str]], batch_size: int = 32) -> list[Prediction]:
        """Predict many: strings for single-input models, ``(code_a, code_b)`` pairs for pair models."""
        rows = [(row,) if isinstance(row, str) else tuple(row) for row in rows]
        for row in rows:
            if len(row) != self.num_inputs:
                usage = "predict(code_a, code_b)" if self.num_inputs == 2 else "predict(code)"
                raise UserError(f"this model reads {self.num_inputs} function(s) per prediction, got {len(row)}.",
                                fix=f"Call {usage}; predict_batch takes a list of "
                                    f"{'(code_a, code_b) pairs' if self.num_inputs == 2 else 'code strings'}.")
        predictions: list[Prediction] = []
        for start in range(0, len(rows), batch_size):
            probabilities = softmax(self.logits(rows[start:start + batch_size]).astype(np.float64))
            for row in probabilities:
                label = int(row.argmax())
                predictions.append(Prediction(label, float(row[label]), tuple(float(p) for p in row)))
        return predictions
