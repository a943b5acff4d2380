"""Prediction flips of the sampled distillations: each unit's flip rate under Morph's two renamings."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_tasks import make_tiny_task, sampled_unit_fit

from lit_compressor.data.task import TaskData
from lit_compressor.measure import distillation
from lit_compressor.runtime.robustness import MORPH, transform_split
from lit_compressor.search.space import FloatGene, Gene, SearchSpace

SPACE = SearchSpace(num_hidden_layers=Gene(choices=[1]), hidden_size=Gene(choices=[32]),
                    num_attention_heads=Gene(choices=[2]), intermediate_size=Gene(choices=[64]),
                    vocab_size=Gene(choices=[300]), block_size=Gene(choices=[32]), lr=FloatGene([5e-3]), num_inputs=2)


def test_measure_flips_counts_changed_predictions_under_morphs_renamings(tmp_path):
    examples = TaskData(data_dir=str(make_tiny_task(tmp_path / "task", functions=14))).read("unlabelled")
    renamed = transform_split(examples, "java", MORPH, distillation.FLIP_SEED).examples
    seen = []

    def by_length(batch):  # a "model" that reads the names: the parity of the first function's length
        seen.append(batch)
        return np.array([len(e.codes[0]) % 2 for e in batch])

    record = distillation.measure_flips(by_length, examples, "java")
    assert seen == [examples, renamed]
    expected = sum(len(a.codes[0]) % 2 != len(b.codes[0]) % 2 for a, b in zip(examples, renamed, strict=True))
    assert 0 < expected < len(examples)  # the check can fail both ways
    assert record["flips"] == expected and record["flip_rate"] == pytest.approx(expected / len(examples))
    assert (record["flip_examples"], record["flip_transformation"]) == (len(examples), MORPH)
    assert distillation.measure_flips(lambda batch: np.array([e.label or 0 for e in batch]), examples,
                                      "java")["flips"] == 0  # blind to names: no flip


def test_a_tiny_distillations_result_has_its_flip_rate(tmp_path, monkeypatch):
    """A real one-epoch unit: its result.json's flip rate is the count over the two passes of its best weights."""
    task_dir, fit = sampled_unit_fit(tmp_path)
    passes = []
    original = distillation.module_predictor

    def recording(module, collate, batch_size):
        predict = original(module, collate, batch_size)

        def record(examples):
            predictions = predict(examples)
            passes.append((examples, predictions))
            return predictions

        return record

    monkeypatch.setattr(distillation, "module_predictor", recording)
    genome = (1, 32, 2, 64, 300, 32, 5e-3)
    [result] = distillation.distil([genome], SPACE, fit, epochs=1, train_batches=3, output=tmp_path / "out")
    [written] = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("samples/*/result.json")]
    assert written == result and result["genome"] == list(genome) and 0 <= result["accuracy"] <= 1
    valid = TaskData(data_dir=str(task_dir)).read("valid")
    [(clean_inputs, clean), (renamed_inputs, renamed)] = passes
    assert clean_inputs == valid and renamed_inputs == transform_split(valid, "java", MORPH, 0).examples
    assert renamed_inputs != clean_inputs  # the renamings did change the valid pairs
    assert result["flips"] == int((clean != renamed).sum())
    assert 0 <= result["flip_rate"] <= 1 and result["flip_rate"] == result["flips"] / len(valid) == \
        pytest.approx(float((clean != renamed).mean()))
    assert result["flip_examples"] == len(valid) == 8
    # the clean pass is the best weights' own: its accuracy is the unit's validation accuracy
    labels = np.array([e.label for e in valid])
    assert float((clean == labels).mean()) == pytest.approx(result["accuracy"])
    # a finished unit is read back, never run again
    passes.clear()
    assert distillation.distil([genome], SPACE, fit, epochs=1, train_batches=3, output=tmp_path / "out") == [result]
    assert passes == []
