"""Readers for the tasks' file formats: BigCloneBench and Devign (CodeXGLUE) and generic JSONL.

Every reader returns a list of :class:`Example` and raises :class:`DataError` naming the file and the
line for anything malformed, so a user can fix the data rather than read a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lit_compressor.core.errors import DataError


@dataclass(frozen=True)
class Example:
    """One classification example: one function, or a pair of functions, and maybe a label."""

    id: str
    codes: tuple[str, ...]
    label: int | None = None


def normalize_whitespace(code: str) -> str:
    """Collapse every run of whitespace to one space, as Compressor does before tokenising."""
    return " ".join(code.split())


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    if not path.is_file():
        raise DataError("a folder, not a file." if path.exists() else "file not found.", path,
                        "Check the data_dir and split names in the config.")
    try:
        handle = path.open("rb")
    except OSError as error:
        raise DataError(f"cannot read the file ({error.strerror}).", path,
                        "Check its permissions, or point the config at a readable copy.") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataError(
                    f"bytes that are not UTF-8 at column {error.start + 1}.", path,
                    "Re-encode the file as UTF-8.", line=number,
                ) from None
            if text.strip():
                yield number, text


def _json_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, text in _lines(path):
        try:
            record = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(f"malformed JSON ({error.msg}).", path, "Each line must be one JSON object.",
                            line=number) from None
        if not isinstance(record, dict):
            raise DataError("a JSON line that is not an object.", path, "Each line must be one JSON object.",
                            line=number)
        yield number, record


def _field(record: dict[str, Any], name: str, path: Path, number: int) -> Any:
    if name not in record:
        raise DataError(f"no field {name!r} (fields: {sorted(record)}).", path,
                        "Set the field names in the data config.", line=number)
    return record[name]


def _label(value: Any, classes: Sequence[int], path: Path, number: int) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value not in classes:
        raise DataError(f"label {value!r} is not one of the task's classes {list(classes)}.", path,
                        "Fix the label or the task's num_labels.", line=number)
    return value


def _code(value: Any, path: Path, number: int) -> str:
    if not isinstance(value, str):
        raise DataError(f"code of type {type(value).__name__}, not a string.", path, line=number)
    return value


def _unique_ids(examples: list[Example], path: Path) -> list[Example]:
    if not examples:
        raise DataError("the split is empty.", path, "Point the config at a file with at least one example.")
    return examples


def read_functions(path: Path, code_field: str = "func", id_field: str = "idx") -> dict[str, str]:
    """Read BigCloneBench's ``data.jsonl``: function id -> source."""
    functions: dict[str, str] = {}
    for number, record in _json_objects(path):
        idx = str(_field(record, id_field, path, number))
        if idx in functions:
            raise DataError(f"duplicate function id {idx!r}.", path, "Every idx must be unique.", line=number)
        functions[idx] = _code(_field(record, code_field, path, number), path, number)
    if not functions:
        raise DataError("no functions.", path)
    return functions


def read_pairs(path: Path, functions: dict[str, str], labelled: bool, classes: Sequence[int] = (0, 1)) -> list[Example]:
    """Read a pair file ``idx1<TAB>idx2[<TAB>label]`` against the functions of ``data.jsonl``.

    A pair that occurs more than once keeps every occurrence; the repeats get ids ``a-b#2``, ``a-b#3``.
    """
    examples: list[Example] = []
    seen: dict[str, int] = {}
    for number, text in _lines(path):
        fields = text.rstrip("\r\n").split("\t")
        if len(fields) < 2 or (labelled and len(fields) < 3):
            expected = "idx1<TAB>idx2<TAB>label" if labelled else "idx1<TAB>idx2"
            raise DataError(f"expected {expected}, got {text.strip()!r}.", path, line=number)
        first, second = fields[0].strip(), fields[1].strip()
        for idx in (first, second):
            if idx not in functions:
                raise DataError(f"function id {idx!r} is not in data.jsonl.", path,
                                "Use ids from data.jsonl or add the function there.", line=number)
        label = _label(fields[2].strip(), classes, path, number) if labelled else None
        key = f"{first}-{second}"
        seen[key] = seen.get(key, 0) + 1
        example_id = key if seen[key] == 1 else f"{key}#{seen[key]}"
        examples.append(Example(example_id, (functions[first], functions[second]), label))
    return _unique_ids(examples, path)


def read_jsonl(
    path: Path,
    code_fields: Sequence[str] = ("func",),
    label_field: str | None = "target",
    id_field: str | None = "idx",
    classes: Sequence[int] = (0, 1),
) -> list[Example]:
    """Read single functions or function pairs from JSONL (Devign, or a user's own data set).

    ``label_field=None`` (or a line without it in an unlabelled split) gives unlabelled examples;
    ``id_field=None`` numbers the examples by line.
    """
    examples: list[Example] = []
    ids: set[str] = set()
    for number, record in _json_objects(path):
        example_id = str(_field(record, id_field, path, number)) if id_field else str(number)
        if example_id in ids:
            raise DataError(f"duplicate example id {example_id!r}.", path, "Every id must be unique.", line=number)
        ids.add(example_id)
        codes = tuple(_code(_field(record, name, path, number), path, number) for name in code_fields)
        label = None
        if label_field is not None and label_field in record:
            label = _label(record[label_field], classes, path, number)
        examples.append(Example(example_id, codes, label))
    return _unique_ids(examples, path)
