"""Running a data-flow folder: PyTorch and ONNX Runtime runners that also feed position ids.

Both take the tensors of :class:`~lit_compressor.graphcodebert.inputs.GraphCodeEncoder`
(``input_ids``/``position_ids`` ``[B, n, L]``, a bool ``attention_mask`` ``[B, n, L, L]``) and return
``[B, labels]`` logits, like the plain runners of :mod:`lit_compressor.inference`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lit_compressor.graphcodebert.folder import graph_encoder, load_graph_classifier
from lit_compressor.graphcodebert.inputs import GraphCodeEncoder
from lit_compressor.inference import OrtRunner, onnx_file
from lit_compressor.models.hf_folder import read_metadata

GRAPH_INPUTS = ("input_ids", "attention_mask", "position_ids")


class GraphTorchRunner:
    """Graph tensors -> logits with the PyTorch model."""

    def __init__(self, model: torch.nn.Module):
        self.model = model.eval()

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 position_ids: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return self.model(input_ids, attention_mask, position_ids).float().numpy()


class GraphOrtRunner(OrtRunner):
    """Graph tensors -> logits with an ONNX Runtime session (CPU)."""

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 position_ids: torch.Tensor) -> np.ndarray:
        feeds = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.bool().numpy(),
                 "position_ids": position_ids.numpy()}
        return self.session.run(["logits"], feeds)[0]


def load_graph_runtime(folder: str | Path, backend: str, threads: int | None = None,
                       cache_size: int = 200_000) -> tuple[GraphTorchRunner | GraphOrtRunner, GraphCodeEncoder,
                                                           torch.nn.Module | None]:
    """``(runner, input builder, PyTorch model or None)`` of a data-flow folder in ``backend``."""
    folder = Path(folder)
    if backend == "pytorch":
        if threads:
            torch.set_num_threads(threads)
        model, tokenizer, metadata = load_graph_classifier(folder)
        return GraphTorchRunner(model), graph_encoder(tokenizer, metadata, cache_size=cache_size), model
    from transformers import AutoTokenizer

    runner = GraphOrtRunner(onnx_file(folder, backend), threads)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return runner, graph_encoder(tokenizer, read_metadata(folder), cache_size=cache_size), None
