"""``lit-compressor export``: a student folder -> a shipped folder (what a runtime loads) and, on request, every form.

Written to ``output``:

- ``shipped/``: only what a runtime loads, small enough to commit to a plug-in's repository: the int8 graph
  (``model.int8.onnx``; a single-function student's in the layout transformers.js reads,
  ``onnx/model_quantized.onnx`` with ``[B, L]`` inputs), for a pair student also the clone-search graphs
  (``encoder.int8.onnx``, ``head_prepare.onnx``, ``head.onnx``), ``config.json``, ``tokenizer.json`` (which
  collapses whitespace itself, as the model was trained), ``tokenizer_config.json`` and a model card
  (``README.md``, Hugging Face front matter);
- ``full/`` (``--full true``): every form: the Hugging Face folder (``model.safetensors``), ``model.onnx``
  (standard ONNX ops, any ONNX runtime), ``model.optimized.onnx`` (ONNX Runtime's fused CPU kernels:
  Attention, SkipLayerNormalization, BiasGelu; ``com.microsoft`` ops), ``model.int8.onnx``, the encoder graphs
  in the same three forms, and the transformers.js pair ``onnx/model.onnx`` + ``onnx/model_quantized.onnx``;
- ``export.json``: sizes, the checks (every ONNX graph against PyTorch within 1e-4, the shipped tokenizer
  against the student's, the accuracy of every form on a test slice) and the shipped files.

A data-flow folder (GraphCodeBERT's inputs) exports the same way; its graph also takes ``position_ids``
``[B, n, L]`` and its ``attention_mask`` is the bool graph-guided mask ``[B, n, L, L]`` (no clone-search or
transformers.js graphs: transformers.js cannot build data-flow inputs).

int8 is done in ONNX rather than with ``torch.ao`` dynamic quantisation: a quantised PyTorch module
only round-trips through pickle (``torch.save``), which we never ship, while an int8 ONNX file is
plain protobuf that ONNX Runtime loads safely on every platform an IDE plug-in runs on.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from lit_compressor.core.errors import UserError
from lit_compressor.core.files import atomic_write_json
from lit_compressor.data.readers import Example
from lit_compressor.nn.folders import save_classifier
from lit_compressor.runtime.card import write_model_card
from lit_compressor.runtime.clone_graphs import export_clone_graphs
from lit_compressor.runtime.evaluate import accuracy, batched_logits, sample_test_split, scores
from lit_compressor.runtime.folder import FULL, SHIPPED, load_folder
from lit_compressor.runtime.onnx import export_onnx, optimize_onnx, quantize_onnx, share_weights
from lit_compressor.runtime.pair_head import HEAD_FILE, PREPARE_FILE
from lit_compressor.runtime.runners import OrtRunner, softmax
from lit_compressor.runtime.transformers_js import (
    FP32_FILE,
    INT8_FILE,
    export_transformers_js,
    transformers_js_config,
    with_whitespace_normalizer,
)

ONNX_TOLERANCE = 1e-4
REPORT_FILE = "export.json"
MODEL_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", "model.onnx", REPORT_FILE, SHIPPED, FULL)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


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
    if output.exists() and output.resolve() == model.resolve():
        raise UserError("the output folder is the student folder itself.", output,
                        "Give --output another folder: the export writes shipped/ and full/ subfolders.")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        held = [name for name in MODEL_FILES if (output / name).exists()]
        what = f"already holds another model ({', '.join(held)})" if held else "is not empty"
        raise UserError(f"the output folder {what}.", output,
                        "Choose an empty folder, or pass --overwrite true to replace its model files.")


def clear_export(output: Path) -> None:
    """Remove what an earlier export (or another model) left in ``output``."""
    for name in (SHIPPED, FULL):
        shutil.rmtree(output / name, ignore_errors=True)
    for name in (*MODEL_FILES, *TOKENIZER_FILES, "model.optimized.onnx", "model.int8.onnx"):
        if (output / name).is_file():
            (output / name).unlink()


def file_sizes(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` (relative paths, sorted) and its size in bytes."""
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def shared_weights_file(int8: bool) -> str:
    return "weights.int8.bin" if int8 else "weights.bin"


def shipped_files(num_inputs: int, dataflow: bool, onnx: bool, int8: bool) -> list[str]:
    """The model files a runtime loads, beside config.json, the tokenizer and the card."""
    if not onnx:
        return ["model.safetensors"]
    if num_inputs == 1 and not dataflow:  # one graph, in the layout transformers.js reads (our runtimes read it too)
        return [INT8_FILE if int8 else FP32_FILE]
    files = ["model.int8.onnx" if int8 else "model.onnx"]
    if num_inputs == 2 and not dataflow:
        files += ["encoder.int8.onnx" if int8 else "encoder.onnx", PREPARE_FILE, HEAD_FILE]
    return files


def rewrite_tokenizer(path: Path, truncation_side: str, block_size: int | None) -> dict[str, Any]:
    """Make ``tokenizer.json`` give the model's ids alone: whitespace collapsed by its own normalizer and, for
    plain inputs (``block_size``), truncation to the block. Returns the file's content as it was."""
    original = json.loads(path.read_text())
    content = with_whitespace_normalizer(original)
    if block_size is not None:
        content["truncation"] = {"direction": "Left" if truncation_side == "left" else "Right",
                                 "max_length": block_size, "strategy": "LongestFirst", "stride": 0}
    path.write_text(json.dumps(content, ensure_ascii=False))
    return original


def check_tokenizer(full: Path, encoder, examples: list[Example]) -> dict[str, Any]:
    """The exported ``tokenizer.json`` alone (raw code in, no Python whitespace step) gives the student's ids."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(full)
    codes = [code for e in examples for code in e.codes]
    differ = sum(tokenizer(code, truncation=True, max_length=encoder.block_size)["input_ids"] != encoder.encode(code)
                 for code in codes)
    if differ:
        raise RuntimeError(f"{full / 'tokenizer.json'}: the exported tokenizer gives other ids than the student's on "
                           f"{differ} of {len(codes)} functions; please report it.")
    return {"functions": len(codes), "differ": 0}


def check_transformers_js(full: Path, encoder, examples: list[Example], reference: np.ndarray,
                          int8_reference: np.ndarray | None) -> dict[str, Any]:
    """The ``[B, L]`` graphs on each function's whole tokenization (they cut it to the block themselves) against
    PyTorch (fp32, within 1e-4) and against ``model.int8.onnx`` on the same ids (int8)."""
    from transformers import AutoTokenizer

    from lit_compressor.runtime.runners import ort_session

    tokenizer = AutoTokenizer.from_pretrained(full)
    whole_ids = [tokenizer(example.codes[0])["input_ids"] for example in examples]
    report: dict[str, Any] = {"longer_than_block": sum(len(ids) > encoder.block_size for ids in whole_ids)}
    for name in (FP32_FILE, INT8_FILE):
        if not (full / name).is_file():
            continue
        session = ort_session(full / name)
        whole, cut = [], []
        for example, ids in zip(examples, whole_ids, strict=True):
            ids = np.asarray([ids], dtype=np.int64)
            whole.append(session.run(["logits"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0])
            ids = np.asarray([encoder.encode(example.codes[0])], dtype=np.int64)
            cut.append(session.run(["logits"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0])
        whole, cut = np.stack(whole), np.stack(cut)
        target = reference if name == FP32_FILE else int8_reference
        diff = float(np.abs(whole - target).max()) if target is not None else None
        report[name] = {"max_abs_diff": diff, "whole_vs_block_max_abs_diff": float(np.abs(whole - cut).max()),
                        "accuracy": accuracy(whole, examples)}
        if name == FP32_FILE and diff > ONNX_TOLERANCE:
            raise RuntimeError(f"{full / name}: logits differ from PyTorch by {diff:.2e} (> {ONNX_TOLERANCE}); "
                               "the export is wrong, please report it.")
    return report


def write_shipped(full: Path, shipped: Path, files: list[str], transformers_js: bool, int8: bool,
                  examples: list[Example], encoder) -> dict[str, Any]:
    """Copy what a runtime loads from ``full`` to ``shipped``. A pair student's classifier and encoder graphs
    share their common weights in one file (:func:`share_weights`), checked to give the same outputs."""
    shipped.mkdir(parents=True)
    config = json.loads((full / "config.json").read_text())
    if transformers_js:
        config = transformers_js_config(config, int8)
    (shipped / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    for name in (*TOKENIZER_FILES, *files):
        (shipped / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(full / name, shipped / name)
    result: dict[str, Any] = {}
    graphs = [name for name in files if name.startswith(("model.", "encoder."))]
    if len(graphs) == 2:  # the pair classifier and its encoder
        result["shared_weights"] = share_weights([shipped / name for name in graphs], shared_weights_file(int8))
        batch = encoder.encode_codes([e.codes for e in examples[:8]])
        diff = float(np.abs(OrtRunner(shipped / graphs[0])(**batch) - OrtRunner(full / graphs[0])(**batch)).max())
        if diff != 0.0:
            raise RuntimeError(f"{shipped / graphs[0]}: the graph with shared weights differs from {full / graphs[0]} "
                               f"by {diff:.2e}; please report it.")
    return result


def folder_sizes(folder: Path) -> dict[str, Any]:
    sizes = file_sizes(folder)
    return {"files": sizes, "bytes": sum(sizes.values())}


def export(model: Path, output: Path, onnx: bool = True, int8: bool = True, overwrite: bool = False,
           data: str | None = None, samples: int | None = 200, full: bool = False, report: Path | None = None
           ) -> dict[str, Any]:
    """Export a student folder for shipping: ``output/shipped/`` (what a runtime loads, with a model card) and,
    with ``full``, ``output/full/`` (every form); every graph is checked against PyTorch.

    Args:
        model: A folder written by training (``config.json``, ``model.safetensors``, tokenizer).
        output: Folder to write; it must be empty unless ``overwrite``.
        onnx: Write the ONNX graphs, checked against PyTorch within 1e-4 (else the shipped form is safetensors).
        int8: Ship dynamic int8 graphs (needs ``onnx``) and report their accuracy; else fp32 graphs are shipped.
        overwrite: Replace the model files of a non-empty output folder.
        data: The task whose test split the checks use: a task YAML (as in ``data.task`` of a fit config)
            or a task folder (BigCloneBench or Devign, format inferred). Without it the ONNX check runs on
            made-up code and no accuracy is reported.
        samples: How many test examples (a seeded sample) the checks and accuracies use; null: the whole split.
        full: Also keep ``output/full/``: the safetensors folder and every ONNX form (fp32, fused fp32, int8).
        report: A ``compress`` run's ``report.json``: its test-split figures go into the model card
            (``compress`` rewrites the card itself once its report exists).
    """
    model, output = Path(model), Path(output)
    if int8 and not onnx:
        raise UserError("int8 export quantises the ONNX model.", fix="Pass --onnx true, or --int8 false.")
    run_report = read_run_report(report)
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
    clear_export(output)
    work = output / FULL
    save_classifier(classifier, tokenizer, work, {k: v for k, v in metadata.items() if k != "num_inputs"})
    tokenizer_json = rewrite_tokenizer(work / "tokenizer.json", tokenizer.truncation_side,
                                       None if dataflow else encoder.block_size)
    result: dict[str, Any] = {
        "model": str(model), "num_inputs": classifier.num_inputs, **inputs,
        "parameters": sum(p.numel() for p in classifier.parameters()),
        "check_inputs": f"{len(examples)} test examples from {data}" if data else "made-up code (no --data)",
    }
    if not dataflow:
        result["tokenizer_check"] = check_tokenizer(work, encoder, examples)
    reference = batched_logits(opened.runner, encoder, examples)
    result["accuracy"] = {"pytorch": accuracy(reference, examples)}
    transformers_js = onnx and classifier.num_inputs == 1 and not dataflow
    if onnx:
        sample = encoder.encode_codes([e.codes for e in examples[:2]])
        export_onnx(classifier, sample, work / "model.onnx")
        optimize_onnx(work / "model.onnx", work / "model.optimized.onnx", classifier.config)
        result["onnx_max_abs_diff"] = {}
        for name in ("model.onnx", "model.optimized.onnx"):
            logits = batched_logits(OrtRunner(work / name), encoder, examples)
            diff = float(np.abs(logits - reference).max())
            result["onnx_max_abs_diff"][name] = diff
            if diff > ONNX_TOLERANCE:
                raise RuntimeError(f"{work / name}: ONNX Runtime logits differ from PyTorch by {diff:.2e} "
                                   f"(> {ONNX_TOLERANCE}); the export is wrong, please report it.")
            result["accuracy"][name] = accuracy(logits, examples)
    int8_logits = None
    if int8:
        quantize_onnx(work / "model.optimized.onnx", work / "model.int8.onnx")
        # each example alone: the graph quantises at run time (batched_logits)
        int8_logits = batched_logits(OrtRunner(work / "model.int8.onnx"), encoder, examples)
        result["accuracy"]["model.int8.onnx"] = accuracy(int8_logits, examples)
        result["shipped_scores"] = scores(int8_logits, examples, int(metadata.get("positive_label", 1)))
        result["int8"] = {
            "agreement_with_fp32": float((int8_logits.argmax(-1) == reference.argmax(-1)).mean()),
            "max_abs_prob_diff": float(np.abs(softmax(int8_logits) - softmax(reference)).max()),
        }
    if onnx and not dataflow:  # the encoder-only graph and the pair head, for clone search (lit_compressor.clones)
        check = encoder.encode_codes([e.codes for e in examples[:8]])
        result["clone_graphs"] = export_clone_graphs(classifier, work, int8=int8, check_batch=check)
    if transformers_js:
        export_transformers_js(classifier, tokenizer_json, encoder.block_size, work, int8=int8)
        result["transformers_js"] = check_transformers_js(work, encoder, examples, reference, int8_logits)
        if int8:
            result["accuracy"][INT8_FILE] = result["transformers_js"][INT8_FILE]["accuracy"]
    result["files"] = file_sizes(work)
    files = shipped_files(classifier.num_inputs, dataflow, onnx, int8)
    result["shipped"] = {"folder": SHIPPED,
                         **write_shipped(work, output / SHIPPED, files, transformers_js, int8, examples, encoder)}
    result["full"] = FULL if full else None
    if not full:
        shutil.rmtree(work)
    result["shipped"].update(folder_sizes(output / SHIPPED))
    write_model_card(output / SHIPPED, result, run_report)
    result["shipped"].update(folder_sizes(output / SHIPPED))  # with the card
    atomic_write_json(output / REPORT_FILE, result)
    shipped_mb = result["shipped"]["bytes"] / 1e6
    print(f"exported {model} -> {output / SHIPPED} ({shipped_mb:.2f} MB: {', '.join(result['shipped']['files'])})"
          f"{' and every form to ' + str(output / FULL) if full else ''}{' (data-flow inputs)' if dataflow else ''}; "
          f"accuracy {result['accuracy']}")
    return result


def read_run_report(report: Path | None) -> dict[str, Any] | None:
    """A ``compress`` run's report.json, or None."""
    if report is None:
        return None
    path = Path(report)
    if not path.is_file():
        raise UserError("no such report file.", path, "Give --report the report.json that `compress` wrote.")
    try:
        content = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"the report is not valid JSON ({error}).", path, "Give the report.json `compress` wrote."
                        ) from None
    if not isinstance(content, dict) or not {"teacher", "student", "task"} <= content.keys():
        raise UserError("not a compress report (no teacher, student and task).", path,
                        "Give the report.json `compress` wrote.")
    return content


def card_from_report(output: Path, run_report: dict[str, Any]) -> Path:
    """Rewrite ``output/shipped/README.md`` with a run's report (``compress`` calls it once the report exists)."""
    output = Path(output)
    return write_model_card(output / SHIPPED, json.loads((output / REPORT_FILE).read_text()), run_report)

