"""The Node.js runtime (js/) against Python: the same token ids, labels and probabilities, the same
clone-search vectors and scores, and one index format for both.

Python exports small students on real data, writes its own token ids, probabilities, vectors, index and
scores as the reference, then runs the Node test files (Node's built-in test runner), which assert parity
and write what they measured; the Node-built index is read back here. Two kinds of student: tiny ones whose
output layer is rescaled (every graph form, the concat and interaction heads), and two trained for real on
real data (``trained_students``: learned weights, read from their export folders as shipped).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

JS = ROOT / "js"
NODE = shutil.which("node")
PROBABILITY_TOLERANCE = 1e-4
SCORE_TOLERANCE = 1e-5

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed"),
    pytest.mark.skipif(not (JS / "node_modules" / "onnxruntime-node").is_dir(),
                       reason="js/node_modules missing: run `npm ci` in js/"),
]


def python_whitespace() -> list[str]:
    return [chr(c) for c in range(0x110000) if chr(c).isspace()]


def tricky_texts() -> list[str]:
    """Strings where JavaScript and Python (Rust tokenizers) are easy to get apart."""
    texts = [f"a{c}b{c}{c}c {c}" for c in python_whitespace()]
    texts += ["x\ufeffy", "x \ufeffy", "\ufeff", " \ufeff \ufeff", "a\u0085\u0085b", "ΑΣ ΟΔΟΣ Σ", "İstanbul ǅ ﬃ ẞ",
              "a <s> b </s> <pad> <unk> <S> <mask>", "</s></s><s>", "😀 emoji 中文 代码 e\u0301",
              "\u200b zero\u200cwidth",
              "١٢٣ ²³ ⅷ", "'s 're 've x's It'S", "a" * 1200, "x " * 500, "", " \t\n ", "\x00\x01\x7f nul", "\u00ad­soft"]
    rng = random.Random(0)
    pool = (list("abcXYZ019_(){};=+-*/<>'\"\\.,") + python_whitespace() + ["\ufeff", "Σ", "σ", "ς", "é", "e\u0301",
            "中", "文", "😀", "👍🏽", "\u0300", "\u0361", "٣", "\u00ad", "ß", "İ", "ǅ", "Ⅻ", "\U0001d400", "\u2028"])
    texts += ["".join(rng.choices(pool, k=rng.randint(1, 60))) for _ in range(150)]
    return texts


def probabilities(model, rows, batch_size: int) -> list[list[float]]:
    return [list(p.probabilities) for p in model.predict_batch(rows, batch_size)]


def reference_case(name: str, folder: Path, examples) -> dict:
    """Python's ids and probabilities of ``examples`` with ``folder`` (a model or export folder) in both backends."""
    from lit_compressor.runtime.classifier import TinyClassifier

    rows = [list(e.codes) for e in examples]
    case = {"name": name, "folder": str(folder), "inputs": rows, "probabilities": {}, "batch8": {}}
    for backend in ("onnx-int8", "onnx"):
        model = TinyClassifier.from_pretrained(folder, backend=backend)
        case["probabilities"][backend] = probabilities(model, rows, 1)
        case["batch8"][backend] = probabilities(model, rows, 8)
    case["ids"] = [[model.encoder.encode(code) for code in row] for row in rows]
    return case


def sample_reference(pair: Path, single: Path, java_functions: list[str], tmp: Path) -> dict:
    """Project files for the VS Code sample's tests, with the functions tree-sitter finds in them."""
    from tiny_students import DEVIGN

    from lit_compressor.clones.extract import extract_functions
    from lit_compressor.data.readers import read_jsonl

    files = [(f"src/F{i}.java", f"public class F{i} {{\n{code}\n}}\n", "java") for i, code in enumerate(java_functions)]
    devign = [e.codes[0] for e in read_jsonl(DEVIGN / "test.jsonl")[:100]]
    files += [(f"c/f{i}.c", f"#include <stdio.h>\n{code}\n", "c") for i, code in enumerate(devign)]
    listed = []
    for path, text, language in files:
        found = extract_functions(text, language, path)
        listed.append({"path": path, "text": text, "parses": found.error_line is None,
                       "functions": [[f.name, f.start_line, f.end_line] for f in found.functions]})
    # the extension reads the shipped folders (int8; a single-function student's graph: the transformers.js layout)
    return {"clone_model": str(pair.parent / "shipped"), "vulnerability_model": str(single.parent / "shipped"),
            "index": str(tmp / "sample-index"),
            "files": listed}


@pytest.fixture(scope="module")
def parity(tmp_path_factory) -> dict:
    """Write the Python reference, run the Node tests on it, return their summaries."""
    from tiny_students import BCB, DEVIGN, bcb_functions, exported_student

    from lit_compressor.clones.extract import SourceFunction
    from lit_compressor.clones.index import CloneIndex
    from lit_compressor.clones.model import CloneModel
    from lit_compressor.nn.tokenization import CodeEncoder
    from lit_compressor.runtime.classifier import TinyClassifier
    from lit_compressor.runtime.evaluate import sample_test_split

    tmp = tmp_path_factory.mktemp("node-parity")
    pair, single = exported_student("pair", "mean", "interaction"), exported_student("single", "mean")
    reference: dict = {"cases": [reference_case("bigclonebench", pair, sample_test_split(BCB, 200)),
                                 reference_case("devign", single, sample_test_split(DEVIGN, 200))]}
    encoder = CodeEncoder(TinyClassifier.from_pretrained(pair, backend="onnx").encoder.tokenizer, 128)
    texts = tricky_texts()
    reference["tokens"] = {"folder": str(pair), "block_size": 128, "texts": texts,
                           "ids": [encoder.encode(text) for text in texts]}

    codes = list(dict.fromkeys(bcb_functions().values()))
    indexed, queries = codes[4000:4150], codes[5000:5005]
    functions = [SourceFunction(f"src/F{i}.java", f"f{i}", "java", 2, 9, code) for i, code in enumerate(indexed)]
    model = CloneModel.from_pretrained(pair)
    index = CloneIndex(model)
    index.update(functions)
    index.save(tmp / "python-index")
    pair_model = TinyClassifier.from_pretrained(pair, backend="onnx")
    reference["clones"] = {
        "folder": str(pair), "index": str(tmp / "python-index"), "node_index": str(tmp / "node-index"),
        "functions": [f.__dict__ for f in functions], "queries": queries,
        "query_vectors": [model.embed(q).tolist() for q in queries],
        "index_scores": [index.scores(model.embed(q)).tolist() for q in queries],
        "pair_scores": [[p.probabilities[1] for p in pair_model.predict_batch([(q, f) for f in indexed[:40]], 1)]
                        for q in queries],
    }
    tokens = sorted(index.tokens)
    reference["clones"]["pairs"] = pairs_reference(index, tokens[len(tokens) // 4])
    concat = exported_student("pair", "first", "concat")
    rows = [(queries[i], indexed[i]) for i in range(5)]
    reference["clones"]["concat"] = {
        "folder": str(concat), "pairs": rows,
        "expected": [p.probabilities[1] for p in TinyClassifier.from_pretrained(concat, "onnx").predict_batch(rows, 1)]}
    reference["sample"] = sample_reference(pair, single, indexed, tmp)
    build = subprocess.run([NODE, "node_modules/typescript/bin/tsc", "-p", "vscode-sample"], cwd=JS,
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout[-3000:]
    summaries = run_node(reference, tmp, ["test/parity.test.js", "test/clones.test.js", "vscode-sample/test/"])
    return {"tmp": tmp, "summaries": summaries, "model": model, "index": index, "reference": reference}


def pairs_reference(index, min_tokens: int) -> dict:
    """Python's pairs and classes of ``index`` at a threshold in a wide gap between two pairs' probabilities (so
    rounding cannot move a pair across it), with ``per_function`` small enough to drop some."""
    from lit_compressor.clones.calibration import Calibration
    from lit_compressor.clones.classes import clone_classes

    calibration = Calibration(0.2, 0.85, -1.4, 0.67, 1e-3)
    ranks = sorted((p.rank for p in index.pairs(0.0, None, min_tokens=min_tokens, calibration=calibration)),
                   reverse=True)
    k = max(range(30, 60), key=lambda k: ranks[k - 1] - ranks[k])
    assert ranks[k - 1] - ranks[k] > 1e-6
    options = {"threshold": (ranks[k - 1] + ranks[k]) / 2, "per_function": 3, "min_tokens": min_tokens,
               "calibration": {"slope": 0.2, "closeness_slope": 0.85, "intercept": -1.4, "valid_prior": 0.67,
                               "prior": 1e-3}, "prior": 1e-3}
    pairs = index.pairs(options["threshold"], 3, min_tokens=min_tokens, calibration=calibration, prior=1e-3)
    return {"options": options, "all_above": k,
            "expected": [[p.first.path, p.first.start_line, p.second.path, p.second.start_line, p.probability,
                          p.score, p.similarity] for p in pairs],
            "classes": [[f"{m.path}:{m.start_line}" for m in c.members] for c in clone_classes(pairs)]}


def check_pairs(summary: dict, reference: dict) -> None:
    assert summary["pairs"] == len(reference["expected"]) and summary["classes"] == len(reference["classes"])
    assert 0 < summary["pairs"] < reference["all_above"]  # the threshold and per_function both bit
    assert summary["max_diff"] <= SCORE_TOLERANCE


def run_node(reference: dict, tmp: Path, files: list[str]) -> dict[str, dict]:
    """Run Node test files on ``reference``; the summaries they wrote, by name."""
    (tmp / "reference.json").write_text(json.dumps(reference))
    env = {**os.environ, "LIT_COMPRESSOR_PARITY": str(tmp / "reference.json"), "LIT_COMPRESSOR_PARITY_OUT": str(tmp)}
    result = subprocess.run([NODE, "--test", *files], cwd=JS, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return {p.stem: json.loads(p.read_text()) for p in tmp.glob("summary-*.json")}


def check_parity_runs(summary: dict) -> None:
    for run in summary["runs"]:
        assert run["inputs"] == 200 and run["functions"] == (400 if run["case"].startswith("bigclonebench") else 200)
        assert run["id_mismatches"] == 0 and run["label_mismatches"] == 0
        assert run["max_probability_diff"] <= PROBABILITY_TOLERANCE
        assert run["max_probability_diff_batch8"] <= PROBABILITY_TOLERANCE
        assert 0 < run["positive_labels"] < run["inputs"]  # both labels occur: the comparison means something
    assert summary["tokens"]["mismatches"] == 0 and summary["tokens"]["texts"] == len(tricky_texts())


def test_node_gives_pythons_token_ids_labels_and_probabilities(parity):
    summary = parity["summaries"]["summary-parity"]
    runs = {(r["case"], r["backend"]): r for r in summary["runs"]}
    assert sorted(runs) == [("bigclonebench", "onnx"), ("bigclonebench", "onnx-int8"), ("devign", "onnx"),
                            ("devign", "onnx-int8")]
    check_parity_runs(summary)


def test_node_clone_search_equals_python_and_the_pair_model(parity):
    summary = parity["summaries"]["summary-clones"]
    assert summary["max_vector_diff"] <= SCORE_TOLERANCE
    assert summary["max_score_diff_vs_python_index"] <= SCORE_TOLERANCE
    assert summary["max_score_diff_vs_pair_model"] <= SCORE_TOLERANCE
    assert summary["max_concat_head_diff"] <= SCORE_TOLERANCE
    assert summary["node_index"]["embedded"] == len(parity["index"].hashes)
    assert summary["node_index_again"]["embedded"] == 0


def test_node_pairs_and_classes_equal_pythons(parity):
    """The same pairs (minimum size, calibrated threshold, per-function bound) and the same clone classes."""
    check_pairs(parity["summaries"]["summary-pairs"], parity["reference"]["clones"]["pairs"])


def test_python_reads_the_index_node_wrote(parity):
    from lit_compressor.clones.index import CloneIndex

    python_index = parity["index"]
    node_index = CloneIndex.load(parity["tmp"] / "node-index", parity["model"])  # same fingerprint
    assert node_index.entries == python_index.entries
    rows = [node_index.hashes.index(h) for h in python_index.hashes]
    assert np.abs(node_index.vectors[rows] - python_index.vectors).max() <= SCORE_TOLERANCE


@pytest.fixture(scope="module")
def trained_parity(tmp_path_factory) -> dict:
    """The parity tests on two students trained for real (``trained_students``), each given as its export folder:
    ``onnx-int8`` runs the shipped graph (the pair's model.int8.onnx, the Devign student's transformers.js-layout
    onnx/model_quantized.onnx), ``onnx`` the full export's fp32 graph; clone search runs the shipped int8 encoder."""
    from tiny_students import BCB, DEVIGN, bcb_functions
    from trained_students import trained_student

    from lit_compressor.clones.extract import SourceFunction
    from lit_compressor.clones.index import CloneIndex
    from lit_compressor.clones.model import CloneModel
    from lit_compressor.runtime.classifier import TinyClassifier
    from lit_compressor.runtime.evaluate import sample_test_split

    tmp = tmp_path_factory.mktemp("node-parity-trained")
    pair, single = trained_student("pair"), trained_student("single")
    reference: dict = {"cases": [reference_case("bigclonebench (trained)", pair, sample_test_split(BCB, 200)),
                                 reference_case("devign (trained)", single, sample_test_split(DEVIGN, 200))]}
    encoder = TinyClassifier.from_pretrained(pair).encoder  # the shipped tokenizer.json (it collapses whitespace)
    texts = tricky_texts()
    reference["tokens"] = {"folder": str(pair / "shipped"), "block_size": encoder.block_size, "texts": texts,
                           "ids": [encoder.encode(text) for text in texts]}
    codes = list(dict.fromkeys(bcb_functions().values()))
    indexed, queries = codes[6000:6100], codes[7000:7004]
    functions = [SourceFunction(f"src/T{i}.java", f"t{i}", "java", 2, 9, code) for i, code in enumerate(indexed)]
    model = CloneModel.from_pretrained(pair)  # the export folder: its shipped int8 encoder
    assert model.precision == "int8" and model.folder == pair / "shipped"
    index = CloneIndex(model)
    index.update(functions)
    index.save(tmp / "python-index")
    reference["clones"] = {
        "folder": str(pair), "index": str(tmp / "python-index"), "node_index": str(tmp / "node-index"),
        "functions": [f.__dict__ for f in functions], "queries": queries,
        "query_vectors": [model.embed(q).tolist() for q in queries],
        "index_scores": [index.scores(model.embed(q)).tolist() for q in queries],
        "pair_scores": None, "concat": None,  # int8: the encoder and the pair graph quantise different runs
        "pairs": pairs_reference(index, 64),
    }
    summaries = run_node(reference, tmp, ["test/parity.test.js", "test/clones.test.js"])
    return {"summaries": summaries, "index": index, "model": model, "tmp": tmp, "reference": reference}


def test_node_gives_pythons_ids_labels_and_probabilities_on_trained_students(trained_parity):
    summary = trained_parity["summaries"]["summary-parity"]
    runs = {(r["case"], r["backend"]): r for r in summary["runs"]}
    assert runs[("devign (trained)", "onnx-int8")]["file"] == "model_quantized.onnx"  # the transformers.js layout
    assert runs[("bigclonebench (trained)", "onnx-int8")]["file"] == "model.int8.onnx"
    assert runs[("bigclonebench (trained)", "onnx")]["file"] == "model.optimized.onnx"  # full/, asked for
    assert len(runs) == 4
    check_parity_runs(summary)


def test_node_clone_search_on_the_shipped_int8_encoder_equals_pythons(trained_parity):
    from lit_compressor.clones.index import CloneIndex

    summary = trained_parity["summaries"]["summary-clones"]
    assert summary["max_vector_diff"] <= SCORE_TOLERANCE
    assert summary["max_score_diff_vs_python_index"] <= SCORE_TOLERANCE
    assert summary["node_index"]["embedded"] == len(trained_parity["index"].hashes)
    node_index = CloneIndex.load(trained_parity["tmp"] / "node-index", trained_parity["model"])
    assert node_index.entries == trained_parity["index"].entries
    assert node_index.tokens == trained_parity["index"].tokens  # Node's token counts (the minimum size) are Python's
    check_pairs(trained_parity["summaries"]["summary-pairs"], trained_parity["reference"]["clones"]["pairs"])


@pytest.mark.slow
def test_node_parity_with_the_quick_starts_student(tmp_path):
    """The same checks on the quick start's student (or ``LIT_COMPRESSOR_CLONE_MODEL``), as shipped."""
    from tiny_students import BCB

    from lit_compressor.runtime.classifier import TinyClassifier
    from lit_compressor.runtime.evaluate import sample_test_split

    folder = Path(os.environ.get("LIT_COMPRESSOR_CLONE_MODEL", ROOT / "runs" / "quickstart" / "export"))
    if not (folder / "shipped" / "model.int8.onnx").is_file():
        pytest.skip(f"no exported quick-start student in {folder}: run `lit-compressor compress` or set "
                    "LIT_COMPRESSOR_CLONE_MODEL")
    encoder = TinyClassifier.from_pretrained(folder).encoder
    texts = tricky_texts()
    reference = {"cases": [reference_case("bigclonebench", folder, sample_test_split(BCB, 200))],
                 "tokens": {"folder": str(folder / "shipped"), "block_size": encoder.block_size, "texts": texts,
                            "ids": [encoder.encode(text) for text in texts]}}
    summary = run_node(reference, tmp_path, ["test/parity.test.js"])["summary-parity"]
    print(json.dumps(summary["runs"], indent=1))
    check_parity_runs(summary)
