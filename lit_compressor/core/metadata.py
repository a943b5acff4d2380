"""What a model folder says about itself: the ``lit_compressor`` block of its ``config.json``, read as JSON
(no torch, no transformers), and the head a student copies from a fine-tuned teacher folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lit_compressor.core.errors import UserError

META_KEY = "lit_compressor"
GRAPH_KIND = "graphcodebert"
"""``kind`` of a folder whose model reads GraphCodeBERT's data-flow inputs."""
STUDENT_FAMILIES = ("roberta", "bert")


def read_config(folder: str | Path) -> dict[str, Any]:
    """A model folder's ``config.json`` (a UserError when there is none)."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise UserError("not a model folder (no config.json).", folder,
                        "Give a folder written by training, `lit-compressor export` or `import-compressor`.")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"config.json is not valid JSON ({error}).", path, "Export the model again.") from None


def read_metadata(folder: str | Path) -> dict[str, Any]:
    """The ``lit_compressor`` block of a folder's ``config.json`` (empty for foreign folders)."""
    return read_config(folder).get(META_KEY, {})


def is_graph_folder(metadata: dict[str, Any]) -> bool:
    """Whether a folder's model reads data-flow inputs (its ``lit_compressor`` block says so)."""
    return metadata.get("kind") == GRAPH_KIND


def student_family(model_type: str | None) -> str:
    """The student's family for a teacher of ``model_type``: the same when BERT or RoBERTa, else RoBERTa."""
    return model_type if model_type in STUDENT_FAMILIES else "roberta"


def teacher_head(folder: str | Path) -> dict[str, Any]:
    """What a student copies from a fine-tuned teacher folder: family, pooling, pair head, functions per example,
    labels, and its ``inputs`` (``dataflow`` with ``language`` and ``flow_length`` for a GraphCodeBERT teacher)."""
    if not (Path(folder) / "config.json").is_file():
        raise UserError("not a fine-tuned teacher folder (no config.json).", folder,
                        "Give the folder a teacher `fit` wrote (its model.init_args.output_dir).")
    config = read_config(folder)
    meta = config.get(META_KEY, {})
    head = {"family": student_family(config.get("model_type")), "pooling": meta.get("pooling", "first"),
            "pair_head": meta.get("pair_head", "concat"), "num_inputs": meta.get("num_inputs", 1),
            "num_labels": config.get("num_labels", len(config.get("id2label", {})) or 2),
            "inputs": "dataflow" if is_graph_folder(meta) else "plain"}
    if head["inputs"] == "dataflow":  # a GraphCodeBERT teacher: its student reads the same data flow
        head.update({k: meta[k] for k in ("language", "flow_length") if k in meta})
    return head
