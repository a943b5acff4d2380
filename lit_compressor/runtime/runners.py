"""Runners: the model's input tensors -> logits, with PyTorch or an ONNX Runtime CPU session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lit_compressor.core.errors import UserError

BACKENDS = ("pytorch", "onnx", "onnx-int8")
# Preferred file first: the ORT-fused graph is faster on CPU, the plain graph runs on any ONNX runtime; a
# single-function student ships its graph in the layout transformers.js reads (``onnx/``, ``[B, L]`` inputs).
ONNX_FILES = {"onnx": ("model.optimized.onnx", "model.onnx", "onnx/model.onnx"),
              "onnx-int8": ("model.int8.onnx", "onnx/model_quantized.onnx")}


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def ort_session(path: Path, threads: int | None = None, spin: bool = False):
    """A CPU ONNX Runtime session (all graph optimisations; a corrupt file is a UserError naming it)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Spinning worker threads burn cores the IDE needs, and on a busy CPU they were slower too.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own Fail/InvalidProtobuf/... for a bad file
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise UserError(f"ONNX Runtime cannot load this model file ({reason}).", path,
                        "The file is corrupt or truncated: export the model again with `lit-compressor export`."
                        ) from None


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
    """Token tensors (and a data-flow model's position ids) -> logits with an ONNX Runtime session (CPU).

    A graph with ``[B, L]`` inputs (the transformers.js layout of a single-function student) gets the one
    function of each row."""

    def __init__(self, path: Path, threads: int | None = None, spin: bool = False):
        self.path = path
        self.session = ort_session(path, threads, spin)
        self.per_function = len(self.session.get_inputs()[0].shape) == 2
        self.batch_dependent = quantized_at_run_time(path)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 position_ids: torch.Tensor | None = None) -> np.ndarray:
        if self.per_function:
            input_ids, attention_mask = input_ids[:, 0], attention_mask[:, 0]
        feeds = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
        if position_ids is not None:  # a data-flow model: positions and the [B, n, L, L] graph mask
            feeds["position_ids"] = position_ids.numpy()
        return self.session.run(["logits"], feeds)[0]


def quantized_at_run_time(path: Path) -> bool:
    """Whether ``path`` is one of our dynamic int8 graphs (``*.int8.onnx``, transformers.js' ``model_quantized.onnx``):
    they quantise a run's activations with that run's range, padding and the other rows of the batch included."""
    return path.name.endswith(".int8.onnx") or path.name == "model_quantized.onnx"


def onnx_file(folder: Path, backend: str) -> Path:
    """The ONNX file a backend runs, or a UserError saying how to make it."""
    for name in ONNX_FILES[backend]:
        if (folder / name).is_file():
            return folder / name
    command, load = ("", "DIR/shipped") if backend == "onnx-int8" else (" --full true", "DIR/full (every form)")
    raise UserError(f"no {' or '.join(ONNX_FILES[backend])} for the {backend!r} backend.", folder,
                    f"Export the student with `lit-compressor export --model STUDENT --output DIR{command}` and load "
                    f"{load}.")
