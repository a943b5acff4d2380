"""Running a data-flow folder: the plain runners of :mod:`lit_compressor.inference`, fed the tensors of
:class:`~lit_compressor.graphcodebert.inputs.GraphCodeEncoder` (``input_ids``/``position_ids``
``[B, n, L]``, a bool ``attention_mask`` ``[B, n, L, L]``)."""

from __future__ import annotations

from pathlib import Path

import torch

from lit_compressor.graphcodebert.folder import graph_encoder, load_graph_classifier
from lit_compressor.graphcodebert.inputs import GraphCodeEncoder
from lit_compressor.inference import OrtRunner, TorchRunner, onnx_file
from lit_compressor.models.hf_folder import read_metadata


def load_graph_runtime(folder: str | Path, backend: str, threads: int | None = None,
                       cache_size: int = 200_000) -> tuple[TorchRunner | OrtRunner, GraphCodeEncoder,
                                                           torch.nn.Module | None]:
    """``(runner, input builder, PyTorch model or None)`` of a data-flow folder in ``backend``."""
    folder = Path(folder)
    if backend == "pytorch":
        if threads:
            torch.set_num_threads(threads)
        model, tokenizer, metadata = load_graph_classifier(folder)
        return TorchRunner(model), graph_encoder(tokenizer, metadata, cache_size=cache_size), model
    from transformers import AutoTokenizer

    runner = OrtRunner(onnx_file(folder, backend), threads)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return runner, graph_encoder(tokenizer, read_metadata(folder), cache_size=cache_size), None
