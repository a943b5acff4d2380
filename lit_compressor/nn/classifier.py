"""The classifier every method trains: a Hugging Face encoder and a Compressor-style head.

Single-input tasks read the first token's vector; pair tasks encode both functions with the same
encoder and concatenate their first-token vectors (``[B, 2H]``), as Compressor's clone detector does.
``pooling="mean"`` reads the mean of the tokens' vectors instead, which suits encoders pre-trained
with mean pooling (sentence-transformers models such as all-MiniLM-L6-v2). ``pair_head="interaction"``
feeds a pair's head ``[u, v, |u - v|, u * v]`` (Sentence-BERT's features, ``[B, 4H]``) instead of
``[u, v]``: it learns similarity from far fewer labelled pairs.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel

from lit_compressor.search.architecture import PAIR_HEADS, POOLINGS, head_inputs


class ClassificationHead(nn.Module):
    """dropout -> dense -> tanh -> dropout -> out_proj, the RoBERTa / Compressor head."""

    def __init__(self, in_features: int, hidden_size: int, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(in_features, hidden_size)
        self.out_proj = nn.Linear(hidden_size, num_labels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        hidden = torch.tanh(self.dense(self.dropout(features)))
        return self.out_proj(self.dropout(hidden))


def drop_pooler(encoder: PreTrainedModel) -> PreTrainedModel:
    """Remove an encoder's pooler: the head reads the first token itself, and unused weights break DDP."""
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None
    return encoder


class CodeClassifier(nn.Module):
    """Encoder + head over ``num_inputs`` functions (1: single function, 2: a pair)."""

    def __init__(self, encoder: PreTrainedModel, num_inputs: int = 1, num_labels: int = 2,
                 dropout: float | None = None, pooling: str = "first", pair_head: str = "concat"):
        super().__init__()
        if num_inputs not in (1, 2):
            raise ValueError(f"num_inputs must be 1 or 2, got {num_inputs}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if pair_head not in PAIR_HEADS:
            raise ValueError(f"pair_head must be one of {PAIR_HEADS}, got {pair_head!r}")
        self.pooling, self.pair_head = pooling, pair_head
        self.encoder = drop_pooler(encoder)
        self.num_inputs = num_inputs
        self.num_labels = num_labels
        hidden = encoder.config.hidden_size
        if dropout is None:
            dropout = getattr(encoder.config, "hidden_dropout_prob", 0.1)
        self.classifier = ClassificationHead(hidden * head_inputs(num_inputs, pair_head), hidden, num_labels, dropout)

    @property
    def config(self):
        return self.encoder.config

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, output_hidden_states: bool = False):
        """``[B, n, L]`` token ids -> the encoder's output for the ``B * n`` functions, and their mask."""
        batch, n, length = input_ids.shape
        mask = attention_mask.reshape(batch * n, length)
        output = self.encoder(input_ids=input_ids.reshape(batch * n, length), attention_mask=mask,
                              output_hidden_states=output_hidden_states)
        return output, mask

    def pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[N, L, H]`` -> ``[N, H]``: the first token's vector, or the mean of the tokens' vectors."""
        return masked_mean(hidden, mask) if self.pooling == "mean" else hidden[:, 0]

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``[B, n, L]`` token ids -> ``[B, n * H]`` concatenated pooled vectors."""
        output, mask = self.encode(input_ids, attention_mask)
        return self.pool(output.last_hidden_state, mask).reshape(input_ids.shape[0], -1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if input_ids.dim() == 2:  # one function per row
            input_ids, attention_mask = input_ids.unsqueeze(1), attention_mask.unsqueeze(1)
        return self.head(self.features(input_ids, attention_mask))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from the ``[B, n * H]`` pooled vectors."""
        return self.classifier(pair_features(features, self.num_inputs, self.pair_head))


def pair_features(features: torch.Tensor, num_inputs: int, pair_head: str) -> torch.Tensor:
    """What the head's dense layer reads: ``[u, v]`` as given, or ``[u, v, |u-v|, u*v]`` (interaction)."""
    if num_inputs == 2 and pair_head == "interaction":
        first, second = features.chunk(2, dim=-1)
        return torch.cat([first, second, (first - second).abs(), first * second], dim=-1)
    return features


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[N, L, H]`` token states -> ``[N, H]``: the mean over the tokens where ``mask`` is 1."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
