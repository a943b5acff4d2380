"""Predict with a shipped student: the one import an IDE plug-in needs.

``TinyClassifier.from_pretrained(folder)`` reads a folder written by ``save_classifier`` or
``lit-compressor export`` and runs it with PyTorch or ONNX Runtime, with the folder's own tokenizer,
whitespace normalisation and block size. Importing this module never imports Lightning, DEAP or W&B.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lit_compressor.errors import UserError
from lit_compressor.models.hf_folder import load_classifier, read_metadata
from lit_compressor.tokenization import CodeEncoder

DEFAULT_BLOCK_SIZE = 400
BACKENDS = ("pytorch", "onnx", "onnx-int8")
# Preferred file first: the ORT-fused graph is faster on CPU, the plain graph runs on any ONNX runtime.
ONNX_FILES = {"onnx": ("model.optimized.onnx", "model.onnx"), "onnx-int8": ("model.int8.onnx",)}


@dataclass(frozen=True)
class Prediction:
    """A label, the probability of that label, and the probability of every label."""

    label: int
    probability: float
    probabilities: tuple[float, ...]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class TorchRunner:
    """Token tensors (and a data-flow model's position ids) -> logits with the PyTorch model."""

    def __init__(self, model: torch.nn.Module):
        self.model = model.eval()

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 position_ids: torch.Tensor | None = None) -> np.ndarray:
        inputs = (input_ids, attention_mask) if position_ids is None else (input_ids, attention_mask, position_ids)
        with torch.inference_mode():
            return self.model(*inputs).float().numpy()


class OrtRunner:
    """Token tensors (and a data-flow model's position ids) -> logits with an ONNX Runtime session (CPU)."""

    def __init__(self, path: Path, threads: int | None = None, spin: bool = False):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Spinning worker threads burn cores the IDE needs, and on a busy CPU they were slower too.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        self.path = path
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 position_ids: torch.Tensor | None = None) -> np.ndarray:
        feeds = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
        if position_ids is not None:  # a data-flow model: positions and the [B, n, L, L] graph mask
            feeds["position_ids"] = position_ids.numpy()
        return self.session.run(["logits"], feeds)[0]


def onnx_file(folder: Path, backend: str) -> Path:
    """The ONNX file a backend runs, or a UserError saying how to make it."""
    for name in ONNX_FILES[backend]:
        if (folder / name).is_file():
            return folder / name
    flag = " (int8 is on by default)" if backend == "onnx-int8" else ""
    raise UserError(f"no {' or '.join(ONNX_FILES[backend])} for the {backend!r} backend.", folder,
                    f"Run `lit-compressor export --model {folder} --output DIR`{flag} and load DIR.")


class TinyClassifier:
    """A student classifier with its tokenizer: ``predict(code)`` or ``predict(code_a, code_b)``."""

    def __init__(self, runner, encoder: CodeEncoder, num_inputs: int, backend: str):
        self.runner = runner
        self.encoder = encoder
        self.num_inputs = num_inputs
        self.backend = backend

    @classmethod
    def from_pretrained(cls, folder: str | Path, backend: str = "pytorch", threads: int | None = None
                        ) -> TinyClassifier:
        """Load a saved or exported folder. ``threads`` caps CPU threads (for PyTorch, process-wide)."""
        folder = Path(folder)
        if backend not in BACKENDS:
            raise UserError(f"unknown backend {backend!r}.", fix=f"Use one of {', '.join(BACKENDS)}.")
        if not (folder / "config.json").is_file():
            raise UserError("not a model folder (no config.json).", folder,
                            "Give a folder written by training or by `lit-compressor export`.")
        metadata = read_metadata(folder)
        if metadata.get("kind") == "graphcodebert":  # data-flow inputs: GraphCodeBERT students and teachers
            from lit_compressor.graphcodebert.runtime import load_graph_runtime

            runner, graph_encoder, _ = load_graph_runtime(folder, backend, threads)
            return cls(runner, graph_encoder, int(metadata.get("num_inputs", 1)), backend)
        if backend == "pytorch":
            if threads:
                torch.set_num_threads(threads)
            model, tokenizer, metadata = load_classifier(folder)
            runner = TorchRunner(model)
        else:
            from transformers import AutoTokenizer

            runner = OrtRunner(onnx_file(folder, backend), threads)
            tokenizer = AutoTokenizer.from_pretrained(folder)
        encoder = CodeEncoder(tokenizer, int(metadata.get("block_size", DEFAULT_BLOCK_SIZE)))
        return cls(runner, encoder, int(metadata.get("num_inputs", 1)), backend)

    def logits(self, rows: Sequence[Sequence[str]]) -> np.ndarray:
        """``[B, num_labels]`` logits of rows of ``num_inputs`` functions each."""
        return self.runner(**self.encoder.encode_codes(rows))  # a data-flow encoder adds position ids

    def predict(self, *codes: str) -> Prediction:
        """One function (single-input models) or two (pair models)."""
        return self.predict_batch([codes])[0]

    def predict_batch(self, rows: Sequence[str | Sequence[str]], batch_size: int = 32) -> list[Prediction]:
        """Predict many: strings for single-input models, ``(code_a, code_b)`` pairs for pair models."""
        rows = [(row,) if isinstance(row, str) else tuple(row) for row in rows]
        for row in rows:
            if len(row) != self.num_inputs:
                raise UserError(f"this model reads {self.num_inputs} function(s) per prediction, "
                                f"got {len(row)}.",
                                fix="Pass one code string, or a (code_a, code_b) pair for a pair model.")
        predictions: list[Prediction] = []
        for start in range(0, len(rows), batch_size):
            probabilities = softmax(self.logits(rows[start:start + batch_size]).astype(np.float64))
            for row in probabilities:
                label = int(row.argmax())
                predictions.append(Prediction(label, float(row[label]), tuple(float(p) for p in row)))
        return predictions
