"""A student's architecture (the genes the search chooses) and how to build it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from transformers import AutoConfig, AutoModel, PretrainedConfig

from lit_compressor.models.classifier import CodeClassifier

STUDENT_FAMILIES = ("roberta", "bert")
PAD_ID = 1  # the student BPE tokenizer's <pad>, as in Compressor


@dataclass(frozen=True)
class StudentArchitecture:
    """The five genes of Compressor's search, named as in ``transformers`` configs."""

    num_hidden_layers: int = 12
    hidden_size: int = 96
    num_attention_heads: int = 8
    intermediate_size: int = 64
    vocab_size: int = 1000

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} must be divisible by num_attention_heads {self.num_attention_heads}"
            )

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def student_config(architecture: StudentArchitecture, family: str = "roberta", max_positions: int = 402,
                   dropout: float = 0.1) -> PretrainedConfig:
    """The ``transformers`` config of a student of ``family`` ('roberta' or 'bert').

    ``max_positions`` is the block size + 2 (RoBERTa's positions start after the padding index).
    Students have one token type: they never use segment ids.
    """
    if family not in STUDENT_FAMILIES:
        raise ValueError(f"student family must be one of {STUDENT_FAMILIES}, got {family!r}")
    return AutoConfig.for_model(
        family,
        **architecture.to_dict(),
        max_position_embeddings=max_positions,
        type_vocab_size=1,
        pad_token_id=PAD_ID,
        bos_token_id=0,
        eos_token_id=2,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )


def build_student(architecture: StudentArchitecture, num_inputs: int = 1, family: str = "roberta",
                  max_positions: int = 402, num_labels: int = 2, dropout: float = 0.1,
                  pooling: str = "first", pair_head: str = "concat") -> CodeClassifier:
    """A freshly initialised student classifier: exactly the module the cost model prices."""
    config = student_config(architecture, family, max_positions, dropout)
    encoder = AutoModel.from_config(config, add_pooling_layer=False)
    return CodeClassifier(encoder, num_inputs=num_inputs, num_labels=num_labels, dropout=dropout, pooling=pooling,
                          pair_head=pair_head)
