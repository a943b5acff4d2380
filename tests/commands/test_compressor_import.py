"""Import of Compressor research-code students: key layouts, clear errors, and the released GraphCodeBERT
3 MB students on real BigCloneBench / Devign inputs (skipped when ../shared is absent)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA, sample_functions
from tokenizers import Tokenizer
from torch import nn
from toy_dataflow import TOY, word_level_tokenizer
from transformers import RobertaConfig, RobertaForSequenceClassification, RobertaModel

from lit_compressor.commands.cli import main
from lit_compressor.commands.import_compressor import detect_layout, import_compressor
from lit_compressor.core.errors import UserError
from lit_compressor.core.metadata import read_metadata
from lit_compressor.graphcodebert.dataflow import DataFlowGraph
from lit_compressor.graphcodebert.inputs import (
    COMPRESSOR_CLONE,
    COMPRESSOR_VULNERABILITY,
    LayoutRules,
    build_graph_input,
    graph_attention_mask,
)
from lit_compressor.nn.tokenization import train_student_tokenizer
from lit_compressor.runtime.classifier import TinyClassifier

RELEASE = SHARED_DATA.parent / "compressor-release"
CLONE_BIN = RELEASE / "GraphCodeBERT_clone_detection_3MB.bin"
CLONE_BPE = RELEASE / "clone_detection_BPE_1000.json"
VULN_BIN = RELEASE / "GraphCodeBERT_vulnerability_prediction_3MB.bin"
VULN_BPE = RELEASE / "vulnerability_prediction_BPE_1000.json"
TINY = {"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64,
        "vocab_size": 400}


def research_config(vocab_size: int = 400, hidden: int = 32, layers: int = 1, heads: int = 2,
                    intermediate: int = 64) -> RobertaConfig:
    """The research code's student config: GraphCodeBERT's / CodeBERT's (layer-norm epsilon 1e-5)."""
    return RobertaConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                         num_attention_heads=heads, intermediate_size=intermediate, max_position_embeddings=514,
                         type_vocab_size=1, pad_token_id=1, layer_norm_eps=1e-5, num_labels=2)


def research_state(layout: str, config: RobertaConfig) -> dict[str, torch.Tensor]:
    """A state dict with the keys ``torch.save(model.state_dict())`` wrote in the research code."""
    torch.manual_seed(0)
    model = nn.Module()
    if layout == "codebert-clone":
        model.encoder = RobertaModel(config)
    else:
        model.encoder = RobertaForSequenceClassification(config)
    if layout.endswith("clone"):
        model.classifier = nn.Module()
        model.classifier.dense = nn.Linear(2 * config.hidden_size, config.hidden_size)
        model.classifier.out_proj = nn.Linear(config.hidden_size, 2)
    return model.state_dict()


@pytest.fixture(scope="module")
def bpe_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("bpe") / "tokenizer.json"
    train_student_tokenizer(sample_functions(), 400).backend_tokenizer.save(str(path))
    return path


def save_checkpoint(tmp_path, layout: str, config: RobertaConfig | None = None):
    path = tmp_path / f"{layout}.bin"
    torch.save(research_state(layout, config or research_config()), path)
    return path


# --- layouts and errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("layout", "task", "inputs"), [
    ("codebert-clone", "clone", "plain"),
    ("graphcodebert-clone", "clone", "dataflow"),
    ("vulnerability", "vulnerability", None),  # CodeBERT and GraphCodeBERT students: the same keys
])
def test_layouts_are_read_from_the_keys(layout, task, inputs):
    found = detect_layout(research_state(layout, research_config()))
    assert (found.task, found.inputs) == (task, inputs)


def test_an_unknown_layout_is_refused(tmp_path, bpe_file):
    path = tmp_path / "bert.bin"
    torch.save({"bert.embeddings.word_embeddings.weight": torch.zeros(400, 32),
                "classifier.weight": torch.zeros(2, 32)}, path)
    with pytest.raises(UserError, match="not a layout of the Compressor research code") as error:
        import_compressor(path, bpe_file, tmp_path / "out", **TINY)
    assert str(path) in error.value.message and "Known layouts" in error.value.message
    assert not (tmp_path / "out").exists()


def test_vulnerability_students_must_say_which_inputs_they_read(tmp_path, bpe_file):
    checkpoint = save_checkpoint(tmp_path, "vulnerability")
    with pytest.raises(UserError, match="--inputs plain .* or --inputs dataflow"):
        import_compressor(checkpoint, bpe_file, tmp_path / "out", **TINY)
    graph = read_metadata(import_compressor(checkpoint, bpe_file, tmp_path / "graph", **TINY, inputs="dataflow"))
    assert graph["kind"] == "graphcodebert" and graph["language"] == "c"
    assert (graph["block_size"], graph["flow_length"]) == (512, 128)
    assert LayoutRules.from_dict(graph["layout_rules"]) == COMPRESSOR_VULNERABILITY
    plain = read_metadata(import_compressor(checkpoint, bpe_file, tmp_path / "plain", **TINY, inputs="plain"))
    assert "kind" not in plain and plain["block_size"] == 400


def test_inputs_that_contradict_the_keys_are_refused(tmp_path, bpe_file):
    checkpoint = save_checkpoint(tmp_path, "graphcodebert-clone")
    with pytest.raises(UserError, match="GraphCodeBERT clone student, which reads dataflow inputs"):
        import_compressor(checkpoint, bpe_file, tmp_path / "out", **TINY, inputs="plain")
    metadata = read_metadata(import_compressor(checkpoint, bpe_file, tmp_path / "out", **TINY))
    assert metadata["language"] == "java" and metadata["num_inputs"] == 2
    assert LayoutRules.from_dict(metadata["layout_rules"]) == COMPRESSOR_CLONE


def test_imports_use_codebert_layer_norm_epsilon(tmp_path, bpe_file):
    folder = import_compressor(save_checkpoint(tmp_path, "codebert-clone"), bpe_file, tmp_path / "out", **TINY)
    assert json.loads((folder / "config.json").read_text())["layer_norm_eps"] == 1e-5
    model = TinyClassifier.from_pretrained(folder).runner.model
    assert {m.eps for m in model.modules() if isinstance(m, nn.LayerNorm)} == {1e-5}


def test_a_tokenizer_larger_than_the_vocabulary_is_refused(tmp_path, bpe_file):
    checkpoint = save_checkpoint(tmp_path, "codebert-clone", research_config(vocab_size=300))
    with pytest.raises(UserError, match="the tokenizer has 400 tokens but the student's vocabulary .* is 300") as error:
        import_compressor(checkpoint, bpe_file, tmp_path / "out", **{**TINY, "vocab_size": 300})
    assert str(bpe_file) in error.value.message


def test_a_wrong_architecture_names_the_file_s_shapes(tmp_path, bpe_file):
    checkpoint = save_checkpoint(tmp_path, "codebert-clone")
    with pytest.raises(UserError, match="does not fit the given architecture") as error:
        import_compressor(checkpoint, bpe_file, tmp_path / "out", **{**TINY, "hidden_size": 64})
    assert "num_hidden_layers 1, hidden_size 32, intermediate_size 64, vocab_size 400" in error.value.message


def test_hidden_size_not_divisible_by_heads_is_a_clear_cli_error(tmp_path, bpe_file, capsys):
    checkpoint = save_checkpoint(tmp_path, "codebert-clone")
    with pytest.raises(SystemExit) as exit_info:
        main(["import-compressor", "--checkpoint", str(checkpoint), "--tokenizer", str(bpe_file),
              "--output", str(tmp_path / "out"), "--hidden_size", "100"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "hidden_size 100 is not divisible by num_attention_heads 8" in err and "Traceback" not in err


# --- the research code's input layout, on a toy tokenizer ---------------------------------------------------

@pytest.fixture(scope="module")
def toy_tokenizer():
    return word_level_tokenizer(["<s>", "<pad>", "</s>", "<unk>", "x", "=", "a", "_", "b", ";", "y"])


def test_compressor_layout_keeps_cut_nodes_unaligned(toy_tokenizer):
    # 9 code sub-words, 4 nodes; code room 11 - 3 (clone: one more reserved) - 4 = 4 sub-words: x = a _
    item = build_graph_input(TOY, toy_tokenizer, code_length=7, flow_length=4, rules=COMPRESSOR_CLONE)
    assert item.input_ids == [0, 4, 5, 6, 7, 2, 3, 3, 3, 3]
    assert item.position_ids == [2, 3, 4, 5, 6, 7, 0, 0, 0, 0]
    # a_b lost its last sub-word: the research code aligns a node only to a token it kept whole
    assert item.node_spans == [(1, 2), (3, 3), (5, 5), (5, 5)]
    assert item.node_edges == [[1], [], [3], [0]]
    ours = build_graph_input(TOY, toy_tokenizer, code_length=7, flow_length=4)  # GraphCodeBERT's: drop them
    assert ours.node_spans == [(1, 2), (3, 6)] and ours.input_ids[-3:] == [2, 3, 3]


def test_compressor_mask_has_no_node_self_attention(toy_tokenizer):
    item = build_graph_input(TOY, toy_tokenizer, code_length=12, flow_length=4, rules=COMPRESSOR_CLONE)
    mask = graph_attention_mask(item, 16, node_self_attention=False)
    assert mask[11].nonzero().flatten().tolist() == [1, 12]  # node x: its token and its source a_b
    assert mask[12].nonzero().flatten().tolist() == [3, 4, 5]  # a_b: its sub-words, not itself
    assert not mask[15].any() and not mask[:, 15].any()
    assert graph_attention_mask(item, 16)[12, 12]


# --- the released GraphCodeBERT students on real data ---------------------------------------------------------

def research_inputs(graph: DataFlowGraph, tokenizer: Tokenizer, clone: bool, code_length: int = 384,
                    flow_length: int = 128) -> tuple[list[int], list[int], torch.Tensor]:
    """Ids, positions and mask as GraphCodeBERT/*/compressor/distill.py of soarsmu/Compressor builds them
    (written here independently of the library, from the same data-flow graph)."""
    pieces = [tokenizer.encode(token).tokens for token in graph.tokens]
    ranges = {-1: (0, 0)}
    for i, piece in enumerate(pieces):
        ranges[i] = (ranges[i - 1][1], ranges[i - 1][1] + len(piece))
    flat = [t for piece in pieces for t in piece]
    dfg = [(node.token, list(node.sources)) for node in graph.nodes]
    block = code_length + flow_length
    flat = flat[: block - (3 if clone else 2) - min(len(dfg), flow_length)]
    flat = flat[: 512 - 3] if clone else flat
    source = ["<s>", *flat, "</s>"]
    ids = [tokenizer.token_to_id(t) for t in source]
    positions = [i + 2 for i in range(len(source))]
    dfg = dfg[: block - len(source)]
    ids += [3] * len(dfg)
    positions += [0] * len(dfg)
    ids += [1] * (block - len(ids))
    positions += [1] * (block - len(positions))
    reverse = {token: i for i, (token, _) in enumerate(dfg)}
    mask = torch.zeros(block, block, dtype=torch.bool)
    node_index, used = sum(p > 1 for p in positions), sum(p != 1 for p in positions)
    mask[:node_index, :node_index] = True
    for i, token in enumerate(ids):
        if token in (0, 2):
            mask[i, :used] = True
    for i, (token, sources) in enumerate(dfg):
        a, b = ranges[token][0] + 1, ranges[token][1] + 1
        if a < node_index and b < node_index:
            mask[i + node_index, a:b] = True
            mask[a:b, i + node_index] = True
        for j in (reverse[s] for s in sources if s in reverse):
            mask[i + node_index, j + node_index] = True
    return ids, positions, mask


def research_probabilities(state: dict, rows: list[tuple[list[int], list[int], torch.Tensor]],
                           clone: bool) -> torch.Tensor:
    """The research models' forward: node embeddings averaged, RoBERTa, then the outer pair head (clone) or
    the inner sequence-classification head (vulnerability), softmax."""
    model = RobertaForSequenceClassification(research_config(1000, 96, 12, 8, 64)).eval()
    model.load_state_dict({k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}, strict=False)
    ids = torch.tensor([r[0] for r in rows])
    positions = torch.tensor([r[1] for r in rows])
    mask = torch.stack([r[2] for r in rows])
    with torch.no_grad():
        words = model.roberta.embeddings.word_embeddings(ids)
        nodes, tokens = positions.eq(0), positions.ge(2)
        weights = (nodes[:, :, None] & tokens[:, None, :] & mask).float()
        weights = weights / (weights.sum(-1) + 1e-10)[:, :, None]
        words = words * (~nodes)[:, :, None] + torch.einsum("abc,acd->abd", weights, words) * nodes[:, :, None]
        additive = (1.0 - mask[:, None].float()) * -10000.0  # transformers' 3-D mask handling of the time
        hidden = model.roberta(inputs_embeds=words, attention_mask=additive, position_ids=positions)[0]
        if not clone:
            return model.classifier(hidden).softmax(-1)
        pair = hidden[:, 0, :].reshape(-1, 2 * 96)
        logits = state["classifier.out_proj.weight"] @ torch.tanh(
            pair @ state["classifier.dense.weight"].T + state["classifier.dense.bias"]).T
        return (logits.T + state["classifier.out_proj.bias"]).softmax(-1)


@pytest.fixture(scope="module")
def bcb_test():
    from lit_compressor.data.task import load_task

    return load_task(SHARED_DATA / "bigclonebench").read("test")


@pytest.fixture(scope="module")
def released_clone(tmp_path_factory):
    return import_compressor(CLONE_BIN, CLONE_BPE, tmp_path_factory.mktemp("release") / "clone")


def test_released_graphcodebert_clone_student_reads_the_research_layout(released_clone, bcb_test):
    """End to end (import, folder, TinyClassifier) against the research code's layout, on real pairs: a long
    one (code truncated, nodes of cut tokens) and two short ones."""
    from lit_compressor.graphcodebert.dataflow import extract_dataflow

    longest = max(bcb_test, key=lambda e: max(len(c) for c in e.codes))
    examples = [longest, bcb_test[0], bcb_test[-1]]
    tokenizer = Tokenizer.from_file(str(CLONE_BPE))
    rows = [research_inputs(extract_dataflow(code, "java"), tokenizer, clone=True)
            for example in examples for code in example.codes]
    assert any(positions.count(1) == 0 for _, positions, _ in rows[:2])  # the long one fills all 512 positions
    expected = research_probabilities(torch.load(CLONE_BIN, map_location="cpu", weights_only=True), rows, clone=True)
    got = TinyClassifier.from_pretrained(released_clone).predict_batch([e.codes for e in examples])
    torch.testing.assert_close(torch.tensor([p.probabilities for p in got], dtype=torch.float32), expected,
                               atol=1e-5, rtol=1e-4)


def test_released_graphcodebert_vulnerability_student_reads_the_research_layout(tmp_path):
    """Whitespace collapsed before parsing, two positions reserved, the inner head, class 0 = vulnerable."""
    from lit_compressor.data.readers import normalize_whitespace
    from lit_compressor.data.task import load_task
    from lit_compressor.graphcodebert.dataflow import extract_dataflow

    folder = import_compressor(VULN_BIN, VULN_BPE, tmp_path / "vuln", inputs="dataflow")
    functions = load_task(SHARED_DATA / "devign").read("test")
    examples = [max(functions, key=lambda e: len(e.codes[0])), functions[0], functions[1]]
    tokenizer = Tokenizer.from_file(str(VULN_BPE))
    rows = [research_inputs(extract_dataflow(normalize_whitespace(e.codes[0]), "c"), tokenizer, clone=False)
            for e in examples]
    assert rows[0][1].count(1) == 0  # the long one fills all 512 positions
    expected = research_probabilities(torch.load(VULN_BIN, map_location="cpu", weights_only=True), rows, clone=False)
    got = TinyClassifier.from_pretrained(folder).predict_batch([e.codes[0] for e in examples])
    torch.testing.assert_close(torch.tensor([p.probabilities for p in got], dtype=torch.float32),
                               expected.flip(-1), atol=1e-5, rtol=1e-4)  # our index 1 = their index 0


def test_data_flow_export_agrees_with_pytorch_and_runs_in_tiny_classifier(tmp_path):
    from lit_compressor.commands.export import export

    checkpoint = save_checkpoint(tmp_path, "graphcodebert-clone", research_config(vocab_size=1000, layers=2))
    folder = import_compressor(checkpoint, CLONE_BPE, tmp_path / "student", **{**TINY, "num_hidden_layers": 2,
                                                                               "vocab_size": 1000})
    report = export(folder, tmp_path / "export", data=SHARED_DATA / "bigclonebench", samples=6, full=True)
    assert report["inputs"] == "dataflow"
    assert max(report["onnx_max_abs_diff"].values()) < 1e-4
    assert (tmp_path / "export" / "shipped" / "model.int8.onnx").is_file()
    assert 0.0 <= report["int8"]["max_abs_prob_diff"] < 0.2
    pairs = [tuple(sample_functions(8)[i:i + 2]) for i in range(0, 8, 2)]
    reference = np.array([p.probabilities for p in TinyClassifier.from_pretrained(folder).predict_batch(pairs)])
    onnx = TinyClassifier.from_pretrained(tmp_path / "export", backend="onnx").predict_batch(pairs)
    np.testing.assert_allclose([p.probabilities for p in onnx], reference, atol=1e-4)
    int8 = TinyClassifier.from_pretrained(tmp_path / "export", backend="onnx-int8").predict_batch(pairs)
    assert np.abs(np.array([p.probabilities for p in int8]) - reference).max() < 0.2


@pytest.mark.slow
def test_released_clone_student_on_200_real_test_pairs(released_clone, bcb_test):
    """The research layout against plain inputs and against GraphCodeBERT's own layout rules, same weights.

    Measured on these 200 pairs: accuracy 0.94 (data flow) and 0.92 (plain); on all 4,000 test pairs
    0.938 and 0.893 (docs/benchmarks.md).
    """
    import dataclasses

    from lit_compressor.graphcodebert.folder import graph_encoder, load_graph_classifier
    from lit_compressor.nn.folders import load_classifier
    from lit_compressor.nn.tokenization import CodeEncoder

    examples = random.Random(0).sample(bcb_test, 200)
    labels = np.array([e.label for e in examples])
    model, tokenizer, metadata = load_graph_classifier(released_clone)

    def probabilities(encoder, net) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for start in range(0, len(examples), 20):
                batch = encoder.encode_codes([e.codes for e in examples[start:start + 20]])
                extra = {"position_ids": batch["position_ids"]} if "position_ids" in batch else {}
                out.append(net(batch["input_ids"], batch["attention_mask"], **extra).softmax(-1)[:, 1].numpy())
        return np.concatenate(out)

    right = probabilities(graph_encoder(tokenizer, metadata), model)
    plain = probabilities(CodeEncoder(tokenizer, 400), load_classifier(released_clone)[0])
    ours = graph_encoder(tokenizer, metadata)
    ours.rules = dataclasses.replace(ours.rules, node_self_attention=True, tokens_alone=False)
    other_layout = probabilities(ours, model)
    accuracy = float(((right > 0.5) == labels).mean())
    assert accuracy >= 0.92, accuracy
    assert accuracy > float(((plain > 0.5) == labels).mean())
    assert np.abs(right - plain).mean() > 0.04 and np.abs(right - other_layout).mean() > 0.02

def test_benchmark_times_a_data_flow_student_on_its_own_inputs(tmp_path, bpe_file):
    from lit_compressor.commands.benchmark import load_student, measure
    from lit_compressor.data.readers import Example

    folder = import_compressor(save_checkpoint(tmp_path, "graphcodebert-clone"), bpe_file, tmp_path / "out", **TINY)
    system = load_student(folder, "pytorch", threads=1)
    codes = sample_functions(6)
    examples = [Example(str(i), (codes[i], codes[i + 1])) for i in range(0, 6, 2)]
    (row,) = measure([system], examples, batch_size=4, warmup=1)
    assert row["parameters"] == sum(p.numel() for p in system.model.parameters()) and row["gflops_first_input"] > 0
    graph = system.encoder.encode(codes[0])
    assert row["tokens_first_input"][0] == len(graph.input_ids) > graph.num_code  # code sub-words and nodes
