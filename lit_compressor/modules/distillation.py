"""Distillation: a student trained on the frozen teacher's probabilities over the unlabelled split."""

from __future__ import annotations

from typing import Literal

import torch

from lit_compressor.data.readers import Example
from lit_compressor.errors import UserError
from lit_compressor.losses import mixed_loss
from lit_compressor.models.hf_folder import load_classifier
from lit_compressor.models.student import build_student
from lit_compressor.modules.base import ClassifierModule, model_inputs
from lit_compressor.search.architecture import StudentArchitecture
from lit_compressor.tokenization import CodeEncoder, train_student_tokenizer


class DistillationModule(ClassifierModule):
    """Holds the student and, in ``online`` mode, the frozen teacher.

    ``targets: cached`` (default, the fast path) reads the teacher's logits from ``soft_labels``;
    ``targets: online`` runs the frozen ``teacher`` folder on each batch. ``pooling`` and
    ``pair_head`` should be the teacher's (the same head reads the same kind of vector). The loss is
    ``(1 - alpha) · KL(softmax(t/T) || softmax(s/T)) · T² + alpha · CE`` (CE only where true labels
    exist; the paper uses ``alpha = 0``). The teacher never enters the student's checkpoint.
    The student tokenizer (byte-level BPE with exactly ``vocab_size`` tokens) is trained on the
    unlabelled split's code and cached in ``tokenizer_cache``.
    """

    train_split = "unlabelled"

    def __init__(self, architecture: StudentArchitecture | dict = StudentArchitecture(), family: Literal[
                 "roberta", "bert"] = "roberta", targets: Literal["cached", "online"] = "cached",
                 soft_labels: str | None = None, teacher: str | None = None, temperature: float = 1.0,
                 alpha: float = 0.0, tokenizer_cache: str = "runs/cache/tokenizers", dropout: float = 0.1,
                 pooling: Literal["first", "mean"] = "first", pair_head: Literal["concat", "interaction"] = "concat",
                 num_inputs: int = 2, num_labels: int = 2,
                 positive_label: int = 1, block_size: int = 400,
                 lr: float = 1e-3, weight_decay: float = 0.01, warmup_ratio: float = 0.05,
                 output_dir: str | None = None):
        super().__init__(num_inputs, num_labels, positive_label, block_size, lr, weight_decay, warmup_ratio,
                         output_dir)
        if isinstance(architecture, dict):  # as stored in a checkpoint's hyper-parameters
            architecture = StudentArchitecture(**architecture)
        # plain types only, so checkpoints load with torch.load(weights_only=True)
        self.save_hyperparameters(ignore=["architecture"])
        self.hparams["architecture"] = architecture.to_dict()
        if targets == "cached" and not soft_labels:
            raise UserError("targets: cached needs a soft_labels file.", "model.init_args.soft_labels",
                            "Set soft_labels, or use targets: online with a teacher folder.")
        if targets == "online" and not teacher:
            raise UserError("targets: online needs a teacher folder.", "model.init_args.teacher")
        self.architecture, self.family, self.targets = architecture, family, targets
        self.pooling, self.pair_head = pooling, pair_head
        self.temperature, self.alpha = temperature, alpha
        self.soft_labels_path, self.teacher_path, self.tokenizer_cache = soft_labels, teacher, tokenizer_cache
        self.model = self.build_model(dropout)
        self.teacher = None
        self.teacher_encoder: CodeEncoder | None = None
        self.tokenizer = None
        self._targets: torch.Tensor | None = None
        self._rows: dict[str, int] = {}
        self.strict_loading = False  # the teacher's weights are not in our checkpoints

    def build_model(self, dropout: float) -> torch.nn.Module:
        """The student (subclasses build other kinds, e.g. a BiLSTM, on the same distillation)."""
        return build_student(self.architecture, self.num_inputs, self.family, self.block_size + 2, self.num_labels,
                             dropout, self.pooling, self.pair_head)

    @property
    def vocab_size(self) -> int:
        """Tokens of the student BPE tokenizer."""
        return self.architecture.vocab_size

    # --- set-up ---------------------------------------------------------------------------------
    def _corpus(self) -> list[str]:
        examples = self.trainer.datamodule.split("unlabelled")
        return list(dict.fromkeys(code for example in examples for code in example.codes))

    def prepare_data(self) -> None:
        train_student_tokenizer(self._corpus(), self.vocab_size, self.tokenizer_cache)

    def setup(self, stage: str) -> None:
        if self.tokenizer is None:
            self.tokenizer = train_student_tokenizer(self._corpus(), self.vocab_size, self.tokenizer_cache)
        if stage != "fit":
            return
        if self.targets == "cached" and self._targets is None:
            from lit_compressor.data.task import fingerprint
            from lit_compressor.soft_labels import check_matches, load_soft_labels

            examples = self.trainer.datamodule.split("unlabelled")
            labels = load_soft_labels(self.soft_labels_path)
            check_matches(labels, [e.id for e in examples], self.soft_labels_path, fingerprint(examples)
                          if labels.metadata.get("data") else None)
            self._targets, self._rows = labels.logits, labels.lookup()
        if self.targets == "online" and self.teacher is None:
            teacher, tokenizer, _ = load_classifier(self.teacher_path)
            self.teacher = teacher.eval().requires_grad_(False)
            self.teacher_encoder = CodeEncoder(tokenizer, self.block_size)

    def on_train_epoch_start(self) -> None:
        if self.teacher is not None:
            self.teacher.eval()  # Lightning puts every child in train mode; the teacher stays frozen

    # --- batching and training ------------------------------------------------------------------
    def collate(self, examples: list[Example]) -> dict:
        batch = self.code_encoder(examples)
        if self.teacher_encoder is not None:
            teacher_batch = self.teacher_encoder.encode_codes([e.codes for e in examples])
            batch.update({f"teacher_{k}": v for k, v in teacher_batch.items()})
        return batch

    def teacher_logits(self, batch: dict) -> torch.Tensor:
        if self.targets == "online":
            with torch.no_grad():
                return self.teacher(**model_inputs(batch, "teacher_"))
        rows = torch.tensor([self._rows[i] for i in batch["ids"]])
        return self._targets[rows].to(self.device)

    def training_step(self, batch: dict, batch_idx: int):
        loss = mixed_loss(self(batch), self.teacher_logits(batch), batch["labels"], self.temperature, self.alpha)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint["state_dict"]
        for key in [k for k in state if k.startswith("teacher.")]:
            del state[key]

    def export_metadata(self) -> dict:
        return {**super().export_metadata(), "architecture": self.architecture.to_dict(), "family": self.family}

