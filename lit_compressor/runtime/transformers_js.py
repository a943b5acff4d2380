"""A single-function student in the layout transformers.js reads: ``onnx/model.onnx`` (fp32) and
``onnx/model_quantized.onnx`` (int8), with ``[B, L]`` inputs.

``@huggingface/transformers``' ``pipeline("text-classification", folder)`` tokenizes with ``tokenizer.json``
and feeds ``input_ids``/``attention_mask`` ``[B, L]``, truncating (when it truncates) by cutting the end off,
special tokens included. Our graphs read ``[B, n, L]``, and Python truncates each function to ``block_size``
tokens *keeping* the closing special tokens. The graph written here bridges both: it takes the whole
tokenization of each function, keeps the first ``block_size`` tokens and puts the closing special tokens
(``</s>``) back at the end of a function that was longer, exactly as ``CodeEncoder`` truncates; then runs
the student on the one function. Given already truncated ids (our runtimes), it is the student itself.

Whitespace: Python collapses every run of whitespace before tokenizing; the shipped ``tokenizer.json``
does it itself (:func:`with_whitespace_normalizer`), so transformers.js needs no preprocessing.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path
from typing import Any

import torch

from lit_compressor.runtime.onnx import optimize_onnx, quantize_onnx

FP32_FILE, INT8_FILE = "onnx/model.onnx", "onnx/model_quantized.onnx"
# Python's whitespace (str.isspace, what str.split() splits on): 29 code points, listed one by one so that
# Rust's Oniguruma and JavaScript's RegExp read the class alike (their \s differ from Python's and each other).
PYTHON_WHITESPACE = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
WHITESPACE_NORMALIZERS = [
    {"type": "Replace", "pattern": {"Regex": f"[{PYTHON_WHITESPACE}]+"}, "content": " "},
    {"type": "Replace", "pattern": {"Regex": "^ | $"}, "content": ""},
]


class TruncatingClassifier(torch.nn.Module):
    """``input_ids``/``attention_mask`` ``[B, L]`` (any L) -> ``logits``: the first ``block_size`` tokens of
    each function, its closing special tokens (``suffix``) restored when it was longer."""

    def __init__(self, classifier: torch.nn.Module, block_size: int, suffix: list[int]):
        super().__init__()
        self.classifier = classifier
        self.block_size = block_size
        self.register_buffer("suffix", torch.tensor(suffix, dtype=torch.long), persistent=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        ids, mask = input_ids[:, : self.block_size], attention_mask[:, : self.block_size]
        longer = (attention_mask.sum(dim=1, keepdim=True) > self.block_size)  # [B, 1]
        positions = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)  # [1, L'] (L' <= block_size)
        start = self.block_size - self.suffix.shape[0]
        for j in range(self.suffix.shape[0]):
            ids = torch.where(longer & (positions == start + j), self.suffix[j], ids)
        return self.classifier(ids.unsqueeze(1), mask.unsqueeze(1))


def closing_tokens(tokenizer_json: dict[str, Any]) -> list[int]:
    """The ids the post-processor puts after a single sequence (``</s>`` for our students)."""
    processor = tokenizer_json.get("post_processor") or {}
    kind = processor.get("type")
    if kind == "TemplateProcessing":
        items = processor["single"]
        after = items[[i for i, item in enumerate(items) if "Sequence" in item][0] + 1:]
        return [i for item in after for i in processor["special_tokens"][item["SpecialToken"]["id"]]["ids"]]
    if kind in ("RobertaProcessing", "BertProcessing"):
        return [processor["sep"][1]]
    if kind in (None, "ByteLevel"):
        return []
    raise ValueError(f"post-processor {kind} is not supported for the transformers.js export")


def with_whitespace_normalizer(tokenizer_json: dict[str, Any]) -> dict[str, Any]:
    """``tokenizer.json`` whose normalizer first collapses whitespace as Python's ``" ".join(code.split())``
    (idempotent: text already collapsed tokenizes as before). Applying it twice adds nothing."""
    out = copy.deepcopy(tokenizer_json)
    current = out.get("normalizer")
    steps = current["normalizers"] if current and current.get("type") == "Sequence" else [current] if current else []
    if steps[:2] == WHITESPACE_NORMALIZERS:
        return out
    out["normalizer"] = {"type": "Sequence", "normalizers": WHITESPACE_NORMALIZERS + steps}
    return out


def export_transformers_js(classifier: torch.nn.Module, tokenizer_json: dict[str, Any], block_size: int,
                           folder: Path, int8: bool = True) -> list[str]:
    """Write ``folder/onnx/model.onnx`` (and ``model_quantized.onnx``: ORT-fused, dynamic int8), the files
    transformers.js loads for dtype ``fp32`` and ``q8``. Returns the files written, relative to ``folder``."""
    model = copy.deepcopy(classifier).eval()
    if hasattr(model.encoder, "set_attn_implementation"):
        model.encoder.set_attn_implementation("eager")  # the graph ORT's optimizer fuses
    module = TruncatingClassifier(model, block_size, closing_tokens(tokenizer_json)).eval()
    (folder / "onnx").mkdir(parents=True, exist_ok=True)
    sample = torch.full((2, 8), 5, dtype=torch.long)
    axes = {0: "batch", 1: "length"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (sample, torch.ones_like(sample)), str(folder / FP32_FILE),
                          input_names=["input_ids", "attention_mask"], output_names=["logits"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "logits": {0: "batch"}},
                          opset_version=17, dynamo=False)
    files = [FP32_FILE]
    if int8:
        optimized = folder / "onnx" / "model.optimized.tmp.onnx"
        optimize_onnx(folder / FP32_FILE, optimized, model.config)
        quantize_onnx(optimized, folder / INT8_FILE)
        optimized.unlink()
        files.append(INT8_FILE)
    return files


def transformers_js_config(config: dict[str, Any], int8: bool) -> dict[str, Any]:
    """``config.json`` for transformers.js: which file its default dtype loads (``q8``: the int8 graph)."""
    return {**config, "transformers.js_config": {"dtype": "q8" if int8 else "fp32"}}


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())
