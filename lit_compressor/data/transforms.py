"""Semantic-preserving transformations of Java and C functions: the edits an IDE sees while code is written.

Five transformations, each seeded (the same function, seed and transformation always give the same text):

- ``rename_method``: the function gets a natural verb-noun name (``computeValue``, ``read_buffer``), and so do
  its own recursive calls (Java: unqualified or ``this.`` calls with the same number of arguments).
- ``rename_parameters``: every parameter gets a natural noun name (``value``, ``currentIndex``).
- ``rename_locals``: every local variable (lambda parameters, loop and catch variables included) likewise.
- ``dead_code``: one unused declaration (``int retryCount = 0;``) or one unreachable block
  (``if (false) { System.out.println("debug"); }``) before a statement of the body.
- ``swap_comparisons``: comparisons between side-effect-free operands are written the other way round
  (``a < n`` -> ``n > a``, ``null == x`` -> ``x == null``), each with probability 1/2, at least one.

The first two are Morph's metamorphic transformations (ICSE 2025). Renaming follows scopes
(:mod:`~lit_compressor.data.scopes`): field names after ``.``/``->``, methods of other objects, strings,
comments, labels and names that no declaration of the function binds (fields, globals) keep their names;
new names appear nowhere in the function. In C, names in ALL CAPS (macros by convention), names passed to
member-taking macros (``offsetof``, ``container_of``, ``*FOREACH*``) and names that are both a member name and
an argument of a macro-like call are left alone, as are names used inside ``#define``s: tree-sitter does not
expand macros, so what a macro does with a name cannot be known.

A function tree-sitter cannot find (no function declaration outside ERROR nodes) is *unparsed* and left as
it is. A function that parses with local errors (an unexpanded macro) is transformed outside them: no edit
touches an ERROR subtree, and no word inside one is renamed. Every result is re-parsed and *refused* (the
function left as it is) unless it has no more syntax errors than the original and, for renamings, exactly
the original's tree shape; for the swap, the original's node types.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Literal

import tree_sitter

from lit_compressor.core.errors import UserError
from lit_compressor.data.names import fresh_names, words
from lit_compressor.data.parsing import get_parser, iter_nodes
from lit_compressor.data.scopes import Resolution, declarator_name, function_node, resolve
from lit_compressor.data.scopes import text as node_text

TRANSFORMATIONS = ("rename_method", "rename_parameters", "rename_locals", "dead_code", "swap_comparisons")
MORPH_RENAMINGS = ("rename_method", "rename_parameters")
LANGUAGE_OF_FORMAT = {"bigclonebench": "java", "devign": "c"}

Status = Literal["changed", "not_applicable", "unparsed", "refused"]
Edit = tuple[int, int, str]  # start byte, end byte, replacement


@dataclass(frozen=True)
class Transformed:
    code: str
    status: Status


@dataclass
class TransformStats:
    """What a transformation did to a list of functions."""

    functions: int = 0
    changed: int = 0
    not_applicable: int = 0
    """Nothing to transform (no parameter, no comparison without side effects, ...)."""
    unparsed: int = 0
    """No function found outside syntax errors: left as it is."""
    refused: int = 0
    """The result would not have re-parsed as well as the original: left as it is."""
    partial: int = 0
    """Parsed with local syntax errors (unexpanded macros), transformed outside them."""

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class _Function:
    language: str
    source: bytes
    tree: tree_sitter.Tree
    node: tree_sitter.Node
    rng: random.Random
    names: Mapping[str, str]
    """New names chosen by the caller (old -> new); the others are drawn."""

    @functools.cached_property
    def resolution(self) -> Resolution:
        return resolve(self.node, self.language)

    @functools.cached_property
    def taken(self) -> set[str]:
        return words(self.source.decode("utf-8", errors="replace"))

    @functools.cached_property
    def nodes(self) -> list[tree_sitter.Node]:
        """The function's nodes, in source order."""
        return list(iter_nodes(self.node))

    @functools.cached_property
    def shape(self) -> tuple[list[str], int]:
        """The whole tree's node types in source order, and its syntax errors (ERROR and MISSING nodes)."""
        return _shape(self.tree.root_node)


# -- renamings ------------------------------------------------------------------------------------------------

MEMBER_MACROS = re.compile(r"^(offsetof|container_of|DO_UPCAST|\w*FOREACH\w*)$")


def _macro_words(nodes: list[tree_sitter.Node]) -> set[str]:
    """C names a macro call may use as a member name rather than a variable (see the module's docstring)."""
    members = {node_text(n) for n in nodes if n.type == "field_identifier"}
    found: set[str] = set()
    for call in nodes:
        callee = call.child_by_field_name("function") if call.type == "call_expression" else None
        if callee is None or callee.type != "identifier":
            continue
        name = node_text(callee)
        member_macro = MEMBER_MACROS.match(name) is not None
        if not (member_macro or name.isupper()):
            continue
        for argument in call.child_by_field_name("arguments").named_children:
            if argument.type == "identifier" and (member_macro or node_text(argument) in members):
                found.add(node_text(argument))
    return found


def _excluded(function: _Function) -> set[str]:
    excluded = set(function.resolution.opaque_words)
    if function.language == "c":
        excluded |= _macro_words(function.nodes)
    return excluded


def _rename(function: _Function, groups: dict[str, list[tree_sitter.Node]], kind: str) -> list[Edit]:
    """Edits giving every name of ``groups`` (old name -> its nodes, in source order) one fresh name."""
    olds = sorted(groups, key=lambda name: groups[name][0].start_byte)
    drawn = [old for old in olds if old not in function.names]
    new = {**fresh_names(drawn, kind, function.language, function.taken, function.rng), **function.names}
    return [(node.start_byte, node.end_byte, new[name]) for name in olds for node in groups[name]]


def _rename_variables(function: _Function, kind: str) -> list[Edit]:
    excluded = _excluded(function)
    groups: dict[str, list[tree_sitter.Node]] = {}
    for declaration in function.resolution.declarations:
        if declaration.kind != kind or declaration.name in excluded:
            continue
        if function.language == "c" and declaration.name.isupper():
            continue
        groups.setdefault(declaration.name, []).extend(declaration.nodes)
    for nodes in groups.values():
        nodes.sort(key=lambda node: node.start_byte)
    return _rename(function, groups, "variable")


def rename_parameters(function: _Function) -> list[Edit]:
    return _rename_variables(function, "parameter")


def rename_locals(function: _Function) -> list[Edit]:
    return _rename_variables(function, "local")


def _java_arity(function: tree_sitter.Node) -> tuple[int, bool]:
    parameters = [p for p in function.child_by_field_name("parameters").named_children
                  if p.type in ("formal_parameter", "spread_parameter")]
    return len(parameters), any(p.type == "spread_parameter" for p in parameters)


def rename_method(function: _Function) -> list[Edit]:
    node = function.node
    if function.language == "java":
        if node.type != "method_declaration":
            return []  # a constructor's name is its class's
        name = node.child_by_field_name("name")
        if name is None or name.is_missing:
            return []
        old = node_text(name)
        count, varargs = _java_arity(node)
        sites = [name]
        for inner in iter_nodes(node.child_by_field_name("body") or name):
            if inner.type == "method_declaration" and node_text(inner.child_by_field_name("name")) == old:
                return []  # a nested class declares a method of the same name: calls are ambiguous
            if inner.type == "method_invocation" and node_text(inner.child_by_field_name("name")) == old:
                receiver = inner.child_by_field_name("object")
                arguments = len(inner.child_by_field_name("arguments").named_children)
                if (receiver is None or receiver.type == "this") and (
                        arguments == count or (varargs and arguments >= count - 1)):
                    sites.append(inner.child_by_field_name("name"))
            elif inner.type == "method_reference" and inner.children[0].type == "this":
                if node_text(inner.children[-1]) == old:
                    sites.append(inner.children[-1])
    else:
        name = declarator_name(node.child_by_field_name("declarator"))
        if name is None:
            return []
        old = node_text(name)
        if old.isupper():
            return []  # a macro-generated function
        sites = [name] + [use for use in function.resolution.unresolved if node_text(use) == old]
    if old in function.resolution.opaque_words:
        return []
    return _rename(function, {old: sites}, "method")


# -- dead code ------------------------------------------------------------------------------------------------

DEBUG_MESSAGES = ("debug", "here", "checkpoint", "trace", "TODO: remove")
DECLARATIONS = {"java": ("int {name} = 0;", "boolean {name} = false;", "String {name} = \"\";", "long {name} = 0L;"),
                "c": ("int {name} = 0;", "unsigned {name} = 0;", "char *{name} = NULL;")}
UNREACHABLE = {"java": 'if (false) {{ System.out.println("{message}"); }}',
               "c": 'if (0) {{ fprintf(stderr, "{message}\\n"); }}'}
NOT_STATEMENTS = ("comment", "line_comment", "block_comment", "ERROR", "{", "}")


def _after_statement(node: tree_sitter.Node) -> bool:
    """Whether ``node`` follows a complete statement (or the body's ``{``), comments aside. After a directive
    it may not: in ``} else\n#endif\n for (...)`` the loop is the ``else`` branch when the ``#if`` holds."""
    previous = node.prev_sibling
    while previous is not None and "comment" in previous.type:
        previous = previous.prev_sibling
    return previous is None or not (previous.type.startswith("preproc") or previous.type == "ERROR")


def dead_code(function: _Function) -> list[Edit]:
    body = function.node.child_by_field_name("body")
    if body is None:
        return []  # abstract or native
    rng, language = function.rng, function.language
    if rng.random() < 0.5:
        name = fresh_names(["x"], "variable", language, function.taken, rng)["x"]
        statement = rng.choice(DECLARATIONS[language]).format(name=name)
    else:
        statement = UNREACHABLE[language].format(message=rng.choice(DEBUG_MESSAGES))
    statements = [c for c in body.named_children
                  if c.type not in NOT_STATEMENTS and not c.type.startswith("preproc") and _after_statement(c)]
    if statements and statements[0].type == "explicit_constructor_invocation":
        statements = statements[1:]  # this(...) / super(...) must come first
    if not statements:
        first = body.children[0]  # `{`
        return [(first.end_byte, first.end_byte, f" {statement} ")]
    # Before an existing statement, never after the last: a statement after `return` would be unreachable.
    target = rng.choice(statements)
    line_start = function.source.rfind(b"\n", 0, target.start_byte) + 1
    indent = function.source[line_start:target.start_byte]
    if indent.strip():
        return [(target.start_byte, target.start_byte, statement + " ")]
    return [(line_start, line_start, indent.decode("utf-8", errors="replace") + statement + "\n")]


# -- comparisons ----------------------------------------------------------------------------------------------

MIRRORED = {"==": "==", "!=": "!=", "<": ">", ">": "<", "<=": ">=", ">=": "<="}
PRECEDENCE = {"||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6, "<": 7, ">": 7, "<=": 7, ">=": 7,
              "<<": 8, ">>": 8, ">>>": 8, "+": 9, "-": 9, "*": 10, "/": 10, "%": 10}
EFFECTS = frozenset({"method_invocation", "call_expression", "assignment_expression", "update_expression",
                     "object_creation_expression", "array_creation_expression", "lambda_expression",
                     "comma_expression", "conditional_expression", "switch_expression", "gnu_asm_expression",
                     "ERROR"})


def _operator(node: tree_sitter.Node) -> str:
    return node_text(node.child_by_field_name("operator"))


def _binds_tighter(operand: tree_sitter.Node, operator: str) -> bool:
    """Whether ``operand`` stays one operand on either side of ``operator`` without parentheses."""
    if operand.type == "binary_expression":
        return PRECEDENCE.get(_operator(operand), 0) > PRECEDENCE[operator]
    if operand.type == "instanceof_expression":
        return PRECEDENCE["<"] > PRECEDENCE[operator]
    return True


def _swappable(node: tree_sitter.Node) -> bool:
    if node.type != "binary_expression" or _operator(node) not in MIRRORED:
        return False
    operator = _operator(node)
    left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
    return all(_binds_tighter(side, operator) and not any(n.type in EFFECTS or n.is_missing for n in iter_nodes(side))
               for side in (left, right))


def swap_comparisons(function: _Function) -> list[Edit]:
    candidates = [n for n in function.nodes if _swappable(n)]
    # only the innermost of nested comparisons, so that no two edits overlap
    innermost = [n for n in candidates if not any(
        o.id != n.id and n.start_byte <= o.start_byte and o.end_byte <= n.end_byte for o in candidates)]
    chosen = [n for n in innermost if function.rng.random() < 0.5]
    if innermost and not chosen:
        chosen = [function.rng.choice(innermost)]
    source = function.source
    edits = []
    for node in chosen:
        left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
        operator = node.child_by_field_name("operator")
        between = (source[left.end_byte:operator.start_byte].decode() + MIRRORED[_operator(node)]
                   + source[operator.end_byte:right.start_byte].decode())
        edits.append((left.start_byte, right.end_byte, node_text(right) + between + node_text(left)))
    return edits


# -- applying and checking ------------------------------------------------------------------------------------

TRANSFORMS: dict[str, Callable[[_Function], list[Edit]]] = {
    "rename_method": rename_method, "rename_parameters": rename_parameters, "rename_locals": rename_locals,
    "dead_code": dead_code, "swap_comparisons": swap_comparisons}
SAME_SHAPE = ("rename_method", "rename_parameters", "rename_locals")
# A Java method or constructor is a class member: parsed alone, a constructor has no name and `super(..)` is an error.
WRAPPERS = {"java": (b"class LitCompressorWrapper {\n", b"\n}"), "c": (b"", b"")}


def _shape(root: tree_sitter.Node) -> tuple[list[str], int]:
    types, errors = [], 0
    for node in iter_nodes(root):
        types.append(node.type)
        errors += node.type == "ERROR" or node.is_missing
    return types, errors


def _apply(source: bytes, edits: list[Edit]) -> bytes:
    for start, end, replacement in sorted(edits, key=lambda edit: edit[0], reverse=True):
        source = source[:start] + replacement.encode("utf-8") + source[end:]
    return source


def _keeps_parsing(original: _Function, tree: tree_sitter.Tree, transformation: str) -> bool:
    if function_node(tree.root_node, original.language) is None:
        return False
    (types, errors), (original_types, original_errors) = _shape(tree.root_node), original.shape
    if errors > original_errors:
        return False
    if transformation in SAME_SHAPE:
        return types == original_types
    if transformation == "swap_comparisons":  # the same nodes but the operators, which are mirrored
        return Counter(t for t in types if t not in MIRRORED) == Counter(t for t in original_types if t not in MIRRORED)
    return True


def check_transformation(name: str) -> None:
    if name not in TRANSFORMS:
        raise UserError(f"unknown transformation {name!r}.", fix=f"Use one of {', '.join(TRANSFORMATIONS)}.")


def _transform(code: str, language: str, transformation: str, seed: int,
               names: Mapping[str, str] | None = None) -> tuple[Transformed, bool]:
    prefix, suffix = WRAPPERS[language]
    source = prefix + code.encode("utf-8") + suffix
    tree = get_parser(language).parse(source)
    node = function_node(tree.root_node, language)
    if node is None:
        return Transformed(code, "unparsed"), False
    digest = hashlib.sha256(code.encode("utf-8")).hexdigest()
    function = _Function(language, source, tree, node, random.Random(f"{seed}|{transformation}|{digest}"),
                         names or {})
    partial = tree.root_node.has_error
    try:
        edits = TRANSFORMS[transformation](function)
    except RecursionError:  # pathologically deep code
        return Transformed(code, "refused"), partial
    if not edits:
        return Transformed(code, "not_applicable"), partial
    new_source = _apply(source, edits)
    if not _keeps_parsing(function, get_parser(language).parse(new_source), transformation):
        return Transformed(code, "refused"), partial
    return Transformed(new_source[len(prefix):len(new_source) - len(suffix)].decode("utf-8"), "changed"), partial


def transform(code: str, language: str, transformation: str, seed: int = 0,
              names: Mapping[str, str] | None = None) -> Transformed:
    """``code`` (one Java or C function) after ``transformation`` drawn with ``seed``, and what happened.

    ``names`` (old -> new) fixes the new names of a renaming instead of drawing them."""
    check_transformation(transformation)
    return _transform(code, language, transformation, seed, names)[0]


def transform_all(codes: Iterable[str], language: str, transformation: str,
                  seed: int = 0) -> tuple[list[str], TransformStats]:
    """Every function of ``codes`` transformed (or left as it is), and the counts of what happened."""
    check_transformation(transformation)
    stats = TransformStats()
    out = []
    for code in codes:
        result, partial = _transform(code, language, transformation, seed)
        stats.functions += 1
        stats.partial += partial
        setattr(stats, result.status, getattr(stats, result.status) + 1)
        out.append(result.code)
    return out, stats


def language_of(task_format: str, language: str | None = None) -> str:
    """The language of a task's functions: given, or Java for BigCloneBench and C for Devign."""
    if language is not None:
        get_parser(language)  # refuses an unknown language with the list of known ones
        return language
    if task_format not in LANGUAGE_OF_FORMAT:
        raise UserError(f"the language of a {task_format!r} task cannot be told.", fix="Give --language java or c.")
    return LANGUAGE_OF_FORMAT[task_format]

