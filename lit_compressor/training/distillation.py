"""Distillation: a student trained on the frozen teacher's probabilities over the unlabelled split."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch

from lit_compressor.core.errors import UserError
from lit_compressor.core.metadata import teacher_head as folder_head
from lit_compressor.graphcodebert.student import DataFlow, dataflow_inputs
from lit_compressor.nn.classifier import masked_mean
from lit_compressor.nn.student import build_student
from lit_compressor.runtime.folder import load_folder
from lit_compressor.search.architecture import StudentArchitecture, load_architecture, read_priced_for
from lit_compressor.training.base import ClassifierModule, model_inputs
from lit_compressor.training.distillation_data import StudentInputs
from lit_compressor.training.losses import mixed_loss, representation_loss


@dataclass
class Representation:
    """Match the student's pooled vector, through a training-only projection, to the teacher's cached one."""

    weight: float = 0.0
    distance: Literal["mse", "cosine"] = "cosine"


@dataclass
class HiddenStates:
    """Match intermediate layers to an online teacher's (TinyBERT-style), through training-only projections.

    The student's and the teacher's tokenizers differ, so each layer's states are compared as their mean
    over the tokens (one vector a function), not token by token. ``layer_map[i]`` is the teacher layer
    (0 = embeddings) that student layer ``i + 1`` learns from; default: evenly spaced, the last on the last
    (``ceil((i + 1) * teacher_layers / student_layers)``).
    """

    weight: float = 0.0
    distance: Literal["mse", "cosine"] = "mse"
    layer_map: list[int] | None = None


class DistillationModule(ClassifierModule):
    """Holds the student, what it learns from beside its batches (the frozen teacher, training-only projections),
    the losses and the training step.

    Its data module (:class:`~lit_compressor.training.distillation_data.DistillationDataModule`) owns the
    student's BPE tokenizer, the soft labels and augmentation, and puts the teacher's targets in each batch:
    ``targets: cached`` (default, the fast path) trains on those cached logits; ``targets: online`` runs the
    frozen ``teacher`` folder on each batch. ``family``, ``pooling``, ``pair_head`` and ``inputs`` default to
    the teacher's (``teacher_head``: its record in the soft-label file, which ``LitCompressorCLI`` links from
    ``data.init_args.soft_labels``; else read from the teacher folder): the student's head reads the same kind
    of vector, and a GraphCodeBERT teacher's student reads data flow too (``inputs: dataflow``, settings in
    ``dataflow``; see :mod:`lit_compressor.graphcodebert.student`). ``architecture`` is the genes, or the
    path of an ``architecture.yaml``; when the search wrote it, the module built must cost what the
    search priced (else a clear error says which setting differs).

    The loss is ``(1 - alpha) · KL(softmax(t/T) || softmax(s/T)) · T² + alpha · CE`` (CE only where true
    labels exist; the paper uses ``alpha = 0``), plus, when their weights are set:

    - ``representation``: ``weight · distance(P(s), t)`` between each function's pooled student vector
      ``s`` through a learned linear ``P`` (student width -> teacher width) and the teacher's cached vector
      ``t`` (the soft-label file's function cache, served in the batch);
    - ``hidden_states``: the same per mapped layer, against an online teacher's layer states.

    Projections are training-only: neither the teacher nor they enter the saved student, its export or
    its size.
    """

    def __init__(self, architecture: StudentArchitecture | dict | str = StudentArchitecture(),
                 family: Literal["roberta", "bert"] | None = None, targets: Literal["cached", "online"] = "cached",
                 teacher: str | None = None, temperature: float = 1.0, alpha: float = 0.0,
                 representation: Representation | None = None, hidden_states: HiddenStates | None = None,
                 dropout: float = 0.1, pooling: Literal["first", "mean"] | None = None,
                 pair_head: Literal["concat", "interaction"] | None = None,
                 inputs: Literal["plain", "dataflow"] | None = None, dataflow: DataFlow | None = None,
                 teacher_head: dict | None = None, num_inputs: int = 2, num_labels: int = 2,
                 positive_label: int = 1, block_size: int = 400,
                 lr: float = 1e-3, weight_decay: float = 0.01, warmup_ratio: float = 0.05,
                 output_dir: str | None = None):
        super().__init__(num_inputs, num_labels, positive_label, block_size, lr, weight_decay, warmup_ratio,
                         output_dir)
        self.representation = settings(Representation, representation)
        self.hidden_states = settings(HiddenStates, hidden_states)
        if (targets == "online" or self.hidden_states.weight > 0) and not teacher:
            raise UserError("targets: online and hidden_states need the teacher folder.", "model.init_args.teacher")
        if self.representation.weight > 0 and targets != "cached":
            raise UserError("representation reads the soft-label file's function cache.",
                            "model.init_args.targets", "Use targets: cached with a soft_labels file.")
        priced: dict = {}
        if isinstance(architecture, str):  # an architecture.yaml written by the search
            priced = read_priced_for(architecture)
            architecture = load_architecture(architecture)
        elif isinstance(architecture, dict):  # a checkpoint's hyper-parameters, or a file jsonargparse read
            genes = dict(architecture)
            priced = genes.pop("priced_for", None) or {}
            for key in ("block_size", "lr", "dropout"):  # searched training genes: set in data / init args
                genes.pop(key, None)
            architecture = StudentArchitecture(**genes)
        head = teacher_head or (folder_head(teacher) if teacher and (Path(teacher) / "config.json").is_file()
                                else {})
        family = family or head.get("family", "roberta")
        pooling = pooling or head.get("pooling", "first")
        pair_head = pair_head or head.get("pair_head", "concat")
        self.dataflow = dataflow_inputs(inputs, dataflow, head, block_size)  # None: a plain student
        inputs = "plain" if self.dataflow is None else "dataflow"
        # plain, resolved values only, so checkpoints load with torch.load(weights_only=True) and alone
        self.save_hyperparameters(ignore=["architecture", "representation", "hidden_states", "dataflow"])
        self.hparams.update(architecture=architecture.to_dict(), family=family, pooling=pooling, pair_head=pair_head,
                            representation=asdict(self.representation), hidden_states=asdict(self.hidden_states),
                            inputs=inputs, dataflow=self.dataflow.settings() if self.dataflow else None)
        self.architecture, self.family, self.targets = architecture, family, targets
        self.pooling, self.pair_head = pooling, pair_head
        self.temperature, self.alpha = temperature, alpha
        self.teacher_path = teacher
        self.model = self.build_model(dropout)
        check_priced(priced, self.model, family=family, pair_head=pair_head, num_inputs=num_inputs,
                     num_labels=num_labels, block_size=block_size, inputs=inputs)
        # training-only projections (student width -> teacher width): never part of self.model
        self.projection = self._projection(head.get("teacher_hidden")) if self.representation.weight > 0 else None
        self.layer_projections: torch.nn.ModuleList | None = None
        self.teacher = None
        self.strict_loading = False  # the teacher's weights are not in our checkpoints

    def build_model(self, dropout: float) -> torch.nn.Module:
        """The student (subclasses build other kinds, e.g. a BiLSTM, on the same distillation)."""
        if self.dataflow is not None:
            return self.dataflow.build(self.architecture, self.num_inputs, self.family, self.block_size + 2,
                                       self.num_labels, dropout, self.pooling, self.pair_head)
        return build_student(self.architecture, self.num_inputs, self.family, self.block_size + 2, self.num_labels,
                             dropout, self.pooling, self.pair_head)

    def _projection(self, teacher_hidden: str | int | None) -> torch.nn.Linear:
        if teacher_hidden is None:
            raise UserError("representation matching needs the teacher's vectors, which this soft-label file "
                            "lacks.", "data.init_args.soft_labels",
                            "Label with `lit-compressor label` (it caches them), or set representation.weight: 0.")
        return torch.nn.Linear(self.model.config.hidden_size, int(teacher_hidden))

    @property
    def vocab_size(self) -> int:
        """Tokens of the student BPE tokenizer."""
        return self.architecture.vocab_size

    @property
    def student_inputs(self) -> StudentInputs:
        """What the student reads, and what of the teacher its training batches must hold."""
        return StudentInputs(self.vocab_size, self.dataflow, teacher_logits=self.targets == "cached",
                             teacher_vectors=self.representation.weight > 0,
                             teacher=self.teacher_path if self.needs_teacher else None)

    @property
    def code_encoder(self) -> None:
        """None: the student's data module owns its tokenizer and encodes its batches."""
        return None

    # --- set-up ---------------------------------------------------------------------------------
    @property
    def needs_teacher(self) -> bool:
        """Whether training runs the frozen teacher (online targets, hidden-state matching)."""
        return self.targets == "online" or self.hidden_states.weight > 0

    def setup(self, stage: str) -> None:
        if stage != "fit" or self.teacher is not None or not self.needs_teacher:
            return
        teacher = load_folder(self.teacher_path, block_size=self.block_size).model
        self.teacher = teacher.eval().requires_grad_(False)
        if self.hidden_states.weight > 0 and self.layer_projections is None:
            self.layer_projections = torch.nn.ModuleList(
                torch.nn.Linear(self.model.config.hidden_size, teacher.config.hidden_size) for _ in self.layer_map())

    def layer_map(self) -> list[int]:
        """The teacher layer (0 = embeddings) each student layer learns from."""
        student_layers = self.model.config.num_hidden_layers
        if self.hidden_states.layer_map is not None:
            if len(self.hidden_states.layer_map) != student_layers:
                raise UserError(f"hidden_states.layer_map has {len(self.hidden_states.layer_map)} entries for "
                                f"{student_layers} student layers.", "model.init_args.hidden_states.layer_map")
            return list(self.hidden_states.layer_map)
        teacher_layers = self.teacher.config.num_hidden_layers
        return [math.ceil((i + 1) * teacher_layers / student_layers) for i in range(student_layers)]

    def on_train_epoch_start(self) -> None:
        if self.teacher is not None:
            self.teacher.eval()  # Lightning puts every child in train mode; the teacher stays frozen

    # --- training -----------------------------------------------------------------------------------
    def teacher_logits(self, batch: dict) -> torch.Tensor:
        """The teacher's logits of the batch's examples: the online teacher's, or those its data module cached."""
        if self.targets == "online":
            with torch.no_grad():
                return self.teacher(**model_inputs(batch, "teacher_"))
        return batch["target_logits"]

    def training_step(self, batch: dict, batch_idx: int):
        if "pair_index" in batch:
            logits, terms = self._function_batch_losses(batch)
            loss = mixed_loss(logits, batch["target_logits"], torch.full((len(logits),), -1), self.temperature, 0.0)
            return self._total(loss, terms)
        if self.representation.weight == 0 and self.hidden_states.weight == 0:
            logits, terms = self(batch), {}
        else:
            logits, terms = self._feature_losses(batch)
        loss = mixed_loss(logits, self.teacher_logits(batch), batch["labels"], self.temperature, self.alpha)
        return self._total(loss, terms)

    def _total(self, loss: torch.Tensor, terms: dict[str, tuple[float, torch.Tensor]]) -> torch.Tensor:
        self.log("train/kd_loss", loss)
        for name, (weight, value) in terms.items():
            self.log(f"train/{name}_loss", value)
            loss = loss + weight * value
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def _function_batch_losses(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """``functions`` mode: the student's logits of every example (pair, or function) that ``pair_index``
        makes of the batch's functions (their targets are the batch's ``target_logits``)."""
        pooled = self.pooled_functions(batch)
        logits = self.head_on_pairs(pooled, batch["pair_index"])
        terms = {}
        if self.representation.weight > 0:
            known = batch["target_known"]
            terms["representation"] = (self.representation.weight, representation_loss(
                self.projection(pooled[known]), batch["target_vectors"], self.representation.distance))
        return logits, terms

    def _feature_losses(self, batch: dict) -> tuple[torch.Tensor, dict[str, tuple[float, torch.Tensor]]]:
        """Logits, and the representation and hidden-state terms that share the student's forward pass."""
        inputs = model_inputs(batch)
        output, mask = self.model.encode(**inputs, output_hidden_states=self.hidden_states.weight > 0)
        pooled = self.model.pool(output.last_hidden_state, mask)
        logits = self.model.head(pooled.reshape(inputs["input_ids"].shape[0], -1))
        terms = {}
        if self.representation.weight > 0:
            known = batch["target_known"]
            terms["representation"] = (self.representation.weight, representation_loss(
                self.projection(pooled[known]), batch["target_vectors"], self.representation.distance))
        if self.hidden_states.weight > 0:
            teacher_inputs = model_inputs(batch, "teacher_")
            with torch.no_grad():
                teacher_output, teacher_mask = self.teacher.encode(**teacher_inputs, output_hidden_states=True)
            losses = [representation_loss(project(masked_mean(output.hidden_states[i + 1], mask)),
                                          masked_mean(teacher_output.hidden_states[t], teacher_mask),
                                          self.hidden_states.distance)
                      for i, (t, project) in enumerate(zip(self.layer_map(), self.layer_projections, strict=True))]
            terms["hidden_states"] = (self.hidden_states.weight, torch.stack(losses).mean())
        return logits, terms

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint["state_dict"]
        for key in [k for k in state if k.startswith("teacher.")]:
            del state[key]

    def export_metadata(self) -> dict:
        return {**super().export_metadata(), "architecture": self.architecture.to_dict(), "family": self.family,
                **(self.dataflow.metadata() if self.dataflow is not None else {})}


def settings(kind: type, value):
    """A settings dataclass from itself, a dict (a checkpoint's hyper-parameters) or None (the defaults)."""
    return kind(**value) if isinstance(value, dict) else value or kind()


def check_priced(priced: dict, model: torch.nn.Module, **built) -> None:
    """The built student must have the parameters the search priced, and read the inputs it priced (data flow
    changes the FLOPs, not the parameters); say which setting differs if not."""
    if not priced:
        return
    params = sum(p.numel() for p in model.parameters())
    differs = [f"{k}: searched {priced[k]!r}, built {v!r}" for k, v in built.items() if k in priced and priced[k] != v]
    if params == priced.get("params") and not any(d.startswith("inputs:") for d in differs):
        return
    raise UserError(f"the student has {params:,} parameters and the search priced {priced.get('params'):,} "
                    f"({'; '.join(differs) or 'same settings'}).", "model.init_args.architecture",
                    "Search with the student's settings (e.g. `lit-compressor search --teacher TEACHER_FOLDER "
                    "--space.block_size N`), or give the genes without `priced_for`.")
