"""Teacher outputs produced elsewhere (a GPU machine, a paper's released predictions) as soft labels.

One row per example of the unlabelled split, in JSONL, CSV or TSV:

- the example: an ``id`` column (the split's example id), or, for pairs, the two function ids
  ``idx1``/``idx2`` as in BigCloneBench's pair files (a pair listed twice is its ``#2`` occurrence);
- its teacher output: ``logits`` (C numbers), ``probabilities`` (C numbers that sum to 1) or a hard
  ``label`` (a class index). JSONL uses those keys (a list for logits and probabilities); CSV and TSV a
  header row with ``id`` or ``idx1,idx2`` and ``logit_0..`` , ``prob_0..`` or ``label`` columns. A file
  without a header needs ``kind`` and holds the id column(s) then the values.

Probabilities become logits ``log p``; hard labels become one-hot targets, optionally smoothed
(``(1 - s) * onehot + s / C``). Anything inconsistent is refused before a file is written.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Literal

import torch

from lit_compressor.core.errors import UserError
from lit_compressor.data.readers import Example

Kind = Literal["auto", "logits", "probabilities", "label"]
PROBABILITY_TOLERANCE = 1e-3
NEVER = -1e4  # the logit of a class whose probability is 0: finite, so every loss stays finite


FLOAT32_MAX = 3.4028234663852886e38


def _parse_number(text: Any, path: Path, line: int) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise UserError(f"{text!r} is not a number.", path, line=line) from None
    if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
        raise UserError(f"{text!r} is not a finite float32 number (soft labels are stored as float32).", path,
                        line=line)
    return value


def _lines(path: Path) -> list[str]:
    """The file's lines, decoded as UTF-8 (a byte-order mark, as spreadsheet tools write, is dropped)."""
    if not path.is_file():
        raise UserError("teacher-output file not found.", path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise UserError(f"the file is not UTF-8 text (byte 0x{data[error.start]:02x} cannot be decoded).", path,
                        "Save it as UTF-8 (CSV UTF-8 in a spreadsheet tool).", line=line) from None


def _value_columns(header: list[str], ids: list[str], kind: Kind, num_labels: int, path: Path
                   ) -> tuple[Kind, list[int]]:
    """``(kind, column of each class)`` from a header's names: ``logit_0..``, ``prob_0..`` or ``label``, in any
    order, every class once, nothing else."""
    kinds = {"logit": "logits", "prob": "probabilities"}
    values = [(column, name) for column, name in enumerate(header) if name not in ids]
    fix = (f"Name the columns {', '.join(ids)} and then logit_0..logit_{num_labels - 1}, "
           f"prob_0..prob_{num_labels - 1} or label.")
    if [name for _, name in values] == ["label"]:
        found: Kind = "label"
        columns = [values[0][0]]
    else:
        prefixes = {name.rpartition("_")[0] for _, name in values}
        if len(prefixes) != 1 or not prefixes <= kinds.keys():
            raise UserError(f"header {header}: the value columns mix or misname kinds ({sorted(prefixes)}).", path,
                            fix, line=1)
        found = kinds[prefixes.pop()]  # type: ignore[assignment]
        by_class = {name.rpartition("_")[2]: column for column, name in values}
        expected = [str(c) for c in range(num_labels)]
        if sorted(by_class) != sorted(expected) or len(by_class) != len(values):
            raise UserError(f"header {header}: {found} columns for classes {sorted(by_class)}, the task has "
                            f"{expected} (each once).", path, fix, line=1)
        columns = [by_class[c] for c in expected]
    if kind != "auto" and kind != found:
        raise UserError(f"header {header} holds {found}, but kind is {kind}.", path,
                        "Drop --kind (the header says what the file holds) or fix the header.", line=1)
    return found, columns


def _records(path: Path, kind: Kind, num_inputs: int, num_labels: int) -> tuple[Kind, list[tuple[int, str, list]]]:
    """``(kind, [(line, example key, values)])`` of a JSONL, CSV or TSV file."""
    lines = _lines(path)
    if path.suffix == ".jsonl":
        return _jsonl_records(path, lines, kind, num_inputs)
    delimiter = "\t" if path.suffix in (".tsv", ".txt") else ","
    rows = [(number, row) for number, row in enumerate(csv.reader(lines, delimiter=delimiter), start=1) if row]
    if not rows:
        raise UserError("the file is empty.", path)
    header = [cell.strip() for cell in rows[0][1]]
    ids = ["idx1", "idx2"] if num_inputs == 2 and "id" not in header else ["id"]
    if header[0] in ("id", "idx1", "idx2"):
        if not set(ids) <= set(header):
            raise UserError(f"header {header} has no {' and '.join(ids)} column(s).", path, line=rows[0][0])
        kind, value_columns = _value_columns(header, ids, kind, num_labels, path)
        id_columns = [header.index(name) for name in ids]
        rows = rows[1:]
    elif kind == "auto":
        raise UserError("a file without a header row needs `kind` (logits, probabilities or label).", path,
                        f"Add a header ({', '.join(ids)}, then logit_0.. or prob_0.. or label) or pass --kind.")
    else:
        id_columns = list(range(len(ids)))
        value_columns = list(range(len(ids), len(ids) + (1 if kind == "label" else num_labels)))
    records, width = [], len(id_columns) + len(value_columns)
    for number, row in rows:
        if len(row) != width:
            raise UserError(f"{len(row)} columns, expected {width} ({', '.join(ids)} and "
                            f"{'a label' if kind == 'label' else f'{num_labels} {kind}'}).", path, line=number)
        key = "-".join(row[c].strip() for c in id_columns)
        records.append((number, key, [row[c] for c in value_columns]))
    return kind, records


def _jsonl_records(path: Path, lines: list[str], kind: Kind, num_inputs: int
                   ) -> tuple[Kind, list[tuple[int, str, list]]]:
    records, first_kind = [], None
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as error:
            raise UserError(f"malformed JSON ({error.msg}).", path, line=number) from None
        if not isinstance(record, dict):
            raise UserError("a line that is not a JSON object.", path, line=number)
        if "id" in record:
            key = str(record["id"])
        elif num_inputs == 2 and {"idx1", "idx2"} <= record.keys():
            key = f"{record['idx1']}-{record['idx2']}"
        else:
            raise UserError("no `id` (nor `idx1`/`idx2` for a pair).", path, line=number)
        present = [name for name in ("logits", "probabilities", "label") if name in record]
        wanted = kind if kind != "auto" else first_kind
        if len(present) != 1 or (wanted is not None and present[0] != wanted):
            source = "--kind says" if kind != "auto" else "the first line"
            expected = f" (here: {wanted}, as {source})" if wanted else ""
            raise UserError(f"each line needs exactly one of logits, probabilities, label{expected}; found "
                            f"{present or 'none'}.", path, line=number)
        first_kind = present[0]
        value = record[first_kind]
        records.append((number, key, value if isinstance(value, list) else [value]))
    if not records:
        raise UserError("the file is empty.", path)
    return first_kind, records  # type: ignore[return-value]


def _logits(kind: str, values: list, num_labels: int, smoothing: float, path: Path, line: int) -> list[float]:
    if kind == "label":
        if len(values) != 1:
            raise UserError(f"one label expected, got {values}.", path, line=line)
        label = _parse_number(values[0], path, line)
        if label != int(label) or not 0 <= label < num_labels:
            raise UserError(f"label {values[0]!r} is not one of the task's classes {list(range(num_labels))}.",
                            path, line=line)
        probabilities = [smoothing / num_labels + (1 - smoothing) * (c == int(label)) for c in range(num_labels)]
        return [math.log(p) if p > 0 else NEVER for p in probabilities]
    numbers = [_parse_number(v, path, line) for v in values]
    if len(numbers) != num_labels:
        raise UserError(f"{len(numbers)} {kind} for a task of {num_labels} classes.", path, line=line)
    if kind == "logits":
        return numbers
    if any(p < 0 or p > 1 for p in numbers) or abs(sum(numbers) - 1) > PROBABILITY_TOLERANCE:
        raise UserError(f"probabilities {numbers} do not sum to 1 (sum {sum(numbers):.6f}).", path, line=line,
                        fix="Give probabilities that sum to 1 per row, or logits with kind logits.")
    return [math.log(p) if p > 0 else NEVER for p in numbers]


def _preview(ids: list[str]) -> str:
    return ", ".join(repr(i) for i in ids[:3]) + (", ..." if len(ids) > 3 else "")


def read_teacher_outputs(path: str | Path, examples: list[Example], num_inputs: int, num_labels: int,
                         kind: Kind = "auto", smoothing: float = 0.0) -> tuple[torch.Tensor, str]:
    """``([N, C]`` logits in the split's order, the kind read``)``; a ``UserError`` for anything inconsistent."""
    path = Path(path)
    if not 0 <= smoothing < 1:
        raise UserError(f"smoothing must be in [0, 1), got {smoothing}.")
    kind, records = _records(path, kind, num_inputs, num_labels)
    split = [e.id for e in examples]
    known = set(split)
    rows: dict[str, list[float]] = {}
    first_line: dict[str, int] = {}
    seen: dict[str, int] = {}
    for line, key, values in records:
        seen[key] = seen.get(key, 0) + 1
        example_id = key if seen[key] == 1 else f"{key}#{seen[key]}"  # as the pair reader numbers repeats
        if seen[key] > 1 and example_id not in known:
            times = sum(1 for i in split if i == key or i.startswith(f"{key}#"))
            raise UserError(f"{'pair' if num_inputs == 2 else 'id'} {key!r} appears again (first on line "
                            f"{first_line[key]}); the unlabelled split holds it {times} time(s).", path, line=line,
                            fix="Give one row per example of the split.")
        first_line.setdefault(key, line)
        rows[example_id] = _logits(kind, values, num_labels, smoothing, path, line)
    unknown = [i for i in rows if i not in known]
    if unknown:
        raise UserError(f"{len(unknown)} ids are not in the unlabelled split (first: {_preview(unknown)}).", path,
                        "Give one row per example of the task's unlabelled split (same ids, same limit).")
    missing = [i for i in split if i not in rows]
    if missing:
        raise UserError(f"{len(missing)} of {len(split)} examples of the unlabelled split have no row in the file "
                        f"(first: {_preview(missing)}).", path,
                        "Give one row per example of the task's unlabelled split (same ids, same limit).")
    return torch.tensor([rows[i] for i in split], dtype=torch.float32), kind
