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


def _parse_number(text: Any, path: Path, line: int) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise UserError(f"{text!r} is not a number.", path, line=line) from None
    if not math.isfinite(value):
        raise UserError(f"{text!r} is not a finite number.", path, line=line)
    return value


def _records(path: Path, kind: Kind, num_inputs: int, num_labels: int) -> tuple[Kind, list[tuple[int, str, list]]]:
    """``(kind, [(line, example key, values)])`` of a JSONL, CSV or TSV file."""
    if not path.is_file():
        raise UserError("teacher-output file not found.", path)
    if path.suffix == ".jsonl":
        return _jsonl_records(path, kind, num_inputs)
    delimiter = "\t" if path.suffix in (".tsv", ".txt") else ","
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [(number, row) for number, row in enumerate(csv.reader(handle, delimiter=delimiter), start=1) if row]
    if not rows:
        raise UserError("the file is empty.", path)
    ids = ["idx1", "idx2"] if num_inputs == 2 else ["id"]
    header = [cell.strip() for cell in rows[0][1]]
    if header[:1] in (["id"], ["idx1"]):
        ids, values = (header[:2], header[2:]) if header[0] == "idx1" else (header[:1], header[1:])
        kinds = {"logit": "logits", "prob": "probabilities", "label": "label"}
        prefix = values[0].split("_")[0] if values else ""
        if prefix not in kinds or (kind != "auto" and kinds[prefix] != kind):
            raise UserError(f"header {header}: the value columns must be logit_0..logit_{num_labels - 1}, "
                            f"prob_0..prob_{num_labels - 1} or label.", path, line=rows[0][0])
        kind, rows = kinds[prefix], rows[1:]  # type: ignore[assignment]
    elif kind == "auto":
        raise UserError("a file without a header row needs `kind` (logits, probabilities or label).", path,
                        f"Add a header ({', '.join(ids)}, then logit_0.. or prob_0.. or label) or pass --kind.")
    records, width = [], len(ids) + (1 if kind == "label" else num_labels)
    for number, row in rows:
        if len(row) != width:
            raise UserError(f"{len(row)} columns, expected {width} ({', '.join(ids)} and "
                            f"{'a label' if kind == 'label' else f'{num_labels} {kind}'}).", path, line=number)
        key = "-".join(cell.strip() for cell in row[:len(ids)])
        records.append((number, key, row[len(ids):]))
    return kind, records


def _jsonl_records(path: Path, kind: Kind, num_inputs: int) -> tuple[Kind, list[tuple[int, str, list]]]:
    records = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
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
        if len(present) != 1 or (kind != "auto" and present[0] != kind):
            wanted = "" if kind == "auto" else f" (here: {kind})"
            raise UserError(f"each line needs exactly one of logits, probabilities, label{wanted}; found "
                            f"{present or 'none'}.", path, line=number)
        kind = present[0]  # type: ignore[assignment]
        value = record[kind]
        records.append((number, key, value if isinstance(value, list) else [value]))
    if not records:
        raise UserError("the file is empty.", path)
    return kind, records


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
    rows: dict[str, list[float]] = {}
    seen: dict[str, int] = {}
    for line, key, values in records:
        seen[key] = seen.get(key, 0) + 1
        example_id = key if seen[key] == 1 else f"{key}#{seen[key]}"  # as the pair reader numbers repeats
        if example_id in rows and num_inputs == 1:
            raise UserError(f"id {key!r} appears twice.", path, line=line)
        rows[example_id] = _logits(kind, values, num_labels, smoothing, path, line)
    split = [e.id for e in examples]
    known = set(split)
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
