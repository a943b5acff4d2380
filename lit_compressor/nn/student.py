"""Building a student: the ``transformers`` model the search's genes describe."""

from __future__ import annotations

from transformers import AutoConfig, AutoModel, PretrainedConfig

from lit_compressor.core.metadata import STUDENT_FAMILIES
from lit_compressor.nn.classifier import CodeClassifier
from lit_compressor.search.architecture import PAD_ID, StudentArchitecture


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
