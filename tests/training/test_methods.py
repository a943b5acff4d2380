"""BERT-of-Theseus, Ladder Side-Tuning and BiLSTM-soft on tiny random teachers and the real sample."""

from __future__ import annotations

import copy

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from conftest import make_tiny_teacher, sample_functions
from tiny_tasks import distillation
from transformers import AutoModel, PreTrainedModel

from lit_compressor.core.errors import UserError
from lit_compressor.labels.soft_labels import SoftLabels, save_soft_labels
from lit_compressor.nn.classifier import CodeClassifier
from lit_compressor.nn.folders import load_classifier, load_pretrained_encoder, save_classifier
from lit_compressor.training.base import model_inputs
from lit_compressor.training.bilstm import BiLSTMClassifier, BiLSTMModule, BiLSTMShape, solve_shape
from lit_compressor.training.datamodule import CodeDataModule
from lit_compressor.training.ladder import LadderSideModule, peak_training_memory_mb
from lit_compressor.training.losses import distillation_loss
from lit_compressor.training.theseus import ReplacementSchedule, TheseusModule, module_bounds


def trainer(epochs: int, **kwargs) -> L.Trainer:
    return L.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=1, **kwargs)


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def batch_loss(module, batch) -> float:
    module.eval()
    with torch.no_grad():
        return float(F.cross_entropy(module(batch), batch["labels"]))


@pytest.fixture(scope="module")
def teacher_folder(tmp_path_factory):
    """A 'fine-tuned' (random) 4-layer RoBERTa pair classifier saved as a classifier folder."""
    root = tmp_path_factory.mktemp("theseus_teacher")
    encoder, tokenizer = load_pretrained_encoder(str(make_tiny_teacher(root / "encoder", "roberta", layers=4)))
    torch.manual_seed(0)
    return save_classifier(CodeClassifier(encoder, num_inputs=2, num_labels=2), tokenizer, root / "teacher")


@pytest.fixture
def labelled16(sample_task):
    """16 labelled pairs, batched by a module's own encoder (as LitCompressorCLI pairs them)."""
    sample_task.limit["labelled"] = 16
    return lambda module: CodeDataModule(sample_task, batch_size=4, block_size=64, encoder=module.code_encoder)


# --- BERT-of-Theseus --------------------------------------------------------------------------------
def test_replacement_schedules_are_exact():
    constant = ReplacementSchedule("constant", 0.5)
    assert [constant(t) for t in (0, 1, 10, 10**6)] == [0.5, 0.5, 0.5, 0.5]
    linear = ReplacementSchedule("linear", 0.5, slope=0.125)
    assert [linear(t) for t in range(6)] + [linear(1000)] == [0.5, 0.625, 0.75, 0.875, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError):
        ReplacementSchedule("constant", 0.0)
    assert module_bounds(12, 6) == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10), (10, 12)]
    assert module_bounds(5, 2) == [(0, 2), (2, 5)]


def test_theseus_samples_modules_with_the_scheduled_probability(teacher_folder):
    module = TheseusModule(str(teacher_folder), successor_layers=2, block_size=64)
    successors, predecessor = list(module.successors), list(module.predecessor)
    assert module.sample_layers(1.0) == successors
    torch.manual_seed(0)
    draws = [module.sample_layers(0.25) for _ in range(2000)]
    replaced = sum(layers[0] is successors[0] for layers in draws) / len(draws)
    assert replaced == pytest.approx(0.25, abs=0.03)
    assert all(layers[-1] in (successors[1], predecessor[3]) for layers in draws)


def test_theseus_fit_keeps_the_predecessor_and_exports_a_real_k_layer_model(teacher_folder, labelled16, tmp_path):
    torch.manual_seed(0)
    module = TheseusModule(str(teacher_folder), successor_layers=2, replacing_rate=0.5, scheduler="linear",
                           replacement_epochs=3, finetune_patience=100, block_size=64, lr=3e-3, warmup_ratio=0.0,
                           output_dir=str(tmp_path / "successor"))
    teacher, _, _ = load_classifier(teacher_folder)
    assert same(snapshot(module.predecessor), snapshot(teacher.encoder.encoder.layer))
    predecessor, frozen = snapshot(module.predecessor), snapshot(module.model.encoder.embeddings)
    head = snapshot(module.model.classifier)
    data = labelled16(module)
    batch = module.collate(data.split("labelled"))
    before = batch_loss(module, batch)
    seen: dict[str, object] = {}

    class Probe(L.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            if trainer.current_epoch == 2:  # end of the replacement phase
                seen["embeddings"] = snapshot(pl_module.model.encoder.embeddings)
                seen["head"] = snapshot(pl_module.model.classifier)
                seen["schedule"] = pl_module.schedule()

    trainer(6, callbacks=[Probe()]).fit(module, datamodule=data)
    assert same(snapshot(module.predecessor), predecessor)
    assert same(seen["embeddings"], frozen) and same(seen["head"], head)  # the paper trains only successors
    assert seen["schedule"] == ReplacementSchedule("linear", 0.5, slope=0.5 / 12)  # p = 1 after 3 epochs x 4
    assert not same(snapshot(module.model.encoder.embeddings), frozen)  # phase 2 fine-tunes everything
    assert batch_loss(module, batch) < before

    encoder = module.model.encoder
    assert isinstance(encoder, PreTrainedModel) and encoder.config.num_hidden_layers == 2
    assert len(encoder.encoder.layer) == 2
    loaded, _, metadata = load_classifier(tmp_path / "successor")
    module.model.eval()
    inputs = model_inputs(batch)
    with torch.no_grad():
        assert torch.equal(loaded(**inputs), module.model(**inputs))
    assert metadata["successor_layers"] == 2
    assert AutoModel.from_pretrained(tmp_path / "successor").config.num_hidden_layers == 2


class ConstantScore(TheseusModule):
    """Theseus whose monitored score never improves."""

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self.log("val/constant", 0.5)


def test_theseus_stops_early_counting_the_fine_tuning_validations_only(teacher_folder, labelled16):
    """Lightning's EarlyStopping with patience 1: the 3 replacement epochs' flat scores are not counted; the first
    fine-tuning validation sets the best, the second does not beat it, and fit stops there (5 epochs of 20)."""
    from lightning.pytorch.callbacks import EarlyStopping

    module = ConstantScore(str(teacher_folder), successor_layers=2, replacement_epochs=3, finetune_patience=1,
                           monitor="val/constant", block_size=64)
    fit = trainer(20)
    fit.fit(module, datamodule=labelled16(module))
    stop = next(c for c in fit.callbacks if isinstance(c, EarlyStopping))
    assert fit.current_epoch == 5 and stop.stopped_epoch == 4 and stop.wait_count == 1
    assert float(stop.best_score) == 0.5


# --- Ladder Side-Tuning -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wide_backbone(tmp_path_factory):
    """A random 4-layer BERT-like RoBERTa of width 64, wide enough that activations dominate memory."""
    from transformers import RobertaConfig

    from lit_compressor.nn.tokenization import train_student_tokenizer

    folder = tmp_path_factory.mktemp("wide")
    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=400, hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
                           intermediate_size=256, max_position_embeddings=130, pad_token_id=1, type_vocab_size=1)
    AutoModel.from_config(config).save_pretrained(folder)
    train_student_tokenizer(sample_functions(), 400).save_pretrained(folder)
    return folder


def test_ladder_gradient_never_reaches_the_backbone_and_uses_less_memory(wide_backbone, labelled16):
    torch.manual_seed(0)
    module = LadderSideModule(str(wide_backbone), reduction=8, block_size=64)
    batch = module.collate(labelled16(module).split("labelled"))
    inputs, labels = model_inputs(batch), batch["labels"]
    module.train()
    assert not module.model.backbone.training
    F.cross_entropy(module(batch), labels).backward()
    assert all(p.grad is None for p in module.model.backbone.parameters())
    assert all(p.grad is not None for p in module.model.side_parameters())

    full = CodeClassifier(copy.deepcopy(module.model.backbone).requires_grad_(True), 2, 2).train()
    side_mb = peak_training_memory_mb(module.model, inputs, labels)
    full_mb = peak_training_memory_mb(full, inputs, labels)
    print(f"peak training memory: ladder {side_mb:.1f} MB, full fine-tuning {full_mb:.1f} MB")
    assert 0 < side_mb < 0.5 * full_mb, (side_mb, full_mb)
    sizes = module.size_mb()
    assert sizes["side_mb"] < 0.1 * sizes["total_mb"]


def test_ladder_fit_keeps_the_backbone_lowers_the_loss_and_round_trips(tiny_roberta, labelled16, tmp_path):
    torch.manual_seed(0)
    module = LadderSideModule(str(tiny_roberta), reduction=4, block_size=64, lr=1e-2, warmup_ratio=0.0,
                              output_dir=str(tmp_path / "lst"))
    backbone = snapshot(module.model.backbone)
    data = labelled16(module)
    batch = module.collate(data.split("labelled"))
    before = batch_loss(module, batch)
    trainer(8, check_val_every_n_epoch=8).fit(module, datamodule=data)
    assert same(snapshot(module.model.backbone), backbone)
    assert batch_loss(module, batch) < before
    network, _, metadata = LadderSideModule.load_folder(tmp_path / "lst")
    inputs = model_inputs(batch)
    with torch.no_grad():
        assert torch.equal(network(**inputs), module.model.eval()(**inputs))
    assert metadata["reduction"] == 4


# --- BiLSTM-soft ------------------------------------------------------------------------------------
@pytest.mark.parametrize("target_mb, num_inputs", [(3.0, 2), (3.0, 1), (1.0, 2), (25.0, 2)])
def test_bilstm_size_is_exact_and_near_the_target(target_mb, num_inputs):
    shape = solve_shape(target_mb, vocab_size=1000, embedding_dim=128, num_inputs=num_inputs)
    model = BiLSTMClassifier(shape, num_inputs=num_inputs)
    params = sum(p.numel() for p in model.parameters())
    assert params == shape.params(num_inputs)
    assert abs(params * 4 / 1e6 - target_mb) <= 0.05 * target_mb
    with pytest.raises(UserError, match="cannot hold"):
        solve_shape(0.5, vocab_size=1000, embedding_dim=128)
    assert BiLSTMShape(1000, 128, 64).params(2) == sum(
        p.numel() for p in BiLSTMClassifier(BiLSTMShape(1000, 128, 64), 2).parameters())


def test_bilstm_distills_soft_labels_and_round_trips(sample_task, tmp_path):
    sample_task.limit["unlabelled"] = 16
    examples = sample_task.read("unlabelled")
    torch.manual_seed(0)
    logits = torch.randn(len(examples), 2) * 3
    save_soft_labels(tmp_path / "soft.safetensors", SoftLabels([e.id for e in examples], logits))
    module, data = distillation(None, sample_task, tmp_path / "soft.safetensors", kind=BiLSTMModule, target_mb=0.3,
                                vocab_size=300, embedding_dim=32, tokenizer_cache=tmp_path / "tok", batch_size=4,
                                lr=1e-2, warmup_ratio=0.0, output_dir=str(tmp_path / "bilstm"))
    initial = copy.deepcopy(module.model).eval()
    trainer(12, check_val_every_n_epoch=12).fit(module, datamodule=data)
    batch = data.collate(examples)  # the data module's tokenizer exists once fit has set it up
    module.eval()
    with torch.no_grad():
        after = float(distillation_loss(module(batch), logits))
        before = float(distillation_loss(initial(**model_inputs(batch)), logits))
    assert after < before
    model, _, metadata = BiLSTMModule.load_folder(tmp_path / "bilstm")
    with torch.no_grad():
        assert torch.equal(model(**model_inputs(batch)), module.model(**model_inputs(batch)))
    assert metadata["shape"]["vocab_size"] == 300
