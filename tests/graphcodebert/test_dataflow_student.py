"""Data-flow students: distilled from a GraphCodeBERT teacher on real BigCloneBench pairs, they read code
sub-words plus data-flow nodes through their own BPE, are priced exactly by the search, and ship (folder,
TinyClassifier, ONNX within 1e-4, int8) with the inputs they were trained on."""

from __future__ import annotations

import json
import random

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from conftest import SAMPLE
from tiny_tasks import distillation
from torch.utils.flop_counter import FlopCounterMode

from lit_compressor.commands.export import export
from lit_compressor.commands.label import label
from lit_compressor.commands.search import run_search, with_teacher_head
from lit_compressor.core.errors import UserError
from lit_compressor.data.task import TaskData
from lit_compressor.graphcodebert.dataflow import extract_dataflow
from lit_compressor.graphcodebert.inputs import GraphCodeEncoder
from lit_compressor.graphcodebert.model import GraphCodeBERTClassifier
from lit_compressor.graphcodebert.student import DataFlow, DataFlowInputs, dataflow_inputs
from lit_compressor.labels.soft_labels import load_soft_labels, read_metadata
from lit_compressor.runtime.classifier import TinyClassifier
from lit_compressor.search.architecture import StudentArchitecture
from lit_compressor.search.cost import cost
from lit_compressor.search.space import Gene, SearchSpace
from lit_compressor.training.augmentation import Augmentation
from lit_compressor.training.bilstm import BiLSTMModule
from lit_compressor.training.distillation import DistillationModule, HiddenStates, Representation
from lit_compressor.training.distillation_data import teacher_record
from lit_compressor.training.labelling import TeacherPredictor
from lit_compressor.training.teacher import TeacherModule

BLOCK, FLOW = 64, 16
TINY = StudentArchitecture(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                           vocab_size=300)
TASK = TaskData(data_dir=str(SAMPLE), limit={"unlabelled": 48, "valid": 8, "test": 16})


# --- the cost model prices the module built ------------------------------------------------------------------

def _cases(count: int = 6):
    rng = random.Random(1)
    for i in range(count):
        heads = rng.choice([1, 2, 4])
        genome = (rng.randint(1, 3), heads * rng.randint(2, 6), heads, 32 * rng.randint(1, 3), rng.randint(270, 400))
        yield genome, ("roberta", "bert")[i % 2], 1 + (i // 2) % 2, ("concat", "interaction")[(i // 4) % 2]


@pytest.mark.parametrize(("genome", "family", "num_inputs", "pair_head"), list(_cases()))
def test_cost_is_exact_for_the_data_flow_student_built(genome, family, num_inputs, pair_head):
    space = SearchSpace(block_size=BLOCK, num_inputs=num_inputs, family=family, pair_head=pair_head, inputs="dataflow")
    inputs = DataFlowInputs("java", FLOW, BLOCK)
    model = inputs.build(space.architecture(genome), num_inputs, family, space.positions, 2, 0.1, "first",
                         pair_head).eval()
    assert isinstance(model, GraphCodeBERTClassifier)
    priced = cost(genome, space)
    assert priced.params == sum(p.numel() for p in model.parameters())

    model.encoder.set_attn_implementation("eager")  # CPU SDPA kernels are invisible to FlopCounterMode
    code = BLOCK - 20  # <s> code </s>, then 20 nodes: every position of the block is used
    positions = torch.tensor([*range(2, code + 2), *[0] * 20]).expand(1, num_inputs, BLOCK)
    ids = torch.randint(4, genome[4], (1, num_inputs, BLOCK))
    mask = torch.ones(1, num_inputs, BLOCK, BLOCK, dtype=torch.bool)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(ids, mask, positions)
    assert priced.flops == counter.get_total_flops()
    plain = cost(genome, SearchSpace(block_size=BLOCK, num_inputs=num_inputs, family=family, pair_head=pair_head))
    assert priced.flops - plain.flops == num_inputs * 2 * BLOCK * BLOCK * genome[1]  # the node means
    assert priced.params == plain.params


# --- which inputs a student reads ----------------------------------------------------------------------------

def test_inputs_follow_the_teacher_unless_set():
    teacher = {"inputs": "dataflow", "language": "java", "flow_length": "32"}  # soft-label metadata is text
    resolved = dataflow_inputs(None, None, teacher, 128)
    assert (resolved.language, resolved.flow_length, resolved.code_length) == ("java", 32, 96)
    assert dataflow_inputs("plain", None, teacher, 128) is None
    assert dataflow_inputs(None, None, {"inputs": "plain"}, 128) is None
    assert dataflow_inputs(None, None, {}, 128) is None
    explicit = dataflow_inputs("dataflow", {"language": "c", "flow_length": 8}, teacher, 128)
    assert (explicit.language, explicit.flow_length) == ("c", 8)
    with pytest.raises(UserError, match="language") as error:
        dataflow_inputs("dataflow", None, {"inputs": "plain"}, 128)
    assert "dataflow.language" in str(error.value.where)
    with pytest.raises(UserError, match="no room for code"):
        dataflow_inputs("dataflow", DataFlow(language="java", flow_length=126), {}, 128)
    with pytest.raises(UserError, match="unknown inputs"):
        dataflow_inputs("graph", None, {}, 128)


# --- distillation from a GraphCodeBERT teacher on real pairs ------------------------------------------------

@pytest.fixture(scope="module")
def teacher_folder(tiny_roberta, tmp_path_factory):
    """A tiny GraphCodeBERT-layout teacher (random weights) with the interaction head and mean pooling."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("gcb_teacher")
    module = TeacherModule(str(tiny_roberta), kind="graphcodebert", language="java", flow_length=FLOW,
                           pooling="mean", pair_head="interaction", block_size=BLOCK)
    module.save_model_folder(folder)
    return folder


@pytest.fixture(scope="module")
def soft_labels(teacher_folder, tmp_path_factory):
    return label(str(teacher_folder), tmp_path_factory.mktemp("labels") / "soft.safetensors", TASK,
                 block_size=BLOCK, batch_size=16)


@pytest.fixture(scope="module")
def student(soft_labels, tmp_path_factory):
    """A data-flow student distilled for one epoch: ``(module, its folder)``."""
    folder = tmp_path_factory.mktemp("student")
    torch.manual_seed(0)
    module, data = distillation(TINY, TASK, soft_labels, block_size=BLOCK, lr=3e-3, tokenizer_cache=folder / "tok",
                                output_dir=str(folder / "student"))
    _fit(module, data, 1, folder)
    return module, data, folder / "student"


def _fit(module, data, epochs, root, batches=None):
    trainer = L.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        num_sanity_val_steps=0, limit_val_batches=0, limit_train_batches=batches, default_root_dir=root)
    trainer.fit(module, datamodule=data)
    return trainer


def test_label_records_the_teacher_inputs_and_its_head_is_kept(soft_labels, teacher_folder):
    metadata = read_metadata(soft_labels)
    assert (metadata["inputs"], metadata["language"], metadata["flow_length"]) == ("dataflow", "java", str(FLOW))
    assert (metadata["pooling"], metadata["pair_head"]) == ("mean", "interaction")
    teacher = TeacherPredictor(str(teacher_folder), block_size=BLOCK)
    assert isinstance(teacher.model, GraphCodeBERTClassifier) and teacher.model.pair_head == "interaction"
    examples = TASK.read("unlabelled")[:6]
    with torch.no_grad():
        expected = teacher(teacher.collate(examples))
    torch.testing.assert_close(load_soft_labels(soft_labels).logits[:6], expected, rtol=1e-4, atol=1e-4)


def test_student_reads_data_flow_through_its_own_bpe(student):
    module, data, folder = student
    assert module.dataflow is not None and module.hparams["inputs"] == "dataflow"
    assert (module.pooling, module.pair_head) == ("mean", "interaction")  # the teacher's head, as for plain
    assert isinstance(module.model, GraphCodeBERTClassifier)
    code = TASK.read("unlabelled")[0].codes[0]
    assert module.dataflow.corpus([code]) == [" ".join(extract_dataflow(code, "java").tokens)]
    assert len(data.tokenizer) == TINY.vocab_size
    assert isinstance(data.encoder, GraphCodeEncoder)  # the data module encodes what the student reads
    batch = data.collate(TASK.read("unlabelled")[:3])
    length = batch["input_ids"].shape[-1]
    assert batch["attention_mask"].shape == (3, 2, length, length) and length <= BLOCK
    assert (batch["position_ids"] == 0).any()  # data-flow nodes
    # the nodes matter: without them (flow_length 1) the same weights give other logits
    module.eval()
    with torch.no_grad():
        with_nodes = module(batch)
        fewer = GraphCodeEncoder(data.tokenizer, BLOCK - 1, 1, "java")(TASK.read("unlabelled")[:3])
        without = module(fewer)
    assert (with_nodes - without).abs().max() > 1e-3

    config = json.loads((folder / "config.json").read_text())["lit_compressor"]
    assert {k: config[k] for k in ("kind", "inputs", "language", "flow_length", "block_size")} == {
        "kind": "graphcodebert", "inputs": "dataflow", "language": "java", "flow_length": FLOW, "block_size": BLOCK}
    assert config["layout_rules"]["tokens_alone"] is False  # GraphCodeBERT's layout, as its teacher's
    # a checkpoint's hyper-parameters rebuild the same student, whatever the soft-label file says later
    again = DistillationModule(**{**module.hparams, "teacher_head": None, "targets": "online", "teacher": str(folder)})
    assert again.dataflow.settings() == module.dataflow.settings() and isinstance(again.model, GraphCodeBERTClassifier)


def test_tiny_classifier_and_onnx_export_give_the_students_predictions(student, tmp_path):
    module, data, folder = student
    pairs = [e.codes for e in TASK.read("test")[:6]]
    module.eval()
    with torch.no_grad():
        expected = torch.softmax(module.model(**{k: v for k, v in data.encoder.encode_codes(pairs).items()}),
                                 -1).numpy()
    loaded = TinyClassifier.from_pretrained(folder)
    got = np.array([p.probabilities for p in loaded.predict_batch(pairs)])
    np.testing.assert_allclose(got, expected, atol=1e-5)

    report = export(folder, tmp_path / "export", data=str(SAMPLE), samples=24, full=True)
    assert report["inputs"] == "dataflow" and report["check_inputs"].startswith("24 test examples")
    assert max(report["onnx_max_abs_diff"].values()) < 1e-4
    onnx = TinyClassifier.from_pretrained(tmp_path / "export", backend="onnx")
    np.testing.assert_allclose(np.array([p.probabilities for p in onnx.predict_batch(pairs)]), expected, atol=1e-4)
    int8 = TinyClassifier.from_pretrained(tmp_path / "export", backend="onnx-int8")
    quantised = np.array([p.probabilities for p in int8.predict_batch(pairs)])
    assert np.abs(quantised - expected).max() < 0.1 and report["int8"]["agreement_with_fp32"] >= 0.9


def test_search_prices_the_teachers_inputs_and_distillation_checks_them(teacher_folder, soft_labels, tmp_path):
    space = SearchSpace(num_hidden_layers=Gene(1, 2), hidden_size=Gene(16, 32, 16), intermediate_size=Gene(32, 64, 32),
                        vocab_size=Gene(choices=[300]), num_attention_heads=Gene(choices=[2]), block_size=BLOCK)
    assert with_teacher_head(space, str(teacher_folder)).inputs == "dataflow"
    kwargs = dict(target_mb=0.1, population=4, generations=2, restarts=1, plot=False, resume=False)
    dataflow = run_search(with_teacher_head(space, str(teacher_folder)), output=tmp_path / "df", **kwargs)
    priced = yaml.safe_load((tmp_path / "df/architecture.yaml").read_text())["priced_for"]
    assert priced["inputs"] == "dataflow"
    head = teacher_record(str(soft_labels))
    module = DistillationModule(str(tmp_path / "df/architecture.yaml"), teacher_head=head, block_size=BLOCK)
    assert sum(p.numel() for p in module.model.parameters()) == priced["params"] == dataflow.cost.params

    plain_space = with_teacher_head(SearchSpace(**{**space.__dict__, "inputs": "plain"}), str(teacher_folder))
    assert plain_space.inputs == "plain"  # set in the space: kept
    run_search(plain_space, output=tmp_path / "plain", **kwargs)
    with pytest.raises(UserError, match="inputs: searched 'plain', built 'dataflow'"):
        DistillationModule(str(tmp_path / "plain/architecture.yaml"), teacher_head=head, block_size=BLOCK)
    plain = DistillationModule(str(tmp_path / "plain/architecture.yaml"), teacher_head=head, block_size=BLOCK,
                               inputs="plain")
    assert plain.dataflow is None and not isinstance(plain.model, GraphCodeBERTClassifier)
    bilstm = BiLSTMModule(target_mb=0.2, vocab_size=300, teacher_head=head, block_size=BLOCK)
    assert bilstm.dataflow is None and bilstm.student_inputs.dataflow is None


def test_online_targets_read_the_teachers_data_flow(teacher_folder, soft_labels, tmp_path):
    """An online data-flow teacher gets its own inputs: its logits are the soft labels it wrote, and its layer
    states (token means over code positions) are what hidden-state matching reads."""
    module, data = distillation(TINY, TASK, targets="online", teacher=str(teacher_folder), block_size=BLOCK,
                                hidden_states=HiddenStates(weight=1.0), tokenizer_cache=tmp_path / "tok")
    assert module.dataflow is not None  # the folder says data flow
    module.setup("fit")
    data.setup("fit")
    assert isinstance(data._teacher_encoder, GraphCodeEncoder)
    examples = TASK.read("unlabelled")[:4]

    batch = data.train_collate(examples)
    assert "target_logits" not in batch  # online: the teacher runs in the step
    torch.testing.assert_close(module.teacher_logits(batch), load_soft_labels(soft_labels).logits[:4], rtol=1e-4,
                               atol=1e-4)
    assert batch["teacher_attention_mask"].dim() == 4 and "teacher_position_ids" in batch
    _, terms = module._feature_losses(batch)
    weight, value = terms["hidden_states"]
    assert weight == 1.0 and value.item() > 0 and module.layer_map() == [1, 2]  # 2 student over 2 teacher layers


def test_representation_and_function_batches_train_a_data_flow_student(soft_labels, tmp_path):
    torch.manual_seed(0)
    module, data = distillation(TINY, TASK, soft_labels, block_size=BLOCK, lr=3e-3, batch_size=4,
                                representation=Representation(weight=1.0),
                                augment=Augmentation(mode="functions", group_size=3, neighbours=4, seed=2),
                                tokenizer_cache=tmp_path / "tok")
    trainer = _fit(module, data, 1, tmp_path, batches=2)
    logged = trainer.callback_metrics
    assert logged["train/representation_loss"].item() > 0 and torch.isfinite(logged["train/loss"])
    batch = data.train_collate(trainer.train_dataloader.dataset.groups[:2])
    assert "position_ids" in batch and batch["attention_mask"].dim() == 4
    module.eval()
    logits, _ = module._function_batch_losses(batch)
    with torch.no_grad():
        pooled = module.model.features(batch["input_ids"], batch["attention_mask"], batch["position_ids"])
    first, second = batch["pair_index"][0].tolist()
    pooled = pooled.reshape(len(batch["ids"]), -1)
    expected = module.model.head(torch.cat([pooled[first], pooled[second]])[None])[0]
    torch.testing.assert_close(logits[0], expected)


# --- the shipped config, end to end ---------------------------------------------------------------------------

def test_compress_graphcodebert_config_runs_teacher_to_benchmark(tiny_roberta, tmp_path):
    """configs/bigclonebench/compress_graphcodebert.yaml with a tiny random teacher on real sample pairs."""
    from lit_compressor.commands.cli import run_function_command
    from lit_compressor.core.configs import deep_merge, read_yaml

    shipped = read_yaml("configs/bigclonebench/compress_graphcodebert.yaml", "compress")
    assert shipped["teacher"]["model"]["init_args"]["kind"] == "graphcodebert" and "inputs" not in json.dumps(
        shipped["student"])  # the student copies its teacher's inputs
    config = deep_merge(shipped, {
        "task": {"limit": {"labelled": 24, "unlabelled": 32, "valid": 8, "test": 16}}, "block_size": BLOCK,
        "output": str(tmp_path / "run"), "trainer": {"accelerator": "cpu"},
        "teacher": {"model": {"init_args": {"model_name_or_path": str(tiny_roberta), "flow_length": FLOW, "lr": 1e-3}},
                    "trainer": {"max_epochs": 1}},
        "search": {"config": shipped["search"], "target_mb": 0.3, "generations": 10, "restarts": 1,
                   "space": {"vocab_size": {"choices": [1000]}}},
        "student": {"data": {"batch_size": 16}, "trainer": {"max_epochs": 1},
                    "model": {"init_args": {"dataflow": {"cache_dir": str(tmp_path / "graphs")}}}},
        "export": {"samples": 8}, "benchmark": {"samples": 2}})
    path = tmp_path / "compress.yaml"
    path.write_text(yaml.safe_dump(config))
    report = run_function_command("compress", ["--config", str(path)])
    run = tmp_path / "run"
    assert [s["name"] for s in report["stages"]] == ["teacher", "teacher_test", "label", "search", "student", "export",
                                                     "benchmark"]
    assert read_metadata(run / "soft_labels.safetensors")["inputs"] == "dataflow"
    priced = yaml.safe_load((run / "search/architecture.yaml").read_text())["priced_for"]
    assert priced["inputs"] == "dataflow" and priced["params"] == report["student"]["params"]
    student = json.loads((run / "student/config.json").read_text())["lit_compressor"]
    assert (student["kind"], student["flow_length"], student["block_size"]) == ("graphcodebert", FLOW, BLOCK)
    assert list((tmp_path / "graphs").glob("dataflow-java-*.json"))  # the student's graph cache
    exported = json.loads((run / "export/export.json").read_text())
    assert exported["inputs"] == "dataflow" and max(exported["onnx_max_abs_diff"].values()) < 1e-4
    assert (run / "export/shipped/model.int8.onnx").is_file()
    assert sum(report["student"]["prediction_counts"]) == 8  # shipped, on the whole toy test split
    assert "agreement" not in report and not (run / "robustness.json").exists()  # no robustness of data flow yet
    timing = {s["name"]: s for s in json.loads((run / "benchmark.json").read_text())["systems"]}
    assert set(timing) == {"student (pytorch)", "student (onnx-int8)", "teacher (pytorch)", "teacher (onnx-int8)"}
    # both sides timed on their data-flow inputs: code positions plus nodes, at most the block
    assert all(0 < n <= BLOCK for s in timing.values() for n in s["tokens_first_input"])
