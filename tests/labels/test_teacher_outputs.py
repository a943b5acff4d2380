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
    "missing ids": (None, "11 of 12 examples of the unlabelled split have no row"),
    "probabilities": ('{"id": "ID", "probabilities": [0.5, 0.4]}\n', "do not sum to 1"),
    "label class": ('{"id": "ID", "label": 3}\n', "label 3 is not one of the task's classes [0, 1]"),
    "columns": ("id,logit_0,logit_1\nID,0.5\n", "line 2: 2 columns, expected 3"),
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
    rows = [json.dumps({"id": e.id, **value}) + "\n" for e in examples[1:]]
    bad = tmp_path / ("bad.csv" if case == "columns" else "bad.jsonl")
    if case == "missing ids":
        bad.write_text(rows[0])
    elif case == "columns":
        bad.write_text(content.replace("ID", examples[0].id))
    else:
        bad.write_text(content.replace("ID", examples[0].id) + "".join(rows))
    with pytest.raises(SystemExit) as exit_:
        run_label(tmp_path, bad)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and str(bad) in err and "Traceback" not in err
    assert (tmp_path / "soft.safetensors").read_bytes() == before
