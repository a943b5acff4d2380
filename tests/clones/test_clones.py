"""Clone search: index scores equal the pair model's, incremental index, tree-sitter extraction, the CLI."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from tiny_students import BCB, bcb_functions, exported_student

from lit_compressor.clones.extract import SourceFunction, extract_functions, scan_project
from lit_compressor.clones.index import CloneIndex, IndexedFunction
from lit_compressor.clones.model import CloneModel, code_hash
from lit_compressor.commands.clones import clones
from lit_compressor.core.errors import UserError
from lit_compressor.runtime.classifier import TinyClassifier

SCORE_TOLERANCE = 1e-5


def sources(codes: list[str], prefix: str = "f") -> list[SourceFunction]:
    return [SourceFunction(f"{prefix}{i}.java", f"{prefix}{i}", "java", 1, 1, code) for i, code in enumerate(codes)]


@pytest.fixture(scope="module", params=[("first", "concat"), ("mean", "interaction")], ids=["concat", "interaction"])
def pair_export(request) -> Path:
    return exported_student("pair", *request.param)


def test_index_scores_equal_the_pair_models_predictions(pair_export):
    codes = list(bcb_functions().values())
    indexed, queries = codes[1000:1040], codes[2000:2003]
    model = CloneModel.from_pretrained(pair_export)
    index = CloneIndex(model)
    index.update(sources(indexed))
    pair_model = TinyClassifier.from_pretrained(pair_export, backend="onnx")
    worst = 0.0
    for query in queries:
        expected = np.array([p.probabilities[1] for p in pair_model.predict_batch([(query, f) for f in indexed], 1)])
        worst = max(worst, float(np.abs(index.scores(model.embed(query)) - expected).max()))
        top = index.search(query, top_k=5)
        assert [m.score for m in top] == pytest.approx(sorted(expected, reverse=True)[:5], abs=SCORE_TOLERANCE)
    assert worst <= SCORE_TOLERANCE, worst
    assert expected.std() > 100 * SCORE_TOLERANCE  # scores vary far more than the tolerance
    # all pairs: both orders of every pair are the pair model's predictions
    pairs = {(p.first.path, p.second.path): p for p in index.pairs(threshold=0.0, per_function=None)}
    assert len(pairs) >= len(indexed) * (len(indexed) - 1) // 2 - 5  # (duplicate functions pair up once)
    sample = random.Random(0).sample(sorted(pairs), 8)
    rows = [(indexed[int(a[1:-5])], indexed[int(b[1:-5])]) for a, b in sample]
    forward = [p.probabilities[1] for p in pair_model.predict_batch(rows, 1)]
    backward = [p.probabilities[1] for p in pair_model.predict_batch([(b, a) for a, b in rows], 1)]
    for key, f, b in zip(sample, forward, backward, strict=True):
        assert pairs[key].scores == pytest.approx((f, b), abs=SCORE_TOLERANCE)
        assert pairs[key].score == pytest.approx((f + b) / 2, abs=SCORE_TOLERANCE)


def test_int8_encoder_scores_stay_close_to_the_int8_pair_model():
    """Dynamic int8 quantises each run's activations with that run's range, so a pair graph (both
    functions in one run) and the encoder graph (one function per run) differ slightly."""
    folder = exported_student("pair", "mean", "interaction")
    codes = list(bcb_functions().values())[3000:3040]
    rows = list(zip(codes[:20], codes[20:], strict=True))
    model = CloneModel.from_pretrained(folder, precision="int8")
    int8, fp32 = ([p.probabilities[1] for p in TinyClassifier.from_pretrained(folder, backend).predict_batch(rows, 1)]
                  for backend in ("onnx-int8", "onnx"))
    got = np.array([model.pair_probability(a, b) for a, b in rows])
    search_error, quantisation_error = np.abs(got - int8).max(), np.abs(np.subtract(int8, fp32)).max()
    # the same order as quantisation's own error (this tiny student's rescaled head magnifies both)
    assert 1e-6 < search_error <= 2 * quantisation_error, (search_error, quantisation_error)


def test_index_updates_by_content_hash_and_round_trips(tmp_path):
    folder = exported_student("pair", "mean", "interaction")
    model = CloneModel.from_pretrained(folder)
    codes = list(dict.fromkeys(bcb_functions().values()))[500:530]
    calls = []
    embed = model.embed
    model.embed = lambda code: calls.append(code) or embed(code)
    index = CloneIndex(model)
    assert index.update(sources(codes)).embedded == 30 and len(calls) == 30
    changed = sources(codes[:-1])
    changed[0] = SourceFunction("moved/f0.java", "f0", "java", 3, 9, "  " + codes[0].replace(" ", "\n\t "))
    changed[1] = SourceFunction("f1.java", "f1", "java", 1, 1, codes[1] + " // edited")
    changed.append(SourceFunction("new.java", "new", "java", 1, 1, codes[-1] + "\nint x;"))
    calls.clear()
    stats = index.update(changed)
    assert (stats.embedded, stats.reused, stats.dropped) == (2, 28, 2)
    assert calls == [changed[1].code, changed[-1].code]  # whitespace-only change: same hash, no encoding
    assert index.entries[0].path == "moved/f0.java" and index.entries[0].hash == code_hash(codes[0])
    calls.clear()
    index.add(SourceFunction("copy.java", "copy", "java", 1, 1, codes[5]))
    assert calls == [] and len(index) == 31

    index.save(tmp_path / "index")
    loaded = CloneIndex.load(tmp_path / "index", CloneModel.from_pretrained(folder))
    assert loaded.entries == index.entries and np.array_equal(loaded.vectors, index.vectors)
    assert loaded.search(codes[7], 3) == index.search(codes[7], 3)
    with pytest.raises(UserError, match="another model"):
        CloneIndex.load(tmp_path / "index", CloneModel.from_pretrained(exported_student("pair", "first", "concat")))
    vectors = tmp_path / "index" / "vectors.f32"
    vectors.write_bytes(vectors.read_bytes()[:-4])
    with pytest.raises(UserError, match="vectors.f32"):
        CloneIndex.load(tmp_path / "index", model)


JAVA = """package p;
/** A class. */
public class A {
    /** Javadoc is not part of the method. */
    @Override
    public int f(int a) { return a + 1; }
    A() { this(1); }
    abstract void g();
    void h() {
        Runnable r = new Runnable() { public void run() { h(); } };
    }
}
"""

C = """#include <stdio.h>
static char **names(int n) { return 0; }
int (*pick(void))(int) { return 0; }
void broken(int a) { int x = ; }
int main(void) { return names(1) == 0; }
"""


def test_extraction_of_java_and_c_functions():
    java = extract_functions(JAVA, "java")
    assert [(f.name, f.start_line, f.end_line) for f in java.functions] == [
        ("f", 5, 6), ("A", 7, 7), ("h", 9, 11), ("run", 10, 10)]
    assert java.functions[0].code.startswith("@Override") and java.error_line is None
    c = extract_functions(C, "c")
    assert [f.name for f in c.functions] == ["names", "pick", "main"]
    assert (c.error_line, c.broken) == (4, 1)


def test_scan_lists_and_skips_bad_files(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "A.java").write_text(JAVA)
    (tmp_path / "src" / "m.c").write_text(C)
    (tmp_path / "src" / "latin1.java").write_bytes("class B { void f() { String s = \"\xe9\"; } }".encode("latin-1"))
    (tmp_path / "src" / "notes.txt").write_text("void f() {}")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "X.java").write_text("class X { void x() {} }")
    locked = tmp_path / "src" / "Locked.java"
    locked.write_text("class L { void l() {} }")
    locked.chmod(0)
    scan = scan_project(tmp_path)
    assert scan.files == 4
    expected = ["A", "f", "f", "h", "main", "names", "pick", "run"] + (["l"] if os.geteuid() == 0 else [])
    assert sorted(f.name for f in scan.functions) == sorted(expected)  # root reads files whatever their mode
    reasons = {s.path: s.reason for s in scan.skipped}
    assert reasons["src/latin1.java"] == ("not UTF-8 text (first at line 1): read with replacement characters, "
                                          "its functions kept")
    latin = next(f for f in scan.functions if f.path == "src/latin1.java")
    assert latin.code == 'void f() { String s = "\ufffd"; }'
    assert reasons["src/m.c"] == "syntax error at line 4: kept 3 of 4 functions"
    if os.geteuid() != 0:
        assert reasons["src/Locked.java"].startswith("cannot be read")
    assert [f.language for f in scan_project(tmp_path, ["c"]).functions] == ["c"] * 3
    with pytest.raises(UserError, match="no such file"):
        scan_project(tmp_path / "missing")


def write_java_project(folder: Path, pairs: list[tuple[str, str, int]]) -> None:
    """Each function of ``pairs`` as ``F<idx>.java``, wrapped in a class."""
    functions = bcb_functions()
    folder.mkdir(parents=True, exist_ok=True)
    for idx in sorted({i for a, b, _ in pairs for i in (a, b)}):
        (folder / f"F{idx}.java").write_text(f"public class F{idx} {{\n{functions[idx]}\n}}\n")


def test_pairs(count: int, seed: int) -> list[tuple[str, str, int]]:
    lines = (BCB / "test.txt").read_text().splitlines()
    chosen = random.Random(seed).sample(lines, count)
    return [(a, b, int(label)) for a, b, label in (line.split("\t") for line in chosen)]


test_pairs.__test__ = False  # a helper, not a test


def cli_scores(result: dict, project: Path, pairs: list[tuple[str, str, int]]) -> dict[tuple[str, str], float]:
    """The CLI's score of each known pair (0 when not reported), matched by file: each file's first method."""
    outer = {}
    for function in scan_project(project).functions:
        if function.path not in outer or function.start_line < outer[function.path]:
            outer[function.path] = function.start_line
    found = {}
    for pair in result["pairs"]:
        first, second = pair["first"], pair["second"]
        if outer[first["path"]] == first["start_line"] and outer[second["path"]] == second["start_line"]:
            found[tuple(sorted((first["path"][1:-5], second["path"][1:-5])))] = pair["score"]
    return {(a, b): found.get(tuple(sorted((a, b))), 0.0) for a, b, _ in pairs}


def test_clones_cli_finds_the_known_pairs_like_the_pair_model(tmp_path):
    folder = exported_student("pair", "mean", "interaction")
    pairs = test_pairs(40, seed=3)
    write_java_project(tmp_path / "project", pairs)
    result = clones(folder, tmp_path / "project", output=tmp_path / "clones.json", per_function=None, show=3,
                    min_tokens=0, copies=False)
    assert json.loads((tmp_path / "clones.json").read_text())["functions"] == result["functions"]
    assert result["skipped"] == [] and result["index_update"]["embedded"] > 0
    scores = cli_scores(result, tmp_path / "project", pairs)
    pair_model = TinyClassifier.from_pretrained(folder, backend="onnx")
    functions = bcb_functions()
    forward = pair_model.predict_batch([(functions[a], functions[b]) for a, b, _ in pairs], 1)
    backward = pair_model.predict_batch([(functions[b], functions[a]) for a, b, _ in pairs], 1)
    agree = 0
    for (a, b, _), f, r in zip(pairs, forward, backward, strict=True):
        mean = (f.probabilities[1] + r.probabilities[1]) / 2
        if mean >= 0.5:
            assert scores[(a, b)] == pytest.approx(mean, abs=SCORE_TOLERANCE)
        else:
            assert scores[(a, b)] == 0.0
        agree += (mean >= 0.5) == (f.label == 1)
    assert agree >= 0.8 * len(pairs)  # the symmetric score mostly agrees with the one-order prediction
    again = clones(folder, tmp_path / "project", per_function=None, show=0, min_tokens=0, copies=False)
    bounded = clones(folder, tmp_path / "project", per_function=1, show=0, min_tokens=0, copies=False)
    assert 0 < len(bounded["pairs"]) <= again["functions"] <= len(again["pairs"])
    assert again["index_update"]["embedded"] == 0 and again["index_update"]["reused"] > 0
    assert again["threshold"] == 0.5 and again["prior"] is None  # no calibration.json: the raw score's default
    assert len(again["pairs"]) == len(result["pairs"])


def test_clones_cli_adds_the_graphs_an_older_export_lacks(tmp_path):
    folder = tmp_path / "old-export"
    shutil.copytree(exported_student("pair", "mean", "interaction"), folder)
    for name in ("encoder.onnx", "encoder.optimized.onnx", "encoder.int8.onnx", "head.onnx", "head_prepare.onnx",
                 "clone_graphs.json"):
        (folder / name).unlink()
    with pytest.raises(UserError, match="encoder-only graph"):
        CloneModel.from_pretrained(folder)
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "A.java").write_text(JAVA)
    result = clones(folder, tmp_path / "project", threshold=0.0, show=0, min_tokens=0)
    assert all((folder / name).is_file() for name in ("encoder.optimized.onnx", "head.onnx", "head_prepare.onnx"))
    assert result["functions"] == 4 and len(result["pairs"]) == 6  # every pair of 4 functions, at threshold 0


def test_clones_cli_runs_on_a_shipped_folder_as_it_is(tmp_path):
    """The shipped folder of a student trained for real: int8 encoder and head graphs, nothing written into it."""
    from trained_students import trained_student

    shipped = trained_student("pair") / "shipped"
    before = {p.name: p.stat().st_mtime_ns for p in shipped.iterdir()}
    pairs = test_pairs(12, seed=7)
    write_java_project(tmp_path / "project", pairs)
    result = clones(shipped, tmp_path / "project", threshold=0.0, per_function=None, show=0, min_tokens=0, copies=False)
    assert result["precision"] == "int8" and {p.name: p.stat().st_mtime_ns for p in shipped.iterdir()} == before
    scores = cli_scores(result, tmp_path / "project", pairs)
    model, functions = CloneModel.from_pretrained(shipped), bcb_functions()
    for a, b, _ in pairs:
        both = (model.pair_probability(functions[a], functions[b]) + model.pair_probability(functions[b], functions[a]))
        assert scores[(a, b)] == pytest.approx(both / 2, abs=SCORE_TOLERANCE)


def test_clones_cli_errors_are_clear(tmp_path):
    single = exported_student("single", "mean")
    (tmp_path / "p").mkdir()
    with pytest.raises(UserError, match="one function at a time"):
        clones(single, tmp_path / "p")
    with pytest.raises(UserError, match="threshold"):
        clones(single, tmp_path / "p", threshold=2.0)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LIT_COMPRESSOR_DEBUG", None)
    result = subprocess.run([sys.executable, "-m", "lit_compressor", "clones", "--model", str(single),
                             "--project", str(tmp_path / "missing")], capture_output=True, text=True, env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "one function at a time" in result.stderr


@pytest.mark.slow
def test_clones_cli_finds_known_pairs_with_the_students_accuracy(tmp_path):
    """With a trained pair student (the quick start's, or ``LIT_COMPRESSOR_CLONE_MODEL``), the CLI's
    decisions on 200 known BigCloneBench test pairs are as accurate as the pair model's."""
    folder = Path(os.environ.get("LIT_COMPRESSOR_CLONE_MODEL", ROOT / "runs" / "quickstart" / "export"))
    if not any((folder / name).is_file() for name in ("full/model.safetensors", "model.safetensors")):
        pytest.skip(f"no trained pair student exported with every form in {folder}: run `lit-compressor compress` "
                    "or set LIT_COMPRESSOR_CLONE_MODEL")
    pairs = test_pairs(200, seed=5)
    project = tmp_path / "project"
    write_java_project(project, pairs)
    result = clones(folder, project, threshold=0.5, per_function=None, output=tmp_path / "clones.json", show=5,
                    precision="fp32", min_tokens=0, copies=False)
    scores = cli_scores(result, project, pairs)
    labels = np.array([label for _, _, label in pairs])
    cli = np.array([scores[(a, b)] >= 0.5 for a, b, _ in pairs])
    functions = bcb_functions()
    rows = [(functions[a], functions[b]) for a, b, _ in pairs]
    accuracy = {"clones CLI (mean of both orders, fp32)": float((cli == labels).mean())}
    for backend in ("onnx", "onnx-int8"):
        model = TinyClassifier.from_pretrained(folder, backend=backend)
        predicted = np.array([p.label for p in model.predict_batch(rows, 1)])
        accuracy[f"pair model {backend} (file order)"] = float((predicted == labels).mean())
    print(f"{len(pairs)} pairs, {result['functions']} functions, skipped {result['skipped']}: {accuracy}")
    assert abs(accuracy["clones CLI (mean of both orders, fp32)"] - accuracy["pair model onnx (file order)"]) <= 0.03
    assert accuracy["clones CLI (mean of both orders, fp32)"] >= 0.6


def test_top_k_equals_a_full_stable_sort():
    """``search`` sorts only the best ``top_k`` scores; ties and thresholds as a full sort gives them."""

    class Scored(CloneIndex):
        def __init__(self, scores):  # no model: only the ranking is under test
            self.fixed, self.entries = scores, list(range(len(scores)))

        def scores(self, vector):
            return self.fixed

    rng = np.random.default_rng(0)
    for _ in range(300):
        scores = rng.integers(0, 5, int(rng.integers(1, 50))) / 4.0
        top_k, threshold = int(rng.integers(1, 60)), float(rng.choice([0.0, 0.3]))
        full = [int(i) for i in np.argsort(-scores, kind="stable")[:top_k] if scores[i] >= threshold]
        assert [m.function for m in Scored(scores).search_vector(None, top_k, threshold)] == full


def test_pairs_keep_each_functions_best_partners():
    """``pairs(per_function=k)`` keeps exactly the pairs among some function's k best (ties: the earlier
    function), and ``per_function=None`` every pair above the threshold; checked on made-up scores."""

    class TableHead:  # row i's vector is [i]; the score of (i, j) is table[i, j]
        def __init__(self, table):
            self.table = table

        def probabilities(self, query, vectors, prepared=None, query_first=True):
            i, js = int(query[0]), vectors[:, 0].astype(int)
            return self.table[i, js] if query_first else self.table[js, i]

    rng = np.random.default_rng(1)
    for _ in range(200):
        n, k, threshold = int(rng.integers(1, 25)), int(rng.integers(1, 6)), float(rng.choice([0.0, 0.4]))
        table = rng.integers(0, 6, (n, n)) / 5.0
        index = object.__new__(CloneIndex)
        index.head, index.hashes = TableHead(table), [str(r) for r in range(n)]
        index.vectors, index._prepared = np.arange(n, dtype=np.float32)[:, None], np.zeros((2, n, 1), np.float32)
        index.entries = [IndexedFunction(f"f{r}", "f", "java", 1, 1, str(r)) for r in range(n)]
        index._entry_rows, index._tokens = np.arange(n), np.full(n, 10)
        mean = (table + table.T) / 2
        best = set()
        for r in range(n):
            for _, j in sorted((-mean[r, j], j) for j in range(n) if j != r and mean[r, j] >= threshold)[:k]:
                best.add((f"f{min(r, j)}", f"f{max(r, j)}"))
        assert {(p.first.path, p.second.path) for p in index.pairs(threshold, k)} == best
        every = {(f"f{a}", f"f{b}") for a in range(n) for b in range(a + 1, n) if mean[a, b] >= threshold}
        assert {(p.first.path, p.second.path) for p in index.pairs(threshold, None)} == every
