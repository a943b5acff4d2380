"""Ladder Side-Tuning (Sung et al., NeurIPS 2022): a small side network trained beside a frozen backbone.

The backbone runs under ``torch.no_grad`` (no activation is kept for backward) and hands its hidden
states (embeddings output, then each layer's output) to a side network of width ``H / reduction``:
side input 0 is ``down_0(embeddings)``; side layer i reads ``μ_i·down_i(b_i) + (1 - μ_i)·s_{i-1}``
with the gate ``μ_i = sigmoid(α_i / T)`` (α_i = 0 at start, T = 0.1, as in the paper). The head reads
the side network's first-token vector (pairs: both functions', concatenated).

Side layers are post-LayerNorm ``nn.TransformerEncoderLayer``s (BERT's layout) initialised from the
backbone's layers pruned to the side width. Our pruning is simpler than the paper's Fisher-based
one: keep the residual dimensions, per head the dimensions, and the feed-forward units with the
largest L1 norm of the weights that read and write them; the down-projections start as the selection
of the kept residual dimensions. The result is not a ``transformers`` model: :meth:`LadderSideModule.
save_model_folder` writes ``model.safetensors`` (backbone and side), ``ladder.json``, the backbone's
``config.json`` under ``backbone/`` and the tokenizer; :meth:`LadderSideModule.load_folder` reads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel

from lit_compressor.core.errors import UserError
from lit_compressor.nn.classifier import ClassificationHead, drop_pooler
from lit_compressor.nn.folders import (
    load_pretrained_encoder,
    load_state_folder,
    parameter_count,
    save_state_folder,
)
from lit_compressor.training.base import ClassifierModule


def top(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` largest scores, in increasing index order."""
    return scores.topk(k).indices.sort().values


def side_heads(width: int, heads: int, head_dim: int, reduction: int) -> int:
    """Attention heads of the side network: about ``heads / reduction`` (attention maps are most of a
    layer's activation memory), no wider than the backbone's heads, dividing the side width."""
    fits = [d for d in range(1, heads + 1) if width % d == 0 and width // d <= head_dim]
    return next((d for d in fits if d >= max(1, heads // reduction)), fits[-1])


def keep_hidden(layers: nn.ModuleList, width: int) -> torch.Tensor:
    """Residual dimensions of the side network: largest L1 norm of the weights reading or writing them."""
    score = 0
    for layer in layers:
        reads = [layer.attention.self.query, layer.attention.self.key, layer.attention.self.value,
                 layer.intermediate.dense]
        writes = [layer.attention.output.dense, layer.output.dense]
        score = score + sum(m.weight.abs().sum(0) for m in reads) + sum(m.weight.abs().sum(1) for m in writes)
    return top(score, width)


def pruned_layer(layer: nn.Module, hidden: torch.Tensor, heads: int, side_heads_: int, inner: int,
                 dropout: float, eps: float) -> nn.TransformerEncoderLayer:
    """A BERT layer cut down to ``len(hidden)`` residual dims, ``side_heads_`` heads and ``inner`` FFN units."""
    width = len(hidden)
    attention, out = layer.attention.self, layer.attention.output.dense
    head_dim = out.weight.shape[0] // heads
    qkv = (attention.query, attention.key, attention.value)
    per_dim = sum(m.weight.abs().sum(1) for m in qkv) + out.weight.abs().sum(0)  # [H]: one score per head dim
    best_heads = top(per_dim.view(heads, head_dim).sum(1), side_heads_)
    rows = torch.cat([h * head_dim + top(per_dim.view(heads, head_dim)[h], width // side_heads_)
                      for h in best_heads])
    ffn_in, ffn_out = layer.intermediate.dense, layer.output.dense
    units = top(ffn_in.weight.abs().sum(1) + ffn_out.weight.abs().sum(0), inner)
    side = nn.TransformerEncoderLayer(width, side_heads_, inner, dropout, activation="gelu", batch_first=True,
                                      layer_norm_eps=eps)
    with torch.no_grad():
        side.self_attn.in_proj_weight.copy_(torch.cat([m.weight[rows][:, hidden] for m in qkv]))
        side.self_attn.in_proj_bias.copy_(torch.cat([m.bias[rows] for m in qkv]))
        side.self_attn.out_proj.weight.copy_(out.weight[hidden][:, rows])
        side.self_attn.out_proj.bias.copy_(out.bias[hidden])
        side.linear1.weight.copy_(ffn_in.weight[units][:, hidden])
        side.linear1.bias.copy_(ffn_in.bias[units])
        side.linear2.weight.copy_(ffn_out.weight[hidden][:, units])
        side.linear2.bias.copy_(ffn_out.bias[hidden])
        for norm, source in ((side.norm1, layer.attention.output.LayerNorm), (side.norm2, layer.output.LayerNorm)):
            norm.weight.copy_(source.weight[hidden])
            norm.bias.copy_(source.bias[hidden])
    return side


class LadderSideNetwork(nn.Module):
    """Frozen backbone + gated side network + head; ``forward(input_ids, attention_mask) -> logits``."""

    def __init__(self, backbone: PreTrainedModel, num_inputs: int = 1, num_labels: int = 2, reduction: int = 8,
                 gate_temperature: float = 0.1, dropout: float = 0.1):
        super().__init__()
        config = backbone.config
        layers = getattr(getattr(backbone, "encoder", None), "layer", None)
        if layers is None:
            raise UserError(f"Ladder side-tuning needs a BERT-like backbone, got {type(backbone).__name__}.",
                            "model.init_args.model_name_or_path")
        hidden_size, heads = config.hidden_size, config.num_attention_heads
        if hidden_size % reduction or reduction < 1:
            raise UserError(f"reduction {reduction} must divide the backbone's hidden size {hidden_size}.",
                            "model.init_args.reduction")
        self.backbone = drop_pooler(backbone).requires_grad_(False).eval()
        self.num_inputs, self.num_labels = num_inputs, num_labels
        self.reduction, self.gate_temperature = reduction, gate_temperature
        width = hidden_size // reduction
        self.width = width
        hidden = keep_hidden(layers, width)
        heads_ = side_heads(width, heads, hidden_size // heads, reduction)
        inner = max(1, config.intermediate_size // reduction)
        self.side_layers = nn.ModuleList(pruned_layer(layer, hidden, heads, heads_, inner, dropout,
                                                      config.layer_norm_eps) for layer in layers)
        self.downsamplers = nn.ModuleList(nn.Linear(hidden_size, width) for _ in range(len(layers) + 1))
        with torch.no_grad():
            for down in self.downsamplers:
                down.weight.zero_()
                down.weight[torch.arange(width), hidden] = 1.0
                down.bias.zero_()
        self.gates = nn.Parameter(torch.zeros(len(layers)))
        self.classifier = ClassificationHead(width * num_inputs, width, num_labels, dropout)

    def train(self, mode: bool = True) -> LadderSideNetwork:
        super().train(mode)
        self.backbone.eval()  # frozen: no dropout, the same features every epoch
        return self

    def side_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if not name.startswith("backbone.")]

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``[B, n, L]`` -> ``[B, n * width]`` first-token vectors of the side network."""
        batch, n, length = input_ids.shape
        ids, mask = input_ids.reshape(batch * n, length), attention_mask.reshape(batch * n, length)
        with torch.no_grad():
            states = self.backbone(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        padding = mask == 0
        side = self.downsamplers[0](states[0])
        gates = torch.sigmoid(self.gates / self.gate_temperature)
        for i, layer in enumerate(self.side_layers):
            mixed = gates[i] * self.downsamplers[i + 1](states[i + 1]) + (1 - gates[i]) * side
            side = layer(mixed, src_key_padding_mask=padding)
        return side[:, 0].reshape(batch, n * self.width)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if input_ids.dim() == 2:
            input_ids, attention_mask = input_ids.unsqueeze(1), attention_mask.unsqueeze(1)
        return self.classifier(self.features(input_ids, attention_mask))


class LadderSideModule(ClassifierModule):
    """Trains only the side network (and its head) of a frozen pre-trained encoder, on the labelled split.

    Deployment needs the backbone *and* the side network: :meth:`size_mb` counts both.
    """

    def __init__(self, model_name_or_path: str = "sentence-transformers/all-MiniLM-L6-v2", reduction: int = 8,
                 gate_temperature: float = 0.1, dropout: float = 0.1, num_inputs: int = 2, num_labels: int = 2,
                 positive_label: int = 1, block_size: int = 400, lr: float = 1e-3, weight_decay: float = 0.0,
                 warmup_ratio: float = 0.1, output_dir: str | None = None):
        super().__init__(num_inputs, num_labels, positive_label, block_size, lr, weight_decay, warmup_ratio,
                         output_dir)
        self.save_hyperparameters()
        backbone, self.tokenizer = load_pretrained_encoder(model_name_or_path)
        self.model = LadderSideNetwork(backbone, num_inputs, num_labels, reduction, gate_temperature, dropout)

    def training_step(self, batch: dict, batch_idx: int):
        loss = F.cross_entropy(self(batch), batch["labels"])
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def size_mb(self) -> dict[str, float]:
        """fp32 MB of what deployment needs: backbone + side network (and of the side alone)."""
        side = sum(p.numel() for p in self.model.side_parameters())
        return {"side_mb": side * 4 / 1e6, "total_mb": parameter_count(self.model) * 4 / 1e6}

    def export_metadata(self) -> dict[str, Any]:
        return {**super().export_metadata(), "num_inputs": self.num_inputs, "num_labels": self.num_labels,
                "reduction": self.model.reduction, "gate_temperature": self.model.gate_temperature}

    def save_model_folder(self, folder: str | Path, tokenizer=None) -> Path:
        folder = Path(folder)
        (folder / "backbone").mkdir(parents=True, exist_ok=True)
        self.model.backbone.config.save_pretrained(folder / "backbone")
        return save_state_folder(self.model, tokenizer or self.tokenizer, folder, "ladder.json", self.export_metadata())

    @staticmethod
    def load_folder(folder: str | Path) -> tuple[LadderSideNetwork, Any, dict[str, Any]]:
        """``(network in eval mode, tokenizer, metadata)`` from a folder written by :meth:`save_model_folder`."""
        metadata, state, tokenizer = load_state_folder(folder, "ladder.json", "ladder side-tuning")
        config = AutoConfig.from_pretrained(Path(folder) / "backbone")
        kwargs = {"add_pooling_layer": False} if config.model_type in ("bert", "roberta") else {}
        backbone = AutoModel.from_config(config, **kwargs)
        network = LadderSideNetwork(backbone, metadata["num_inputs"], metadata["num_labels"], metadata["reduction"],
                                    metadata["gate_temperature"])
        network.load_state_dict(state)
        return network.eval(), tokenizer, metadata


def peak_training_memory_mb(model: nn.Module, inputs: dict[str, torch.Tensor], labels: torch.Tensor) -> float:
    """Peak bytes held by torch's CPU allocator during one forward + backward (``torch.profiler``), in MB.

    The running sum of every allocation and free the profiler records, in time order; memory held
    before the step (weights, inputs) is not counted, gradients created by the step are.
    """
    from torch.profiler import ProfilerActivity, profile

    model.zero_grad(set_to_none=True)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        F.cross_entropy(model(**inputs), labels).backward()
    current = peak = 0
    for _, change in sorted((e.time_range.start, e.self_cpu_memory_usage) for e in prof.events()):
        current += change
        peak = max(peak, current)
    model.zero_grad(set_to_none=True)
    return peak / 1e6
