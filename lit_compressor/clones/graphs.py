"""The clone-search graphs of an exported student: an encoder-only graph and the pair head.

A pair model's logits are ``head(pool(encoder(a)), pool(encoder(b)))``; split in two, each function
is encoded once and the head runs on cached vectors. Written next to the pair model:

- ``encoder.onnx``: ``input_ids``/``attention_mask`` ``[B, L]`` -> ``pooled`` ``[B, H]`` (the
  student's own pooling: first token or masked mean);
- ``encoder.optimized.onnx``: the same with ONNX Runtime's fused CPU kernels;
- ``encoder.int8.onnx``: dynamic int8 quantisation of the optimized graph;
- ``head.onnx`` (pair models): ``query`` ``[1, H]`` and ``vectors`` ``[N, H]`` -> ``logits``
  ``[N, labels]``, the head of ``predict(query, vector_i)`` for every row (Node's batched head);
- ``clone_graphs.json``: the files and the check against the pair model.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lit_compressor.models.classifier import CodeClassifier

ENCODER_FILES = {"fp32": ("encoder.optimized.onnx", "encoder.onnx"), "int8": ("encoder.int8.onnx",)}
HEAD_FILE = "head.onnx"
REPORT_FILE = "clone_graphs.json"
GRAPH_TOLERANCE = 1e-4


class EncoderModule(torch.nn.Module):
    """``[B, L]`` token ids -> ``[B, H]`` pooled vectors, exactly the pair model's per-function features."""

    def __init__(self, classifier: CodeClassifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(input_ids.unsqueeze(1), attention_mask.unsqueeze(1))


class QueryHeadModule(torch.nn.Module):
    """``query [1, H]``, ``vectors [N, H]`` -> the pair head's logits of ``(query, vectors[i])``."""

    def __init__(self, classifier: CodeClassifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, query: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
        return self.classifier.head(torch.cat([query.expand(vectors.shape[0], -1), vectors], dim=-1))


def _export(module: torch.nn.Module, args: tuple, path: Path, inputs: list[str], output: str,
            axes: dict[str, dict[int, str]]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, str(path), input_names=inputs, output_names=[output],
                          dynamic_axes=axes, opset_version=17, dynamo=False)
    return path


def export_clone_graphs(classifier: CodeClassifier, output: Path, int8: bool = True,
                        check_batch: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """Write the encoder (and, for pair models, head) graphs of ``classifier`` to ``output``.

    ``check_batch`` (``input_ids``/``attention_mask`` ``[B, n, L]`` of real examples) is run through
    both the split graphs and the full model; a difference above 1e-4 in the logits is an export bug.
    """
    from lit_compressor.export import optimize_onnx, quantize_onnx

    output = Path(output)
    model = copy.deepcopy(classifier).eval()
    if hasattr(model.encoder, "set_attn_implementation"):
        model.encoder.set_attn_implementation("eager")  # the graph ORT's optimizer fuses
    sample_ids = torch.full((2, 8), 5, dtype=torch.long)
    sample_mask = torch.ones_like(sample_ids)
    length_axes = {0: "batch", 1: "length"}
    _export(EncoderModule(model), (sample_ids, sample_mask), output / "encoder.onnx",
            ["input_ids", "attention_mask"], "pooled",
            {"input_ids": length_axes, "attention_mask": length_axes, "pooled": {0: "batch"}})
    optimize_onnx(output / "encoder.onnx", output / "encoder.optimized.onnx", model.config)
    files = ["encoder.onnx", "encoder.optimized.onnx"]
    if int8:
        quantize_onnx(output / "encoder.optimized.onnx", output / "encoder.int8.onnx")
        files.append("encoder.int8.onnx")
    hidden = model.config.hidden_size
    if model.num_inputs == 2:
        _export(QueryHeadModule(model), (torch.zeros(1, hidden), torch.zeros(3, hidden)), output / HEAD_FILE,
                ["query", "vectors"], "logits", {"vectors": {0: "rows"}, "logits": {0: "rows"}})
        files.append(HEAD_FILE)
    report: dict[str, Any] = {"hidden_size": hidden, "num_inputs": model.num_inputs, "pooling": model.pooling,
                              "pair_head": model.pair_head, "files": files}
    if check_batch is not None:
        report["max_abs_logit_diff"] = check_split_graphs(model, output, check_batch)
        if report["max_abs_logit_diff"] > GRAPH_TOLERANCE:
            raise RuntimeError(f"{output}: encoder + head graphs differ from the pair model by "
                               f"{report['max_abs_logit_diff']:.2e} (> {GRAPH_TOLERANCE}); please report it.")
    (output / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report


def check_split_graphs(model: CodeClassifier, folder: Path, batch: dict[str, torch.Tensor]) -> float:
    """Largest |logit difference| between the full model and encoder.onnx (+ head) on ``batch``."""
    import onnxruntime as ort

    with torch.inference_mode():
        reference = model(batch["input_ids"], batch["attention_mask"]).numpy()
    encoder = ort.InferenceSession(str(folder / "encoder.onnx"), providers=["CPUExecutionProvider"])
    rows, n, _ = batch["input_ids"].shape
    pooled = []
    for i in range(rows):
        for j in range(n):
            mask = batch["attention_mask"][i, j]
            length = int(mask.sum())
            feeds = {"input_ids": batch["input_ids"][i, j, :length].numpy()[None],
                     "attention_mask": mask[:length].numpy()[None]}
            pooled.append(encoder.run(["pooled"], feeds)[0][0])
    vectors = np.stack(pooled).reshape(rows, n, -1)
    if n == 1:
        with torch.inference_mode():
            logits = model.head(torch.from_numpy(vectors[:, 0])).numpy()
    else:
        head = ort.InferenceSession(str(folder / HEAD_FILE), providers=["CPUExecutionProvider"])
        logits = np.concatenate([head.run(["logits"], {"query": vectors[i, :1, :], "vectors": vectors[i, 1:, :]})[0]
                                 for i in range(rows)])
    return float(np.abs(logits - reference).max())


def ensure_clone_graphs(folder: Path, int8: bool = True) -> bool:
    """Export the clone graphs into an exported folder that predates them. True when it wrote them."""
    from lit_compressor.models.hf_folder import load_classifier, read_metadata

    folder = Path(folder)
    needed = ["encoder.onnx"] + (["encoder.int8.onnx"] if int8 else [])
    if read_metadata(folder).get("num_inputs", 1) == 2:
        needed.append(HEAD_FILE)
    if all((folder / name).is_file() for name in needed):
        return False
    classifier, _, _ = load_classifier(folder)
    export_clone_graphs(classifier, folder, int8=int8)
    return True
