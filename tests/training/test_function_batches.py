"""Function batches from a labelled pair graph: coverage, determinism, pair-forward logits, exact resume."""

from __future__ import annotations

import collections
import json
import signal

import pytest
import torch
from tiny_tasks import cli, distill_config, finish, make_soft_labels, make_tiny_task, student_state

from lit_compressor.core.errors import UserError
from lit_compressor.data.readers import Example
from lit_compressor.data.task import TaskData
from lit_compressor.training.datamodule import CodeDataModule
from lit_compressor.training.function_batches import (
    EpochFunctionBatches,
    FunctionBatches,
    PairGraph,
    cover,
    evaluation_batches,
)
from lit_compressor.training.seeding import epoch_generator
from lit_compressor.training.teacher import TeacherModule


def sample_pairs(sample_task, split: str = "labelled", limit: int = 400) -> list[Example]:
    sample_task.limit[split] = limit
    return sample_task.read(split)


def scored_in(graph: PairGraph, functions) -> set[int]:
    """Independently of the module: the example rows whose two functions are both in ``functions``."""
    members = set(functions)
    return {row for row, (a, b) in enumerate(graph.pairs) if a in members and b in members}


def test_an_epoch_scores_every_labelled_pair_and_each_batch_every_pair_among_its_functions(sample_task):
    examples = sample_pairs(sample_task)
    epochs = EpochFunctionBatches(examples, FunctionBatches(size=16, seed=3))
    graph = epochs.graph
    assert len(graph.pairs) == 400 and len(graph) == len({c for e in examples for c in e.codes})
    counts = set()
    for epoch in range(4):
        epochs.set_epoch(epoch)
        counts.add(len(epochs))
        batches = [epochs[i] for i in range(len(epochs))]
        assert all(1 < len(b.functions) <= 16 and len(set(b.functions)) == len(b.functions) for b in batches)
        for batch in batches:  # a batch scores exactly the pairs among its functions
            assert set(batch.pairs) == scored_in(graph, batch.functions)
        scored = collections.Counter(row for batch in batches for row in batch.pairs)
        assert set(scored) == set(range(400)), f"epoch {epoch}: pairs never scored"
        counts_now = epochs.epoch_counts()
        assert counts_now["pairs_scored"] == sum(scored.values()) >= 400
        assert counts_now["functions_encoded"] == sum(len(b.functions) for b in batches)
        # the point of it: fewer encodings than two a pair
        assert counts_now["functions_encoded"] < counts_now["pair_batch_encodings"]
    assert counts == {epochs.count}  # the same number of batches every epoch (Lightning's schedule needs it)


def test_a_cover_is_a_function_of_seed_and_epoch_alone(sample_task):
    examples = sample_pairs(sample_task)
    settings = FunctionBatches(size=16, seed=3)
    first, second = EpochFunctionBatches(examples, settings), EpochFunctionBatches(examples, settings)
    torch.manual_seed(0)
    second.set_epoch(2)
    torch.manual_seed(99)  # the global generator plays no part
    first.set_epoch(2)
    assert first.batches == second.batches
    first.set_epoch(1)
    assert first.batches != second.batches  # another epoch, another draw
    other = EpochFunctionBatches(examples, FunctionBatches(size=16, seed=4))
    other.set_epoch(2)
    assert other.batches != second.batches


def test_a_hub_function_spans_batches_and_pairs_with_itself_and_repeats_are_scored(sample_task):
    """Hand-made graph: function 0 in 9 pairs (more than a batch holds), a pair of a function with itself, a pair
    listed twice."""
    codes = [f"int f{i}() {{ return {i}; }}" for i in range(12)]
    pairs = [(0, i) for i in range(1, 10)] + [(10, 10), (10, 11), (11, 10), (10, 11)]
    examples = [Example(f"{a}-{b}#{n}", (codes[a], codes[b]), 1) for n, (a, b) in enumerate(pairs)]
    graph = PairGraph(examples)
    assert len(graph) == 12 and graph.pairs[9] == (10, 10)  # rows in first-seen order
    batches = cover(graph, 4, epoch_generator(0, 0))
    assert {row for b in batches for row in b.pairs} == set(range(len(pairs)))
    assert sum(0 in b.functions for b in batches) >= 3  # 9 partners, 3 beside it a batch
    with pytest.raises(UserError, match="at least 2"):
        cover(graph, 1, epoch_generator(0, 0))
    with pytest.raises(UserError, match="pair tasks"):
        PairGraph([Example("x", (codes[0],), 1)])


def test_evaluation_batches_score_each_pair_exactly_once(sample_task):
    examples = sample_pairs(sample_task, "test", 300)
    graph = PairGraph(examples)
    batches = evaluation_batches(graph, 32)
    scored = collections.Counter(row for batch in batches for row in batch.pairs)
    assert scored == collections.Counter(range(300))
    for batch in batches:
        needed = {f for row in batch.pairs for f in graph.pairs[row]}
        assert set(batch.functions) == needed and len(batch.functions) <= 32
    assert sum(len(b.functions) for b in batches) < 2 * 300


@pytest.fixture
def teacher_and_data(tiny_roberta, sample_task):
    torch.manual_seed(0)
    module = TeacherModule(str(tiny_roberta), num_inputs=2, block_size=64)
    sample_task.limit.update(labelled=120, valid=40)
    data = CodeDataModule(sample_task, block_size=64, encoder=module.code_encoder,
                          function_batches={"size": 12, "eval_size": 20})
    return module.eval(), data


def test_the_logits_of_each_scored_pair_are_the_models_own_pair_forward(teacher_and_data):
    module, data = teacher_and_data
    epochs = data.train_dataset()
    examples = data.split("labelled")
    checked = 0
    for index in range(3):
        batch = data.train_collate([epochs[index]])
        assert batch["input_ids"].shape[:2] == (len(epochs[index].functions), 1)
        with torch.no_grad():
            logits = module(batch)
        rows = epochs[index].pairs
        assert batch["ids"] == [examples[row].id for row in rows]
        assert batch["labels"].tolist() == [examples[row].label for row in rows]
        pair_batch = data.collate([examples[row] for row in rows])
        with torch.no_grad():
            expected = module(pair_batch)
        torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)
        checked += len(rows)
    assert checked >= 10
    # evaluation in function batches: every valid pair once, with the pair forward's logits
    loader = data.val_dataloader()
    seen, valid = [], {e.id: e for e in data.split("valid")}
    for batch in loader:
        with torch.no_grad():
            torch.testing.assert_close(module(batch), module(data.collate([valid[i] for i in batch["ids"]])),
                                       rtol=1e-5, atol=1e-5)
        seen += batch["ids"]
    assert sorted(seen) == sorted(valid)


def test_a_student_batch_carries_the_soft_labels_of_the_pairs_it_scores(tmp_path):
    from tiny_tasks import distillation

    from lit_compressor.labels.soft_labels import load_soft_labels
    from lit_compressor.search.architecture import StudentArchitecture

    task_dir = make_tiny_task(tmp_path / "data")
    soft = make_soft_labels(task_dir, tmp_path / "soft.safetensors")
    task = TaskData(data_dir=str(task_dir))
    module, data = distillation(StudentArchitecture(1, 16, 2, 32, 300), task, soft, tokenizer_cache=tmp_path / "tok")
    data.function_batches = FunctionBatches(size=5)
    data.setup("fit")
    labels = load_soft_labels(soft)
    epochs = data.train_dataset()
    assert isinstance(epochs, EpochFunctionBatches)
    for index in range(len(epochs)):
        batch = data.train_collate([epochs[index]])
        expected = torch.stack([labels.logits[labels.ids.index(i)] for i in batch["ids"]])
        assert torch.equal(batch["target_logits"], expected)
        assert len(batch["ids"]) == len(batch["pair_index"]) == len(epochs[index].pairs)
    with pytest.raises(UserError, match="function_batches and augment"):
        type(data)(task, soft_labels=str(soft), augment={"mode": "functions"}, student=module.student_inputs,
                   function_batches={"size": 5})


def teacher_config(run, task_dir, teacher, kill_at=None) -> str:
    """A tiny TeacherModule fit in function batches of 4 (16 labelled pairs of 12 functions), checkpointed every
    3 steps, with ExactResume (and a SIGKILL at step ``kill_at``)."""
    callbacks = [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                  "init_args": {"dirpath": str(run / "checkpoints"), "every_n_train_steps": 3, "save_last": True}},
                 {"class_path": "lit_compressor.training.resume.ExactResume"}]
    if kill_at is not None:
        callbacks.append({"class_path": "tiny_tasks.KillAtStep", "init_args": {"step": kill_at}})
    config = {
        "seed_everything": 7,
        "model": {"class_path": "lit_compressor.training.teacher.TeacherModule", "init_args": {
            "model_name_or_path": str(teacher), "lr": 1e-3, "output_dir": str(run / "teacher")}},
        "data": {"task": {"format": "bigclonebench", "data_dir": str(task_dir)}, "block_size": 48,
                 "eval_batch_size": 8, "function_batches": {"size": 4, "eval_size": 6}},
        "trainer": {"max_epochs": 2, "accelerator": "cpu", "devices": 1, "logger": False,
                    "enable_progress_bar": False, "enable_model_summary": False,
                    "default_root_dir": str(run), "callbacks": callbacks},
    }
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps(config, indent=1))
    return str(run / "config.json")


@pytest.mark.parametrize("who", ["teacher", "student"])
def test_a_sigkilled_fit_in_function_batches_resumes_to_identical_weights(who, tiny_roberta, tmp_path):
    task_dir = make_tiny_task(tmp_path / "data")
    split = "labelled" if who == "teacher" else "unlabelled"
    size = 4 if who == "teacher" else 3
    steps = EpochFunctionBatches(TaskData(data_dir=str(task_dir)).read(split), FunctionBatches(size=size)).count
    assert steps >= 4
    kill_at = steps + 2 if (steps + 2) % 3 else steps + 1  # mid epoch 1, between two checkpoints
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    if who == "teacher":
        configs = [teacher_config(reference, task_dir, tiny_roberta),
                   teacher_config(killed, task_dir, tiny_roberta, kill_at)]
    else:
        soft = make_soft_labels(task_dir, tmp_path / "soft.safetensors")
        configs = [str(distill_config(run, task_dir, soft, kill, every_n_steps=3, function_batches={"size": size}))
                   for run, kill in ((reference, None), (killed, kill_at))]
    runs = [cli("fit", "--config", config) for config in configs]
    (code_reference, err_reference), (code_killed, err_killed) = [finish(p) for p in runs]
    assert code_reference == 0, err_reference[-3000:]
    assert code_killed == -signal.SIGKILL, err_killed[-3000:]
    resume = (teacher_config(killed, task_dir, tiny_roberta) if who == "teacher"  # the same run, not killed
              else str(distill_config(killed, task_dir, soft, every_n_steps=3, function_batches={"size": size})))
    code, err = finish(cli("fit", "--config", resume, "--ckpt_path", "last"))
    assert code == 0, err[-3000:]
    if who == "teacher":
        from safetensors.torch import load_file

        expected, resumed = (load_file(run / "teacher" / "model.safetensors") for run in (reference, killed))
    else:
        expected, resumed = student_state(reference), student_state(killed)
    assert expected.keys() == resumed.keys()
    for name, tensor in expected.items():
        assert tensor.equal(resumed[name]), name
    metrics = [json.loads((run / who / "metrics.json").read_text()) for run in (reference, killed)]
    assert metrics[0] == metrics[1]
