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

import random
from pathlib import Path
from typing import Any

import numpy as np

from lit_compressor.core.errors import UserError
from lit_compressor.core.files import atomic_write_json
from lit_compressor.data.readers import Example
from lit_compressor.nn.folders import save_classifier
from lit_compressor.runtime.clone_graphs import export_clone_graphs
from lit_compressor.runtime.evaluate import accuracy, batched_logits, sample_test_split, scores
from lit_compressor.runtime.folder import load_folder
from lit_compressor.runtime.onnx import export_onnx, optimize_onnx, quantize_onnx
from lit_compressor.runtime.runners import OrtRunner, softmax

ONNX_TOLERANCE = 1e-4
MODEL_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", "model.onnx", "export.json")


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
           data: str | None = None, samples: int | None = 200) -> dict[str, Any]:
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
        samples: How many test examples (a seeded sample) the checks and accuracies use; null: the whole split.
    """
    model, output = Path(model), Path(output)
    if int8 and not onnx:
        raise UserError("int8 export quantises the ONNX model.", fix="Pass --onnx true, or --int8 false.")
    check_output(output, model, overwrite)
    opened = load_folder(model)
    classifier, tokenizer, metadata, encoder = opened.model, opened.tokenizer, opened.metadata, opened.encoder
    dataflow = opened.dataflow
    inputs = ({"inputs": "dataflow", "language": metadata.get("language"), "block_size": encoder.block_size}
              if dataflow else {"block_size": encoder.block_size})
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
    reference = batched_logits(opened.runner, encoder, examples)
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
        report["shipped_scores"] = scores(logits, examples, int(metadata.get("positive_label", 1)))
        report["int8"] = {
            "agreement_with_fp32": float((logits.argmax(-1) == reference.argmax(-1)).mean()),
            "max_abs_prob_diff": float(np.abs(softmax(logits) - softmax(reference)).max()),
        }
    if onnx and not dataflow:  # the encoder-only graph and the pair head, for clone search (lit_compressor.clones)
        check = encoder.encode_codes([e.codes for e in examples[:8]])
        report["clone_graphs"] = export_clone_graphs(classifier, output, int8=int8, check_batch=check)
    report["files"] = file_sizes(output)
    atomic_write_json(output / "export.json", report)
    report["files"] = file_sizes(output)
    sizes = ", ".join(f"{name} {size / 1e6:.2f} MB" for name, size in report["files"].items() if size > 1e5)
    print(f"exported {model} -> {output}{' (data-flow inputs)' if dataflow else ''}: {sizes}; "
          f"accuracy {report['accuracy']}")
    return report
