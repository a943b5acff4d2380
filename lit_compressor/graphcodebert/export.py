"""``lit-compressor export`` of a data-flow folder: ONNX with position ids and the 3-D graph mask, int8.

The graph takes ``input_ids`` and ``position_ids`` ``[B, n, L]`` (int64) and ``attention_mask``
``[B, n, L, L]`` (bool, the graph-guided mask), and returns ``logits`` ``[B, labels]``. Like the plain
export, ONNX Runtime's logits are checked against PyTorch on real inputs (within 1e-4) before anything
is reported, and int8 is ONNX Runtime's dynamic quantisation.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lit_compressor.data.readers import Example
from lit_compressor.errors import UserError
from lit_compressor.graphcodebert.folder import graph_encoder, load_graph_classifier
from lit_compressor.graphcodebert.inputs import GraphCodeEncoder
from lit_compressor.graphcodebert.model import GraphCodeBERTClassifier
from lit_compressor.graphcodebert.runtime import GRAPH_INPUTS, GraphOrtRunner, GraphTorchRunner
from lit_compressor.inference import softmax
from lit_compressor.models.hf_folder import save_classifier

ONNX_TOLERANCE = 1e-4
ONNX_FILES = ("model.onnx", "model.optimized.onnx", "model.int8.onnx", "export.json")


class GraphLogitsModule(torch.nn.Module):
    """The exported graph: ``(input_ids, attention_mask, position_ids)`` -> ``logits``."""

    def __init__(self, classifier: GraphCodeBERTClassifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                position_ids: torch.Tensor) -> torch.Tensor:
        return self.classifier(input_ids, attention_mask, position_ids)


def export_graph_onnx(model: GraphCodeBERTClassifier, sample: dict[str, torch.Tensor], path: Path) -> Path:
    """TorchScript export with dynamic batch and length axes, eager attention (as the plain export)."""
    model = copy.deepcopy(model).eval()
    if hasattr(model.encoder, "set_attn_implementation"):
        model.encoder.set_attn_implementation("eager")
    sequence = {0: "batch", 2: "length"}
    axes = {"input_ids": sequence, "position_ids": sequence,
            "attention_mask": {0: "batch", 2: "length", 3: "length"}, "logits": {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(GraphLogitsModule(model).eval(), tuple(sample[name] for name in GRAPH_INPUTS), str(path),
                          input_names=list(GRAPH_INPUTS), output_names=["logits"], dynamic_axes=axes,
                          opset_version=17, dynamo=False)
    return path


def graph_logits(runner, encoder: GraphCodeEncoder, examples: list[Example], batch_size: int = 8) -> np.ndarray:
    """Logits of every example, batches padded to their longest function."""
    out = []
    for start in range(0, len(examples), batch_size):
        batch = encoder.encode_codes([e.codes for e in examples[start:start + batch_size]])
        out.append(runner(*(batch[name] for name in GRAPH_INPUTS)))
    return np.concatenate(out)


def check_against(reference: np.ndarray, logits: np.ndarray, path: Path) -> float:
    """The largest logit difference; an export that differs by more than the tolerance is a bug."""
    diff = float(np.abs(logits - reference).max())
    if diff > ONNX_TOLERANCE:
        raise RuntimeError(f"{path}: ONNX Runtime logits differ from PyTorch by {diff:.2e} (> {ONNX_TOLERANCE}); "
                           "the export is wrong, please report it.")
    return diff


def export_graph(model: Path, output: Path, examples: list[Example], check_inputs: str, onnx: bool = True,
                 int8: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Export a data-flow folder; the checks and accuracies use ``examples`` (real test examples).

    Called by :func:`lit_compressor.export.export`, which checks the arguments and picks the examples.
    """
    from lit_compressor.export import accuracy, file_sizes, optimize_onnx, quantize_onnx

    model, output = Path(model), Path(output)
    if not examples:
        raise UserError("no examples to check the export on.", fix="Give --data a task folder with a test split.")
    classifier, tokenizer, metadata = load_graph_classifier(model)
    if overwrite and output.is_dir() and output.resolve() != model.resolve():
        for name in ONNX_FILES:
            (output / name).unlink(missing_ok=True)
    if output.resolve() != model.resolve():
        save_classifier(classifier, tokenizer, output, {k: v for k, v in metadata.items() if k != "num_inputs"})
    encoder = graph_encoder(tokenizer, metadata)
    report: dict[str, Any] = {
        "model": str(model), "num_inputs": classifier.num_inputs, "inputs": "dataflow",
        "language": metadata.get("language"), "block_size": encoder.block_size,
        "parameters": sum(p.numel() for p in classifier.parameters()), "check_inputs": check_inputs,
    }
    reference = graph_logits(GraphTorchRunner(classifier), encoder, examples)
    report["accuracy"] = {"pytorch": accuracy(reference, examples)}
    if onnx:
        sample = encoder.encode_codes([e.codes for e in examples[:2]])
        export_graph_onnx(classifier, sample, output / "model.onnx")
        optimize_onnx(output / "model.onnx", output / "model.optimized.onnx", classifier.config)
        report["onnx_max_abs_diff"] = {}
        for name in ("model.onnx", "model.optimized.onnx"):
            logits = graph_logits(GraphOrtRunner(output / name), encoder, examples)
            report["onnx_max_abs_diff"][name] = check_against(reference, logits, output / name)
            report["accuracy"][name] = accuracy(logits, examples)
    if int8:
        quantize_onnx(output / "model.optimized.onnx", output / "model.int8.onnx")
        logits = graph_logits(GraphOrtRunner(output / "model.int8.onnx"), encoder, examples)
        report["accuracy"]["model.int8.onnx"] = accuracy(logits, examples)
        report["int8"] = {
            "agreement_with_fp32": float((logits.argmax(-1) == reference.argmax(-1)).mean()),
            "max_abs_prob_diff": float(np.abs(softmax(logits) - softmax(reference)).max()),
        }
    (output / "export.json").write_text(json.dumps({**report, "files": file_sizes(output)}, indent=2) + "\n")
    report["files"] = file_sizes(output)
    sizes = ", ".join(f"{name} {size / 1e6:.2f} MB" for name, size in report["files"].items() if size > 1e5)
    print(f"exported {model} -> {output} (data-flow inputs): {sizes}; accuracy {report['accuracy']}")
    return report
