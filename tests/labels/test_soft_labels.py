"""Soft labels: computed once, reused, recomputed when the teacher or the data change; atomic file."""

from __future__ import annotations

import pytest
import torch
from conftest import SAMPLE

from lit_compressor.commands.label import label
from lit_compressor.core.errors import UserError
from lit_compressor.data.task import TaskData
from lit_compressor.labels.soft_labels import (
    SoftLabels,
    check_matches,
    gather_predictions,
    load_soft_labels,
    save_soft_labels,
)
from lit_compressor.nn.folders import save_classifier
from lit_compressor.nn.student import build_student
from lit_compressor.nn.tokenization import train_student_tokenizer
from lit_compressor.search.architecture import StudentArchitecture


@pytest.fixture(scope="module")
def tiny_classifier_folder(tmp_path_factory):
    from conftest import sample_functions

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("classifier")
    model = build_student(StudentArchitecture(1, 32, 2, 64, 400), num_inputs=2, max_positions=130)
    save_classifier(model, train_student_tokenizer(sample_functions(), 400), folder)
    return folder


def test_label_writes_reuses_and_invalidates(tiny_classifier_folder, tmp_path):
    task = TaskData(data_dir=str(SAMPLE), limit={"unlabelled": 40})
    output = tmp_path / "soft.safetensors"
    label(str(tiny_classifier_folder), output, task, block_size=128, batch_size=16)
    labels = load_soft_labels(output)
    ids = [e.id for e in task.read("unlabelled")]
    assert labels.ids == ids and labels.logits.shape == (40, 2) and torch.isfinite(labels.logits).all()
    assert labels.metadata["teacher"] and labels.metadata["data"]

    # Same teacher and data: not recomputed (the file is untouched).
    stamp = output.stat().st_mtime_ns
    label(str(tiny_classifier_folder), output, task, block_size=128, batch_size=16)
    assert output.stat().st_mtime_ns == stamp

    # Different data: recomputed.
    other = TaskData(data_dir=str(SAMPLE), limit={"unlabelled": 24})
    label(str(tiny_classifier_folder), output, other, block_size=128, batch_size=16)
    assert len(load_soft_labels(output).ids) == 24


def test_soft_labels_match_a_direct_forward(tiny_classifier_folder, tmp_path):
    from lit_compressor.training.labelling import TeacherPredictor

    task = TaskData(data_dir=str(SAMPLE), limit={"unlabelled": 8})
    output = label(str(tiny_classifier_folder), tmp_path / "soft.safetensors", task, block_size=128)
    predictor = TeacherPredictor(str(tiny_classifier_folder), block_size=128)
    with torch.no_grad():
        expected = predictor(predictor.collate(task.read("unlabelled")))
    torch.testing.assert_close(load_soft_labels(output).logits, expected, rtol=1e-5, atol=1e-5)


def test_mismatch_and_corrupt_files_are_errors(tmp_path):
    path = save_soft_labels(tmp_path / "soft.safetensors", SoftLabels(["a", "b"], torch.zeros(2, 2), {"data": "x"}))
    with pytest.raises(UserError, match="1 of 3 examples have none"):
        check_matches(load_soft_labels(path), ["a", "b", "c"], path)
    with pytest.raises(UserError, match="different unlabelled data"):
        check_matches(load_soft_labels(path), ["a", "b"], path, data="y")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(path.read_bytes()[:40])
    with pytest.raises(UserError, match="not a soft-label file"):
        load_soft_labels(broken)
    assert not list(tmp_path.glob(".*.tmp"))


def test_gather_drops_sampler_duplicates_and_keeps_order():
    ids, logits = gather_predictions(["b", "a", "c", "a"], [torch.tensor([[1.0, 0], [2, 0]]),
                                                             torch.tensor([[3.0, 0], [2, 0]])], ["a", "b", "c"])
    assert ids == ["a", "b", "c"] and logits[:, 0].tolist() == [2.0, 1.0, 3.0]
    with pytest.raises(RuntimeError, match="not labelled"):
        gather_predictions(["a"], [torch.zeros(1, 2)], ["a", "b"])
