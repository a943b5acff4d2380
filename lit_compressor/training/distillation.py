"""Distillation: a student trained on the frozen teacher's probabilities over the unlabelled split."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch

from lit_compressor.core.errors import UserError
from lit_compressor.core.metadata import teacher_head
from lit_compressor.data.readers import Example
from lit_compressor.data.task import fingerprint
from lit_compressor.graphcodebert.inputs import GraphCodeEncoder
from lit_compressor.graphcodebert.student import DataFlow, dataflow_inputs
from lit_compressor.labels.soft_labels import SoftLabels, check_matches, function_key, load_soft_labels
from lit_compressor.nn.classifier import masked_mean
from lit_compressor.nn.student import build_student
from lit_compressor.nn.tokenization import CodeEncoder, train_student_tokenizer
from lit_compressor.runtime.folder import load_folder
from lit_compressor.search.architecture import StudentArchitecture, load_architecture, read_priced_for
from lit_compressor.training.augmentation import Augmentation, EpochFunctions, EpochPairs, FunctionGroup, all_pairs
from lit_compressor.training.base import ClassifierModule, model_inputs
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
    """Holds the student and what it learns from: the teacher's cached outputs, or the frozen teacher.

    ``targets: cached`` (default, the fast path) reads the teacher's logits from ``soft_labels``;
    ``targets: online`` runs the frozen ``teacher`` folder on each batch. ``family``, ``pooling``,
    ``pair_head`` and ``inputs`` default to the teacher's (recorded in the soft-label file, or read from the
    teacher folder): the student's head reads the same kind of vector, and a GraphCodeBERT teacher's student
    reads data flow too (``inputs: dataflow``, settings in ``dataflow``; see
    :mod:`lit_compressor.graphcodebert.student`). ``architecture`` is the genes, or the
    path of an ``architecture.yaml``; when the search wrote it, the module built must cost what the
    search priced (else a clear error says which setting differs).

    The loss is ``(1 - alpha) · KL(softmax(t/T) || softmax(s/T)) · T² + alpha · CE`` (CE only where true
    labels exist; the paper uses ``alpha = 0``), plus, when their weights are set:

    - ``representation``: ``weight · distance(P(s), t)`` between each function's pooled student vector
      ``s`` through a learned linear ``P`` (student width -> teacher width) and the teacher's cached vector
      ``t`` (the soft-label file's function cache);
    - ``hidden_states``: the same per mapped layer, against an online teacher's layer states;
    - ``augment``: fresh teacher-labelled pairs every epoch, or (``mode: functions``, pair and single tasks)
      every cached function, labelled by the teacher's head (see :mod:`lit_compressor.training.augmentation`).

    Projections are training-only: neither the teacher nor they enter the saved student, its export or
    its size. The student tokenizer (byte-level BPE with exactly ``vocab_size`` tokens) is trained on
    the unlabelled split's code and cached in ``tokenizer_cache``.
    """

    train_split = "unlabelled"

    def __init__(self, architecture: StudentArchitecture | dict | str = StudentArchitecture(),
                 family: Literal["roberta", "bert"] | None = None, targets: Literal["cached", "online"] = "cached",
                 soft_labels: str | None = None, teacher: str | None = None, temperature: float = 1.0,
                 alpha: float = 0.0, representation: Representation | None = None,
                 hidden_states: HiddenStates | None = None, augment: Augmentation | None = None,
                 tokenizer_cache: str = "runs/cache/tokenizers", dropout: float = 0.1,
                 pooling: Literal["first", "mean"] | None = None,
                 pair_head: Literal["concat", "interaction"] | None = None,
                 inputs: Literal["plain", "dataflow"] | None = None, dataflow: DataFlow | None = None,
                 num_inputs: int = 2, num_labels: int = 2,
                 positive_label: int = 1, block_size: int = 400,
                 lr: float = 1e-3, weight_decay: float = 0.01, warmup_ratio: float = 0.05,
                 output_dir: str | None = None):
        super().__init__(num_inputs, num_labels, positive_label, block_size, lr, weight_decay, warmup_ratio,
                         output_dir)
        if targets == "cached" and not soft_labels:
            raise UserError("targets: cached needs a soft_labels file.", "model.init_args.soft_labels",
                            "Set soft_labels, or use targets: online with a teacher folder.")
        self.representation = settings(Representation, representation)
        self.hidden_states = settings(HiddenStates, hidden_states)
        self.augment = settings(Augmentation, augment)
        needs_teacher = targets == "online" or self.hidden_states.weight > 0
        if needs_teacher and not teacher:
            raise UserError("targets: online and hidden_states need the teacher folder.", "model.init_args.teacher")
        if (self.representation.weight > 0 or self.augment.enabled) and targets != "cached":
            raise UserError("representation and augment read the soft-label file's function cache.",
                            "model.init_args.targets", "Use targets: cached with a soft_labels file.")
        if self.augment.pairs_per_epoch > 0 and num_inputs != 2:
            raise UserError("augment mode pairs makes new pairs: it is for pair tasks (clone detection).",
                            "model.init_args.augment", "Use mode: functions (every cached function a training "
                            "example), or remove `augment`.")
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
        head = teacher_settings(soft_labels if targets == "cached" else None, teacher)
        family = family or head.get("family", "roberta")
        pooling = pooling or head.get("pooling", "first")
        pair_head = pair_head or head.get("pair_head", "concat")
        self.dataflow = dataflow_inputs(inputs, dataflow, head, block_size)  # None: a plain student
        inputs = "plain" if self.dataflow is None else "dataflow"
        # plain, resolved values only, so checkpoints load with torch.load(weights_only=True) and alone
        self.save_hyperparameters(ignore=["architecture", "representation", "hidden_states", "augment", "dataflow"])
        self.hparams.update(architecture=architecture.to_dict(), family=family, pooling=pooling, pair_head=pair_head,
                            representation=asdict(self.representation), hidden_states=asdict(self.hidden_states),
                            augment=asdict(self.augment), inputs=inputs,
                            dataflow=self.dataflow.settings() if self.dataflow else None)
        self.architecture, self.family, self.targets = architecture, family, targets
        self.pooling, self.pair_head = pooling, pair_head
        self.temperature, self.alpha = temperature, alpha
        self.soft_labels_path, self.teacher_path, self.tokenizer_cache = soft_labels, teacher, tokenizer_cache
        self.model = self.build_model(dropout)
        check_priced(priced, self.model, family=family, pair_head=pair_head, num_inputs=num_inputs,
                     num_labels=num_labels, block_size=block_size, inputs=inputs)
        # training-only projections (student width -> teacher width): never part of self.model
        self.projection = self._projection(head.get("teacher_hidden")) if self.representation.weight > 0 else None
        self.layer_projections: torch.nn.ModuleList | None = None
        self.teacher = None
        self.teacher_encoder: CodeEncoder | GraphCodeEncoder | None = None
        self.tokenizer = None
        self._labels: SoftLabels | None = None
        self._rows: dict[str, int] = {}
        self._function_rows: dict[str, int] = {}
        self._train_data: EpochPairs | EpochFunctions | None = None
        self._codes: list[str] = []  # the function cache's code, by row
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
                            "lacks.", self.soft_labels_path,
                            "Label with `lit-compressor label` (it caches them), or set representation.weight: 0.")
        return torch.nn.Linear(self.model.config.hidden_size, int(teacher_hidden))

    @property
    def vocab_size(self) -> int:
        """Tokens of the student BPE tokenizer."""
        return self.architecture.vocab_size

    # --- set-up ---------------------------------------------------------------------------------
    def _corpus(self) -> list[str]:
        examples = self.trainer.datamodule.split("unlabelled")
        codes = list(dict.fromkeys(code for example in examples for code in example.codes))
        return self.dataflow.corpus(codes) if self.dataflow is not None else codes

    @property
    def code_encoder(self):
        if self._code_encoder is None and self.dataflow is not None:
            self._code_encoder = self.dataflow.encoder(self.tokenizer)
        return super().code_encoder

    def prepare_data(self) -> None:
        train_student_tokenizer(self._corpus(), self.vocab_size, self.tokenizer_cache)

    def setup(self, stage: str) -> None:
        if self.tokenizer is None:
            self.tokenizer = train_student_tokenizer(self._corpus(), self.vocab_size, self.tokenizer_cache)
        if stage != "fit":
            return
        if self.targets == "cached" and self._labels is None:
            self._load_soft_labels(self.trainer.datamodule.split("unlabelled"))
        if self.teacher_path and self.teacher is None and (self.targets == "online" or self.hidden_states.weight > 0):
            opened = load_folder(self.teacher_path, block_size=self.block_size)
            teacher, self.teacher_encoder = opened.model, opened.encoder
            self.teacher = teacher.eval().requires_grad_(False)
            if self.hidden_states.weight > 0 and self.layer_projections is None:
                self.layer_projections = torch.nn.ModuleList(
                    torch.nn.Linear(self.model.config.hidden_size, teacher.config.hidden_size)
                    for _ in self.layer_map())

    def _load_soft_labels(self, examples: list[Example]) -> None:
        labels = load_soft_labels(self.soft_labels_path)
        check_matches(labels, [e.id for e in examples], self.soft_labels_path,
                      fingerprint(examples) if labels.metadata.get("data") else None)
        if (self.representation.weight > 0 or self.augment.enabled) and labels.functions is None:
            raise UserError("this soft-label file has no function cache (teacher vectors): it was not written by "
                            "`lit-compressor label` with a teacher folder.", self.soft_labels_path,
                            "Label with the teacher, or set representation.weight and augment.pairs_per_epoch to 0.")
        self._labels, self._rows = labels, labels.lookup()
        if labels.functions is not None:
            self._function_rows = labels.functions.rows()
        if self.augment.enabled:
            splits = labels.metadata.get("functions_from", "unlabelled").split(",")
            cached = examples + [e for split in splits if split != "unlabelled"
                                 for e in self.trainer.datamodule.split(split)]
            codes = {function_key(code): code for example in cached for code in example.codes}
            self._codes = [codes[key] for key in labels.functions.keys]
            self._train_data = (EpochFunctions(labels.functions, self.augment) if self.augment.mode == "functions"
                                else EpochPairs(examples, labels.functions, codes, self.augment))

    def train_dataset(self, datamodule) -> list[Example] | EpochPairs | EpochFunctions:
        """What the data module's train loader serves: the unlabelled split, plus augmented pairs, or
        groups of cached functions (``augment.mode: functions``)."""
        return self._train_data if self._train_data is not None else datamodule.split("unlabelled")

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
        if self._train_data is not None:
            self._train_data.set_epoch(self.current_epoch)

    # --- batching and training ------------------------------------------------------------------
    def collate(self, examples: list[Example] | list[FunctionGroup]) -> dict:
        if examples and isinstance(examples[0], FunctionGroup):
            return self.collate_functions(examples)
        batch = self.code_encoder(examples)
        if self.teacher_encoder is not None:
            teacher_batch = self.teacher_encoder.encode_codes([e.codes for e in examples])
            batch.update({f"teacher_{k}": v for k, v in teacher_batch.items()})
        if self._function_rows:
            batch["function_rows"] = torch.tensor([[self._function_rows.get(function_key(c), -1) for c in e.codes]
                                                   for e in examples])
        return batch

    def collate_functions(self, groups: list[FunctionGroup]) -> dict:
        """A batch of ``functions`` mode: each function once, and every ordered pair of them (a single-function
        task: each function)."""
        rows = list(dict.fromkeys(row for group in groups for row in group.rows))
        batch = self.code_encoder.encode_codes([[self._codes[row]] for row in rows])
        examples = all_pairs(len(rows)) if self.num_inputs == 2 else torch.arange(len(rows))[:, None]
        batch.update(function_rows=torch.tensor(rows)[:, None], pair_index=examples,
                     ids=[self._labels.functions.keys[row] for row in rows])
        return batch

    def teacher_logits(self, batch: dict) -> torch.Tensor:
        if self.targets == "online":
            with torch.no_grad():
                return self.teacher(**model_inputs(batch, "teacher_"))
        extra = self._train_data.targets if isinstance(self._train_data, EpochPairs) else {}
        return torch.stack([extra[i] if i in extra else self._labels.logits[self._rows[i]]
                            for i in batch["ids"]]).to(self.device)

    def training_step(self, batch: dict, batch_idx: int):
        if "pair_index" in batch:
            logits, targets, terms = self._function_batch_losses(batch)
            loss = mixed_loss(logits, targets, torch.full((len(logits),), -1), self.temperature, 0.0)
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

    def _function_batch_losses(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """``functions`` mode: the student's and the teacher's logits of every example (pair, or function) that
        ``pair_index`` makes of the batch's functions."""
        functions = self._labels.functions
        inputs = model_inputs(batch)
        output, mask = self.model.encode(**inputs)
        pooled = self.model.pool(output.last_hidden_state, mask)
        pairs = batch["pair_index"].to(self.device)
        logits = self.model.head(pooled[pairs].reshape(len(pairs), -1))
        rows = batch["function_rows"].reshape(-1)
        targets = functions.logits(rows[pairs.cpu()], self._train_data.classifier).to(self.device)
        terms = {}
        if self.representation.weight > 0:
            target = functions.vectors[rows].float().to(self.device)
            terms["representation"] = (self.representation.weight, representation_loss(
                self.projection(pooled), target, self.representation.distance))
        return logits, targets, terms

    def _feature_losses(self, batch: dict) -> tuple[torch.Tensor, dict[str, tuple[float, torch.Tensor]]]:
        """Logits, and the representation and hidden-state terms that share the student's forward pass."""
        inputs = model_inputs(batch)
        output, mask = self.model.encode(**inputs, output_hidden_states=self.hidden_states.weight > 0)
        pooled = self.model.pool(output.last_hidden_state, mask)
        logits = self.model.head(pooled.reshape(inputs["input_ids"].shape[0], -1))
        terms = {}
        if self.representation.weight > 0:
            rows = batch["function_rows"].reshape(-1).to(self.device)
            known = rows >= 0
            target = self._labels.functions.vectors.to(self.device)[rows[known]].float()
            terms["representation"] = (self.representation.weight, representation_loss(
                self.projection(pooled[known]), target, self.representation.distance))
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


def teacher_settings(soft_labels: str | None, teacher: str | None) -> dict:
    """The teacher's family, pooling, pair head, inputs (and cached vectors' width): from the soft-label
    file's record, else its folder."""
    if soft_labels and Path(soft_labels).is_file():
        from lit_compressor.labels.soft_labels import read_metadata

        metadata = read_metadata(soft_labels)
        if "pooling" in metadata:
            return {k: metadata[k] for k in ("family", "pooling", "pair_head", "teacher_hidden", "inputs", "language",
                                             "flow_length") if k in metadata}
    if teacher and (Path(teacher) / "config.json").is_file():
        return teacher_head(teacher)
    return {}


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
