"""One way to open a model folder: plain or data-flow, for PyTorch or ONNX Runtime.

Every command that runs a saved model (``label``, ``export``, ``benchmark``, the online teacher of
distillation, :class:`~lit_compressor.runtime.classifier.TinyClassifier`) opens it with :func:`load_folder`.

An export folder (``lit-compressor export``'s output) holds ``shipped/`` (what a runtime loads: the int8
graphs, tokenizer, config, model card) and, on request, ``full/`` (every form: safetensors, fp32 ONNX);
given the export folder itself, :func:`resolve_folder` picks the one that holds the file a backend runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from lit_compressor.core.errors import UserError
from lit_compressor.core.metadata import is_graph_folder, read_metadata
from lit_compressor.graphcodebert.folder import graph_encoder, load_graph_classifier
from lit_compressor.graphcodebert.inputs import GraphCodeEncoder
from lit_compressor.nn.classifier import CodeClassifier
from lit_compressor.nn.folders import WEIGHT_FILES, load_classifier
from lit_compressor.nn.tokenization import CodeEncoder
from lit_compressor.runtime.runners import BACKENDS, ONNX_FILES, OrtRunner, TorchRunner, onnx_file

DEFAULT_BLOCK_SIZE = 400
SHIPPED, FULL = "shipped", "full"
"""The subfolders of an export folder: what a runtime loads, and every form (written on request)."""


def resolve_folder(folder: str | Path, files: Sequence[str]) -> Path:
    """``folder`` itself when it is a model folder, else (an export folder) its ``shipped/`` or ``full/``
    subfolder, the first that holds one of ``files``; a UserError saying how to get them otherwise."""
    folder = Path(folder)
    if (folder / "config.json").is_file() or not ((folder / SHIPPED).is_dir() or (folder / FULL).is_dir()):
        return folder
    for sub in (folder / SHIPPED, folder / FULL):
        if any((sub / name).is_file() for name in files):
            return sub
    raise UserError(f"this export folder holds no {' or '.join(files)}.", folder,
                    f"{SHIPPED}/ holds only the shipped graphs: export again with `--full true` to keep every form "
                    f"in {FULL}/ (safetensors and fp32 ONNX), or load the shipped form (backend onnx-int8).")


def backend_files(backend: str) -> Sequence[str]:
    """The files ``backend`` runs, preferred first."""
    return WEIGHT_FILES if backend == "pytorch" else ONNX_FILES[backend]


def default_backend(folder: str | Path) -> str:
    """The backend a folder is meant for: its int8 graph when it has one (a shipped folder), else PyTorch when it
    has weights (a training folder), else fp32 ONNX; an export folder: its shipped form."""
    folder = Path(folder)
    for backend in ("onnx-int8", "pytorch", "onnx"):
        if any((folder / name).is_file() for name in backend_files(backend)):
            return backend
    return "onnx-int8" if (folder / SHIPPED).is_dir() else "pytorch"


@dataclass
class ModelFolder:
    """A model folder opened for one backend: ``runner(**encoder.encode_codes(rows))`` gives logits."""

    path: Path
    metadata: dict[str, Any]
    tokenizer: PreTrainedTokenizerBase
    encoder: CodeEncoder | GraphCodeEncoder
    runner: TorchRunner | OrtRunner
    model: CodeClassifier | None
    """The PyTorch model (eval mode) for the ``pytorch`` backend; None for the ONNX backends."""

    @property
    def num_inputs(self) -> int:
        return int(self.metadata.get("num_inputs", 1))

    @property
    def dataflow(self) -> bool:
        return is_graph_folder(self.metadata)

    def logits(self, rows: Sequence[Sequence[str]]) -> np.ndarray:
        """``[B, labels]`` logits of rows of ``num_inputs`` functions each."""
        return self.runner(**self.encoder.encode_codes(rows))


def load_folder(folder: str | Path, backend: str = "pytorch", threads: int | None = None,
                block_size: int | None = None, cache_size: int = 200_000) -> ModelFolder:
    """Open ``folder`` (a fine-tuned teacher, a student, an export or an import) for ``backend``
    (``auto``: :func:`default_backend`).

    ``block_size`` overrides the folder's own (tokens per function; code + flow positions for data flow);
    ``threads`` caps CPU threads (for PyTorch, process-wide); ``cache_size`` bounds the encoder's memo.
    """
    if backend == "auto":
        backend = default_backend(folder)
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}.", fix=f"Use one of auto, {', '.join(BACKENDS)}.")
    folder = resolve_folder(folder, backend_files(backend))
    metadata = read_metadata(folder)
    model = None
    if backend == "pytorch":
        if threads:
            torch.set_num_threads(threads)
        if is_graph_folder(metadata):
            model, tokenizer, metadata = load_graph_classifier(folder)
        else:
            model, tokenizer, metadata = load_classifier(folder)
        runner: TorchRunner | OrtRunner = TorchRunner(model)
    else:
        from transformers import AutoTokenizer

        runner = OrtRunner(onnx_file(folder, backend), threads)
        tokenizer = AutoTokenizer.from_pretrained(folder)
    if is_graph_folder(metadata):
        encoder = graph_encoder(tokenizer, metadata, cache_size=cache_size, block_size=block_size)
    else:
        encoder = CodeEncoder(tokenizer, int(block_size or metadata.get("block_size", DEFAULT_BLOCK_SIZE)),
                              cache_size=cache_size)
    return ModelFolder(folder, metadata, tokenizer, encoder, runner, model)
