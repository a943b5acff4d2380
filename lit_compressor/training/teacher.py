"""Fine-tuning the teacher: any Hugging Face encoder with a single or pair classification head."""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F

from lit_compressor.core.errors import UserError
from lit_compressor.graphcodebert.inputs import GraphCodeEncoder
from lit_compressor.graphcodebert.model import build_graphcodebert_classifier
from lit_compressor.nn.classifier import CodeClassifier
from lit_compressor.nn.folders import load_pretrained_encoder
from lit_compressor.training.base import ClassifierModule
from lit_compressor.training.frozen_cache import FrozenLayerCache


def build_teacher(model_name_or_path: str, num_inputs: int, num_labels: int, kind: str = "plain",
                  pooling: str = "first", pair_head: str = "concat"):
    """``(classifier, tokenizer)`` around a pre-trained encoder (local folder or hub id)."""
    encoder, tokenizer = load_pretrained_encoder(model_name_or_path)
    if kind == "graphcodebert":
        return build_graphcodebert_classifier(encoder, num_inputs, num_labels, pooling, pair_head), tokenizer
    return CodeClassifier(encoder, num_inputs=num_inputs, num_labels=num_labels, pooling=pooling,
                          pair_head=pair_head), tokenizer


class TeacherModule(ClassifierModule):
    """Fine-tunes a pre-trained encoder on the labelled split with cross-entropy.

    ``kind: graphcodebert`` feeds GraphCodeBERT's data-flow inputs (``language`` picks the parser).
    ``pooling``: ``first`` (Compressor, CodeBERT) or ``mean`` (encoders pre-trained with mean pooling,
    such as the sentence-transformers MiniLM). ``pair_head``: ``concat`` (Compressor's ``[u, v]``) or
    ``interaction`` (``[u, v, |u-v|, u*v]``, learns from fewer labelled pairs). ``trainable_layers``:
    fine-tune only the top that many encoder layers (and the head); the embeddings and the layers below
    stay frozen, which saves their backward pass (None: fine-tune everything). ``cache_frozen`` (with
    ``trainable_layers``) computes the frozen layers once per function and keeps their output in memory
    (:mod:`~lit_compressor.training.frozen_cache`), which saves their forward pass too from the second time a
    function is encoded on: in batches of functions (``data.init_args.function_batches``) a function of the whole
    labelled half is encoded about five times an epoch.
    """

    def __init__(self, model_name_or_path: str = "sentence-transformers/all-MiniLM-L6-v2",
                 kind: Literal["plain", "graphcodebert"] = "plain", pooling: Literal["first", "mean"] = "first",
                 pair_head: Literal["concat", "interaction"] = "concat",
                 language: Literal["java", "c"] = "java",
                 flow_length: int = 64, num_inputs: int = 2, num_labels: int = 2, positive_label: int = 1,
                 block_size: int = 400, lr: float = 2e-5, weight_decay: float = 0.0, warmup_ratio: float = 0.1,
                 trainable_layers: int | None = None, cache_frozen: bool = False, output_dir: str | None = None):
        super().__init__(num_inputs, num_labels, positive_label, block_size, lr, weight_decay, warmup_ratio,
                         output_dir)
        self.save_hyperparameters()
        self.kind, self.language, self.flow_length = kind, language, flow_length
        self.model, self.tokenizer = build_teacher(model_name_or_path, num_inputs, num_labels, kind, pooling,
                                                   pair_head)
        if trainable_layers is not None:
            freeze_below(self.model.encoder, trainable_layers)
        if cache_frozen and (trainable_layers is None or kind != "plain"):
            raise UserError("cache_frozen keeps the output of frozen layers: it needs trainable_layers and kind plain.",
                            "model.init_args.cache_frozen", "Set trainable_layers (e.g. 3), or remove cache_frozen.")
        self.frozen_cache = FrozenLayerCache(self.model.encoder, trainable_layers) if cache_frozen else None

    @property
    def code_encoder(self):
        if self._code_encoder is None and self.kind == "graphcodebert":
            self._code_encoder = GraphCodeEncoder(self.tokenizer, code_length=self.block_size - self.flow_length,
                                                  flow_length=self.flow_length, language=self.language)
        return super().code_encoder

    def pooled_functions(self, batch: dict):
        if self.frozen_cache is None:
            return super().pooled_functions(batch)
        input_ids, mask = batch["input_ids"], batch["attention_mask"]
        input_ids, mask = input_ids.reshape(-1, input_ids.shape[-1]), mask.reshape(-1, mask.shape[-1])
        return self.model.pool(self.frozen_cache(input_ids, mask), mask)

    def forward(self, batch: dict):
        if self.frozen_cache is None or "pair_index" in batch:
            return super().forward(batch)
        rows = batch["input_ids"].shape[0]  # a batch of pairs (or single functions): every function through the cache
        return self.model.head(self.pooled_functions(batch).reshape(rows, -1))

    def training_step(self, batch: dict, batch_idx: int):
        """Cross-entropy over the batch's pairs, or, in a batch of functions (``data.init_args.function_batches``),
        over every labelled pair among its functions."""
        loss = F.cross_entropy(self(batch), batch["labels"])
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def export_metadata(self) -> dict:
        return {**super().export_metadata(), "kind": self.kind, "language": self.language,
                "flow_length": self.flow_length}


def freeze_below(encoder, trainable_layers: int) -> None:
    """Freeze the embeddings and every encoder layer but the top ``trainable_layers``."""
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    if layers is None:
        raise UserError(f"trainable_layers needs a BERT-like encoder with `encoder.layer`; "
                        f"{type(encoder).__name__} has none.", "model.init_args.trainable_layers",
                        "Remove trainable_layers to fine-tune the whole encoder.")
    if not 0 <= trainable_layers <= len(layers):
        raise UserError(f"trainable_layers {trainable_layers} is not between 0 and the encoder's {len(layers)} "
                        "layers.", "model.init_args.trainable_layers")
    encoder.embeddings.requires_grad_(False)
    for layer in list(layers)[: len(layers) - trainable_layers]:
        layer.requires_grad_(False)
