"""Predicting soft labels with Lightning: a frozen teacher and a writer callback that is DDP-safe."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import BasePredictionWriter

from lit_compressor.errors import UserError
from lit_compressor.models.hf_folder import load_classifier
from lit_compressor.modules.base import ClassifierModule


def check_block_size(config, block_size: int, folder: str | Path) -> None:
    """A block longer than the model's position embeddings cannot be encoded: say so before running."""
    positions = getattr(config, "max_position_embeddings", None)
    if positions is None:
        return
    # RoBERTa-style models number positions from pad_token_id + 1
    offset = (config.pad_token_id or 0) + 1 if "roberta" in getattr(config, "model_type", "") else 0
    if block_size > positions - offset:
        raise UserError(f"block_size {block_size} is longer than the model's {positions - offset} positions "
                        f"(max_position_embeddings {positions}).", folder,
                        f"Set block_size to at most {positions - offset}.")


class TeacherPredictor(ClassifierModule):
    """A fine-tuned classifier folder, frozen, for ``predict`` and evaluation."""

    def __init__(self, folder: str, block_size: int = 400):
        try:
            model, tokenizer, metadata = load_classifier(folder)
        except (ValueError, KeyError, OSError) as error:  # e.g. a config.json of an unknown model_type
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UserError(f"cannot load the model folder ({reason}).", folder,
                            "Give a folder written by lit-compressor (fit with output_dir, export or "
                            "import-compressor) whose config.json names a known architecture.") from None
        check_block_size(model.config, block_size, folder)
        super().__init__(num_inputs=model.num_inputs, num_labels=model.num_labels,
                         positive_label=metadata.get("positive_label", 1), block_size=block_size)
        self.model, self.tokenizer, self.metadata = model.requires_grad_(False), tokenizer, metadata
        if metadata.get("kind") == "graphcodebert":
            from lit_compressor.graphcodebert.inputs import GraphCodeEncoder, LayoutRules
            from lit_compressor.graphcodebert.model import build_graphcodebert_classifier

            graph = build_graphcodebert_classifier(model.encoder, model.num_inputs, model.num_labels)
            graph.load_state_dict(model.state_dict())
            self.model = graph.eval().requires_grad_(False)
            flow = metadata.get("flow_length", 64)
            self._code_encoder = GraphCodeEncoder(tokenizer, code_length=block_size - flow, flow_length=flow,
                                                  language=metadata.get("language", "java"),
                                                  rules=LayoutRules.from_dict(metadata.get("layout_rules")))


class SoftLabelWriter(BasePredictionWriter):
    """Collects ``(ids, logits)`` on every rank; rank 0 merges them once and writes the file."""

    def __init__(self, output: str | Path, metadata: dict[str, str]):
        super().__init__(write_interval="batch")
        self.output, self.metadata = Path(output), metadata
        self._ids: list[str] = []
        self._logits: list[torch.Tensor] = []

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0):
        self._ids.extend(prediction["ids"])
        self._logits.append(prediction["logits"])

    def on_predict_epoch_end(self, trainer, pl_module) -> None:
        from lit_compressor.soft_labels import SoftLabels, gather_predictions, save_soft_labels

        local = (self._ids, torch.cat(self._logits) if self._logits else torch.empty(0, pl_module.num_labels))
        parts = [local]
        if dist.is_available() and dist.is_initialized() and trainer.world_size > 1:
            parts = [None] * trainer.world_size
            dist.all_gather_object(parts, local)
        if trainer.is_global_zero:
            order = [example.id for example in trainer.datamodule.split("unlabelled")]
            ids = [i for part_ids, _ in parts for i in part_ids]
            ids, logits = gather_predictions(ids, [rows for _, rows in parts], order)
            save_soft_labels(self.output, SoftLabels(ids, logits, self.metadata))
        trainer.strategy.barrier()
        self._ids, self._logits = [], []
