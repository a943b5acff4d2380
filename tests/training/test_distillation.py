"""Distillation: loss values, student size, frozen teacher, learning from soft labels, HF folders,
and the import of Compressor research-code checkpoints."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from conftest import SAMPLE, sample_functions
from tiny_tasks import distillation
from torch import nn
from transformers import AutoModelForSequenceClassification, RobertaModel

from lit_compressor.commands.import_compressor import import_compressor
from lit_compressor.data.task import TaskData
from lit_compressor.labels.soft_labels import SoftLabels, save_soft_labels
from lit_compressor.nn.folders import load_classifier, save_classifier
from lit_compressor.nn.student import build_student, student_config
from lit_compressor.nn.tokenization import CodeEncoder, train_student_tokenizer
from lit_compressor.search.architecture import StudentArchitecture
from lit_compressor.search.cost import cost
from lit_compressor.search.space import SearchSpace, genome_of
from lit_compressor.training.distillation import DistillationModule
from lit_compressor.training.losses import distillation_loss, mixed_loss
from lit_compressor.training.teacher import TeacherModule

TINY = StudentArchitecture(num_hidden_layers=1, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                           vocab_size=400)


def test_kl_loss_equals_hand_computed_value():
    student = torch.tensor([[1.0, 2.0], [0.5, -0.5]])
    teacher = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    for temperature in (1.0, 4.0):
        total = 0.0
        for s_row, t_row in zip(student.tolist(), teacher.tolist(), strict=True):
            t = [math.exp(v / temperature) for v in t_row]
            s = [math.exp(v / temperature) for v in s_row]
            p = [v / sum(t) for v in t]
            q = [v / sum(s) for v in s]
            total += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
        expected = total / 2 * temperature**2
        assert distillation_loss(student, teacher, temperature).item() == pytest.approx(expected, rel=1e-5)
    labels = torch.tensor([1, -1])
    ce = torch.nn.functional.cross_entropy(student[:1], labels[:1])
    mixed = mixed_loss(student, teacher, labels, 1.0, alpha=0.25)
    assert mixed.item() == pytest.approx(0.75 * distillation_loss(student, teacher).item() + 0.25 * ce.item())


@pytest.mark.parametrize("family,num_inputs", [("roberta", 2), ("bert", 1)])
def test_student_size_equals_cost_model(family, num_inputs):
    architecture = StudentArchitecture(12, 96, 8, 64, 1000)
    module = DistillationModule(architecture, family=family, num_inputs=num_inputs, block_size=400)
    space = SearchSpace(block_size=400, num_inputs=num_inputs, family=family)
    predicted = cost(genome_of(architecture), space)
    assert sum(p.numel() for p in module.model.parameters()) == predicted.params
    assert predicted.size_mb == pytest.approx(3.0, abs=0.05)


def _fit(module: L.LightningModule, data: L.LightningDataModule, epochs: int, tmp_path) -> L.Trainer:
    trainer = L.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        num_sanity_val_steps=0, limit_val_batches=0, default_root_dir=tmp_path)
    trainer.fit(module, datamodule=data)
    return trainer


def test_student_learns_from_a_teacher_that_always_answers_one(tmp_path):
    task = TaskData(data_dir=str(SAMPLE), limit={"unlabelled": 64, "valid": 32, "test": 64})
    ids = [e.id for e in task.read("unlabelled")]
    always_one = torch.tensor([[-4.0, 4.0]]).repeat(len(ids), 1)
    save_soft_labels(tmp_path / "soft.safetensors", SoftLabels(ids, always_one))
    torch.manual_seed(0)
    module, data = distillation(TINY, task, tmp_path / "soft.safetensors", lr=3e-3, tokenizer_cache=tmp_path / "tok",
                                output_dir=str(tmp_path / "student"))
    trainer = _fit(module, data, 4, tmp_path)
    module.eval()
    test = task.read("test")
    with torch.no_grad():
        probabilities = module(data.collate(test)).softmax(-1)[:, 1]
    assert (probabilities > 0.9).all()
    trainer.test(module, datamodule=trainer.datamodule)
    # The HF folder round-trips and the tokenizer has exactly V tokens.
    model, tokenizer, metadata = load_classifier(tmp_path / "student")
    assert len(tokenizer) == TINY.vocab_size and metadata["architecture"] == TINY.to_dict()
    batch = CodeEncoder(tokenizer, 64)(test[:8])
    with torch.no_grad():
        torch.testing.assert_close(model(batch["input_ids"], batch["attention_mask"]),
                                   module.model(batch["input_ids"], batch["attention_mask"]))
    metrics = (tmp_path / "student" / "metrics.json").read_text()
    assert '"size_mb"' in metrics and '"params"' in metrics


def test_online_teacher_stays_frozen_and_out_of_checkpoints(tiny_roberta, tmp_path):
    teacher = TeacherModule(str(tiny_roberta), num_inputs=2, block_size=64)
    teacher.save_model_folder(tmp_path / "teacher")
    frozen_before = {k: v.clone() for k, v in load_classifier(tmp_path / "teacher")[0].state_dict().items()}
    task = TaskData(data_dir=str(SAMPLE), limit={"unlabelled": 32, "valid": 16})
    module, data = distillation(TINY, task, targets="online", teacher=str(tmp_path / "teacher"), lr=3e-3,
                                tokenizer_cache=tmp_path / "tok")
    trainer = _fit(module, data, 1, tmp_path)
    assert module.teacher is not None and not module.teacher.training
    for key, value in module.teacher.state_dict().items():
        assert torch.equal(value, frozen_before[key]), key
    assert all(not p.requires_grad for p in module.teacher.parameters())
    trainer.save_checkpoint(tmp_path / "student.ckpt")
    saved = torch.load(tmp_path / "student.ckpt", weights_only=True)["state_dict"]
    assert saved and not [k for k in saved if k.startswith("teacher.")]


def test_single_input_student_loads_with_auto_model(tmp_path):
    torch.manual_seed(0)
    model = build_student(TINY, num_inputs=1, family="roberta", max_positions=130).eval()
    tokenizer = train_student_tokenizer(sample_functions(), TINY.vocab_size)
    save_classifier(model, tokenizer, tmp_path)
    hf = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    ids = torch.randint(4, 400, (3, 20))
    with torch.no_grad():
        torch.testing.assert_close(hf(input_ids=ids).logits, model(ids, torch.ones_like(ids)))


class CompressorCloneModel(nn.Module):
    """The Compressor research code's clone detector, as its checkpoints are laid out."""

    def __init__(self, encoder: RobertaModel, hidden: int, block: int = 400):
        super().__init__()
        self.encoder, self.block = encoder, block
        self.classifier = nn.Module()
        self.classifier.dense = nn.Linear(2 * hidden, hidden)
        self.classifier.out_proj = nn.Linear(hidden, 2)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        ids = input_ids.view(-1, self.block)
        vectors = self.encoder(ids, attention_mask=ids.ne(1))[0][:, 0].reshape(-1, 2 * self.encoder.config.hidden_size)
        return self.classifier.out_proj(torch.tanh(self.classifier.dense(vectors)))


def _compressor_inputs(tokenizer, codes: list[str], block: int = 400) -> torch.Tensor:
    rows = []
    for code in codes:
        ids = tokenizer(" ".join(code.split()), truncation=True, max_length=block)["input_ids"]
        rows.append(ids + [1] * (block - len(ids)))
    return torch.tensor(rows)


@pytest.mark.parametrize("layout", ["clone", "vulnerability"])
def test_compressor_checkpoint_import_gives_the_same_logits(layout, tmp_path):
    torch.manual_seed(0)
    architecture = StudentArchitecture(2, 48, 4, 64, 400)
    config = student_config(architecture, "roberta", max_positions=514)
    config.layer_norm_eps = 1e-5  # Compressor built its students from CodeBERT's config
    tokenizer = train_student_tokenizer(sample_functions(), 400)
    tokenizer.backend_tokenizer.save(str(tmp_path / "tokenizer.json"))
    codes = sample_functions(8)
    if layout == "clone":
        original = CompressorCloneModel(RobertaModel(config), 48).eval()
        inputs = _compressor_inputs(tokenizer, codes).view(4, 800)
        with torch.no_grad():
            expected = original(inputs).softmax(-1)
    else:
        from transformers import RobertaForSequenceClassification

        config.num_labels = 2
        original = nn.Module()
        original.encoder = RobertaForSequenceClassification(config).eval()
        inputs = _compressor_inputs(tokenizer, codes)
        with torch.no_grad():
            expected = original.encoder(inputs, attention_mask=inputs.ne(1)).logits.softmax(-1).flip(-1)
    torch.save(original.state_dict(), tmp_path / "model.bin")

    folder = import_compressor(tmp_path / "model.bin", tmp_path / "tokenizer.json", tmp_path / "imported",
                               *architecture.to_dict().values(), inputs="plain" if layout == "vulnerability" else None)
    model, imported_tokenizer, metadata = load_classifier(folder)
    batch = CodeEncoder(imported_tokenizer, 400).encode_codes(
        [codes[i:i + 2] for i in range(0, 8, 2)] if layout == "clone" else [[c] for c in codes])
    with torch.no_grad():
        got = model(batch["input_ids"], batch["attention_mask"]).softmax(-1)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert metadata["num_inputs"] == (2 if layout == "clone" else 1)


def test_mean_pooling_student_round_trips_and_is_not_mistaken_for_an_hf_classifier(tmp_path):
    torch.manual_seed(0)
    model = build_student(TINY, num_inputs=1, family="bert", max_positions=130, pooling="mean").eval()
    save_classifier(model, train_student_tokenizer(sample_functions(), TINY.vocab_size), tmp_path)
    loaded, _, metadata = load_classifier(tmp_path)
    ids = torch.randint(4, 400, (3, 1, 20))
    mask = torch.ones_like(ids)
    mask[0, 0, 10:] = 0  # padding must not count in the mean
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids, mask), model(ids, mask))
        changed = ids.clone()
        changed[0, 0, 10:] = 7
        torch.testing.assert_close(model(changed, mask)[0], model(ids, mask)[0])
    assert metadata["pooling"] == "mean" and loaded.pooling == "mean"
    assert "ForSequenceClassification" not in (tmp_path / "config.json").read_text()


def test_interaction_pair_head_reads_u_v_difference_and_product(tmp_path):
    torch.manual_seed(0)
    model = build_student(TINY, num_inputs=2, max_positions=130, pair_head="interaction").eval()
    assert model.classifier.dense.in_features == 4 * TINY.hidden_size
    u, v = torch.randn(3, TINY.hidden_size), torch.randn(3, TINY.hidden_size)
    with torch.no_grad():
        expected = model.classifier(torch.cat([u, v, (u - v).abs(), u * v], dim=-1))
        torch.testing.assert_close(model.head(torch.cat([u, v], dim=-1)), expected)
    save_classifier(model, train_student_tokenizer(sample_functions(), TINY.vocab_size), tmp_path)
    loaded, _, metadata = load_classifier(tmp_path)
    ids = torch.randint(4, 400, (2, 2, 16))
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids, torch.ones_like(ids)), model(ids, torch.ones_like(ids)))
    assert metadata["pair_head"] == "interaction"
