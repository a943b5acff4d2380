"""Predicting soft labels with Lightning: a frozen teacher and a writer callback that is DDP-safe."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import BasePredictionWriter

from lit_compressor.core.errors import UserError
from lit_compressor.data.readers import Example
from lit_compressor.labels.copies import Copy
from lit_compressor.labels.soft_labels import (
    SoftLabels,
    TeacherFunctions,
    TransformedCopies,
    example_rows,
    function_key,
    gather_predictions,
    save_soft_labels,
)
from lit_compressor.runtime.folder import load_folder
from lit_compressor.training.base import ClassifierModule, model_inputs


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
    """A fine-tuned classifier folder, frozen, for ``predict`` and evaluation (``test`` writes its
    ``metrics.json`` to ``output_dir``). ``num_inputs``/``num_labels``, when given (the CLI links them from
    the task), must be the folder's: a pair model cannot read single functions. With ``function_vectors``,
    ``predict`` returns each function's pooled vector (what the head reads) instead of logits."""

    def __init__(self, folder: str, block_size: int = 400, num_inputs: int | None = None,
                 num_labels: int | None = None, output_dir: str | None = None, function_vectors: bool = False):
        try:
            opened = load_folder(folder, block_size=block_size)
        except (ValueError, KeyError, OSError) as error:  # e.g. a config.json of an unknown model_type
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UserError(f"cannot load the model folder ({reason}).", folder,
                            "Give a folder written by lit-compressor (fit with output_dir, export or "
                            "import-compressor) whose config.json names a known architecture.") from None
        model = opened.model
        check_block_size(model.config, block_size, folder)
        for name, given, own in (("functions per example", num_inputs, model.num_inputs),
                                 ("classes", num_labels, model.num_labels)):
            if given is not None and given != own:
                raise UserError(f"the model reads {own} {name}, the task has {given}.", folder,
                                "Give a model fine-tuned on this kind of task.")
        super().__init__(num_inputs=model.num_inputs, num_labels=model.num_labels,
                         positive_label=opened.metadata.get("positive_label", 1), block_size=block_size,
                         output_dir=output_dir)
        self.model, self.tokenizer, self.metadata = model.requires_grad_(False), opened.tokenizer, opened.metadata
        self._code_encoder = opened.encoder  # the folder's own inputs: code tokens, or code and data flow
        self.function_vectors = function_vectors

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        if not self.function_vectors:
            return super().predict_step(batch, batch_idx)
        return {"ids": batch["ids"], "vectors": self.model.features(**model_inputs(batch)).float().cpu()}


class SoftLabelWriter(BasePredictionWriter):
    """Collects each unique function's pooled teacher vector on every rank; rank 0 merges them once,
    applies the teacher's own head to each example's functions and writes logits and function cache."""

    def __init__(self, output: str | Path, examples: list[Example], functions: list[Example],
                 metadata: dict[str, str], copies: list[Copy] | None = None):
        super().__init__(write_interval="batch")
        self.output, self.examples, self.functions, self.metadata = Path(output), examples, functions, metadata
        self.copies = copies or []  # transformed copies of the functions, predicted after them
        self._keys: list[str] = []
        self._vectors: list[torch.Tensor] = []

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0):
        self._keys.extend(prediction["ids"])
        self._vectors.append(prediction["vectors"])

    def on_predict_epoch_end(self, trainer, pl_module) -> None:
        local = (self._keys, torch.cat(self._vectors) if self._vectors else torch.empty(0, 1))
        parts = [local]
        if dist.is_available() and dist.is_initialized() and trainer.world_size > 1:
            parts = [None] * trainer.world_size
            dist.all_gather_object(parts, local)
        if trainer.is_global_zero:
            order = [function.id for function in self.functions]
            copy_keys = [function_key(c.copy) for c in self.copies]
            keys, vectors = gather_predictions([k for part_keys, _ in parts for k in part_keys],
                                               [rows for _, rows in parts], order + copy_keys)
            keys = keys[:len(order)]
            model = pl_module.model
            functions = TeacherFunctions(keys, vectors[:len(order)].float(), dict(model.classifier.state_dict()),
                                         model.num_inputs, model.pair_head, self._copies(keys, vectors[len(order):]))
            logits = functions.logits(example_rows(self.examples, functions))
            passes = {"function_passes": str(len({code for e in self.examples for code in e.codes})),
                      "example_passes": str(sum(len(e.codes) for e in self.examples))}
            save_soft_labels(self.output, SoftLabels([e.id for e in self.examples], logits,
                                                     {**self.metadata, **passes}, functions))
        trainer.strategy.barrier()
        self._keys, self._vectors = [], []

    def _copies(self, keys: list[str], vectors: torch.Tensor) -> TransformedCopies | None:
        if not self.copies:
            return None
        of = torch.full((len(keys),), -1, dtype=torch.long)
        rows = {key: row for row, key in enumerate(keys)}
        for index, copy in enumerate(self.copies):
            of[rows[function_key(copy.code)]] = index
        return TransformedCopies(of, vectors.float(), [c.copy for c in self.copies],
                                 [c.transformation for c in self.copies])
