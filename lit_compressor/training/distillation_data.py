"""A distilled student's data: its BPE tokenizer, the teacher's soft labels, augmentation, and batches that carry
the teacher's targets, so the student's LightningModule reads no file and no split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from lit_compressor.core.errors import UserError
from lit_compressor.core.metadata import teacher_head
from lit_compressor.data.readers import Example
from lit_compressor.data.task import TaskData, fingerprint
from lit_compressor.graphcodebert.inputs import GraphCodeEncoder
from lit_compressor.graphcodebert.student import DataFlowInputs
from lit_compressor.labels.soft_labels import (
    SoftLabels,
    TeacherFunctions,
    check_matches,
    function_key,
    load_soft_labels,
    read_metadata,
)
from lit_compressor.nn.tokenization import CodeEncoder, train_student_tokenizer
from lit_compressor.runtime.folder import load_folder
from lit_compressor.training.augmentation import Augmentation, EpochFunctions, EpochPairs, FunctionGroup, all_pairs
from lit_compressor.training.datamodule import CodeDataModule
from lit_compressor.training.function_batches import FunctionBatch, FunctionBatches

TEACHER_RECORD = ("family", "pooling", "pair_head", "teacher_hidden", "inputs", "language", "flow_length")


@dataclass(frozen=True)
class StudentInputs:
    """What a distilled student reads, which its data module serves (``DistillationModule.student_inputs``)."""

    vocab_size: int
    """Tokens of the student's BPE (the rows of its embedding)."""
    dataflow: DataFlowInputs | None = None
    """Data-flow inputs (GraphCodeBERT's layout through the student's BPE); None: code sub-words only."""
    teacher_logits: bool = True
    """Training batches hold the teacher's cached logits (``targets: cached``): ``target_logits``."""
    teacher_vectors: bool = False
    """Training batches hold each function's cached teacher vector (representation matching): ``target_vectors``,
    and ``target_known``, which of the batch's functions have one."""
    teacher: str | None = None
    """A teacher folder whose own inputs training batches hold too, prefixed ``teacher_`` (online targets,
    hidden-state matching)."""


def teacher_record(soft_labels: str | None, teacher: str | None = None) -> dict:
    """The teacher's family, pooling, pair head, inputs and vector width, as its soft-label file records them
    (else its folder; ``{}`` when neither says): what a student copies by default."""
    if soft_labels and Path(soft_labels).is_file():
        metadata = read_metadata(soft_labels)
        if "pooling" in metadata:
            return {k: metadata[k] for k in TEACHER_RECORD if k in metadata}
    if teacher and (Path(teacher) / "config.json").is_file():
        return teacher_head(teacher)
    return {}


class DistillationDataModule(CodeDataModule):
    """Trains a student on the unlabelled split with the teacher's targets in every batch.

    It owns the student's tokenizer (byte-level BPE with exactly ``student.vocab_size`` tokens, trained on the
    unlabelled split's code, or on the text a data-flow student reads, and cached in ``tokenizer_cache``), the
    teacher's soft labels (``soft_labels``, checked against the split) and the augmented datasets
    (``augment``: fresh teacher-labelled pairs every epoch, or every cached function in groups; see
    :mod:`~lit_compressor.training.augmentation`). ``student`` says what the student reads; ``LitCompressorCLI``
    links it from the model (in Python, pass ``student=module.student_inputs``).

    A training batch holds the student's inputs and ``ids``, ``labels``; ``target_logits`` (the teacher's cached
    logits, or for a batch of functions the teacher's head on their cached vectors, one row per pair of
    ``pair_index``); ``target_vectors``/``target_known`` (representation matching) and ``teacher_*`` inputs
    (an online teacher), as ``student`` asks. Evaluation batches hold the student's inputs only.
    """

    train_split = "unlabelled"

    def __init__(self, task: TaskData | None = None, soft_labels: str | None = None,
                 augment: Augmentation | None = None, tokenizer_cache: str = "runs/cache/tokenizers",
                 student: StudentInputs | None = None, batch_size: int = 16, eval_batch_size: int = 64,
                 block_size: int = 400, num_workers: int = 0, function_batches: FunctionBatches | dict | None = None):
        super().__init__(task, batch_size, eval_batch_size, block_size, num_workers,
                         function_batches=function_batches)
        self.soft_labels = soft_labels
        self.augment = Augmentation(**augment) if isinstance(augment, dict) else augment or Augmentation()
        self.tokenizer_cache = tokenizer_cache
        self.student = student
        self.tokenizer = None
        self.labels: SoftLabels | None = None
        self._rows: dict[str, int] = {}
        self._function_rows: dict[str, int] = {}
        self._train_data: EpochPairs | EpochFunctions | None = None
        self._codes: list[str] = []  # the function cache's code, by row
        self._cache = None  # the function cache with its transformed copies (rows F + v)
        self._teacher_encoder: CodeEncoder | GraphCodeEncoder | None = None
        if student is not None:
            self._check(student)

    def _check(self, student: StudentInputs) -> None:
        if student.teacher_logits and not self.soft_labels:
            raise UserError("targets: cached needs a soft_labels file.", "data.init_args.soft_labels",
                            "Set soft_labels, or use targets: online with a teacher folder.")
        if self.augment.enabled and not student.teacher_logits:
            raise UserError("augment reads the soft-label file's function cache.", "data.init_args.augment",
                            "Use targets: cached with a soft_labels file, or remove `augment`.")
        if self.augment.transformed > 0 and self.augment.mode != "functions":
            raise UserError("augment.transformed draws transformed copies into batches of functions.",
                            "data.init_args.augment", "Use mode: functions, or set transformed to 0.")
        trains_in_functions = self.function_batches is not None and self.function_batches.size is not None
        if self.augment.enabled and trains_in_functions:
            raise UserError("function_batches and augment both say what an epoch trains on.",
                            "data.init_args.function_batches", "Keep one: function_batches (the unlabelled pairs in "
                            "batches of functions) or augment (the teacher's head on pairs of cached functions).")
        if trains_in_functions and not student.teacher_logits:
            raise UserError("function_batches train on the cached soft labels of the unlabelled pairs.",
                            "data.init_args.function_batches", "Use targets: cached with a soft_labels file.")
        if self.augment.pairs_per_epoch > 0 and self.task.num_inputs != 2:
            raise UserError("augment mode pairs makes new pairs: it is for pair tasks (clone detection).",
                            "data.init_args.augment", "Use mode: functions (every cached function a training "
                            "example), or remove `augment`.")

    @property
    def _student(self) -> StudentInputs:
        if self.student is None:
            raise UserError("DistillationDataModule does not know what the student reads.", "data.init_args.student",
                            "Give student=module.student_inputs (the CLI links it from the model).")
        return self.student

    # --- the student's tokenizer ----------------------------------------------------------------
    def _corpus(self) -> list[str]:
        codes = list(dict.fromkeys(code for example in self.split("unlabelled") for code in example.codes))
        dataflow = self._student.dataflow
        return dataflow.corpus(codes) if dataflow is not None else codes

    def prepare_data(self) -> None:
        train_student_tokenizer(self._corpus(), self._student.vocab_size, self.tokenizer_cache)

    def setup(self, stage: str) -> None:
        student = self._student
        self._check(student)
        if self.tokenizer is None:
            self.tokenizer = train_student_tokenizer(self._corpus(), student.vocab_size, self.tokenizer_cache)
            self.encoder = (student.dataflow.encoder(self.tokenizer) if student.dataflow is not None
                            else CodeEncoder(self.tokenizer, self.block_size))
        if stage != "fit":
            return
        if self.labels is None and (student.teacher_logits or student.teacher_vectors):
            self._load_soft_labels(student)
        if student.teacher and self._teacher_encoder is None:
            self._teacher_encoder = load_folder(student.teacher, block_size=self.block_size).encoder

    def _load_soft_labels(self, student: StudentInputs) -> None:
        if not self.soft_labels:
            raise UserError("representation matching reads the teacher's vectors from the soft-label file.",
                            "data.init_args.soft_labels", "Set soft_labels (a file `lit-compressor label` wrote).")
        examples = self.split("unlabelled")
        labels = load_soft_labels(self.soft_labels)
        check_matches(labels, [e.id for e in examples], self.soft_labels,
                      fingerprint(examples) if labels.metadata.get("data") else None)
        if (student.teacher_vectors or self.augment.enabled) and labels.functions is None:
            raise UserError("this soft-label file has no function cache (teacher vectors): it was not written by "
                            "`lit-compressor label` with a teacher folder.", self.soft_labels,
                            "Label with the teacher, or set representation.weight and augment.pairs_per_epoch to 0.")
        self.labels, self._rows = labels, labels.lookup()
        if labels.functions is not None:
            self._function_rows = labels.functions.rows()
        if self.augment.transformed > 0 and labels.functions.copies is None:
            raise UserError("augment.transformed needs transformed copies in the soft-label file.", self.soft_labels,
                            "Label with `transformed` (e.g. label: {transformed: [rename_method+rename_parameters, "
                            "rename_locals, dead_code, swap_comparisons]}), or set augment.transformed to 0.")
        if self.augment.enabled:
            splits = labels.metadata.get("functions_from", "unlabelled").split(",")
            cached = examples + [e for split in splits if split != "unlabelled" for e in self.split(split)]
            codes = {function_key(code): code for example in cached for code in example.codes}
            self._codes = [codes[key] for key in labels.functions.keys]
            if labels.functions.copies is not None:
                self._codes += labels.functions.copies.codes  # rows F + v: the transformed copies
            self._cache = labels.functions.with_copies()
            self._target_rows = target_rows(labels.functions, self.augment.copy_targets)
            self._train_data = (EpochFunctions(labels.functions, self.augment) if self.augment.mode == "functions"
                                else EpochPairs(examples, labels.functions, codes, self.augment))

    def train_dataset(self) -> Dataset | list[Example]:
        """The unlabelled split, plus each epoch's augmented pairs, or groups of cached functions
        (``augment.mode: functions``), or its epochs of function batches (``function_batches``)."""
        return self._train_data if self._train_data is not None else super().train_dataset()

    # --- batches --------------------------------------------------------------------------------
    def train_collate(self, examples: list[Example] | list[FunctionGroup]) -> dict:
        """A training batch: the student's inputs and the teacher's targets (see the class docstring)."""
        if examples and isinstance(examples[0], FunctionGroup):
            return self.collate_functions(examples)
        if examples and isinstance(examples[0], FunctionBatch):
            return self.collate_function_batch(examples[0])
        batch = self.collate(examples)
        student = self._student
        if student.teacher_logits:
            extra = self._train_data.targets if isinstance(self._train_data, EpochPairs) else {}
            batch["target_logits"] = torch.stack([extra[e.id] if e.id in extra else self.labels.logits[self._rows[e.id]]
                                                  for e in examples])
        if student.teacher_vectors:
            rows = torch.tensor([self._function_rows.get(function_key(c), -1) for e in examples for c in e.codes])
            known = rows >= 0
            batch.update(target_vectors=self.labels.functions.vectors[rows[known]].float(), target_known=known)
        if self._teacher_encoder is not None:
            teacher_batch = self._teacher_encoder.encode_codes([e.codes for e in examples])
            batch.update({f"teacher_{k}": v for k, v in teacher_batch.items()})
        return batch

    def collate_function_batch(self, function_batch: FunctionBatch) -> dict:
        """A batch of the unlabelled pair graph's functions, with the cached soft labels of the pairs it scores
        (``target_logits``, one row per pair of ``pair_index``)."""
        batch = self.function_batch(function_batch, self.train_split)
        batch["target_logits"] = self.labels.logits[[self._rows[i] for i in batch["ids"]]]
        if self._student.teacher_vectors:
            rows = torch.tensor([self._function_rows.get(function_key(self.pair_graph(self.train_split).codes[f]), -1)
                                 for f in function_batch.functions])
            known = rows >= 0
            batch.update(target_vectors=self.labels.functions.vectors[rows[known]].float(), target_known=known)
        return batch

    def collate_functions(self, groups: list[FunctionGroup]) -> dict:
        """A batch of ``functions`` mode: each function once, and every ordered pair of them as ``pair_index``
        (a single-function task: each function), with the teacher's head's logits of each."""
        functions = self._cache
        rows = list(dict.fromkeys(row for group in groups for row in group.rows))
        batch = self.encoder.encode_codes([[self._codes[row]] for row in rows])
        pairs = all_pairs(len(rows)) if self.task.num_inputs == 2 else torch.arange(len(rows))[:, None]
        table = self._target_rows[rows]
        batch.update(pair_index=pairs, ids=[functions.keys[row] for row in rows],
                     target_logits=functions.logits(table[pairs], self._train_data.classifier))
        if self._student.teacher_vectors:
            batch.update(target_vectors=functions.vectors[table].float(),
                         target_known=torch.ones(len(rows), dtype=torch.bool))
        return batch


def target_rows(functions: TeacherFunctions, copy_targets: str) -> torch.Tensor:
    """``[F + V]``: the cache row whose teacher vector each row is taught — itself, or for a transformed copy (row
    ``F + v``) with ``copy_targets: original``, the function it was made from."""
    count = len(functions.keys)
    rows = torch.arange(count + (0 if functions.copies is None else len(functions.copies.codes)))
    if copy_targets == "original" and functions.copies is not None:
        has_copy = functions.copies.of >= 0
        rows[count + functions.copies.of[has_copy]] = torch.arange(count)[has_copy]
    return rows
