"""The data module: the four splits of a task, batched by the model's own encoder."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import lightning as L
from torch.utils.data import DataLoader

from lit_compressor.data.readers import Example, read_functions, read_jsonl, read_pairs
from lit_compressor.errors import UserError

Split = Literal["labelled", "unlabelled", "valid", "test"]
SPLITS: tuple[Split, ...] = ("labelled", "unlabelled", "valid", "test")

DEFAULT_FILES = {
    "bigclonebench": {"labelled": "label_train.txt", "unlabelled": "unlabel_train.txt",
                      "valid": "valid.txt", "test": "test.txt"},
    "devign": {"labelled": "label_train.jsonl", "unlabelled": "unlabel_train.jsonl",
               "valid": "valid.jsonl", "test": "test.jsonl"},
    "jsonl": {"labelled": "label_train.jsonl", "unlabelled": "unlabel_train.jsonl",
              "valid": "valid.jsonl", "test": "test.jsonl"},
}


@dataclass
class TaskData:
    """Where a task's data lives and how to read it.

    ``format`` is ``bigclonebench`` (``data.jsonl`` + pair files), ``devign`` or ``jsonl`` (one JSON
    object a line; one code field for single functions, two for pairs). ``files`` overrides the file
    name of any split; ``limit`` keeps a seeded random sample of at most that many examples per split.
    """

    format: Literal["bigclonebench", "devign", "jsonl"] = "bigclonebench"
    data_dir: str = "../shared/data/bigclonebench"
    files: dict[str, str] | None = None
    code_fields: list[str] | None = None
    label_field: str = "target"
    id_field: str | None = "idx"
    num_labels: int = 2
    limit: dict[str, int] | None = None
    seed: int = 0

    @property
    def num_inputs(self) -> int:
        if self.format == "bigclonebench":
            return 2
        return len(self.code_fields or ["func"])

    def path(self, split: Split) -> Path:
        files = {**DEFAULT_FILES[self.format], **(self.files or {})}
        return Path(self.data_dir) / files[split]

    def read(self, split: Split) -> list[Example]:
        classes = range(self.num_labels)
        labelled = split != "unlabelled"
        if self.format == "bigclonebench":
            functions = _read_functions_cached(Path(self.data_dir) / "data.jsonl")
            examples = read_pairs(self.path(split), functions, labelled=labelled, classes=classes)
        else:
            examples = read_jsonl(self.path(split), code_fields=self.code_fields or ["func"],
                                  label_field=self.label_field, id_field=self.id_field, classes=classes)
            if labelled and (missing := next((e for e in examples if e.label is None), None)):
                raise UserError(f"example {missing.id!r} of a labelled split has no {self.label_field!r}.",
                                self.path(split), "Every line of a labelled split needs a label.")
        limit = (self.limit or {}).get(split)
        if limit is not None and limit < len(examples):
            examples = random.Random(f"{self.seed}-{split}").sample(examples, limit)
        return examples


_FUNCTIONS: dict[Path, tuple[float, dict[str, str]]] = {}


def _read_functions_cached(path: Path) -> dict[str, str]:
    """``data.jsonl`` is large and shared by all four splits: read it once per process."""
    key = path.resolve() if path.exists() else path
    mtime = path.stat().st_mtime if path.exists() else -1.0
    cached = _FUNCTIONS.get(key)
    if cached is None or cached[0] != mtime:
        cached = _FUNCTIONS[key] = (mtime, read_functions(path))
    return cached[1]


def fingerprint(examples: Sequence[Example]) -> str:
    """A hash of a split's ids and code, recorded with everything computed from it."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(example.id.encode())
        for code in example.codes:
            digest.update(b"\0" + code.encode("utf-8", "surrogatepass"))
        digest.update(b"\1")
    return digest.hexdigest()[:16]


class CodeDataModule(L.LightningDataModule):
    """Serves the labelled, unlabelled, valid and test splits of one task.

    Batches are encoded by the attached model's ``collate`` (its own tokenizer: the teacher's or a
    student's), so one data config serves every stage. The model also says which split it trains on
    (``train_split``: the teacher the labelled half, a distilled student the unlabelled half).
    """

    def __init__(self, task: TaskData | None = None, batch_size: int = 16, eval_batch_size: int = 64,
                 block_size: int = 400, num_workers: int = 0):
        super().__init__()
        self.task = task or TaskData()
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.block_size = block_size
        self.num_workers = num_workers
        self.collate_fn: Callable[[list[Example]], dict] | None = None
        self._splits: dict[str, list[Example]] = {}

    def split(self, name: Split) -> list[Example]:
        if name not in self._splits:
            self._splits[name] = self.task.read(name)
        return self._splits[name]

    def _collate(self) -> Callable[[list[Example]], dict]:
        if self.collate_fn is not None:
            return self.collate_fn
        if self.trainer is not None and hasattr(self.trainer.lightning_module, "collate"):
            return self.trainer.lightning_module.collate
        raise RuntimeError("CodeDataModule needs a collate_fn or a model with a collate method")

    def _loader(self, name: Split, train: bool = False) -> DataLoader:
        return DataLoader(self.split(name), batch_size=self.batch_size if train else self.eval_batch_size,
                          shuffle=train, collate_fn=self._collate(), num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        model = self.trainer.lightning_module if self.trainer is not None else None
        return self._loader(getattr(model, "train_split", "labelled"), train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("valid")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("unlabelled")
