"""GraphCodeBERT inputs: data-flow extraction (Java, C), input layout, mask, classifier on real slices."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from conftest import SHARED_DATA
from toy_dataflow import TOY, word_level_tokenizer

from lit_compressor.data.readers import Example
from lit_compressor.graphcodebert import dataflow
from lit_compressor.graphcodebert.dataflow import (
    COMES_FROM,
    COMPUTED_FROM,
    DataFlowGraph,
    extract_dataflow,
    precompute_dataflow,
)
from lit_compressor.graphcodebert.inputs import GraphCodeEncoder, build_graph_input, graph_attention_mask
from lit_compressor.graphcodebert.model import build_graphcodebert_classifier
from lit_compressor.nn.tokenization import train_student_tokenizer

DATA = SHARED_DATA


def flow(graph: DataFlowGraph) -> list[tuple[str, str, list[str]]]:
    """Readable nodes: ``("x@8", relation, ["a@10", ...])``."""
    return [(f"{n.name}@{n.token}", n.relation, [f"{graph.tokens[s]}@{s}" for s in n.sources])
            for n in graph.nodes]


def test_java_declaration_for_each_while_increment_return():
    code = ("int sum ( int [ ] xs ) { int s = 0 ; for ( int x : xs ) s += x ; "
            "while ( s > 9 ) s -- ; return s ; }")
    graph = extract_dataflow(code, "java")
    assert graph.tokens == tuple(code.split())
    assert flow(graph) == [
        ("xs@6", COMES_FROM, []),
        ("s@10", COMES_FROM, ["0@12"]),
        ("0@12", COMES_FROM, []),
        ("x@17", COMPUTED_FROM, ["xs@19"]),
        ("xs@19", COMES_FROM, ["xs@6"]),
        ("s@21", COMPUTED_FROM, ["x@23"]),
        ("x@23", COMES_FROM, ["x@17"]),
        ("s@27", COMES_FROM, ["s@21", "s@31"]),  # the loop's second pass sees s-- of the last iteration
        ("s@31", COMPUTED_FROM, ["s@31"]),
        ("s@35", COMES_FROM, ["s@31"]),
    ]


def test_java_assignment_and_method_call():
    graph = extract_dataflow("void f(int a, int b) { int x = a + b; y = x; g.put(y); }", "java")
    assert flow(graph) == [
        ("a@4", COMES_FROM, []),
        ("b@7", COMES_FROM, []),
        ("x@11", COMES_FROM, ["a@13", "b@15"]),
        ("a@13", COMES_FROM, ["a@4"]),
        ("b@15", COMES_FROM, ["b@7"]),
        ("y@17", COMPUTED_FROM, ["x@19"]),
        ("x@19", COMES_FROM, ["x@11"]),
        ("y@25", COMES_FROM, ["y@17"]),
    ]


def test_c_if_else_merges_both_branches():
    code = "int f(int a) { int x = a + 1; if (a > 0) x = a; else x = 2; g(x); return x; }"
    assert flow(extract_dataflow(code, "c")) == [
        ("a@4", COMES_FROM, []),
        ("x@8", COMES_FROM, ["a@10", "1@12"]),
        ("a@10", COMES_FROM, ["a@4"]),
        ("1@12", COMES_FROM, []),
        ("a@16", COMES_FROM, ["a@4"]),
        ("x@20", COMPUTED_FROM, ["a@22"]),
        ("a@22", COMES_FROM, ["a@4"]),
        ("x@25", COMPUTED_FROM, ["2@27"]),
        ("2@27", COMES_FROM, []),
        ("x@31", COMES_FROM, ["x@20", "x@25"]),
        ("x@35", COMES_FROM, ["x@20", "x@25"]),
    ]


def test_c_for_loop_links_iterations():
    code = "void f(int n) { int s = 0; for (int i = 0; i < n; i++) s = s + i; }"
    assert flow(extract_dataflow(code, "c")) == [
        ("n@4", COMES_FROM, []),
        ("s@8", COMES_FROM, ["0@10"]),
        ("0@10", COMES_FROM, []),
        ("i@15", COMES_FROM, ["0@17"]),
        ("0@17", COMES_FROM, []),
        ("i@19", COMES_FROM, ["i@15", "i@23"]),
        ("n@21", COMES_FROM, ["n@4"]),
        ("i@23", COMPUTED_FROM, ["i@23"]),
        ("s@26", COMPUTED_FROM, ["s@28", "i@30"]),
        ("s@28", COMES_FROM, ["s@8", "s@26"]),
        ("i@30", COMES_FROM, ["i@23"]),
    ]


def test_comments_are_not_tokens_and_strings_are_one_token():
    graph = extract_dataflow('int f() { /* c */ char *s = "a b"; // x\n return 0; }', "c")
    assert graph.tokens == ("int", "f", "(", ")", "{", "char", "*", "s", "=", '"a b"', ";",
                            "return", "0", ";", "}")
    assert flow(graph) == [("s@7", COMES_FROM, ['"a b"@9']), ('"a b"@9', COMES_FROM, [])]


@pytest.mark.parametrize(("code", "language"), [
    ("int f(int a) { int x = ; if (a) { x = 1 ", "c"),
    ("public void f( { x = = 3; y = x;", "java"),
    ("", "java"),
    ("\x00\xff }}}{{ ))) ;;", "c"),
    ("int f() { return " + "(" * 3000 + "1" + ")" * 3000 + "; }", "c"),  # deeper than Python's stack
])
def test_malformed_code_keeps_tokens(code, language):
    graph = extract_dataflow(code, language)
    assert len(graph.tokens) == len([t for t in graph.tokens if t.strip()])
    assert "".join(graph.tokens) == "".join(code.split())
    assert all(node.token < len(graph.tokens) for node in graph.nodes)


def test_error_subtrees_add_no_flow():
    graph = extract_dataflow("int f(int a) { int x = ; if (a) { x = 1 ", "c")
    assert "x" in graph.tokens and graph.nodes == ()


# --- input layout and mask on a toy tokenizer: "a_b" is three sub-words, everything else one ---------------

TOY_WORDS = ["<s>", "<pad>", "</s>", "<unk>", "@", "x", "=", "a", "_", "b", ";", "y"]


@pytest.fixture(scope="module")
def toy_tokenizer():
    return word_level_tokenizer(TOY_WORDS)


def test_layout_and_position_ids(toy_tokenizer):
    item = build_graph_input(TOY, toy_tokenizer, code_length=12, flow_length=4)
    # <s> x = a _ b ; y = x </s> | 4 nodes
    assert item.input_ids == [0, 5, 6, 7, 8, 9, 10, 11, 6, 5, 2, 3, 3, 3, 3]
    assert item.position_ids == list(range(2, 13)) + [0, 0, 0, 0]
    assert item.num_code == 11
    assert item.node_spans == [(1, 2), (3, 6), (7, 8), (9, 10)]
    assert item.node_edges == [[1], [], [3], [0]]


def test_layout_ignores_padding_and_truncation_set_in_tokenizer_json():
    """A tokenizer.json may pad every encoding to a fixed length (the MiniLM's pads to 128): the code tokens'
    sub-words must still be their own ids, not a token followed by padding."""
    padded = word_level_tokenizer(TOY_WORDS)
    padded.backend_tokenizer.enable_padding(length=8, pad_id=1, pad_token="<pad>")
    padded.backend_tokenizer.enable_truncation(max_length=2)
    item = build_graph_input(TOY, padded, code_length=12, flow_length=4)
    assert item.input_ids == [0, 5, 6, 7, 8, 9, 10, 11, 6, 5, 2, 3, 3, 3, 3]
    assert padded.backend_tokenizer.padding is not None  # the user's tokenizer is left as it was


def test_graph_guided_attention_mask(toy_tokenizer):
    item = build_graph_input(TOY, toy_tokenizer, code_length=12, flow_length=4)
    mask = graph_attention_mask(item, length=16)  # one padding position
    assert mask[:11, :11].all()
    assert mask[0, :15].all() and mask[10, :15].all()  # <s> and </s> see every node
    assert mask[11].nonzero().flatten().tolist() == [1, 11, 12]  # node x: its token, itself, a_b
    assert mask[12].nonzero().flatten().tolist() == [3, 4, 5, 12]  # node a_b: its three sub-words
    assert mask[3:6, 12].all() and not mask[6, 12] and not mask[1, 12]
    assert mask[14].nonzero().flatten().tolist() == [9, 11, 14]
    assert not mask[12, 11]  # edges are directed: a node reads its sources
    assert not mask[15].any() and not mask[:, 15].any()


def test_truncation_drops_nodes_of_cut_tokens(toy_tokenizer):
    item = build_graph_input(TOY, toy_tokenizer, code_length=6, flow_length=2)
    assert item.input_ids == [0, 5, 6, 7, 8, 2, 3, 3]  # 4 code sub-words leave room for 2 nodes
    assert item.node_spans == [(1, 2), (3, 5)]
    assert item.node_edges == [[1], []]


# --- real data: collate and model --------------------------------------------------------------------------

def _functions(path: Path, count: int) -> list[dict]:
    with path.open() as handle:
        return [json.loads(next(handle)) for _ in range(count)]


@pytest.fixture(scope="module")
def java_functions() -> list[str]:
    return [record["func"] for record in _functions(DATA / "bigclonebench" / "data.jsonl", 16)]


@pytest.fixture(scope="module")
def c_records() -> list[dict]:
    return _functions(DATA / "devign" / "test.jsonl", 8)


@pytest.fixture(scope="module")
def bpe(java_functions, c_records):
    return train_student_tokenizer(java_functions + [r["func"] for r in c_records], vocab_size=400)


def tiny_roberta(vocab_size: int):
    from transformers import RobertaConfig, RobertaModel

    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=520, pad_token_id=1,
                           hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return RobertaModel(config)


def test_collate_contract_on_java_pairs(bpe, java_functions):
    encoder = GraphCodeEncoder(bpe, code_length=96, flow_length=32, language="java")
    examples = [Example("a", (java_functions[0], java_functions[1]), 1),
                Example("b", (java_functions[2], java_functions[3]), None)]
    batch = encoder(examples)
    batch_size, n, length = batch["input_ids"].shape
    assert (batch_size, n) == (2, 2) and length <= 128
    assert batch["position_ids"].shape == (2, 2, length)
    assert batch["attention_mask"].shape == (2, 2, length, length)
    assert batch["labels"].tolist() == [1, -1] and batch["ids"] == ["a", "b"]
    for positions, mask in zip(batch["position_ids"].flatten(0, 1), batch["attention_mask"].flatten(0, 1),
                               strict=True):
        code = int((positions >= 2).sum())
        nodes = int((positions == 0).sum())
        assert positions[:code].tolist() == list(range(2, code + 2))
        assert (positions[code:code + nodes] == 0).all() and (positions[code + nodes:] == 1).all()
        assert nodes > 0
        assert not mask[code + nodes:].any() and not mask[:, code + nodes:].any()
        assert mask[code:code + nodes].any(-1).all()  # every node sees something
    pickle.dumps(encoder)  # DataLoader workers receive it


def test_classifier_forward_pair_and_single(bpe, java_functions, c_records):
    pairs = GraphCodeEncoder(bpe, code_length=96, flow_length=32, language="java")(
        [Example(str(i), (java_functions[2 * i], java_functions[2 * i + 1]), 1) for i in range(3)])
    model = build_graphcodebert_classifier(tiny_roberta(len(bpe)), num_inputs=2, num_labels=2).eval()
    inputs = {k: v for k, v in pairs.items() if k not in ("labels", "ids")}
    logits = model(**inputs)
    assert logits.shape == (3, 2) and torch.isfinite(logits).all()

    singles = GraphCodeEncoder(bpe, code_length=96, flow_length=32, language="c")(
        [Example(str(r["idx"]), (r["func"],), r["target"]) for r in c_records[:4]])
    model = build_graphcodebert_classifier(tiny_roberta(len(bpe)), num_inputs=1, num_labels=2).eval()
    logits = model(**{k: v for k, v in singles.items() if k not in ("labels", "ids")})
    assert logits.shape == (4, 2) and torch.isfinite(logits).all()


def test_padding_does_not_change_the_output(bpe, c_records):
    encoder = GraphCodeEncoder(bpe, code_length=96, flow_length=32, language="c")
    short = min(c_records, key=lambda r: len(r["func"]))
    longest = max(c_records, key=lambda r: len(r["func"]))
    model = build_graphcodebert_classifier(tiny_roberta(len(bpe)), num_inputs=1).eval()

    def logits(records):
        batch = encoder([Example("x", (r["func"],)) for r in records])
        return model(**{k: v for k, v in batch.items() if k not in ("labels", "ids")})

    alone, padded = logits([short]), logits([short, longest])[:1]
    torch.testing.assert_close(alone, padded, atol=1e-5, rtol=1e-4)


def test_node_embeddings_are_token_means(toy_tokenizer):
    item = build_graph_input(TOY, toy_tokenizer, code_length=12, flow_length=4)
    model = build_graphcodebert_classifier(tiny_roberta(len(toy_tokenizer)), num_inputs=1)
    ids = torch.tensor([item.input_ids])
    embedded = model.embed(ids, graph_attention_mask(item, 15)[None], torch.tensor([item.position_ids]))
    words = model.encoder.get_input_embeddings()(ids)
    torch.testing.assert_close(embedded[0, 12], words[0, 3:6].mean(0))
    torch.testing.assert_close(embedded[0, :11], words[0, :11])


def test_a_few_steps_lower_the_loss(bpe, java_functions):
    examples = [Example(str(i), (java_functions[i], java_functions[(i + 3) % 16]), i % 2) for i in range(8)]
    batch = GraphCodeEncoder(bpe, code_length=64, flow_length=32, language="java")(examples)
    model = build_graphcodebert_classifier(tiny_roberta(len(bpe)), num_inputs=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "ids")}
    losses = []
    for _ in range(8):
        loss = torch.nn.functional.cross_entropy(model(**inputs), batch["labels"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


# --- extraction at scale: cache and workers ----------------------------------------------------------------

def test_cache_file_is_reused(tmp_path, java_functions, monkeypatch):
    first = precompute_dataflow(java_functions[:6], "java", tmp_path)
    files = list(tmp_path.glob("dataflow-java-*.json"))
    assert len(files) == 1 and len(first) == 6

    def no_extraction(*args, **kwargs):
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(dataflow, "_extract_all", no_extraction)
    assert precompute_dataflow(java_functions[:6], "java", tmp_path) == first
    assert precompute_dataflow(list(reversed(java_functions[:6])), "java", tmp_path) == first


def test_corrupt_cache_is_recomputed(tmp_path):
    codes = ["int f(int a) { return a; }", "void g() { int b = 1; b++; }"]
    expected = precompute_dataflow(codes, "c", tmp_path)
    (cache_file,) = tmp_path.glob("*.json")
    cache_file.write_text("{not json")
    assert precompute_dataflow(codes, "c", tmp_path) == expected


def test_parallel_extraction_equals_serial(c_records):
    codes = [r["func"] for r in c_records]
    assert precompute_dataflow(codes, "c", workers=2) == precompute_dataflow(codes, "c", workers=1)


def test_prepare_fills_the_encoder(tmp_path, bpe, c_records, monkeypatch):
    encoder = GraphCodeEncoder(bpe, code_length=64, flow_length=16, language="c", cache_dir=tmp_path,
                               workers=2)
    examples = [Example(str(r["idx"]), (r["func"],), r["target"]) for r in c_records]
    encoder.prepare(examples)
    monkeypatch.setattr("lit_compressor.graphcodebert.inputs.extract_dataflow", None)  # must not be needed
    assert encoder(examples)["input_ids"].shape[:2] == (8, 1)
