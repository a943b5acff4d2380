"""``lit-compressor label --from FILE``: teacher outputs produced elsewhere become the project's soft labels."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import SAMPLE

from lit_compressor.commands.cli import main
from lit_compressor.data.task import TaskData
from lit_compressor.labels.soft_labels import load_soft_labels

LIMIT = {"unlabelled": 12}
TASK = TaskData(data_dir=str(SAMPLE), limit=LIMIT)


def run_label(tmp_path, source, *extra: str) -> None:
    main(["label", "--from", str(source), "--output", str(tmp_path / "soft.safetensors"),
          "--task.data_dir", str(SAMPLE), "--task.limit", json.dumps(LIMIT), *extra])


@pytest.fixture
def own_labels():
    """Soft labels as the project writes them: arbitrary float32 logits, one row per example."""
    examples = TASK.read("unlabelled")
    return examples, torch.randn(len(examples), 2, generator=torch.Generator().manual_seed(0))


def test_jsonl_and_csv_round_trip_to_identical_targets(tmp_path, own_labels):
    examples, logits = own_labels
    jsonl = tmp_path / "teacher.jsonl"
    jsonl.write_text("".join(json.dumps({"id": e.id, "logits": row.tolist()}) + "\n"
                             for e, row in zip(examples, logits, strict=True)))
    run_label(tmp_path, jsonl)
    assert torch.equal(load_soft_labels(tmp_path / "soft.safetensors").logits, logits)

    pairs = tmp_path / "teacher.csv"  # the pair's two function ids, as in BigCloneBench's pair files
    pairs.write_text("idx1,idx2,logit_0,logit_1\n" + "".join(
        f"{e.id.split('-')[0]},{e.id.split('-')[1]},{a!r},{b!r}\n" for e, (a, b) in zip(examples, logits.tolist(),
                                                                                         strict=True)))
    run_label(tmp_path, pairs, "--output", str(tmp_path / "csv.safetensors"))
    read = load_soft_labels(tmp_path / "csv.safetensors")
    assert torch.equal(read.logits, logits) and read.ids == [e.id for e in examples]
    assert read.metadata["source_kind"] == "logits"


def test_probabilities_and_smoothed_hard_labels(tmp_path, own_labels):
    examples, logits = own_labels
    probabilities = logits.softmax(-1)
    tsv = tmp_path / "probs.tsv"
    tsv.write_text("id\tprob_0\tprob_1\n" + "".join(f"{e.id}\t{p0!r}\t{1 - p0!r}\n" for e, (p0, _) in zip(
        examples, probabilities.tolist(), strict=True)))
    run_label(tmp_path, tsv)
    got = load_soft_labels(tmp_path / "soft.safetensors").logits.softmax(-1)
    torch.testing.assert_close(got, probabilities, atol=1e-6, rtol=0)

    hard = tmp_path / "hard.jsonl"
    hard.write_text("".join(json.dumps({"id": e.id, "label": i % 2}) + "\n" for i, e in enumerate(examples)))
    run_label(tmp_path, hard, "--smoothing", "0.1", "--output", str(tmp_path / "hard.safetensors"))
    targets = load_soft_labels(tmp_path / "hard.safetensors").logits.softmax(-1)
    expected = torch.tensor([[0.95, 0.05] if i % 2 == 0 else [0.05, 0.95] for i in range(len(examples))])
    torch.testing.assert_close(targets, expected, atol=1e-6, rtol=0)


BAD = {
    "unknown ids": ('{"id": "nope-1", "logits": [0, 1]}\n', "1 ids are not in the unlabelled split (first: 'nope-1')"),
    "beyond float32": ('{"id": "ID", "logits": [1e39, 0]}\n', "line 1: 1e+39 is not a finite float32 number"),
    "mixed kinds (JSONL)": ('{"id": "ID", "logits": [0, 1]}\n{"id": "ID2", "probabilities": [0.5, 0.5]}\n',
                            "line 2: each line needs exactly one of logits, probabilities, label (here: logits"),
    "missing ids": (None, "11 of 12 examples of the unlabelled split have no row"),
    "probabilities": ('{"id": "ID", "probabilities": [0.5, 0.4]}\n', "do not sum to 1"),
    "label class": ('{"id": "ID", "label": 3}\n', "label 3 is not one of the task's classes [0, 1]"),
    "columns": ("id,logit_0,logit_1\nID,0.5\n", "line 2: 2 columns, expected 3"),
    "mixed header": ("id,logit_0,prob_1\nID,0.5,0.5\n", "line 1: header ['id', 'logit_0', 'prob_1']: the value "
                                                         "columns mix or misname kinds"),
    "missing class": ("id,logit_0,logit_0\nID,0.5,0.5\n", "line 1: header ['id', 'logit_0', 'logit_0']: logits "
                                                             "columns for classes ['0'], the task has ['0', '1']"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_files_are_refused_and_the_existing_file_is_untouched(case, tmp_path, own_labels, capsys):
    examples, logits = own_labels
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps({"id": e.id, "logits": row.tolist()}) + "\n"
                            for e, row in zip(examples, logits, strict=True)))
    run_label(tmp_path, good)
    before = (tmp_path / "soft.safetensors").read_bytes()
    content, message = BAD[case]
    value = {"probabilities": {"probabilities": [0.5, 0.5]}, "label class": {"label": 0}}.get(case, {"logits": [0, 1]})
    rows = [json.dumps({"id": e.id, **value}) + "\n" for e in examples[2:]]
    bad = tmp_path / ("bad.csv" if "header" in case or case in ("columns", "missing class") else "bad.jsonl")
    if case == "missing ids":
        bad.write_text(rows[0])
    elif bad.suffix == ".csv":
        bad.write_text(content.replace("ID", examples[0].id))
    else:
        bad.write_text(content.replace("ID2", examples[1].id).replace("ID", examples[0].id) + "".join(rows))
    with pytest.raises(SystemExit) as exit_:
        run_label(tmp_path, bad)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and str(bad) in err and "Traceback" not in err
    assert (tmp_path / "soft.safetensors").read_bytes() == before


def pair_rows(examples, logits, header: str, order=(0, 1)) -> str:
    lines = [header]
    for e, row in zip(examples, logits.tolist(), strict=True):
        a, b = e.id.split("-")
        lines.append(",".join([a, b, *(repr(row[c]) for c in order)]))
    return "\n".join(lines) + "\n"


def test_value_columns_are_read_by_name_and_a_byte_order_mark_is_dropped(tmp_path, own_labels):
    """``logit_1`` before ``logit_0`` is class 1 first, not a silent swap; a spreadsheet's UTF-8 BOM is not data."""
    examples, logits = own_labels
    swapped = tmp_path / "swapped.csv"
    swapped.write_bytes(b"\xef\xbb\xbf" + pair_rows(examples, logits, "idx1,idx2,logit_1,logit_0", (1, 0)).encode())
    run_label(tmp_path, swapped)
    assert torch.equal(load_soft_labels(tmp_path / "soft.safetensors").logits, logits)


def test_not_utf8_a_duplicated_pair_and_another_kind(tmp_path, own_labels, capsys):
    examples, logits = own_labels
    latin = tmp_path / "latin.csv"
    latin.write_bytes(pair_rows(examples, logits, "idx1,idx2,logit_0,logit_1").encode() + b"# caf\xe9\n")
    with pytest.raises(SystemExit):
        run_label(tmp_path, latin)
    err = capsys.readouterr().err
    assert f"{latin}, line {len(examples) + 2}: the file is not UTF-8 text (byte 0xe9" in err and "Traceback" not in err

    doubled = tmp_path / "doubled.csv"
    text = pair_rows(examples, logits, "idx1,idx2,logit_0,logit_1")
    doubled.write_text(text + text.splitlines()[3] + "\n")
    with pytest.raises(SystemExit):
        run_label(tmp_path, doubled)
    a, b = examples[2].id.split("-")
    assert (f"{doubled}, line {len(examples) + 2}: pair '{a}-{b}' appears again (first on line 4); the unlabelled "
            "split holds it 1 time(s).") in capsys.readouterr().err

    headless = tmp_path / "headless.csv"  # no header: --kind says what the numbers are
    headless.write_text("\n".join(pair_rows(examples, logits, "x").splitlines()[1:]) + "\n")
    run_label(tmp_path, headless, "--kind", "logits")
    as_logits = load_soft_labels(tmp_path / "soft.safetensors").logits
    headless.write_text("\n".join(pair_rows(examples, logits.softmax(-1), "x").splitlines()[1:]) + "\n")
    run_label(tmp_path, headless, "--kind", "logits")
    run_label(tmp_path, headless, "--kind", "probabilities")  # the same file, read as another kind: labelled again
    read = load_soft_labels(tmp_path / "soft.safetensors")
    assert read.metadata["source_kind"] == "probabilities" and torch.equal(as_logits, logits)
    torch.testing.assert_close(read.logits.softmax(-1), logits.softmax(-1), atol=1e-6, rtol=0)
