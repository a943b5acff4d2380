"""The teacher's soft labels: logits per unlabelled example, keyed by example id, computed once.

The file is safetensors (``logits`` ``[N, C]``) whose metadata records the example ids, which teacher
produced it (a hash of its weights) and which data (a hash of the split). It is written atomically
(temporary file, then rename), so a killed run never leaves a half file that looks complete, and a
later stage recomputes it only when the teacher or the data changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from lit_compressor.errors import UserError


@dataclass
class SoftLabels:
    ids: list[str]
    logits: torch.Tensor
    metadata: dict[str, str] = field(default_factory=dict)

    def lookup(self) -> dict[str, int]:
        return {example_id: row for row, example_id in enumerate(self.ids)}


def file_fingerprint(path: str | Path) -> str:
    """A hash of a teacher: its weights file, or every weights file of a folder."""
    path = Path(path)
    weights = (".safetensors", ".bin", ".json")
    files = sorted(p for p in path.iterdir() if p.suffix in weights) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def save_soft_labels(path: str | Path, labels: SoftLabels) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {**labels.metadata, "ids": json.dumps(labels.ids)}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file({"logits": labels.logits.float().contiguous()}, tmp, metadata=metadata)
    os.replace(tmp, path)
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
            logits = handle.get_tensor("logits")
        ids = json.loads(metadata.pop("ids"))
    except Exception as error:  # a truncated or foreign file
        raise UserError(f"not a soft-label file ({error}).", path, "Delete it and label again.") from None
    if len(ids) != logits.shape[0]:
        raise UserError(f"{len(ids)} ids for {logits.shape[0]} rows of logits.", path, "Delete it and label again.")
    return SoftLabels(ids, logits, metadata)


def is_current(path: str | Path, teacher: str, data: str, **settings: str) -> bool:
    """True when ``path`` holds soft labels of this teacher and data fingerprint (and these ``settings``,
    e.g. the block size, which changes the logits)."""
    try:
        metadata = load_soft_labels(path).metadata
    except UserError:
        return False
    return (metadata.get("teacher") == teacher and metadata.get("data") == data
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


def gather_predictions(ids: list[str], logits: list[torch.Tensor], order: list[str]) -> tuple[list[str], torch.Tensor]:
    """Merge per-rank predictions: drop the duplicates a distributed sampler pads with, keep split order."""
    rows = torch.cat(logits) if logits else torch.empty(0, 2)
    by_id = {example_id: rows[i] for i, example_id in enumerate(ids)}
    missing = [i for i in order if i not in by_id]
    if missing:
        raise RuntimeError(f"{len(missing)} examples were not labelled (first: {missing[0]})")
    return order, torch.stack([by_id[i] for i in order])
