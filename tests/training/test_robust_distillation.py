"""Robust distillation: ``label --transformed`` caches the teacher's view of one transformed copy of each
function, and the student's function batches draw those copies with the teacher's targets of them."""

from __future__ import annotations

import pytest
import torch
from conftest import SAMPLE, sample_functions
from tiny_tasks import distillation

from lit_compressor.commands.label import label
from lit_compressor.core.errors import UserError
from lit_compressor.data.readers import Example
from lit_compressor.data.task import TaskData
from lit_compressor.data.transforms import transform
from lit_compressor.labels.copies import DEFAULT_COPY_TRANSFORMATIONS, transformed_copies
from lit_compressor.labels.soft_labels import function_key, load_soft_labels, save_soft_labels
from lit_compressor.nn.classifier import pair_features
from lit_compressor.nn.folders import save_classifier
from lit_compressor.nn.student import build_student
from lit_compressor.nn.tokenization import train_student_tokenizer
from lit_compressor.search.architecture import StudentArchitecture
from lit_compressor.training.augmentation import Augmentation, EpochFunctions
from lit_compressor.training.labelling import TeacherPredictor

TINY = StudentArchitecture(num_hidden_layers=1, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                           vocab_size=400)
TASK = TaskData(data_dir=str(SAMPLE), limit={"unlabelled": 24, "valid": 8, "test": 8})
TRANSFORMED = list(DEFAULT_COPY_TRANSFORMATIONS)


@pytest.fixture(scope="module")
def teacher_folder(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("teacher")
    model = build_student(StudentArchitecture(1, 48, 2, 64, 400), num_inputs=2, max_positions=130, pooling="mean")
    save_classifier(model, train_student_tokenizer(sample_functions(), 400), folder)
    return folder


@pytest.fixture(scope="module")
def labelled(teacher_folder, tmp_path_factory):
    """The same split labelled plainly and with transformed copies."""
    folder = tmp_path_factory.mktemp("labels")
    plain = label(str(teacher_folder), folder / "plain.safetensors", TASK, block_size=64)
    robust = label(str(teacher_folder), folder / "robust.safetensors", TASK, block_size=64, transformed=TRANSFORMED)
    return load_soft_labels(plain), load_soft_labels(robust)


def test_one_copy_a_function_each_by_a_transformation_drawn_from_the_list():
    codes = sample_functions(30)
    copies = transformed_copies(codes, "java", TRANSFORMED, seed=7)
    assert len(copies) == len(set(codes))  # every real function has a method to rename, so none is left without
    assert {c.transformation for c in copies} == set(TRANSFORMED)  # all four drawn, in 30 functions
    for copy in copies:
        expected = copy.code
        for step in copy.transformation.split("+"):
            expected = transform(expected, "java", step, seed=7).code
        assert copy.copy == expected != copy.code  # exactly the drawn transformation, with the same seed
    assert transformed_copies(codes, "java", TRANSFORMED, seed=7) == copies  # seeded
    assert transformed_copies(codes, "java", TRANSFORMED, seed=8) != copies
    # the first transformation of the drawn order that changes a function makes its copy
    no_comparison = "int add(int a, int b) { return a + b; }"
    (only,) = transformed_copies([no_comparison], "java", ["swap_comparisons", "rename_parameters"], seed=0)
    assert only.transformation == "rename_parameters" and "a + b" not in only.copy
    assert transformed_copies([no_comparison], "java", ["swap_comparisons"]) == []
    with pytest.raises(UserError, match="unknown transformation"):
        transformed_copies(codes, "java", ["rename_everything"])


def test_label_caches_the_teacher_s_view_of_each_copy(labelled, teacher_folder):
    plain, robust = labelled
    # the soft labels and the originals' vectors are the plain file's: copies only add rows
    assert robust.ids == plain.ids and torch.equal(robust.logits, plain.logits)
    assert robust.functions.keys == plain.functions.keys and torch.equal(robust.functions.vectors,
                                                                         plain.functions.vectors)
    assert plain.functions.copies is None and plain.metadata["transformed"] == ""
    copies = robust.functions.copies
    assert robust.metadata["transformed"] == ",".join(TRANSFORMED) and robust.metadata["transform_seed"] == "1000"
    codes = {function_key(c): c for e in TASK.read("unlabelled") for c in e.codes}
    expected = transformed_copies([codes[k] for k in plain.functions.keys], "java", TRANSFORMED, seed=1000)
    assert copies.codes == [c.copy for c in expected] and copies.transformations == [c.transformation
                                                                                       for c in expected]
    assert (copies.of >= 0).sum() == len(copies.codes) == copies.vectors.shape[0]
    for row, copy in enumerate(copies.of.tolist()):
        if copy >= 0:
            assert {c.code: c.copy for c in expected}[codes[plain.functions.keys[row]]] == copies.codes[copy]
    # each copy's vector is the teacher's pooled vector of the copy's code (fp16 in the file)
    teacher = TeacherPredictor(str(teacher_folder), block_size=64)
    batch = teacher.collate([Example(f"c{i}", (code,)) for i, code in enumerate(copies.codes[:6])])
    with torch.no_grad():
        direct = teacher.model.features(batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(copies.vectors[:6].float(), direct, atol=2e-3, rtol=0)


def test_function_batches_draw_the_copies_with_the_teacher_s_targets(labelled, tmp_path):
    _, robust = labelled
    path = save_soft_labels(tmp_path / "robust.safetensors", robust)
    functions = robust.functions
    count = len(functions.keys)
    always = EpochFunctions(functions, Augmentation(mode="functions", group_size=3, transformed=1.0, seed=1))
    never = EpochFunctions(functions, Augmentation(mode="functions", group_size=3, seed=1))
    for swapped, plain in zip(always.groups, never.groups, strict=True):
        # with transformed 1.0, each function that has a copy is its copy (row F + v); the groups are the same
        assert list(swapped.rows) == [count + int(functions.copies.of[r]) if functions.copies.of[r] >= 0 else r
                                      for r in plain.rows]
    half = EpochFunctions(functions, Augmentation(mode="functions", group_size=3, transformed=0.5, seed=1))
    drawn = [row >= count for group in half.groups for row in group.rows]
    assert 0.3 < sum(drawn) / len(drawn) < 0.7

    module, data = distillation(TINY, TASK, path, tokenizer_cache=tmp_path / "tok", representation={"weight": 1.0},
                                augment=Augmentation(mode="functions", group_size=3, transformed=1.0, seed=1))
    data.setup("fit")
    group = next(g for g in data.train_dataset().groups if any(row >= count for row in g.rows))
    batch = data.train_collate([group])
    copy_rows = [row - count for row in group.rows if row >= count]
    assert {function_key(functions.copies.codes[v]) for v in copy_rows} <= set(batch["ids"])
    expected = data.encoder.encode_codes([[functions.copies.codes[copy_rows[0]]]])["input_ids"][0]
    position = batch["ids"].index(function_key(functions.copies.codes[copy_rows[0]]))
    assert torch.equal(batch["input_ids"][position], expected)  # the student reads the copy's code
    torch.testing.assert_close(batch["target_vectors"][position], functions.copies.vectors[copy_rows[0]].float())
    # the targets are the teacher's head on the batch's vectors, copies included
    table = torch.stack([functions.with_copies().vectors[row] for row in dict.fromkeys(group.rows)])
    first, second = batch["pair_index"][0].tolist()
    with torch.no_grad():
        features = torch.cat([table[first], table[second]]).float()[None]
        direct = functions.classifier()(pair_features(features, 2, functions.pair_head))
    torch.testing.assert_close(batch["target_logits"][0], direct[0])


def test_transformed_needs_copies_and_batches_of_functions(labelled, tmp_path):
    plain, _ = labelled
    path = save_soft_labels(tmp_path / "plain.safetensors", plain)
    module, data = distillation(TINY, TASK, path, tokenizer_cache=tmp_path / "tok",
                                augment=Augmentation(mode="functions", transformed=0.5))
    with pytest.raises(UserError, match="needs transformed copies in the soft-label file"):
        data.setup("fit")
    with pytest.raises(UserError, match="draws transformed copies into batches of functions"):
        distillation(TINY, TASK, path, tokenizer_cache=tmp_path / "tok",
                     augment=Augmentation(pairs_per_epoch=8, transformed=0.5))


def test_copies_can_be_taught_the_original_s_targets(labelled, tmp_path):
    _, robust = labelled
    path = save_soft_labels(tmp_path / "robust.safetensors", robust)
    functions = robust.functions
    count = len(functions.keys)
    module, data = distillation(TINY, TASK, path, tokenizer_cache=tmp_path / "tok", representation={"weight": 1.0},
                                augment=Augmentation(mode="functions", group_size=3, transformed=1.0, seed=1,
                                                     copy_targets="original"))
    data.setup("fit")
    group = next(g for g in data.train_dataset().groups if any(row >= count for row in g.rows))
    batch = data.train_collate([group])
    copy = next(row - count for row in group.rows if row >= count)
    original = int((functions.copies.of == copy).nonzero()[0, 0])
    position = batch["ids"].index(function_key(functions.copies.codes[copy]))
    expected = data.encoder.encode_codes([[functions.copies.codes[copy]]])["input_ids"][0]
    assert torch.equal(batch["input_ids"][position], expected)  # the student still reads the copy's code
    # ... and is taught the teacher's vector of the function the copy was made from
    torch.testing.assert_close(batch["target_vectors"][position], functions.vectors[original].float())
    assert not torch.allclose(functions.vectors[original].float(), functions.copies.vectors[copy].float())
    first, second = batch["pair_index"][0].tolist()
    rows = [int((functions.copies.of == row - count).nonzero()[0, 0]) if row >= count else row
            for row in dict.fromkeys(group.rows)]
    with torch.no_grad():
        features = torch.cat([functions.vectors[rows[first]], functions.vectors[rows[second]]]).float()[None]
        direct = functions.classifier()(pair_features(features, 2, functions.pair_head))
    torch.testing.assert_close(batch["target_logits"][0], direct[0])
