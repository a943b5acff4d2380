"""What a student learns from besides two logits: the teacher's function cache, augmented pairs,
representation and hidden-state matching — each term against a hand computation, and the saved student
free of everything training-only."""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch
from conftest import SAMPLE, sample_functions
from safetensors import safe_open
from tiny_tasks import distillation

from lit_compressor.commands.label import label
from lit_compressor.data.readers import Example
from lit_compressor.data.task import TaskData
from lit_compressor.labels.soft_labels import example_rows, function_key, load_soft_labels
from lit_compressor.nn.classifier import masked_mean
from lit_compressor.nn.folders import load_classifier, save_classifier
from lit_compressor.nn.student import build_student
from lit_compressor.nn.tokenization import train_student_tokenizer
from lit_compressor.search.architecture import StudentArchitecture
from lit_compressor.training.augmentation import Augmentation, EpochPairs, draw_pairs, nearest_neighbours
from lit_compressor.training.distillation import DistillationModule, HiddenStates, Representation
from lit_compressor.training.distillation_data import DistillationDataModule, StudentInputs, teacher_record
from lit_compressor.training.labelling import TeacherPredictor
from lit_compressor.training.losses import representation_loss

TINY = StudentArchitecture(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                           vocab_size=400)
TASK = TaskData(data_dir=str(SAMPLE), limit={"unlabelled": 48, "valid": 16, "test": 16})


@pytest.fixture(scope="module")
def teacher_folder(tmp_path_factory):
    """A tiny pair teacher with the interaction head (random weights, real tokenizer)."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("teacher")
    model = build_student(StudentArchitecture(1, 48, 2, 64, 400), num_inputs=2, max_positions=130,
                          pooling="mean", pair_head="interaction")
    save_classifier(model, train_student_tokenizer(sample_functions(), 400), folder)
    return folder


@pytest.fixture(scope="module")
def soft_labels(teacher_folder, tmp_path_factory):
    return label(str(teacher_folder), tmp_path_factory.mktemp("labels") / "soft.safetensors", TASK, block_size=64,
                 batch_size=16)


def test_label_caches_each_unique_function_once(soft_labels, teacher_folder):
    labels = load_soft_labels(soft_labels)
    examples = TASK.read("unlabelled")
    unique = {code for e in examples for code in e.codes}
    functions = labels.functions
    assert functions is not None and sorted(functions.keys) == sorted(function_key(c) for c in unique)
    assert functions.vectors.dtype == torch.float16 and functions.vectors.shape == (len(unique), 48)
    assert labels.metadata["function_passes"] == str(len(unique)) and labels.metadata["example_passes"] == "96"
    assert len(unique) < 96  # BigCloneBench reuses functions across pairs: fewer teacher passes
    # the cached vectors through the teacher's own head give the stored logits (up to fp16 rounding)
    torch.testing.assert_close(functions.logits(example_rows(examples, functions)), labels.logits, atol=2e-3,
                               rtol=0)
    # and a pair never labelled is labelled as a direct forward of the teacher would
    teacher = TeacherPredictor(str(teacher_folder), block_size=64)
    a, b = examples[0].codes[0], examples[5].codes[1]
    with torch.no_grad():
        direct = teacher(teacher.collate([type(examples[0])("new", (a, b))]))
    rows = torch.tensor([[functions.rows()[function_key(a)], functions.rows()[function_key(b)]]])
    torch.testing.assert_close(functions.logits(rows), direct, atol=2e-3, rtol=0)
    with safe_open(str(soft_labels), framework="pt") as handle:
        assert json.loads(handle.metadata()["ids"]) == [e.id for e in examples]


def test_representation_loss_matches_hand_computation():
    projected = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    target = torch.tensor([[0.0, 1.0], [2.0, 2.0]])
    mse = ((1 - 0) ** 2 + (0 - 1) ** 2 + (1 - 2) ** 2 + (1 - 2) ** 2) / 4
    assert representation_loss(projected, target, "mse").item() == pytest.approx(mse)
    cosine = ((1 - 0.0) + (1 - 1.0)) / 2  # orthogonal, then parallel
    assert representation_loss(projected, target, "cosine").item() == pytest.approx(cosine)
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]]])
    assert masked_mean(hidden, torch.tensor([[1, 1, 0]])).tolist() == [[2.0, 3.0]]


def test_augmented_pairs_are_seeded_per_epoch_and_labelled_by_the_teacher_head(soft_labels):
    functions = load_soft_labels(soft_labels).functions
    settings = Augmentation(pairs_per_epoch=30, strategy="neighbours", neighbours=3, seed=5)
    neighbours = nearest_neighbours(functions.vectors, 3)
    unit = torch.nn.functional.normalize(functions.vectors.float(), dim=-1)
    similarity = unit @ unit.T
    similarity.fill_diagonal_(-2)
    assert torch.equal(neighbours[0], similarity[0].topk(3).indices)
    first, again = draw_pairs(settings, 0, len(functions.keys), neighbours), draw_pairs(settings, 0,
                                                                                          len(functions.keys),
                                                                                          neighbours)
    assert torch.equal(first, again) and not torch.equal(first, draw_pairs(settings, 1, len(functions.keys),
                                                                           neighbours))
    for a, b in first.tolist():  # one of the two is the anchor, the other among its 3 nearest
        assert b in neighbours[a].tolist() or a in neighbours[b].tolist()

    examples = TASK.read("unlabelled")
    codes = {function_key(c): c for e in examples for c in e.codes}
    pairs = EpochPairs(examples, functions, codes, settings)
    assert len(pairs) == len(examples) + 30 and pairs[0] is examples[0]
    extra = pairs[len(examples)]
    rows = functions.rows()
    expected = functions.logits(torch.tensor([[rows[function_key(c)] for c in extra.codes]]))[0]
    torch.testing.assert_close(pairs.targets[extra.id], expected)
    before = [pairs[i].id for i in range(len(examples), len(pairs))]
    pairs.set_epoch(1)
    assert [pairs[i].id for i in range(len(examples), len(pairs))] != before


def _fit(module, data, epochs, tmp_path, **trainer_args):
    trainer = L.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        num_sanity_val_steps=0, limit_val_batches=0, default_root_dir=tmp_path, **trainer_args)
    trainer.fit(module, datamodule=data)
    return trainer


def _set_up(data: DistillationDataModule) -> DistillationDataModule:
    """The data module as ``fit`` sets it up (tokenizer, soft labels, augmented datasets), without fitting."""
    data.setup("fit")
    return data


def test_representation_term_is_trained_and_stays_out_of_the_saved_student(soft_labels, tmp_path):
    torch.manual_seed(0)
    module, data = distillation(TINY, TASK, soft_labels, lr=3e-3,
                                representation=Representation(weight=1.0, distance="mse"),
                                augment=Augmentation(pairs_per_epoch=16, seed=1), tokenizer_cache=tmp_path / "tok",
                                output_dir=str(tmp_path / "student"))
    assert module.pooling == "mean" and module.pair_head == "interaction"  # the teacher's, from the file
    assert module.projection.in_features == 32 and module.projection.out_features == 48
    projection_before = module.projection.weight.detach().clone()
    trainer = _fit(module, data, 2, tmp_path)
    assert not torch.equal(module.projection.weight, projection_before)  # the projection learns
    logged = trainer.callback_metrics
    assert {"train/kd_loss", "train/representation_loss", "train/loss"} <= set(logged)
    assert logged["train/loss"].item() == pytest.approx(
        logged["train/kd_loss"].item() + logged["train/representation_loss"].item(), rel=1e-5)
    assert len(trainer.train_dataloader.dataset) == 48 + 16
    model, _, _ = load_classifier(tmp_path / "student")
    with safe_open(str(tmp_path / "student" / "model.safetensors"), framework="pt") as handle:
        assert not [k for k in handle.keys() if "projection" in k]
    built = build_student(TINY, num_inputs=2, family="roberta", max_positions=66, pooling="mean",
                          pair_head="interaction")
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in built.parameters())


def test_representation_term_equals_its_formula_on_a_batch(soft_labels, tmp_path):
    torch.manual_seed(0)
    module, data = distillation(TINY, TASK, soft_labels, representation=Representation(weight=0.5, distance="cosine"),
                                tokenizer_cache=tmp_path / "tok")
    examples = TASK.read("unlabelled")[:4]
    batch = _set_up(data).train_collate(examples)
    functions = load_soft_labels(soft_labels).functions
    rows = [functions.rows()[function_key(code)] for example in examples for code in example.codes]
    assert batch["target_known"].tolist() == [True] * 8  # the batch carries each function's cached vector
    assert torch.equal(batch["target_vectors"], functions.vectors[rows].float())
    torch.testing.assert_close(batch["target_logits"], load_soft_labels(soft_labels).logits[:4])
    module.eval()  # no dropout: the term and the formula see the same vectors
    _, terms = module._feature_losses(batch)
    weight, value = terms["representation"]
    with torch.no_grad():
        pooled = module.model.features(batch["input_ids"], batch["attention_mask"]).reshape(8, 32)
        target = functions.vectors[rows].float()
        cosines = torch.nn.functional.cosine_similarity(module.projection(pooled), target, dim=-1)
    assert weight == 0.5 and value.item() == pytest.approx(float((1 - cosines).mean()), rel=1e-5)


def test_hidden_state_matching_maps_layers_and_trains(teacher_folder, soft_labels, tmp_path):
    torch.manual_seed(0)
    module, data = distillation(TINY, TASK, soft_labels, teacher=str(teacher_folder),
                                hidden_states=HiddenStates(weight=1.0), tokenizer_cache=tmp_path / "tok")
    assert module.student_inputs.teacher == str(teacher_folder)  # batches carry the teacher's inputs
    trainer = _fit(module, data, 1, tmp_path)
    assert module.layer_map() == [1, 1]  # 2 student layers over 1 teacher layer
    assert trainer.callback_metrics["train/hidden_states_loss"].item() > 0
    assert len(module.layer_projections) == 2 and module.layer_projections[0].out_features == 48


def test_augment_and_representation_need_the_function_cache(tmp_path):
    from lit_compressor.core.errors import UserError
    from lit_compressor.labels.soft_labels import SoftLabels, save_soft_labels

    ids = [e.id for e in TASK.read("unlabelled")]
    path = save_soft_labels(tmp_path / "plain.safetensors", SoftLabels(ids, torch.zeros(len(ids), 2)))
    with pytest.raises(UserError, match="lacks"):
        DistillationModule(TINY, teacher_head=teacher_record(str(path)), representation=Representation(weight=1.0))
    single = TaskData(format="devign", data_dir=str(tmp_path))
    with pytest.raises(UserError, match="pair tasks"):
        DistillationDataModule(single, soft_labels=str(path), augment=Augmentation(pairs_per_epoch=4),
                               student=StudentInputs(400))
    with pytest.raises(UserError, match="function cache"):
        _set_up(DistillationDataModule(TASK, soft_labels=str(path), augment=Augmentation(pairs_per_epoch=4),
                                       tokenizer_cache=str(tmp_path / "tok"), student=StudentInputs(400)))
    with pytest.raises(UserError, match="needs a soft_labels file"):
        DistillationDataModule(TASK, student=StudentInputs(400))


def test_function_batches_of_a_single_function_task_train_on_every_cached_function(tmp_path):
    """A single-function task (Devign's layout): ``functions`` mode serves the unlabelled and labelled
    splits' functions, each a training example whose target is the teacher's head on its cached vector."""
    from lit_compressor.training.losses import distillation_loss

    codes = sample_functions(60)
    for split, part in {"label_train": codes[:20], "unlabel_train": codes[20:44], "valid": codes[44:52],
                        "test": codes[52:60]}.items():
        rows = [{"func": c, "idx": f"{split}{i}", "target": i % 2} for i, c in enumerate(part)]
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = TaskData(format="devign", data_dir=str(tmp_path))
    torch.manual_seed(0)
    teacher = tmp_path / "teacher"
    save_classifier(build_student(StudentArchitecture(1, 48, 2, 64, 400), num_inputs=1, max_positions=130,
                                  pooling="mean"), train_student_tokenizer(codes, 400), teacher)
    path = label(str(teacher), tmp_path / "soft.safetensors", task, block_size=64, functions_from=["labelled"])
    module, data = distillation(TINY, task, path, tokenizer_cache=tmp_path / "tok", batch_size=8,
                                augment=Augmentation(mode="functions", strategy="random", group_size=1))
    trainer = _fit(module, data, 1, tmp_path, max_steps=2)
    dataset = trainer.train_dataloader.dataset
    cached = len({function_key(c) for c in codes[:44]})  # the sample repeats some functions
    assert len(dataset) == cached and sorted(group.rows[0] for group in dataset.groups) == list(range(cached))

    batch = data.train_collate(dataset.groups[:5])
    assert batch["pair_index"].tolist() == [[0], [1], [2], [3], [4]]  # each function is one example
    module.eval()
    logits, _ = module._function_batch_losses(batch)
    targets = batch["target_logits"]
    with torch.no_grad():
        expected = module.model(batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(logits, expected)
    predictor = TeacherPredictor(str(teacher), block_size=64)
    by_key = {function_key(c): c for c in codes}
    examples = [Example(key, (by_key[key],)) for key in batch["ids"]]
    with torch.no_grad():
        direct = predictor(predictor.collate(examples))
    torch.testing.assert_close(targets, direct, atol=2e-3, rtol=0)
    assert distillation_loss(logits, targets).item() > 0


def test_function_batches_train_on_every_pair_of_their_functions(soft_labels, tmp_path):
    """``augment.mode: functions``: a batch encodes each function once; its loss is the KL over all its pairs."""
    from lit_compressor.training.augmentation import EpochFunctions, all_pairs
    from lit_compressor.training.losses import distillation_loss

    assert all_pairs(3).tolist() == [[0, 1], [0, 2], [1, 0], [1, 2], [2, 0], [2, 1]]
    torch.manual_seed(0)
    module, data = distillation(TINY, TASK, soft_labels, lr=3e-3, tokenizer_cache=tmp_path / "tok",
                                augment=Augmentation(mode="functions", group_size=3, neighbours=4, seed=2))
    trainer = _fit(module, data, 1, tmp_path)
    dataset = trainer.train_dataloader.dataset
    functions = data.labels.functions
    assert isinstance(dataset, EpochFunctions) and len(dataset) == len(functions.keys)  # every function an anchor
    anchors = sorted(group.rows[0] for group in dataset.groups)
    assert anchors == list(range(len(functions.keys)))
    for group in dataset.groups[:5]:  # the partners are among the anchor's 4 nearest
        assert set(group.rows[1:]) <= set(dataset.neighbours[group.rows[0]].tolist())

    batch = data.train_collate(dataset.groups[:4])
    rows = torch.tensor([functions.rows()[key] for key in batch["ids"]])
    assert len(rows) == len(set(rows.tolist())) <= 12 and len(batch["pair_index"]) == len(rows) * (len(rows) - 1)
    module.eval()
    logits, _ = module._function_batch_losses(batch)
    targets = batch["target_logits"]
    with torch.no_grad():
        pooled = module.model.features(batch["input_ids"], batch["attention_mask"]).reshape(len(rows), -1)
    first, second = batch["pair_index"][0].tolist()
    expected = module.model.head(torch.cat([pooled[first], pooled[second]])[None])[0]
    torch.testing.assert_close(logits[0], expected)
    torch.testing.assert_close(targets[0], functions.logits(rows[[first, second]][None])[0])
    assert distillation_loss(logits, targets).item() > 0


def test_under_ddp_each_rank_builds_the_same_epoch_and_takes_its_own_share(soft_labels):
    """Every rank draws the same pairs from (seed, epoch); the distributed sampler that the training loader gets
    under DDP passes Lightning's ``set_epoch`` on to the dataset and splits it."""
    from lit_compressor.training.augmentation import EpochFunctions
    from lit_compressor.training.datamodule import train_loader

    functions = load_soft_labels(soft_labels).functions
    examples = TASK.read("unlabelled")
    codes = {function_key(c): c for e in examples for c in e.codes}
    for make in (lambda: EpochPairs(examples, functions, codes, Augmentation(pairs_per_epoch=20, seed=3)),
                 lambda: EpochFunctions(functions, Augmentation(mode="functions", seed=3))):
        ranks = [make(), make()]  # one dataset per process
        samplers = [train_loader(data, 4, list, world=(2, rank)).sampler for rank, data in enumerate(ranks)]
        first = [str(ranks[0][i]) for i in range(len(ranks[0]))]
        for sampler in samplers:
            sampler.set_epoch(2)  # what Lightning calls when epoch 2 starts
        assert all(data.epoch == 2 for data in ranks)
        shares = [list(sampler) for sampler in samplers]
        assert not set(shares[0]) & set(shares[1]) and set(shares[0]) | set(shares[1]) == set(range(len(ranks[0])))
        assert [str(ranks[0][i]) for i in range(len(ranks[0]))] == [str(ranks[1][i]) for i in range(len(ranks[1]))]
        assert [str(ranks[0][i]) for i in range(len(ranks[0]))] != first  # epoch 2 drew anew


def test_function_cache_can_hold_the_labelled_split_functions_too(teacher_folder, tmp_path):
    task = TaskData(data_dir=str(SAMPLE), limit={"labelled": 10, "unlabelled": 12, "valid": 8})
    path = label(str(teacher_folder), tmp_path / "soft.safetensors", task, block_size=64,
                 functions_from=["labelled"])
    labels = load_soft_labels(path)
    unlabelled, labelled = task.read("unlabelled"), task.read("labelled")
    expected = {function_key(c) for e in unlabelled + labelled for c in e.codes}
    assert set(labels.functions.keys) == expected and labels.metadata["functions_from"] == "unlabelled,labelled"
    assert labels.ids == [e.id for e in unlabelled]  # soft labels only for the unlabelled split
    valid_only = {function_key(c) for e in task.read("valid") for c in e.codes} - expected
    assert len(valid_only) >= 8  # the valid split has functions of its own, and the cache (== expected) has none
    module, data = distillation(TINY, task, path, tokenizer_cache=tmp_path / "tok", batch_size=8,
                                augment=Augmentation(mode="functions", group_size=2))
    trainer = _fit(module, data, 1, tmp_path, max_steps=1)
    assert len(trainer.train_dataloader.dataset) == len(expected)  # every cached function is an anchor
