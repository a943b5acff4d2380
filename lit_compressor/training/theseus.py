"""BERT-of-Theseus (Xu et al., EMNLP 2020): compress a fine-tuned teacher by progressive module replacing.

The teacher's L layers are split into k modules of consecutive layers; successor i is one layer. While
training, each module is replaced by its successor with probability p (constant, or the linear
curriculum ``p = min(1, p0 + slope * step)``); the predecessor's layers stay frozen. As in the
authors' code (JetRunner/BERT-of-Theseus ``run_glue.py``) only the successor layers train in this
phase: the embeddings and the head are the teacher's, shared and frozen. After ``replacement_epochs``
the successor, already a real k-layer ``transformers`` encoder (``self.model``), is fine-tuned alone,
all of it, until ``monitor`` has not improved for ``finetune_patience`` validations (Lightning's
``EarlyStopping``, counting the fine-tuning phase's validations only).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import EarlyStopping
from torch import nn
from transformers import AutoModel, PreTrainedModel

from lit_compressor.core.errors import UserError
from lit_compressor.nn.classifier import CodeClassifier
from lit_compressor.nn.folders import load_classifier
from lit_compressor.training.base import ClassifierModule, model_inputs


@dataclass(frozen=True)
class ReplacementSchedule:
    """The probability of replacing a predecessor module by its successor at optimizer step ``step``.

    ``constant``: ``rate``. ``linear``: ``min(1, rate + slope * step)`` (``rate`` is the paper's p0).
    """

    kind: Literal["constant", "linear"]
    rate: float
    slope: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.rate <= 1:
            raise ValueError(f"the replacing rate must be in (0, 1], got {self.rate}")

    def __call__(self, step: int) -> float:
        if self.kind == "constant":
            return self.rate
        return min(1.0, self.rate + self.slope * step)


def module_bounds(num_layers: int, modules: int) -> list[tuple[int, int]]:
    """``[start, end)`` of each of ``modules`` groups of consecutive layers (sizes differ by at most one)."""
    if not 1 <= modules <= num_layers:
        raise UserError(f"successor_layers must be between 1 and the teacher's {num_layers} layers, "
                        f"got {modules}.", "model.init_args.successor_layers")
    return [(i * num_layers // modules, (i + 1) * num_layers // modules) for i in range(modules)]


def layer_stack(encoder: PreTrainedModel) -> nn.ModuleList:
    """The ``nn.ModuleList`` of transformer layers of a BERT-like encoder (``encoder.encoder.layer``)."""
    stack = getattr(getattr(encoder, "encoder", None), "layer", None)
    if not isinstance(stack, nn.ModuleList):
        raise UserError("BERT-of-Theseus needs a BERT-like encoder (encoder.layer), "
                        f"got {type(encoder).__name__}.", "model.init_args.teacher")
    return stack


@contextmanager
def running_layers(encoder: PreTrainedModel, layers: list[nn.Module]) -> Iterator[None]:
    """Run ``encoder`` with ``layers`` in place of its own (the encoder loop only iterates its list)."""
    stack = encoder.encoder
    own = stack.layer
    stack.layer = nn.ModuleList(layers)
    try:
        yield
    finally:
        stack.layer = own


def successor_classifier(teacher: CodeClassifier, bounds: list[tuple[int, int]],
                         init: Literal["bottom", "module"]) -> CodeClassifier:
    """A k-layer copy of the teacher: its embeddings, its head, and layers initialised from its own.

    ``bottom`` (the authors' code): successor i starts as teacher layer i; ``module``: as the first
    layer of module i.
    """
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(bounds)
    kwargs = {"add_pooling_layer": False} if config.model_type in ("bert", "roberta") else {}
    encoder = AutoModel.from_config(config, **kwargs)
    encoder.embeddings.load_state_dict(teacher.encoder.embeddings.state_dict())
    source = layer_stack(teacher.encoder)
    for i, layer in enumerate(layer_stack(encoder)):
        layer.load_state_dict(source[i if init == "bottom" else bounds[i][0]].state_dict())
    successor = CodeClassifier(encoder, teacher.num_inputs, teacher.num_labels, pooling=teacher.pooling,
                               pair_head=teacher.pair_head)
    successor.classifier.load_state_dict(teacher.classifier.state_dict())
    return successor


class FinetuningEarlyStopping(EarlyStopping):
    """Lightning's ``EarlyStopping`` (``monitor`` maximised), deaf to the validations of the replacement phase."""

    def __init__(self, monitor: str, patience: int):
        # as the hand-written stop it replaces: a missing or non-finite value is no reason to stop
        super().__init__(monitor=monitor, mode="max", patience=patience, strict=False, check_finite=False,
                         check_on_train_epoch_end=False)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if pl_module.finetuning:
            super().on_validation_end(trainer, pl_module)


class TheseusModule(ClassifierModule):
    """Progressive module replacing on the labelled split (cross-entropy), then successor fine-tuning.

    ``self.model`` is the successor (evaluated, checkpointed and exported alone, as a normal HF
    folder); ``self.predecessor`` holds the teacher's frozen layers. ``replacing_rate`` is the
    constant p or, with ``scheduler: linear``, p0; ``slope`` defaults to reaching p = 1 at the end
    of the replacement phase. Under DDP use ``strategy: ddp_find_unused_parameters_true``: a step
    leaves the successors it did not pick unused.
    """

    def __init__(self, teacher: str, successor_layers: int = 6, replacing_rate: float = 0.3,
                 scheduler: Literal["constant", "linear"] = "linear", slope: float | None = None,
                 successor_init: Literal["bottom", "module"] = "bottom", replacement_epochs: int = 2,
                 finetune_patience: int = 2, monitor: str = "val/f1", num_inputs: int = 2,
                 num_labels: int = 2, positive_label: int = 1, block_size: int = 400, lr: float = 5e-5,
                 weight_decay: float = 0.0, warmup_ratio: float = 0.1, output_dir: str | None = None):
        super().__init__(num_inputs, num_labels, positive_label, block_size, lr, weight_decay, warmup_ratio,
                         output_dir)
        self.save_hyperparameters()
        ReplacementSchedule(scheduler, replacing_rate)  # validate early
        teacher_model, self.tokenizer, _ = load_classifier(teacher)
        if teacher_model.num_inputs != num_inputs or teacher_model.num_labels != num_labels:
            raise UserError(f"the teacher reads {teacher_model.num_inputs} functions into "
                            f"{teacher_model.num_labels} labels, the task {num_inputs} into {num_labels}.", teacher)
        self.bounds = module_bounds(len(layer_stack(teacher_model.encoder)), successor_layers)
        self.model = successor_classifier(teacher_model, self.bounds, successor_init).train()
        self.predecessor = layer_stack(teacher_model.encoder).requires_grad_(False)
        self.scheduler_kind, self.replacing_rate, self.slope = scheduler, replacing_rate, slope
        self.replacement_epochs, self.finetune_patience = replacement_epochs, finetune_patience
        self.monitor = monitor
        self.set_phase(finetuning=replacement_epochs <= 0)

    # --- phases ---------------------------------------------------------------------------------
    @property
    def successors(self) -> nn.ModuleList:
        return layer_stack(self.model.encoder)

    def set_phase(self, finetuning: bool) -> None:
        """Replacement: only the successor layers train. Fine-tuning: the whole successor trains."""
        self.finetuning = finetuning
        self.model.requires_grad_(finetuning)
        self.successors.requires_grad_(True)

    def optimizer_parameters(self) -> list[nn.Parameter]:
        return list(self.model.parameters())  # frozen ones have no grad, so AdamW skips them until unfrozen

    def schedule(self) -> ReplacementSchedule:
        slope = self.slope
        if slope is None:  # reach p = 1 when the replacement phase ends
            per_epoch = -(-self.trainer.num_training_batches // self.trainer.accumulate_grad_batches)
            slope = (1 - self.replacing_rate) / max(1, self.replacement_epochs * per_epoch)
        return ReplacementSchedule(self.scheduler_kind, self.replacing_rate, slope)

    def sample_layers(self, p: float) -> list[nn.Module]:
        """One Bernoulli(p) draw per module: its successor, or its predecessor layers."""
        layers: list[nn.Module] = []
        for successor, (start, end) in zip(self.successors, self.bounds, strict=True):
            layers.extend([successor] if torch.rand(()) < p else list(self.predecessor[start:end]))
        return layers

    def on_train_epoch_start(self) -> None:
        if self.current_epoch >= self.replacement_epochs and not self.finetuning:
            self.set_phase(finetuning=True)

    # --- training -------------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int):
        if self.finetuning:
            logits = self(batch)
        else:
            p = self.schedule()(self.global_step)
            layers = self.sample_layers(p)
            self.log("train/replacing_rate", p)
            if not any(layer in layers for layer in self.successors):
                return None  # every module kept its frozen predecessor: nothing to train on this batch
            with running_layers(self.model.encoder, layers):
                logits = self.model(**model_inputs(batch))
        loss = F.cross_entropy(logits, batch["labels"])
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def own_callbacks(self) -> list[L.Callback]:
        return [*super().own_callbacks(), FinetuningEarlyStopping(self.monitor, self.finetune_patience)]

    def export_metadata(self) -> dict:
        return {**super().export_metadata(), "successor_layers": len(self.bounds),
                "teacher_layers": len(self.predecessor)}
