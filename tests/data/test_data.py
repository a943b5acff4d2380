"""Readers on real data and every kind of bad data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SAMPLE, SHARED_DATA

from lit_compressor.core.errors import DataError
from lit_compressor.data.readers import normalize_whitespace, read_functions, read_jsonl, read_pairs
from lit_compressor.data.task import TaskData, fingerprint
from lit_compressor.training.datamodule import CodeDataModule


def test_bigclonebench_sample_splits():
    task = TaskData(data_dir=str(SAMPLE))
    sizes = {split: len(task.read(split)) for split in ("labelled", "unlabelled", "valid", "test")}
    assert sizes == {"labelled": 1000, "unlabelled": 2000, "valid": 300, "test": 590}
    test = task.read("test")
    assert {e.label for e in test} == {0, 1} and all(len(e.codes) == 2 for e in test)
    assert all(e.label is None for e in task.read("unlabelled"))
    assert task.num_inputs == 2


def test_real_bigclonebench_and_devign_slices():
    functions = read_functions(SHARED_DATA / "bigclonebench" / "data.jsonl")
    assert len(functions) == 22975
    test = read_pairs(SHARED_DATA / "bigclonebench" / "test.txt", functions, labelled=True)
    assert len(test) == 4000 and sum(e.label for e in test) == 2000
    devign = TaskData(format="devign", data_dir=str(SHARED_DATA / "devign"))
    train = devign.read("labelled")
    assert len(train) == 1092 and sum(e.label for e in train) == 502 and devign.num_inputs == 1
    assert all(e.label is None for e in devign.read("unlabelled"))


def test_repeated_pairs_get_distinct_ids(tmp_path):
    (tmp_path / "pairs.txt").write_text("1\t2\t1\n1\t2\t1\n")
    examples = read_pairs(tmp_path / "pairs.txt", {"1": "a", "2": "b"}, labelled=True)
    assert [e.id for e in examples] == ["1-2", "1-2#2"]


def test_normalize_whitespace():
    assert normalize_whitespace("int  f()\n\t{ return 1; }\n") == "int f() { return 1; }"


def test_limit_is_seeded_sample():
    task = TaskData(data_dir=str(SAMPLE), limit={"test": 50})
    first, second = task.read("test"), task.read("test")
    assert len(first) == 50 and [e.id for e in first] == [e.id for e in second]
    assert fingerprint(first) == fingerprint(second)
    assert fingerprint(first) != fingerprint(TaskData(data_dir=str(SAMPLE), limit={"test": 50}, seed=1).read("test"))


def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


BAD_JSONL = {
    "malformed JSON": ('{"func": "a", "idx": 1, "target": 0}\n{"func": "b", "idx": 2\n', "line 2", "malformed JSON"),
    "label outside classes": ('{"func": "a", "idx": 1, "target": 3}\n', "line 1", "not one of the task's classes"),
    "label of wrong type": ('{"func": "a", "idx": 1, "target": "yes"}\n', "line 1", "not one of the task's classes"),
    "duplicate id": ('{"func": "a", "idx": 1, "target": 0}\n{"func": "b", "idx": 1, "target": 1}\n', "line 2",
                     "duplicate"),
    "empty split": ("\n", "", "empty"),
    "non-UTF-8": (b'{"func": "a\xff", "idx": 1, "target": 0}\n', "line 1", "not UTF-8"),
    "code not a string": ('{"func": 5, "idx": 1, "target": 0}\n', "line 1", "not a string"),
    "missing field": ('{"code": "a", "idx": 1, "target": 0}\n', "line 1", "no field 'func'"),
}


@pytest.mark.parametrize("case", sorted(BAD_JSONL))
def test_bad_jsonl(tmp_path, case):
    text, where, what = BAD_JSONL[case]
    path = _write(tmp_path / "split.jsonl", text)
    with pytest.raises(DataError) as error:
        read_jsonl(path)
    assert str(path) in error.value.message and where in error.value.message and what in error.value.message


BAD_PAIRS = {
    "unknown idx": ("1\t9\t1\n", "line 1", "'9' is not in data.jsonl"),
    "label outside classes": ("1\t2\t1\n1\t2\t7\n", "line 2", "not one of the task's classes"),
    "missing label": ("1\t2\n", "line 1", "expected idx1<TAB>idx2<TAB>label"),
    "empty": ("", "", "empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_PAIRS))
def test_bad_pairs(tmp_path, case):
    text, where, what = BAD_PAIRS[case]
    path = _write(tmp_path / "pairs.txt", text)
    with pytest.raises(DataError) as error:
        read_pairs(path, {"1": "a", "2": "b"}, labelled=True)
    assert where in error.value.message and what in error.value.message


def test_missing_file_and_duplicate_function(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_functions(tmp_path / "nope.jsonl")
    path = _write(tmp_path / "data.jsonl", json.dumps({"func": "a", "idx": "1"}) + "\n" + json.dumps(
        {"func": "b", "idx": "1"}) + "\n")
    with pytest.raises(DataError, match="line 2: duplicate function id"):
        read_functions(path)


def test_generic_jsonl_pairs_and_datamodule(tmp_path):
    rows = [{"a": f"int f{i}() {{}}", "b": f"int g{i}() {{}}", "y": i % 2} for i in range(6)]
    for name in ("label_train", "valid", "test"):
        _write(tmp_path / f"{name}.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    _write(tmp_path / "unlabel_train.jsonl", "".join(json.dumps({"a": r["a"], "b": r["b"]}) + "\n" for r in rows))
    task = TaskData(format="jsonl", data_dir=str(tmp_path), code_fields=["a", "b"], label_field="y", id_field=None)
    assert task.num_inputs == 2
    data = CodeDataModule(task, batch_size=4, encoder=lambda examples: [e.label for e in examples])
    assert next(iter(data.val_dataloader())) == [0, 1, 0, 1, 0, 1]
    assert [e.id for e in data.split("unlabelled")] == ["1", "2", "3", "4", "5", "6"]


def test_labelled_split_without_labels_is_an_error(tmp_path):
    _write(tmp_path / "label_train.jsonl", '{"func": "a", "idx": 1}\n')
    with pytest.raises(Exception, match="has no 'target'"):
        TaskData(format="devign", data_dir=str(tmp_path)).read("labelled")
