"""BiLSTM-soft (Tang et al. 2019; Compressor's baseline): a BiLSTM student distilled on soft labels.

Embedding -> one bidirectional LSTM layer -> the final forward and backward states (pairs: both
functions', concatenated) -> dense head. Trained exactly like the transformer students
(:class:`DistillationModule`, with the same
:class:`~lit_compressor.training.distillation_data.DistillationDataModule`: soft labels of the unlabelled
split, student BPE tokenizer); only the model differs. Sized by ``target_mb`` (fp32 MB, params * 4 / 1e6):
the LSTM hidden size is solved for, given the vocabulary and embedding sizes. Not a ``transformers`` model:
the folder holds ``model.safetensors``, ``bilstm.json`` and the tokenizer; :meth:`BiLSTMModule.load_folder`
reads it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from lit_compressor.core.errors import UserError
from lit_compressor.nn.folders import load_state_folder, save_state_folder
from lit_compressor.search.architecture import PAD_ID
from lit_compressor.training.distillation import DistillationModule


@dataclass(frozen=True)
class BiLSTMShape:
    vocab_size: int = 1000
    embedding_dim: int = 128
    hidden_size: int = 128

    def params(self, num_inputs: int = 2, num_labels: int = 2) -> int:
        """Exactly ``sum(p.numel())`` of :class:`BiLSTMClassifier` (PyTorch's LSTM has two bias vectors)."""
        v, e, h = self.vocab_size, self.embedding_dim, self.hidden_size
        lstm = 2 * 4 * h * (e + h + 2)
        head = num_inputs * 2 * h * h + h + h * num_labels + num_labels
        return v * e + lstm + head

    def size_mb(self, num_inputs: int = 2, num_labels: int = 2) -> float:
        return self.params(num_inputs, num_labels) * 4 / 1e6


def solve_shape(target_mb: float, vocab_size: int, embedding_dim: int, num_inputs: int = 2,
                num_labels: int = 2) -> BiLSTMShape:
    """The hidden size whose model is closest to ``target_mb`` (a quadratic in h, then the nearer integer)."""
    budget = target_mb * 1e6 / 4 - vocab_size * embedding_dim - num_labels
    a = 8 + 2 * num_inputs
    b = 8 * embedding_dim + 16 + 1 + num_labels
    if budget <= a + b:
        raise UserError(f"{target_mb} MB cannot hold a {vocab_size} x {embedding_dim} embedding and an LSTM.",
                        "model.init_args.target_mb", "Raise target_mb or lower vocab_size / embedding_dim.")
    root = (-b + math.sqrt(b * b + 4 * a * budget)) / (2 * a)
    shapes = [BiLSTMShape(vocab_size, embedding_dim, h) for h in {max(1, math.floor(root)), math.ceil(root)}]
    return min(shapes, key=lambda s: abs(s.size_mb(num_inputs, num_labels) - target_mb))


class BiLSTMClassifier(nn.Module):
    """``forward(input_ids, attention_mask) -> logits`` over ``num_inputs`` functions."""

    def __init__(self, shape: BiLSTMShape, num_inputs: int = 2, num_labels: int = 2, dropout: float = 0.1):
        super().__init__()
        self.shape, self.num_inputs, self.num_labels = shape, num_inputs, num_labels
        self.embedding = nn.Embedding(shape.vocab_size, shape.embedding_dim, padding_idx=PAD_ID)
        self.lstm = nn.LSTM(shape.embedding_dim, shape.hidden_size, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(num_inputs * 2 * shape.hidden_size, shape.hidden_size)
        self.out_proj = nn.Linear(shape.hidden_size, num_labels)

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``[B, n, L]`` -> ``[B, n * 2h]``: each function's last forward and first backward states."""
        batch, n, length = input_ids.shape
        ids, mask = input_ids.reshape(batch * n, length), attention_mask.reshape(batch * n, length)
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = pack_padded_sequence(self.embedding(ids), lengths, batch_first=True, enforce_sorted=False)
        _, (final, _) = self.lstm(packed)  # [2, B*n, h]
        return final.transpose(0, 1).reshape(batch, n * 2 * self.shape.hidden_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if input_ids.dim() == 2:
            input_ids, attention_mask = input_ids.unsqueeze(1), attention_mask.unsqueeze(1)
        hidden = torch.relu(self.dense(self.dropout(self.features(input_ids, attention_mask))))
        return self.out_proj(self.dropout(hidden))


class BiLSTMModule(DistillationModule):
    """A :class:`DistillationModule` whose student is a BiLSTM.

    Give ``target_mb`` (the hidden size is solved for) or ``hidden_size`` (then ``target_mb`` is ignored).
    """

    def __init__(self, target_mb: float | None = 3.0, vocab_size: int = 1000, embedding_dim: int = 128,
                 hidden_size: int | None = None, teacher: str | None = None, targets: str = "cached",
                 temperature: float = 1.0, alpha: float = 0.0, dropout: float = 0.1, teacher_head: dict | None = None,
                 num_inputs: int = 2, num_labels: int = 2, positive_label: int = 1, block_size: int = 400,
                 lr: float = 1e-3, weight_decay: float = 0.0, warmup_ratio: float = 0.05,
                 output_dir: str | None = None):
        if hidden_size is None and target_mb is None:
            raise UserError("BiLSTM needs target_mb or hidden_size.", "model.init_args.target_mb")
        # set before DistillationModule.__init__, which calls build_model
        self.shape = (BiLSTMShape(vocab_size, embedding_dim, hidden_size) if hidden_size is not None
                      else solve_shape(target_mb, vocab_size, embedding_dim, num_inputs, num_labels))
        super().__init__(targets=targets, teacher=teacher, temperature=temperature, alpha=alpha, dropout=dropout,
                         teacher_head=teacher_head, num_inputs=num_inputs,
                         num_labels=num_labels, positive_label=positive_label, block_size=block_size, lr=lr,
                         weight_decay=weight_decay, warmup_ratio=warmup_ratio, output_dir=output_dir,
                         inputs="plain")  # a BiLSTM reads code sub-words, whatever its teacher reads

    def build_model(self, dropout: float) -> BiLSTMClassifier:
        return BiLSTMClassifier(self.shape, self.num_inputs, self.num_labels, dropout)

    @property
    def vocab_size(self) -> int:
        return self.shape.vocab_size

    def export_metadata(self) -> dict[str, Any]:
        return {"block_size": self.block_size, "positive_label": self.positive_label, "method": type(self).__name__,
                "shape": asdict(self.shape), "num_inputs": self.num_inputs, "num_labels": self.num_labels}

    def save_model_folder(self, folder: str | Path, tokenizer=None) -> Path:
        return save_state_folder(self.model, tokenizer or self.tokenizer, folder, "bilstm.json", self.export_metadata())

    @staticmethod
    def load_folder(folder: str | Path) -> tuple[BiLSTMClassifier, Any, dict[str, Any]]:
        """``(model in eval mode, tokenizer, metadata)`` from a folder written by :meth:`save_model_folder`."""
        metadata, state, tokenizer = load_state_folder(folder, "bilstm.json", "BiLSTM")
        model = BiLSTMClassifier(BiLSTMShape(**metadata["shape"]), metadata["num_inputs"], metadata["num_labels"])
        model.load_state_dict(state)
        return model.eval(), tokenizer, metadata
