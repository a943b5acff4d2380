"""``lit-compressor export``: a student folder -> safetensors folder, validated ONNX, int8 ONNX.

Files written to ``output``:

- the Hugging Face folder (``config.json``, ``model.safetensors``, tokenizer files);
- ``model.onnx``: standard ONNX ops, any ONNX runtime;
- ``model.optimized.onnx``: the same graph with ONNX Runtime's fused CPU kernels (Attention,
  SkipLayerNormalization, BiasGelu; ``com.microsoft`` ops, so ONNX Runtime only);
- ``model.int8.onnx``: ONNX Runtime dynamic int8 quantisation of the optimized graph;
- ``export.json``: sizes, the ONNX-vs-PyTorch check and the accuracy of every form on a test slice.

A data-flow folder (GraphCodeBERT's inputs) exports the same way; its graph also takes ``position_ids``
``[B, n, L]`` and its ``attention_mask`` is the bool graph-guided mask ``[B, n, L, L]``.

int8 is done in ONNX rather than with ``torch.ao`` dynamic quantisation: a quantised PyTorch module
only round-trips through pickle (``torch.save``), which we never ship, while an int8 ONNX file is
plain protobuf that ONNX Runtime loads safely on every platform an IDE plug-in runs on.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lit_compressor.data.readers import Example
from lit_compressor.data.task import load_task, seeded_sample
from lit_compressor.errors import UserError
from lit_compressor.inference import DEFAULT_BLOCK_SIZE, OrtRunner, TorchRunner, softmax
from lit_compressor.models.hf_folder import load_classifier, read_metadata, save_classifier
from lit_compressor.tokenization import CodeEncoder

ONNX_TOLERANCE = 1e-4
MODEL_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", "model.onnx", "export.json")


def sample_test_split(data: str | Path, limit: int | None = None, seed: int = 0) -> list[Example]:
    """A seeded sample of ``limit`` examples of the test split of the task ``data`` (a task YAML or folder),
    read with the task's own format and field names, in file order."""
    return seeded_sample(load_task(data).read("test"), limit, seed)


MODEL_INPUTS = ("input_ids", "attention_mask", "position_ids")  # position_ids: data-flow models only


class LogitsModule(torch.nn.Module):
    """The exported graph: ``input_ids``/``attention_mask`` ``[B, n, L]`` (a data-flow model: also
    ``position_ids`` ``[B, n, L]``, and the graph-guided mask ``[B, n, L, L]``) -> ``logits`` ``[B, labels]``."""

    def __init__(self, classifier: torch.nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.classifier(*inputs)


def export_onnx(model: torch.nn.Module, sample: dict[str, torch.Tensor], path: Path) -> Path:
    """Export with dynamic batch and length axes (TorchScript exporter, eager attention).

    The eager attention graph (MatMul, Softmax, MatMul) is the one ONNX Runtime's transformer
    optimizer fuses into its Attention kernel; SDPA's or the dynamo exporter's graphs are not.
    """
    model = copy.deepcopy(model).eval()
    if hasattr(model.encoder, "set_attn_implementation"):
        model.encoder.set_attn_implementation("eager")
    names = [name for name in MODEL_INPUTS if name in sample]
    axes = {name: {0: "batch", 2: "length", **({3: "length"} if sample[name].dim() == 4 else {})} for name in names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(LogitsModule(model).eval(), tuple(sample[name] for name in names), str(path),
                          input_names=names, output_names=["logits"],
                          dynamic_axes={**axes, "logits": {0: "batch"}}, opset_version=17, dynamo=False)
    return path


def optimize_onnx(source: Path, path: Path, config) -> Path:
    """ONNX Runtime's transformer optimizer: fused Attention, SkipLayerNorm and Gelu CPU kernels."""
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(str(source), model_type="bert", num_heads=config.num_attention_heads,
                               hidden_size=config.hidden_size, opt_level=0)
    optimized.save_model_to_file(str(path))
    return path


def quantize_onnx(source: Path, path: Path) -> Path:
    """Dynamic int8: int8 weights, activations quantised per batch at run time."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()  # the quantiser logs a pre-processing hint meant for CNNs at WARNING
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        # The fused com.microsoft ops have no ONNX shape inference: tell the quantiser their type.
        quantize_dynamic(str(source), str(path), weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        root.setLevel(level)
    return path


def batched_logits(runner, encoder, examples: list[Example], batch_size: int = 8) -> np.ndarray:
    """Logits of every example, batches padded to their longest function."""
    out = []
    for start in range(0, len(examples), batch_size):
        batch = encoder.encode_codes([e.codes for e in examples[start:start + batch_size]])
        out.append(runner(**batch))
    return np.concatenate(out)


def accuracy(logits: np.ndarray, examples: list[Example]) -> float | None:
    labels = np.array([-1 if e.label is None else e.label for e in examples])
    known = labels >= 0
    return float((logits.argmax(-1)[known] == labels[known]).mean()) if known.any() else None


def random_examples(num_inputs: int, count: int = 8) -> list[Example]:
    """Stand-in code of varied lengths when no data set is given (the check then says so)."""
    rng = random.Random(0)
    words = ["int", "x", "=", "return", "if", "(", ")", "{", "}", ";", "for", "i", "+", "foo", "bar", "0"]
    def code() -> str:
        return " ".join(rng.choices(words, k=rng.randint(5, 300)))

    return [Example(str(i), tuple(code() for _ in range(num_inputs))) for i in range(count)]


def check_output(output: Path, model: Path, overwrite: bool) -> None:
    """Refuse to mix this export with another model's files unless asked to."""
    if output.exists() and not output.is_dir():
        raise UserError("the output path is a file, not a folder.", output, "Give a folder path as --output.")
    same = output.exists() and output.resolve() == model.resolve()
    if output.is_dir() and any(output.iterdir()) and not same and not overwrite:
        held = [name for name in MODEL_FILES if (output / name).exists()]
        what = f"already holds another model ({', '.join(held)})" if held else "is not empty"
        raise UserError(f"the output folder {what}.", output,
                        "Choose an empty folder, or pass --overwrite true to replace its model files.")


def file_sizes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}


def export(model: Path, output: Path, onnx: bool = True, int8: bool = True, overwrite: bool = False,
           data: str | None = None, samples: int = 200) -> dict[str, Any]:
    """Export a student folder for shipping: safetensors folder, validated ONNX and int8 ONNX.

    Args:
        model: A folder written by training (``config.json``, ``model.safetensors``, tokenizer).
        output: Folder to write; it must be empty (or ``model`` itself) unless ``overwrite``.
        onnx: Write ``model.onnx`` and ``model.optimized.onnx``, checked against PyTorch within 1e-4.
        int8: Also write ``model.int8.onnx`` (needs ``onnx``) and report its accuracy.
        overwrite: Replace the model files of a non-empty output folder.
        data: The task whose test split the checks use: a task YAML (as in ``data.task`` of a fit config)
            or a task folder (BigCloneBench or Devign, format inferred). Without it the ONNX check runs on
            made-up code and no accuracy is reported.
        samples: How many test examples (a seeded sample) the checks and accuracies use.
    """
    model, output = Path(model), Path(output)
    if int8 and not onnx:
        raise UserError("int8 export quantises the ONNX model.", fix="Pass --onnx true, or --int8 false.")
    check_output(output, model, overwrite)
    dataflow = (model / "config.json").is_file() and read_metadata(model).get("kind") == "graphcodebert"
    if dataflow:
        from lit_compressor.graphcodebert.folder import graph_encoder, load_graph_classifier

        classifier, tokenizer, metadata = load_graph_classifier(model)
        encoder = graph_encoder(tokenizer, metadata)
        inputs = {"inputs": "dataflow", "language": metadata.get("language"), "block_size": encoder.block_size}
    else:
        classifier, tokenizer, metadata = load_classifier(model)
        encoder = CodeEncoder(tokenizer, int(metadata.get("block_size", DEFAULT_BLOCK_SIZE)))
        inputs = {"block_size": encoder.block_size}
    examples = sample_test_split(data, samples) if data is not None else random_examples(classifier.num_inputs)
    if not examples:
        raise UserError("no examples to check the export on: the test split is empty.", data,
                        "Give --data a task with a test split.")
    if overwrite and output.is_dir() and output.resolve() != model.resolve():
        for name in ("model.onnx", "model.optimized.onnx", "model.int8.onnx", "export.json"):
            (output / name).unlink(missing_ok=True)
    if output.resolve() != model.resolve():  # in place, the folder already is the HF folder
        save_classifier(classifier, tokenizer, output, {k: v for k, v in metadata.items() if k != "num_inputs"})
    report: dict[str, Any] = {
        "model": str(model), "num_inputs": classifier.num_inputs, **inputs,
        "parameters": sum(p.numel() for p in classifier.parameters()),
        "check_inputs": f"{len(examples)} test examples from {data}" if data else "made-up code (no --data)",
    }
    reference = batched_logits(TorchRunner(classifier), encoder, examples)
    report["accuracy"] = {"pytorch": accuracy(reference, examples)}
    if onnx:
        sample = encoder.encode_codes([e.codes for e in examples[:2]])
        export_onnx(classifier, sample, output / "model.onnx")
        optimize_onnx(output / "model.onnx", output / "model.optimized.onnx", classifier.config)
        report["onnx_max_abs_diff"] = {}
        for name in ("model.onnx", "model.optimized.onnx"):
            logits = batched_logits(OrtRunner(output / name), encoder, examples)
            diff = float(np.abs(logits - reference).max())
            report["onnx_max_abs_diff"][name] = diff
            if diff > ONNX_TOLERANCE:
                raise RuntimeError(f"{output / name}: ONNX Runtime logits differ from PyTorch by {diff:.2e} "
                                   f"(> {ONNX_TOLERANCE}); the export is wrong, please report it.")
            report["accuracy"][name] = accuracy(logits, examples)
    if int8:
        quantize_onnx(output / "model.optimized.onnx", output / "model.int8.onnx")
        logits = batched_logits(OrtRunner(output / "model.int8.onnx"), encoder, examples)
        report["accuracy"]["model.int8.onnx"] = accuracy(logits, examples)
        report["int8"] = {
            "agreement_with_fp32": float((logits.argmax(-1) == reference.argmax(-1)).mean()),
            "max_abs_prob_diff": float(np.abs(softmax(logits) - softmax(reference)).max()),
        }
    if onnx and not dataflow:  # the encoder-only graph and the pair head, for clone search (lit_compressor.clones)
        from lit_compressor.clones.graphs import export_clone_graphs

        check = encoder.encode_codes([e.codes for e in examples[:8]])
        report["clone_graphs"] = export_clone_graphs(classifier, output, int8=int8, check_batch=check)
    report["files"] = file_sizes(output)
    (output / "export.json").write_text(json.dumps(report, indent=2) + "\n")
    report["files"] = file_sizes(output)
    sizes = ", ".join(f"{name} {size / 1e6:.2f} MB" for name, size in report["files"].items() if size > 1e5)
    print(f"exported {model} -> {output}{' (data-flow inputs)' if dataflow else ''}: {sizes}; "
          f"accuracy {report['accuracy']}")
    return report
