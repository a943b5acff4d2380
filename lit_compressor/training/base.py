"""What every classifier LightningModule shares: batching, evaluation, predictions, optimiser, export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DistributedSampler
from transformers import get_linear_schedule_with_warmup

from lit_compressor.data.readers import Example
from lit_compressor.nn.classifier import CodeClassifier
from lit_compressor.nn.folders import save_classifier
from lit_compressor.nn.tokenization import CodeEncoder
from lit_compressor.training.callbacks import SaveModelFolder
from lit_compressor.training.metrics import classification_metrics, prediction_record, scalar_metrics

BATCH_KEYS = ("labels", "ids", "pair_index", "target_logits", "target_vectors", "target_known")
"""What a batch holds besides the model's inputs (the ``teacher_*`` inputs aside)."""


def model_inputs(batch: dict, prefix: str = "") -> dict[str, torch.Tensor]:
    """The tensors a classifier's ``forward`` takes (``prefix`` selects e.g. the teacher's inputs)."""
    return {k[len(prefix):]: v for k, v in batch.items()
            if k.startswith(prefix) and k not in BATCH_KEYS and isinstance(v, torch.Tensor)
            and (prefix or not k.startswith("teacher_"))}


class ClassifierModule(L.LightningModule):
    """Base class: subclasses set ``self.model`` (and ``self.tokenizer`` when the model brings its own) and write
    ``training_step``.

    Validation and test report accuracy and the positive class's precision, recall and F1.
    ``output_dir``, when set, receives the best model as a model folder after ``fit`` and its test metrics
    (``metrics.json``) after ``test``: the :class:`~lit_compressor.training.callbacks.SaveModelFolder` callback
    that every module brings (:meth:`configure_callbacks`) writes them.
    """

    model: CodeClassifier
    tokenizer = None

    def __init__(self, num_inputs: int = 2, num_labels: int = 2, positive_label: int = 1, block_size: int = 400,
                 lr: float = 2e-5, weight_decay: float = 0.0, warmup_ratio: float = 0.1,
                 output_dir: str | None = None):
        super().__init__()
        self.num_inputs, self.num_labels, self.positive_label = num_inputs, num_labels, positive_label
        self.block_size = block_size
        self.lr, self.weight_decay, self.warmup_ratio = lr, weight_decay, warmup_ratio
        self.output_dir = output_dir
        self.val_metrics = classification_metrics(num_labels)
        self.test_metrics = classification_metrics(num_labels)
        self.test_results: dict[str, Any] | None = None
        self._code_encoder: CodeEncoder | None = None

    # --- batching -------------------------------------------------------------------------------
    @property
    def code_encoder(self) -> CodeEncoder | None:
        """The batch builder of the model's own tokenizer, which its data module encodes with (None when the
        data module owns the tokenizer: a distilled student's)."""
        if self._code_encoder is None and self.tokenizer is not None:
            self._code_encoder = CodeEncoder(self.tokenizer, self.block_size)
        return self._code_encoder

    def collate(self, examples: list[Example]) -> dict:
        return self.code_encoder(examples)

    def forward(self, batch: dict) -> torch.Tensor:
        """Logits of the batch's examples: of its pairs (``pair_index``) in a batch of functions."""
        if "pair_index" in batch:
            return self.pair_logits(batch)
        return self.model(**model_inputs(batch))

    def pair_logits(self, batch: dict) -> torch.Tensor:
        """A batch of functions (:mod:`~lit_compressor.training.function_batches`): each function encoded once,
        and the head on the two pooled vectors of every pair that ``pair_index`` ``[P, 2]`` lists."""
        return self.head_on_pairs(self.pooled_functions(batch), batch["pair_index"])

    def pooled_functions(self, batch: dict) -> torch.Tensor:
        """``[N, H]``: the pooled vector of each function of a batch of functions (one a row)."""
        output, mask = self.model.encode(**model_inputs(batch))
        return self.model.pool(output.last_hidden_state, mask)

    def head_on_pairs(self, pooled: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """The head's logits of the pairs ``[P, 2]`` (rows of ``pooled``), or of single functions ``[P, 1]``."""
        return self.model.head(pooled[pairs].reshape(len(pairs), -1))

    # --- evaluation -----------------------------------------------------------------------------
    def _positive(self) -> int | None:
        return self.positive_label if self.num_labels == 2 else None

    def real_examples(self, batch: dict, batch_idx: int) -> torch.Tensor | slice:
        """Rows of a validation/test batch that are not the duplicates a ``DistributedSampler`` pads with.

        Under DDP, Lightning shards evaluation with a ``DistributedSampler``, which repeats the first
        examples until every rank has as many; counting them would change the metrics. Rank ``r``'s
        ``k``-th example sits at position ``r + k·world_size`` of the padded list, and the padding is
        every position from ``len(dataset)`` on.
        """
        loaders = self.trainer.test_dataloaders if self.trainer.testing else self.trainer.val_dataloaders
        loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
        sampler = getattr(loader, "sampler", None)
        if (not isinstance(sampler, DistributedSampler) or sampler.drop_last or sampler.num_replicas == 1
                or not loader.batch_size):
            return slice(None)
        local = torch.arange(len(batch["labels"])) + batch_idx * loader.batch_size
        return (sampler.rank + local * sampler.num_replicas < len(sampler.dataset)).to(batch["labels"].device)

    def _update(self, metrics, batch: dict, batch_idx: int) -> None:
        real = self.real_examples(batch, batch_idx)
        if isinstance(real, slice) or real.any():  # a rank's last batch can be all padding
            metrics.update(self(batch).argmax(-1)[real], batch["labels"][real])

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._update(self.val_metrics, batch, batch_idx)

    def on_validation_epoch_end(self) -> None:
        values = scalar_metrics(self.val_metrics, self._positive())
        self.log_dict({f"val/{k}": v for k, v in values.items()}, prog_bar=True)
        self.val_metrics.reset()

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._update(self.test_metrics, batch, batch_idx)

    def on_test_epoch_end(self) -> None:
        values = scalar_metrics(self.test_metrics, self._positive())
        self.log_dict({f"test/{k}": v for k, v in values.items()})
        self.test_results = {**values, **prediction_record(self.test_metrics)}
        self.test_metrics.reset()

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, Any]:
        return {"ids": batch["ids"], "logits": self(batch).float().cpu()}

    # --- optimisation ---------------------------------------------------------------------------
    def optimizer_parameters(self) -> list[torch.nn.Parameter]:
        """What the optimiser updates (a method that unfreezes parts mid-fit lists them here too)."""
        return [p for p in self.parameters() if p.requires_grad]

    def configure_optimizers(self):
        params = self.optimizer_parameters()
        optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = get_linear_schedule_with_warmup(optimizer, int(self.warmup_ratio * total), total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # --- output ---------------------------------------------------------------------------------
    def export_metadata(self) -> dict[str, Any]:
        return {"block_size": self.block_size, "positive_label": self.positive_label, "method": type(self).__name__}

    def save_model_folder(self, folder: str | Path, tokenizer=None) -> Path:
        """The model as a folder, with ``tokenizer`` (default: the model's own)."""
        return save_classifier(self.model, tokenizer or self.tokenizer, folder, self.export_metadata())

    def own_callbacks(self) -> list[L.Callback]:
        """The callbacks the module's settings need (a subclass adds its own)."""
        return [SaveModelFolder()]

    def configure_callbacks(self) -> list[L.Callback]:
        """:meth:`own_callbacks`, but those of a kind the trainer has already (given, or attached by an earlier fit)."""
        present = {type(callback) for callback in self.trainer.callbacks} if self._trainer is not None else set()
        return [callback for callback in self.own_callbacks() if type(callback) not in present]
