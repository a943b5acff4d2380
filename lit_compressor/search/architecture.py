"""A student's architecture: the genes the search chooses, and what its cost depends on besides them.

Arithmetic only (no torch, no transformers): the search imports it; ``models.student`` builds it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lit_compressor.errors import UserError

STUDENT_FAMILIES = ("roberta", "bert")
POOLINGS = ("first", "mean")
PAIR_HEADS = ("concat", "interaction")
PAD_ID = 1  # the student BPE tokenizer's <pad>, as in Compressor
INPUTS = ("plain", "dataflow")  # code sub-words only, or GraphCodeBERT's data-flow inputs as well
DATAFLOW_KIND = "graphcodebert"  # config.json's lit_compressor.kind of a folder that reads data flow


@dataclass(frozen=True)
class StudentArchitecture:
    """The five genes of Compressor's search, named as in ``transformers`` configs."""

    num_hidden_layers: int = 12
    hidden_size: int = 96
    num_attention_heads: int = 8
    intermediate_size: int = 64
    vocab_size: int = 1000

    def __post_init__(self) -> None:
        if min(asdict(self).values()) < 1:
            raise UserError(f"every gene must be positive, got {asdict(self)}.")
        if self.hidden_size % self.num_attention_heads:
            raise UserError(f"hidden_size {self.hidden_size} is not divisible by num_attention_heads "
                            f"{self.num_attention_heads}.",
                            fix="Choose a hidden size that is a multiple of the head count.")

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def head_inputs(num_inputs: int, pair_head: str = "concat") -> int:
    """How many H-sized vectors the classification head's dense layer reads."""
    return 4 if num_inputs == 2 and pair_head == "interaction" else num_inputs


def load_architecture(path: str | Path) -> StudentArchitecture:
    """The genes of an ``architecture.yaml`` (written by ``lit-compressor search`` or by hand).

    Other top-level keys (``priced_for``: what the search priced) are not genes and are ignored here.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserError("architecture file not found.", path, "Run `lit-compressor search` first, or give the genes.")
    content = yaml.safe_load(path.read_text()) or {}
    genes = {k: v for k, v in content.items() if k in StudentArchitecture.__dataclass_fields__}
    try:
        return StudentArchitecture(**genes)
    except TypeError as error:
        raise UserError(f"not an architecture file ({error}).", path) from None


def read_priced_for(path: str | Path) -> dict[str, Any]:
    """What the search priced the genes of ``path`` for (empty for a hand-written file)."""
    import yaml

    content = yaml.safe_load(Path(path).read_text()) or {}
    return dict(content.get("priced_for") or {})


def student_family(model_type: str | None) -> str:
    """The student's family for a teacher of ``model_type``: the same when BERT or RoBERTa, else RoBERTa."""
    return model_type if model_type in STUDENT_FAMILIES else "roberta"


def teacher_head(folder: str | Path) -> dict[str, Any]:
    """What a student copies from a fine-tuned teacher folder: family, pooling, pair head, functions per example,
    labels, and its ``inputs`` (``dataflow`` with ``language`` and ``flow_length`` for a GraphCodeBERT teacher)."""
    import json

    path = Path(folder) / "config.json"
    if not path.is_file():
        raise UserError("not a fine-tuned teacher folder (no config.json).", folder,
                        "Give the folder a teacher `fit` wrote (its model.init_args.output_dir).")
    config = json.loads(path.read_text())
    meta = config.get("lit_compressor", {})
    head = {"family": student_family(config.get("model_type")), "pooling": meta.get("pooling", "first"),
            "pair_head": meta.get("pair_head", "concat"), "num_inputs": meta.get("num_inputs", 1),
            "num_labels": config.get("num_labels", len(config.get("id2label", {})) or 2),
            "inputs": "dataflow" if meta.get("kind") == DATAFLOW_KIND else "plain"}
    if head["inputs"] == "dataflow":  # a GraphCodeBERT teacher: its student reads the same data flow
        head.update({k: meta[k] for k in ("language", "flow_length") if k in meta})
    return head
