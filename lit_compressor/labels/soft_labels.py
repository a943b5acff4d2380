"""The teacher's soft labels: logits per unlabelled example, keyed by example id, computed once.

The file is safetensors: ``logits`` ``[N, C]``, and, when the teacher ran here, its **function cache**:
``function_vectors`` ``[F, H]`` (fp16), the pooled vector the teacher's head reads for each unique
function of the split, keyed by :func:`function_key`, with the head's own weights (``head.*``). The
head on two cached vectors is the teacher's label of *any* pair of those functions (pair
augmentation), and the vectors are the targets of representation matching. The metadata records the
example ids, which teacher produced the file (a hash of its weights) and which data (a hash of the
split). The file is written atomically (temporary file, then rename), so a killed run never leaves a
half file that looks complete, and a later stage recomputes it only when the teacher or the data changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from lit_compressor.core.errors import UserError
from lit_compressor.core.files import atomic_path
from lit_compressor.core.fingerprint import hash_texts
from lit_compressor.data.readers import Example
from lit_compressor.nn.classifier import ClassificationHead, pair_features

FORMAT = "2"
"""Bumped when the file's layout or its function keys change: an older file is labelled again."""


def function_key(code: str) -> str:
    """The id of a function's text in the function cache (the same text gets the same vector)."""
    return hash_texts([code])


@dataclass
class TransformedCopies:
    """The teacher's view of a transformed copy of cached functions (robust distillation): ``label`` with
    ``transformed`` writes them, the student's function batches draw them (``augment.transformed``)."""

    of: torch.Tensor
    """``[F]``: the copy of each cached function, a row of ``vectors``; -1 where it has none."""
    vectors: torch.Tensor  # [V, H]
    codes: list[str]
    transformations: list[str]
    """Which transformation made each copy."""


@dataclass
class TeacherFunctions:
    """The teacher's pooled vector of each unique function, and the head that turns vectors into logits."""

    keys: list[str]
    vectors: torch.Tensor  # [F, H]
    head: dict[str, torch.Tensor]  # ClassificationHead weights: dense.*, out_proj.*
    num_inputs: int
    pair_head: str = "concat"
    copies: TransformedCopies | None = None

    def rows(self) -> dict[str, int]:
        return {key: row for row, key in enumerate(self.keys)}

    def with_copies(self) -> TeacherFunctions:
        """The cache with its transformed copies as rows ``F + v`` (keys: the copies' function keys)."""
        if self.copies is None:
            return self
        return TeacherFunctions(self.keys + [function_key(code) for code in self.copies.codes],
                                torch.cat([self.vectors, self.copies.vectors.to(self.vectors.dtype)]), self.head,
                                self.num_inputs, self.pair_head)

    def classifier(self) -> ClassificationHead:
        """The teacher's head as a module (eval mode, no gradients)."""
        out_features, in_features = self.head["dense.weight"].shape[0], self.head["dense.weight"].shape[1]
        module = ClassificationHead(in_features, out_features, self.head["out_proj.weight"].shape[0])
        module.load_state_dict(self.head)
        return module.eval().requires_grad_(False)

    def logits(self, rows: torch.Tensor, classifier: ClassificationHead | None = None) -> torch.Tensor:
        """The teacher's logits of examples whose functions are the cache rows ``rows`` ``[B, num_inputs]``."""
        classifier = classifier or self.classifier()
        features = self.vectors[rows].float().reshape(rows.shape[0], -1)
        with torch.no_grad():
            return classifier(pair_features(features, self.num_inputs, self.pair_head))


@dataclass
class SoftLabels:
    ids: list[str]
    logits: torch.Tensor
    metadata: dict[str, str] = field(default_factory=dict)
    functions: TeacherFunctions | None = None

    def lookup(self) -> dict[str, int]:
        return {example_id: row for row, example_id in enumerate(self.ids)}


def save_soft_labels(path: str | Path, labels: SoftLabels) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {**labels.metadata, "format": FORMAT, "ids": json.dumps(labels.ids)}
    tensors = {"logits": labels.logits.float().contiguous()}
    if labels.functions is not None:
        functions = labels.functions
        metadata.update(function_keys=json.dumps(functions.keys), num_inputs=str(functions.num_inputs),
                        pair_head=functions.pair_head, teacher_hidden=str(functions.vectors.shape[1]))
        tensors["function_vectors"] = functions.vectors.half().contiguous()
        tensors.update({f"head.{k}": v.float().contiguous() for k, v in functions.head.items()})
        if functions.copies is not None:
            copies = functions.copies
            tensors.update(copy_of=copies.of.long().contiguous(), copy_vectors=copies.vectors.half().contiguous())
            metadata.update(copy_codes=json.dumps(copies.codes),
                            copy_transformations=json.dumps(copies.transformations))
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=metadata)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a run killed mid-write
        stale.unlink(missing_ok=True)
    return path


def load_soft_labels(path: str | Path) -> SoftLabels:
    path = Path(path)
    if not path.is_file():
        raise UserError("soft-label file not found.", path,
                        "Run `lit-compressor label` (or `compress`) first, or use targets: online.")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        ids = json.loads(metadata.pop("ids"))
        keys = json.loads(metadata.pop("function_keys")) if "function_vectors" in tensors else None
        copies = None
        if "copy_vectors" in tensors:
            copies = TransformedCopies(tensors["copy_of"], tensors["copy_vectors"],
                                       json.loads(metadata.pop("copy_codes")),
                                       json.loads(metadata.pop("copy_transformations")))
    except Exception as error:  # a truncated or foreign file
        raise UserError(f"not a soft-label file ({error}).", path, "Delete it and label again.") from None
    if keys is not None and metadata.get("format") != FORMAT:
        raise UserError("this soft-label file was written by an older lit-compressor (its function keys differ).",
                        path, "Label again: `lit-compressor label ... --force true` (compress does it by itself).")
    logits = tensors["logits"]
    if len(ids) != logits.shape[0]:
        raise UserError(f"{len(ids)} ids for {logits.shape[0]} rows of logits.", path, "Delete it and label again.")
    functions = None
    if keys is not None:
        head = {name[len("head."):]: value for name, value in tensors.items() if name.startswith("head.")}
        functions = TeacherFunctions(keys, tensors["function_vectors"], head, int(metadata["num_inputs"]),
                                     metadata.get("pair_head", "concat"), copies)
    return SoftLabels(ids, logits, metadata, functions)


def read_metadata(path: str | Path) -> dict[str, str]:
    """The file's metadata (teacher, data, block size, the teacher's head) without reading the tensors."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except Exception as error:  # a truncated or foreign file
        raise UserError(f"not a soft-label file ({error}).", path, "Delete it and label again.") from None


def is_current(path: str | Path, teacher: str, data: str, **settings: str) -> bool:
    """True when ``path`` holds soft labels of this teacher and data fingerprint (and these ``settings``,
    e.g. the block size, which changes the logits)."""
    if not Path(path).is_file():
        return False
    try:
        metadata = read_metadata(path)
    except UserError:
        return False
    return (metadata.get("format") == FORMAT and metadata.get("teacher") == teacher and metadata.get("data") == data
            and all(metadata.get(key) == value for key, value in settings.items()))


def check_matches(labels: SoftLabels, ids: list[str], path: str | Path, data: str | None = None) -> None:
    """Every example of the split must have a soft label; a different data hash means stale labels."""
    known = set(labels.ids)
    missing = [i for i in ids if i not in known]
    if missing:
        raise UserError(f"soft labels do not match the unlabelled split: {len(missing)} of {len(ids)} examples "
                        f"have none (first: {missing[0]!r}).", path,
                        "Label the split again with `lit-compressor label --force true`.")
    if data is not None and labels.metadata.get("data") not in (None, data):
        raise UserError("soft labels were computed on different unlabelled data.", path,
                        "Label the split again with `lit-compressor label --force true`.")


def gather_predictions(ids: list[str], rows: list[torch.Tensor], order: list[str]) -> tuple[list[str], torch.Tensor]:
    """Merge per-rank predictions: drop the duplicates a distributed sampler pads with, keep ``order``."""
    stacked = torch.cat(rows) if rows else torch.empty(0, 2)
    by_id = {example_id: stacked[i] for i, example_id in enumerate(ids)}
    missing = [i for i in order if i not in by_id]
    if missing:
        raise RuntimeError(f"{len(missing)} examples were not labelled (first: {missing[0]})")
    return order, torch.stack([by_id[i] for i in order])


def example_rows(examples: list, functions: TeacherFunctions) -> torch.Tensor:
    """``[N, num_inputs]`` cache rows of each example's functions."""
    rows = functions.rows()
    return torch.tensor([[rows[function_key(code)] for code in example.codes] for example in examples])


def unique_functions(examples: list) -> list:
    """Each distinct function of ``examples`` once, as a one-function example keyed by
    :func:`function_key`, longest first (so batches are padded little)."""
    codes = dict.fromkeys(code for example in examples for code in example.codes)
    return [Example(function_key(code), (code,)) for code in sorted(codes, key=len, reverse=True)]
