"""Model folders whose inputs carry data flow: what ``config.json`` records, and loading them.

A data-flow folder is an ordinary classifier folder whose ``lit_compressor`` block says
``kind: graphcodebert`` with ``language``, ``flow_length``, ``block_size`` (code + flow positions) and,
for students imported from the Compressor research code, ``layout_rules`` (see
:class:`~lit_compressor.graphcodebert.inputs.LayoutRules`). GraphCodeBERT teachers written by ``fit``
use the same keys, so everything here serves both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from lit_compressor.core.errors import UserError
from lit_compressor.core.metadata import GRAPH_KIND, is_graph_folder
from lit_compressor.graphcodebert.inputs import GraphCodeEncoder, LayoutRules
from lit_compressor.graphcodebert.model import GraphCodeBERTClassifier, as_graph_classifier
from lit_compressor.nn.folders import load_classifier

DEFAULT_FLOW_LENGTH = 64  # TeacherModule's default
DEFAULT_BLOCK_SIZE = 512


def graph_metadata(language: str, code_length: int, flow_length: int, rules: LayoutRules) -> dict[str, Any]:
    """The ``lit_compressor`` keys that make a folder a data-flow folder."""
    return {"kind": GRAPH_KIND, "language": language, "flow_length": flow_length,
            "block_size": code_length + flow_length, "layout_rules": rules.to_dict()}


def graph_encoder(tokenizer: PreTrainedTokenizerBase, metadata: dict[str, Any], cache_dir: str | Path | None = None,
                  workers: int = 1, cache_size: int = 200_000, block_size: int | None = None) -> GraphCodeEncoder:
    """The input builder a data-flow folder was trained with (``block_size``: code + flow positions, default
    the folder's own)."""
    flow = int(metadata.get("flow_length", DEFAULT_FLOW_LENGTH))
    block = int(block_size or metadata.get("block_size", DEFAULT_BLOCK_SIZE))
    return GraphCodeEncoder(tokenizer, code_length=block - flow, flow_length=flow,
                            language=metadata.get("language", "java"), cache_dir=cache_dir, workers=workers,
                            cache_size=cache_size, rules=LayoutRules.from_dict(metadata.get("layout_rules")))


def load_graph_classifier(folder: str | Path) -> tuple[GraphCodeBERTClassifier, PreTrainedTokenizerBase,
                                                        dict[str, Any]]:
    """``(model in eval mode, tokenizer, metadata)`` of a data-flow folder."""
    model, tokenizer, metadata = load_classifier(folder)
    if not is_graph_folder(metadata):
        raise UserError("not a data-flow model folder (config.json's lit_compressor block has no "
                        f"`kind: {GRAPH_KIND}`).", folder, "Load it as a plain classifier.")
    return as_graph_classifier(model).eval(), tokenizer, metadata
