"""The clone-search graphs of an exported student: an encoder-only graph and the pair head.

A pair model's logits are ``head(pool(encoder(a)), pool(encoder(b)))``; split in two, each function
is encoded once and the head runs on cached vectors. Written next to the pair model:

- ``encoder.onnx``: ``input_ids``/``attention_mask`` ``[B, L]`` -> ``pooled`` ``[B, H]`` (the
  student's own pooling: first token or masked mean);
- ``encoder.optimized.onnx``: the same with ONNX Runtime's fused CPU kernels;
- ``encoder.int8.onnx``: dynamic int8 quantisation of the optimized graph;
- ``head_prepare.onnx`` and ``head.onnx`` (pair models): the pair head of one query against every
  cached vector in one run, with the dense layer applied block by block. ``head_prepare`` maps
  ``vectors`` ``[N, H]`` to ``first`` and ``second`` ``[N, H]``: the blocks that read a function
  alone, in the first or the second place of a pair (run once per index, and once per query).
  ``head`` maps ``query_block`` ``[1, H]`` (the query's block for its place), ``prepared`` ``[N, H]``
  (the vectors' block for the other place) and, for the interaction head, ``query`` ``[1, H]`` and
  ``vectors`` ``[N, H]`` (``|u-v|`` and ``u*v`` read both) to ``logits`` ``[N, labels]``;
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

from lit_compressor.core.metadata import read_metadata
from lit_compressor.nn.classifier import CodeClassifier
from lit_compressor.nn.folders import load_classifier
from lit_compressor.runtime.onnx import optimize_onnx, quantize_onnx
from lit_compressor.runtime.pair_head import HEAD_FILE, PREPARE_FILE, PairHead
from lit_compressor.runtime.runners import ort_session

ENCODER_FILES = {"fp32": ("encoder.optimized.onnx", "encoder.onnx"), "int8": ("encoder.int8.onnx",)}
REPORT_FILE = "clone_graphs.json"
GRAPH_TOLERANCE = 1e-4


class EncoderModule(torch.nn.Module):
    """``[B, L]`` token ids -> ``[B, H]`` pooled vectors, exactly the pair model's per-function features."""

    def __init__(self, classifier: CodeClassifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(input_ids.unsqueeze(1), attention_mask.unsqueeze(1))


class HeadPrepareModule(torch.nn.Module):
    """``vectors [N, H]`` -> the dense layer's blocks that read one function alone: as the first of a
    pair (``vectors @ W_u^T``) and as the second (``vectors @ W_v^T``)."""

    def __init__(self, classifier: CodeClassifier):
        super().__init__()
        hidden = classifier.config.hidden_size
        weight = classifier.classifier.dense.weight.detach()
        self.register_buffer("w_first", weight[:, :hidden].T.contiguous())
        self.register_buffer("w_second", weight[:, hidden:2 * hidden].T.contiguous())

    def forward(self, vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return vectors @ self.w_first, vectors @ self.w_second


class QueryHeadModule(torch.nn.Module):
    """The pair head of one query against ``N`` vectors, from the blocks :class:`HeadPrepareModule` gives.

    ``tanh(query_block + prepared + b [+ |u-v| W_d^T + v (W_p * u)^T]) -> out_proj``: the head's own
    arithmetic, in either order (``|u-v|`` and ``u*v`` do not depend on it).
    """

    def __init__(self, classifier: CodeClassifier):
        super().__init__()
        hidden = classifier.config.hidden_size
        weight = classifier.classifier.dense.weight.detach()
        self.interaction = classifier.pair_head == "interaction"
        self.register_buffer("bias", classifier.classifier.dense.bias.detach().clone())
        if self.interaction:
            self.register_buffer("w_abs", weight[:, 2 * hidden:3 * hidden].T.contiguous())
            self.register_buffer("w_product", weight[:, 3 * hidden:].clone())
        self.out_proj = copy.deepcopy(classifier.classifier.out_proj)

    def forward(self, query_block: torch.Tensor, prepared: torch.Tensor, query: torch.Tensor | None = None,
                vectors: torch.Tensor | None = None) -> torch.Tensor:
        pre = prepared + (query_block + self.bias)
        if self.interaction:
            features = torch.cat([(vectors - query).abs(), vectors], dim=-1)
            pre = pre + features @ torch.cat([self.w_abs, (self.w_product * query).T], dim=0)
        return self.out_proj(torch.tanh(pre))


def _export(module: torch.nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
            axes: dict[str, dict[int, str]]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=17, dynamo=False)
    return path


def export_clone_graphs(classifier: CodeClassifier, output: Path, int8: bool = True,
                        check_batch: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """Write the encoder (and, for pair models, head) graphs of ``classifier`` to ``output``.

    ``check_batch`` (``input_ids``/``attention_mask`` ``[B, n, L]`` of real examples) is run through
    both the split graphs and the full model; a difference above 1e-4 in the logits is an export bug.
    """
    output = Path(output)
    model = copy.deepcopy(classifier).eval()
    if hasattr(model.encoder, "set_attn_implementation"):
        model.encoder.set_attn_implementation("eager")  # the graph ORT's optimizer fuses
    sample_ids = torch.full((2, 8), 5, dtype=torch.long)
    sample_mask = torch.ones_like(sample_ids)
    length_axes = {0: "batch", 1: "length"}
    _export(EncoderModule(model), (sample_ids, sample_mask), output / "encoder.onnx",
            ["input_ids", "attention_mask"], ["pooled"],
            {"input_ids": length_axes, "attention_mask": length_axes, "pooled": {0: "batch"}})
    optimize_onnx(output / "encoder.onnx", output / "encoder.optimized.onnx", model.config)
    files = ["encoder.onnx", "encoder.optimized.onnx"]
    if int8:
        quantize_onnx(output / "encoder.optimized.onnx", output / "encoder.int8.onnx")
        files.append("encoder.int8.onnx")
    hidden = model.config.hidden_size
    if model.num_inputs == 2:
        rows = {0: "rows"}
        vector = torch.zeros(1, hidden), torch.zeros(3, hidden)
        _export(HeadPrepareModule(model), (vector[1],), output / PREPARE_FILE, ["vectors"], ["first", "second"],
                {"vectors": rows, "first": rows, "second": rows})
        head = QueryHeadModule(model)
        names = ["query_block", "prepared", "query", "vectors"] if head.interaction else ["query_block", "prepared"]
        args = (vector[0], vector[1], vector[0], vector[1])[:len(names)]
        _export(head, args, output / HEAD_FILE, names, ["logits"],
                {"prepared": rows, "logits": rows, **({"vectors": rows} if head.interaction else {})})
        files += [PREPARE_FILE, HEAD_FILE]
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
    with torch.inference_mode():
        reference = model(batch["input_ids"], batch["attention_mask"]).numpy()
    encoder = ort_session(folder / "encoder.onnx")
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
        logits = np.concatenate([run_head(folder, vectors[i, 0], vectors[i, 1:]) for i in range(rows)])
    return float(np.abs(logits - reference).max())


def run_head(folder: Path, query: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """``[N, labels]`` logits of ``(query, vectors[i])`` from ``head_prepare.onnx`` and ``head.onnx``."""
    return PairHead(folder).logits(query, vectors)


def ensure_clone_graphs(folder: Path, int8: bool = True) -> bool:
    """Export the clone graphs into a model folder with weights that predates them (an export folder, or a shipped
    folder without weights, is left as it is). True when it wrote them."""
    folder = Path(folder)
    if not (folder / "model.safetensors").is_file():
        return False
    needed = ["encoder.onnx"] + (["encoder.int8.onnx"] if int8 else [])
    if read_metadata(folder).get("num_inputs", 1) == 2:
        needed += [PREPARE_FILE, HEAD_FILE]
    if all((folder / name).is_file() for name in needed):
        return False
    classifier, _, _ = load_classifier(folder)
    export_clone_graphs(classifier, folder, int8=int8)
    return True
