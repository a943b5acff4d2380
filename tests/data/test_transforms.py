"""Semantic-preserving transformations: exact outputs on hand-made functions, and real functions of both tasks."""

from __future__ import annotations

import itertools
import json
import re

import pytest
from conftest import SHARED_DATA

from lit_compressor.core.errors import UserError
from lit_compressor.data.names import C_KEYWORDS, JAVA_KEYWORDS, words
from lit_compressor.data.parsing import get_parser, iter_nodes
from lit_compressor.data.scopes import function_node
from lit_compressor.data.transforms import TRANSFORMATIONS, language_of, transform, transform_all

JAVA = """int size(int n, List<String> items) {
    int total = 0;
    for (String item : items) { total += item.length(); }
    this.n = n;
    Runnable r = () -> System.out.println("n = " + n); // n
    label: while (total > n) { break label; }
    return size(n - 1, items) + other.size(n, items) + size(n) + total;
}"""

C = """static int sum(struct list *list, int n)
{
    int i, total = 0;
    for (i = 0; i < n; i++) {
        int n = list->n;   /* shadows the parameter */
        total += list->items[i] + n;
    }
    return total + sum(list->next, n - 1);
}"""


# -- known input, known output (new names fixed by hand) --------------------------------------------------------

def test_java_parameter_renaming_follows_scopes_not_fields_strings_or_comments():
    result = transform(JAVA, "java", "rename_parameters", names={"n": "count", "items": "values"})
    assert result.status == "changed"
    assert result.code == """int size(int count, List<String> values) {
    int total = 0;
    for (String item : values) { total += item.length(); }
    this.n = count;
    Runnable r = () -> System.out.println("n = " + count); // n
    label: while (total > count) { break label; }
    return size(count - 1, values) + other.size(count, values) + size(count) + total;
}"""


def test_java_method_renaming_renames_its_own_calls_only():
    # `other.size(..)` is another object's method, `size(n)` another overload (one argument, not two)
    result = transform(JAVA, "java", "rename_method", names={"size": "countItems"})
    assert result.code == JAVA.replace("int size(", "int countItems(").replace(
        "return size(n - 1", "return countItems(n - 1")


def test_java_local_renaming_covers_loop_lambda_and_plain_locals_but_not_labels():
    result = transform(JAVA, "java", "rename_locals", names={"total": "sum", "item": "entry", "r": "task"})
    assert result.code == """int size(int n, List<String> items) {
    int sum = 0;
    for (String entry : items) { sum += entry.length(); }
    this.n = n;
    Runnable task = () -> System.out.println("n = " + n); // n
    label: while (sum > n) { break label; }
    return size(n - 1, items) + other.size(n, items) + size(n) + sum;
}"""


def test_java_local_out_of_scope_is_a_field_and_keeps_its_name():
    code = "void f() {\n    { int n = 1; use(n); }\n    n = 2;\n}"
    result = transform(code, "java", "rename_locals", names={"n": "count"})
    assert result.code == "void f() {\n    { int count = 1; use(count); }\n    n = 2;\n}"


def test_java_anonymous_class_members_are_left_alone():
    code = ("void f(int x) {\n    new Thread() { int x; public void run() { x = 1; } };\n"
            "    new Thread() { public void run() { print(x); } };\n}")
    result = transform(code, "java", "rename_parameters", names={"x": "value"})
    # the first class's own field `x` shadows the parameter; the second class reads the parameter
    assert result.code == ("void f(int value) {\n    new Thread() { int x; public void run() { x = 1; } };\n"
                           "    new Thread() { public void run() { print(value); } };\n}")


def test_c_parameter_renaming_respects_shadowing_and_member_names():
    result = transform(C, "c", "rename_parameters", names={"list": "head", "n": "count"})
    assert result.code == """static int sum(struct list *head, int count)
{
    int i, total = 0;
    for (i = 0; i < count; i++) {
        int n = head->n;   /* shadows the parameter */
        total += head->items[i] + n;
    }
    return total + sum(head->next, count - 1);
}"""


def test_c_local_and_method_renaming():
    locals_ = transform(C, "c", "rename_locals", names={"i": "k", "total": "acc", "n": "value"})
    assert locals_.code == """static int sum(struct list *list, int n)
{
    int k, acc = 0;
    for (k = 0; k < n; k++) {
        int value = list->n;   /* shadows the parameter */
        acc += list->items[k] + value;
    }
    return acc + sum(list->next, n - 1);
}"""
    method = transform(C, "c", "rename_method", names={"sum": "add_items"})
    assert method.code == C.replace("int sum(", "int add_items(").replace("+ sum(", "+ add_items(")


def test_c_names_a_macro_may_use_as_members_are_not_renamed():
    code = ("static void f(XenDevice *xendev, int n)\n{\n    Dev *d = container_of(xendev, Dev, xendev);\n"
            "    d->count = MAX(n, 2);\n}")
    result = transform(code, "c", "rename_parameters", names={"xendev": "device", "n": "limit"})
    assert result.code == code.replace("int n", "int limit").replace("MAX(n,", "MAX(limit,")


def test_comparison_swap_mirrors_side_effect_free_comparisons_only():
    code = "int f(int a, int b) {\n    if (next() < b) return 0;\n    return a <= b + 1;\n}"
    result = transform(code, "java", "swap_comparisons", seed=3)
    assert result.code == "int f(int a, int b) {\n    if (next() < b) return 0;\n    return b + 1 >= a;\n}"
    c_code = "int f(int *p) {\n    return NULL == p;\n}"
    assert transform(c_code, "c", "swap_comparisons").code == "int f(int *p) {\n    return p == NULL;\n}"


def test_comparison_swap_keeps_precedence():
    # `a == b == c` is `(a == b) == c`: swapping the outer one would regroup it, so only the inner one is swapped
    code = "boolean f(boolean c, int a, int b) {\n    return a == b == c;\n}"
    assert transform(code, "java", "swap_comparisons").code == (
        "boolean f(boolean c, int a, int b) {\n    return b == a == c;\n}")


JAVA_DEAD = re.compile(r'^    (int [a-z][A-Za-z]* = 0;|boolean [a-z][A-Za-z]* = false;|String [a-z][A-Za-z]* = "";'
                       r'|long [a-z][A-Za-z]* = 0L;|if \(false\) \{ System\.out\.println\("[^"]+"\); \})$')


def test_dead_code_is_one_statement_before_a_statement_never_after_the_return():
    code = "int f(int a) {\n    return a;\n}"
    seen = set()
    for seed in range(12):
        result = transform(code, "java", "dead_code", seed=seed)
        lines = result.code.split("\n")
        assert result.status == "changed"
        assert lines[0] == "int f(int a) {" and lines[2:] == ["    return a;", "}"]
        assert JAVA_DEAD.match(lines[1]), lines[1]
        seen.add(lines[1].split()[0])
    assert "if" in seen and len(seen) >= 3  # both kinds, several declarations


def test_dead_code_in_c_never_splits_an_else_from_its_branch_across_a_directive():
    code = ("void f(int *d, int w)\n{\n    int i = 0;\n#if !FAST\n    if (w) {\n        d[0] = 0;\n    } else\n"
            "#endif\n    for (; i < w; i++)\n        d[i] = 0;\n}")
    for seed in range(8):
        result = transform(code, "c", "dead_code", seed=seed)
        assert result.code.startswith("void f(int *d, int w)\n{\n    ")
        assert result.code.endswith(code.split("{\n", 1)[1])  # inserted before `int i = 0;`, the only safe place


def test_a_constructor_keeps_its_name_and_its_super_call_comes_first():
    code = "Foo(int a) {\n    super(a);\n    this.a = a;\n}"
    assert transform(code, "java", "rename_method").status == "not_applicable"
    for seed in range(6):
        assert transform(code, "java", "dead_code", seed=seed).code.split("\n")[1] == "    super(a);"


def test_drawn_names_are_natural_new_and_seeded():
    first = transform(JAVA, "java", "rename_parameters", seed=0)
    assert first.code == transform(JAVA, "java", "rename_parameters", seed=0).code
    new = words(first.code) - words(JAVA)
    assert len(new) == 2 and all(re.fullmatch(r"[a-z]+([A-Z][a-z]+)?", name) for name in new)
    assert not new & JAVA_KEYWORDS
    others = {transform(JAVA, "java", "rename_parameters", seed=s).code for s in range(1, 6)}
    assert len(others - {first.code}) >= 4
    c_method = transform(C, "c", "rename_method", seed=0).code
    name = re.match(r"static int (\w+)\(", c_method).group(1)
    assert re.fullmatch(r"[a-z]+_[a-z]+", name) and name not in C_KEYWORDS and name != "sum"


def test_not_applicable_unparsed_and_unknown():
    assert transform("void f() { return; }", "java", "rename_parameters") .status == "not_applicable"
    garbage = "this is ) not ( code"
    assert transform(garbage, "c", "rename_locals").code == garbage
    codes, stats = transform_all([garbage, C, "int f(void) { return 0; }"], "c", "rename_locals")
    assert codes[0] == garbage and codes[2] == "int f(void) { return 0; }" and codes[1] != C
    assert stats.to_dict() == {"functions": 3, "changed": 1, "not_applicable": 1, "unparsed": 1, "refused": 0,
                               "partial": 0}
    with pytest.raises(UserError, match="unknown transformation 'rename_classes'"):
        transform(C, "c", "rename_classes")
    assert language_of("bigclonebench") == "java" and language_of("devign") == "c"
    with pytest.raises(UserError, match="--language"):
        language_of("jsonl")


def test_a_function_with_a_local_syntax_error_is_transformed_around_it():
    # tree-sitter cannot expand the macro, so `len` after it is an ERROR: `len` keeps its name everywhere
    code = "int f(int len, int n)\n{\n    FOO(int, n) len;\n    return n + len;\n}"
    assert get_parser("c").parse(code.encode()).root_node.has_error
    codes, stats = transform_all([code], "c", "rename_parameters")
    assert stats.partial == 1 and stats.changed == 1
    assert transform(code, "c", "rename_parameters", names={"n": "count"}).code == (
        "int f(int len, int count)\n{\n    FOO(int, count) len;\n    return count + len;\n}")


def test_a_name_also_read_as_a_type_is_left_alone():
    # `BAR(len)` parses as a type whose name is `len` (an unexpanded macro): renaming `len` elsewhere would miss it
    code = "int f(int len, int n)\n{\n    FOO(len, n) BAR(len) baz;\n    return n + len;\n}"
    result = transform(code, "c", "rename_parameters", names={"n": "count", "len": "size"})
    assert result.code == "int f(int len, int count)\n{\n    FOO(len, count) BAR(len) baz;\n    return count + len;\n}"


# -- real functions of both tasks -------------------------------------------------------------------------------

def _first_functions(path, limit: int) -> list[str]:
    with path.open() as handle:
        return [json.loads(line)["func"] for line in itertools.islice(handle, limit)]


@pytest.fixture(scope="module")
def real():
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the shared data folder {SHARED_DATA} is missing")
    return {"java": _first_functions(SHARED_DATA / "bigclonebench" / "data.jsonl", 60),
            "c": _first_functions(SHARED_DATA / "devign" / "test.jsonl", 60)}


def _errors(code: str, language: str) -> int:
    tree = get_parser(language).parse(code.encode())
    return sum(1 for node in iter_nodes(tree.root_node) if node.type == "ERROR" or node.is_missing)


def _tokens(code: str, language: str) -> list[tuple[str, str]]:
    tree = get_parser(language).parse(code.encode())
    return [(n.type, n.text.decode()) for n in iter_nodes(tree.root_node) if not n.children]


@pytest.mark.parametrize("language", ["java", "c"])
@pytest.mark.parametrize("transformation", TRANSFORMATIONS)
def test_real_functions_still_parse_and_change_where_they_should(real, language, transformation):
    codes = real[language]
    out, stats = transform_all(codes, language, transformation, seed=7)
    assert stats.functions == len(codes) == len(out)
    assert stats.changed + stats.not_applicable + stats.unparsed + stats.refused == len(codes)
    assert stats.changed >= 0.5 * len(codes), stats  # every transformation applies to most real functions
    for before, after in zip(codes, out, strict=True):
        if after == before:
            continue
        tree = get_parser(language).parse(after.encode())
        assert function_node(tree.root_node, language) is not None
        assert _errors(after, language) <= _errors(before, language)
        old, new = _tokens(before, language), _tokens(after, language)
        if transformation.startswith("rename"):  # only identifiers change, one for one
            assert [t for t, _ in old] == [t for t, _ in new]
            changed = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
            assert changed and all(kind == "identifier" for (kind, _), _ in changed)
        elif transformation == "dead_code":  # one statement more: a few new tokens, none lost
            assert len(new) > len(old) and not (set(old) - set(new))
        else:  # the same tokens, comparison operators mirrored
            mirror = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}
            assert sorted(old) != sorted(new) or any(t in ("==", "!=") for _, t in old)
            assert sorted(t for t in old if t[0] not in mirror) == sorted(t for t in new if t[0] not in mirror)


def test_real_functions_seed_reproduces_and_pairs_share_a_function_s_transformation(real):
    codes = real["java"][:20]
    assert transform_all(codes, "java", "rename_locals", seed=1)[0] == transform_all(codes, "java", "rename_locals",
                                                                                     seed=1)[0]
    assert transform_all(codes, "java", "rename_locals", seed=1)[0] != transform_all(codes, "java", "rename_locals",
                                                                                     seed=2)[0]
    # the same function gets the same new text wherever it occurs (both sides of pairs, several pairs)
    doubled, _ = transform_all(codes + codes, "java", "rename_locals", seed=1)
    assert doubled[:20] == doubled[20:]
