"""The task config: where a task's data lives and how to read it. Every stage reads data through it.

Light on purpose (no Lightning, no torch): ``export``, ``benchmark`` and the search's callers read the
same splits as training, with the same field names, through :class:`TaskData` and :func:`load_task`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from lit_compressor.core.configs import read_yaml
from lit_compressor.core.errors import UserError
from lit_compressor.core.fingerprint import hash_texts
from lit_compressor.data.readers import Example, read_functions, read_jsonl, read_pairs

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

    def files_of(self, splits: Sequence[Split]) -> list[Path]:
        """The files reading ``splits`` opens (each split's file, and ``data.jsonl`` for BigCloneBench)."""
        files = [self.path(split) for split in dict.fromkeys(splits)]
        return files + ([Path(self.data_dir) / "data.jsonl"] if self.format == "bigclonebench" else [])

    def read(self, split: Split) -> list[Example]:
        """The split's examples (a seeded sample of ``limit[split]`` of them, in file order)."""
        classes = range(self.num_labels)
        labelled = split != "unlabelled"
        if self.format == "bigclonebench":
            functions = read_functions_cached(Path(self.data_dir) / "data.jsonl")
            examples = read_pairs(self.path(split), functions, labelled=labelled, classes=classes)
        else:
            examples = read_jsonl(self.path(split), code_fields=self.code_fields or ["func"],
                                  label_field=self.label_field, id_field=self.id_field, classes=classes)
            if labelled and (missing := next((e for e in examples if e.label is None), None)):
                raise UserError(f"example {missing.id!r} of a labelled split has no {self.label_field!r}.",
                                self.path(split), "Every line of a labelled split needs a label.")
        return seeded_sample(examples, (self.limit or {}).get(split), f"{self.seed}-{split}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def seeded_sample(examples: list[Example], limit: int | None, seed: int | str) -> list[Example]:
    """At most ``limit`` examples drawn with ``seed``, kept in file order (the files are sorted by label)."""
    if limit is None or limit >= len(examples):
        return examples
    keep = sorted(random.Random(seed).sample(range(len(examples)), limit))
    return [examples[i] for i in keep]


_FUNCTIONS: dict[Path, tuple[float, dict[str, str]]] = {}


def read_functions_cached(path: Path) -> dict[str, str]:
    """``data.jsonl`` is large and shared by all four splits: read it once per process."""
    key = path.resolve() if path.exists() else path
    mtime = path.stat().st_mtime if path.exists() else -1.0
    cached = _FUNCTIONS.get(key)
    if cached is None or cached[0] != mtime:
        cached = _FUNCTIONS[key] = (mtime, read_functions(path))
    return cached[1]


def fingerprint(examples: Sequence[Example]) -> str:
    """A hash of a split's ids and code, recorded with everything computed from it."""
    return hash_texts(text for example in examples for text in (example.id, *example.codes, "\1"))


def _infer_format(folder: Path) -> str:
    if (folder / "data.jsonl").is_file() and (folder / "test.txt").is_file():
        return "bigclonebench"
    if (folder / "test.jsonl").is_file():
        return "devign"
    raise UserError("cannot tell the task's format from this folder (no data.jsonl with test.txt, no "
                    "test.jsonl).", folder, "Give a task YAML (format, data_dir, files, field names) instead.")


def task_from_mapping(mapping: dict[str, Any], where: str | Path) -> TaskData:
    """A ``TaskData`` from its fields; unknown keys are refused with the list of known ones."""
    known = {f.name for f in fields(TaskData)}
    unknown = sorted(set(mapping) - known)
    if unknown:
        raise UserError(f"unknown task key(s) {', '.join(map(repr, unknown))}.", where,
                        f"Known keys: {', '.join(sorted(known))}.")
    return TaskData(**mapping)


def load_task(spec: str | Path | TaskData) -> TaskData:
    """The task named by ``spec``: a ``TaskData``, a task YAML, or a task folder (format inferred).

    A YAML holds the task's fields at top level, under ``task:``, or under ``data: task:`` (a ``fit``
    config), so the same file that trains a model evaluates it.
    """
    if isinstance(spec, TaskData):
        return spec
    path = Path(spec)
    if path.is_dir():
        return TaskData(format=_infer_format(path), data_dir=str(path))  # type: ignore[arg-type]
    if not path.is_file():
        raise UserError("task not found.", path, "Give a task YAML or a task folder (e.g. ../shared/data/devign).")
    if path.suffix not in (".yaml", ".yml"):
        raise UserError("a task is a YAML file or a folder, not a data file.", path,
                        "Give the task folder, or a task YAML whose `files:` names this file.")
    content = read_yaml(path, "task")
    data = content.get("data")
    data = data.get("init_args", data) if isinstance(data, dict) else data  # a data module named by class_path
    if isinstance(data, dict) and "task" in data:
        content = data
    if "task" in content:
        content = content["task"]
    content = content.get("init_args", content) if isinstance(content, dict) else content
    if not isinstance(content, dict):
        raise UserError("the `task` entry must be a mapping.", path)
    return task_from_mapping(content, path)
