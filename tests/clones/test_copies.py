"""The copy pass: type-1 and type-2 copies of at least the minimum run, their share, and the CLI's types."""

from __future__ import annotations

import json

import pytest
from tiny_students import exported_student

from lit_compressor.clones.copies import TYPE_1, TYPE_2, CopyMatch, copy_matches, with_copies
from lit_compressor.clones.extract import extract_functions, scan_project
from lit_compressor.clones.index import ClonePair, IndexedFunction
from lit_compressor.clones.model import CloneModel
from lit_compressor.clones.tokens import leaf_tokens
from lit_compressor.commands.clones import clones
from lit_compressor.data.parsing import get_parser

# 81 language tokens; renamed below (identifiers, a type, a primitive type and literals changed)
SUM = """    static long sumPositive(final int[] values, final String label) {
        long total = 0;
        int count = 0;
        for (int i = 0; i < values.length; i++) {
            if (values[i] > 0) {
                total += values[i];
                count++;
            }
        }
        System.out.println(label + ": " + count);
        return total;
    }
"""
RENAMED = (SUM.replace("sumPositive", "addUp").replace("values", "xs").replace("label", "tag")
           .replace("String", "CharSequence").replace("int[]", "short[]").replace('": "', '" = "')
           .replace("total", "acc").replace("count", "n").replace("> 0", "> 1"))
# the same tokens, other layout and comments: a type-1 copy
EXACT = SUM.replace("        long total = 0;", "        // the running sum\n        long total   =   0;")
TAIL = """        if (total > 100) {
            throw new IllegalStateException("too large: " + total);
        }
"""
SHORT = "    int twice(int x) { return x + x; }\n"


def java(*methods: str) -> str:
    return "class Holder {\n" + "\n".join(methods) + "}\n"


def test_tokens_normalise_identifiers_types_and_literals_not_keywords():
    source = b'class A { void f() { /* x */ long a = 0x1F + b.c("s", \'q\', 2.5, true, null); } }'
    tree = get_parser("java").parse(source)
    method = tree.root_node.children[0].child_by_field_name("body").named_children[0]
    tokens = leaf_tokens(method)
    assert [normal for normal, _ in tokens] == ["ID", "ID", "(", ")", "{", "ID", "ID", "=", "NUM", "+", "ID", ".", "ID",
                                                "(", "STR", ",", "CHR", ",", "NUM", ",", "BOOL", ",", "null", ")",
                                                ";", "}"]
    assert [raw for _, raw in tokens][:9] == ["void", "f", "(", ")", "{", "long", "a", "=", "0x1F"]


def test_a_renamed_copy_is_type_2_and_an_exact_copy_type_1():
    functions = extract_functions(java(SUM, RENAMED, EXACT), "java", "Holder.java").functions
    assert len(functions[0].tokens) == 81
    matches = {(m.first, m.second): m for m in copy_matches(functions)}
    assert matches[(0, 1)].kind == TYPE_2 and matches[(0, 1)].covered == 1.0
    assert matches[(1, 2)].kind == TYPE_2 and matches[(1, 2)].covered == 1.0
    assert matches[(0, 2)].kind == TYPE_1 and matches[(0, 2)].covered == 1.0
    assert len(matches) == 3


def test_the_share_is_the_smaller_functions_tokens_inside_shared_runs():
    extended = RENAMED.replace("        return acc;", TAIL + "        return acc;")
    functions = extract_functions(java(SUM, extended), "java", "Holder.java").functions
    small, large = (len(f.tokens) for f in functions)
    assert large > small == 81
    # the two agree on every normalised token before the inserted block and on the 5 after it ("return ID ; }"
    # is 4, with the block's own closing "}" 5): only the run before the block is >= 50 tokens long
    prefix = 0
    while functions[0].tokens[prefix][0] == functions[1].tokens[prefix][0]:
        prefix += 1
    assert prefix >= 50 and small - prefix < 50
    (match,) = copy_matches(functions)
    assert match.kind == TYPE_2 and match.covered == pytest.approx(prefix / small)
    # a longer minimum run than the shared prefix: no copy
    assert copy_matches(functions, window=prefix + 1) == []


def test_functions_under_the_minimum_and_nested_ones_are_not_reported():
    functions = extract_functions(java(SHORT, SHORT, SUM), "java", "Holder.java").functions
    assert len(functions[0].tokens) == 13 and [(m.first, m.second) for m in copy_matches(functions)] == []
    assert [(m.first, m.second, m.kind) for m in copy_matches(functions, window=13)] == [(0, 1, TYPE_1)]
    outer = "    Object make() {\n        return new Object() {\n" + SUM.replace("static ", "") + "        };\n    }\n"
    nested = extract_functions(java(outer), "java", "Holder.java").functions
    assert [f.name for f in nested] == ["make", "sumPositive"] and copy_matches(nested) == []


def test_a_nested_function_is_its_parents_stretch_and_never_paired_with_it():
    # make() holds an anonymous class whose method is SUM; a top-level SUM follows in the same file
    outer = "    Object make() {\n        return new Object() {\n" + SUM.replace("static ", "") + "        };\n    }\n"
    functions = extract_functions(java(outer, SUM), "java", "Holder.java").functions
    assert [(f.name, len(f.tokens)) for f in functions] == [("make", 94), ("sumPositive", 80), ("sumPositive", 81)]
    found = {(m.first, m.second): (m.kind, m.covered) for m in copy_matches(functions)}
    # the nested copy pairs with the top-level one (all but `static` mapped: 80 of its 80, 80 of SUM's 81), and
    # so does make(), 80 of whose 94 tokens are that copy; make() and the method inside it never pair
    assert found == {(1, 2): (TYPE_1, 1.0), (0, 2): (TYPE_1, 80 / 81)}


SCALE = """    void scale(int[] values) {
        if (values == null) {
            throw new IllegalArgumentException("no values");
        }
        for (int i = 0; i < values.length; i++) {
            values[i] = values[i] * 2 + 1;
        }
        System.out.println(values.length);
    }
"""
# the same loop and print after another guard
GROW = SCALE.replace("scale", "grow").replace("""        if (values == null) {
            throw new IllegalArgumentException("no values");""", """        while (values.length < 3) {
            values = java.util.Arrays.copyOf(values, 3);""")
TOTAL = """    int sum(int[] values) {
        int total = 0;
        for (int i = 0; i < values.length; i++) {
            total += values[i];
        }
        return total;
    }
"""
# renamed, and another return
OTHER_TOTAL = TOTAL.replace("total", "sum").replace("return sum;", "return sum > 0 ? sum : -sum;")


def test_a_run_across_two_methods_pairs_them_with_their_aligned_counterparts_only():
    functions = (extract_functions(java(SCALE, TOTAL), "java", "A.java").functions
                 + extract_functions(java(GROW, OTHER_TOTAL), "java", "B.java").functions)
    assert [(f.name, len(f.tokens)) for f in functions] == [("scale", 68), ("sum", 43), ("grow", 78), ("sum", 50)]
    # scale's last 47 tokens (from the guard's closing ") ; }") are grow's last 47, and the first 41 of the sums
    # ("... return ID") agree: one run of 88, though neither function shares 50 tokens with its counterpart alone
    matches = copy_matches(functions)
    assert [(m.first, m.second, m.kind, m.covered) for m in matches] == [(1, 3, TYPE_2, 41 / 43),
                                                                        (0, 2, TYPE_1, 47 / 68)]
    assert copy_matches(functions, window=88) == matches
    # a run one token shorter than the window: nothing
    assert copy_matches(functions, window=89) == []
    # the crossed pairs (scale ~ the other sum, sum ~ grow) share no aligned token: never pairs
    assert {(m.first, m.second) for m in copy_matches(functions, window=20)} == {(0, 2), (1, 3)}


def test_a_run_must_map_half_of_each_function():
    # grow with six more statements before its guard: the same run of 88 maps 47 of its 138 tokens, under half
    longer = GROW.replace("        while", "        values[0] = values[1];\n" * 6 + "        while")
    functions = (extract_functions(java(SCALE, TOTAL), "java", "A.java").functions
                 + extract_functions(java(longer, OTHER_TOTAL), "java", "B.java").functions)
    assert len(functions[2].tokens) == 78 + 6 * 10
    assert [(m.first, m.second, m.covered) for m in copy_matches(functions)] == [(1, 3, 41 / 43)]


def test_clones_cli_reports_copies_with_their_type_and_share(tmp_path):
    folder = exported_student("pair", "mean", "interaction")
    project = tmp_path / "project"
    project.mkdir()
    (project / "A.java").write_text(java(SUM, SHORT))
    (project / "B.java").write_text(java(RENAMED, EXACT, SHORT))
    # threshold 1: the model reports nothing, so every pair below is a copy's
    result = clones(folder, project, threshold=1.0, output=tmp_path / "clones.json", show=0, min_tokens=0)
    written = json.loads((tmp_path / "clones.json").read_text())
    assert written["copies"] is True and written["copy_tokens"] == 50
    kinds = {(p["first"]["path"], p["first"]["name"], p["second"]["path"], p["second"]["name"]):
             (p["type"], p["covered"]) for p in written["pairs"]}
    # SHORT follows SUM in A.java and EXACT in B.java: the run over both pairs the two SHORTs too
    assert kinds == {("A.java", "sumPositive", "B.java", "sumPositive"): ("type 1", 1.0),
                     ("A.java", "sumPositive", "B.java", "addUp"): ("type 2", 1.0),
                     ("B.java", "addUp", "B.java", "sumPositive"): ("type 2", 1.0),
                     ("A.java", "twice", "B.java", "twice"): ("type 1", 1.0)}
    assert written["kinds"] == {"type 1": 2, "type 2": 2, "semantic": 0}
    assert [(c["size"], c["types"]) for c in written["classes"]] == [(3, {"type 1": 1, "type 2": 2}),
                                                                   (2, {"type 1": 1})]
    # a copy the model did not report still carries the model's score of the pair
    model = CloneModel.from_pretrained(folder)
    functions = {(f.path, f.start_line): f.code for f in scan_project(project).functions}
    for pair in written["pairs"]:
        a, b = (functions[(pair[end]["path"], pair[end]["start_line"])] for end in ("first", "second"))
        expected = (model.pair_probability(a, b) + model.pair_probability(b, a)) / 2
        assert pair["score"] == pytest.approx(expected, abs=1e-5)
    assert result["pairs"][0]["type"] == "type 1"  # most covered first; of equal shares type 1
    # a function under the minimum size is in no copy pair, as in none of the model's
    model_tokens = {f: len(model.token_ids(java(code))) for f, code in (("twice", SHORT), ("sum", SUM))}
    small = model_tokens["twice"] + 1
    assert small <= model_tokens["sum"]
    sized = clones(folder, project, threshold=1.0, show=0, min_tokens=small)
    assert sorted((p["first"]["name"], p["second"]["name"]) for p in sized["pairs"]) == [
        ("addUp", "sumPositive"), ("sumPositive", "addUp"), ("sumPositive", "sumPositive")]
    off = clones(folder, project, threshold=1.0, show=0, min_tokens=0, copies=False)
    assert off["pairs"] == [] and off["classes"] == [] and off["copy_tokens"] is None


def test_copies_covered_alike_rank_the_longer_copy_first_then_the_model_s_score():
    def function(path: str, lines: int) -> IndexedFunction:
        return IndexedFunction(path, "f", "java", 10, 9 + lines, path)

    entries = [function("a", 5), function("b", 5), function("c", 40), function("d", 40), function("e", 40),
               function("f", 40)]
    scores = {("a", "b"): 0.9, ("c", "d"): 0.2, ("e", "f"): 0.6}

    def measure(first: IndexedFunction, second: IndexedFunction) -> ClonePair:
        score = scores[(first.path, second.path)]
        return ClonePair(first, second, score, (score, score))

    matches = [CopyMatch(0, 1, TYPE_2, 1.0), CopyMatch(2, 3, TYPE_2, 1.0), CopyMatch(4, 5, TYPE_2, 1.0)]
    ranked = with_copies([], matches, entries, measure)
    assert [(p.first.path, p.second.path) for p in ranked] == [("e", "f"), ("c", "d"), ("a", "b")]
