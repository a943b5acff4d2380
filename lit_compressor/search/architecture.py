"""A student's architecture: the genes the search chooses, and what its cost depends on besides them.

Arithmetic only (no torch, no transformers): the search imports it; ``models.student`` builds it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lit_compressor.core.errors import UserError

POOLINGS = ("first", "mean")
PAIR_HEADS = ("concat", "interaction")
PAD_ID = 1  # the student BPE tokenizer's <pad>, as in Compressor
INPUTS = ("plain", "dataflow")  # code sub-words only, or GraphCodeBERT's data-flow inputs as well


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
