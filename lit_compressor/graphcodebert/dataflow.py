"""GraphCodeBERT's data-flow graph of one Java or C function, extracted with tree-sitter.

The function is split into code tokens (tree-sitter leaves; string and character literals whole;
comments dropped). Every variable or literal occurrence that takes part in the flow of values
becomes a node aligned to its token, with the tokens it ``comesFrom`` (reads of a value, plain
declarations) or is ``computedFrom`` (assignments, increments, loop variables), as in
GraphCodeBERT's ``parser/DFG.py``. One walker serves both languages; a :class:`LanguageSpec` names
the node types. ERROR subtrees keep their tokens but add no flow, so malformed code degrades to a
partial (or empty) graph instead of failing.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import tree_sitter

from lit_compressor.core.errors import UserError
from lit_compressor.core.files import atomic_write_text
from lit_compressor.core.fingerprint import hash_texts
from lit_compressor.data.parsing import get_parser

log = logging.getLogger(__name__)

COMES_FROM = "comesFrom"
COMPUTED_FROM = "computedFrom"
EXTRACTOR_VERSION = 1  # bump when the extracted graphs change, to invalidate caches


@dataclass(frozen=True)
class LanguageSpec:
    """The node types of one tree-sitter grammar that the walker treats specially."""

    variables: frozenset[str]  # leaves that name a variable (their definitions are tracked)
    literals: frozenset[str]  # value leaves that are never defined
    whole_tokens: frozenset[str]  # nodes kept as one code token although they have children
    comments: frozenset[str]
    declarators: frozenset[str]  # declarator nodes with a name field and an optional ``value`` field
    declarator_name: str
    assignments: frozenset[str]  # ``left`` / ``right`` fields
    increments: frozenset[str]
    ifs: frozenset[str]  # ``condition`` / ``consequence`` / ``alternative`` fields
    fors: frozenset[str]
    for_init: str  # the field of a for loop's initialiser, run once
    for_eaches: frozenset[str]  # ``name`` / ``value`` / ``body`` fields
    whiles: frozenset[str]


JAVA = LanguageSpec(
    variables=frozenset({"identifier"}),
    literals=frozenset({
        "decimal_integer_literal", "hex_integer_literal", "octal_integer_literal", "binary_integer_literal",
        "decimal_floating_point_literal", "hex_floating_point_literal", "character_literal",
        "string_literal", "text_block", "null_literal",
    }),
    whole_tokens=frozenset({"string_literal", "character_literal", "text_block"}),
    comments=frozenset({"line_comment", "block_comment", "comment"}),
    declarators=frozenset({"variable_declarator"}),
    declarator_name="name",
    assignments=frozenset({"assignment_expression"}),
    increments=frozenset({"update_expression"}),
    ifs=frozenset({"if_statement"}),
    fors=frozenset({"for_statement"}),
    for_init="init",
    for_eaches=frozenset({"enhanced_for_statement"}),
    whiles=frozenset({"while_statement", "do_statement"}),
)

C = LanguageSpec(
    variables=frozenset({"identifier", "field_identifier"}),
    literals=frozenset({"number_literal", "char_literal", "string_literal", "system_lib_string"}),
    whole_tokens=frozenset({"string_literal", "char_literal", "system_lib_string"}),
    comments=frozenset({"comment"}),
    declarators=frozenset({"init_declarator"}),
    declarator_name="declarator",
    assignments=frozenset({"assignment_expression"}),
    increments=frozenset({"update_expression"}),
    ifs=frozenset({"if_statement"}),
    fors=frozenset({"for_statement"}),
    for_init="initializer",
    for_eaches=frozenset(),
    whiles=frozenset({"while_statement", "do_statement"}),
)

SPECS = {"java": JAVA, "c": C}


@dataclass(frozen=True)
class FlowNode:
    """A variable or literal occurrence: ``name`` at code token ``token``, fed by the tokens ``sources``."""

    name: str
    token: int
    relation: str
    sources: tuple[int, ...] = ()


@dataclass(frozen=True)
class DataFlowGraph:
    """Code tokens of a function and its data-flow nodes, sorted by token."""

    tokens: tuple[str, ...]
    nodes: tuple[FlowNode, ...] = ()

    def to_json(self) -> dict:
        return {"tokens": list(self.tokens),
                "nodes": [[n.name, n.token, n.relation, list(n.sources)] for n in self.nodes]}

    @classmethod
    def from_json(cls, data: dict) -> DataFlowGraph:
        nodes = tuple(FlowNode(str(name), int(token), str(relation), tuple(int(s) for s in sources))
                      for name, token, relation, sources in data["nodes"])
        return cls(tuple(str(t) for t in data["tokens"]), nodes)


def spec_for(language: str) -> LanguageSpec:
    if language not in SPECS:
        raise UserError(f"no data-flow extractor for language {language!r}.",
                        fix=f"Use one of {sorted(SPECS)}.")
    return SPECS[language]


def _token_nodes(root: tree_sitter.Node, spec: LanguageSpec) -> Iterator[tree_sitter.Node]:
    """Leaves (and whole literals) in source order; iterative, so deep trees cannot overflow the stack."""
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type in spec.comments or node.is_missing:
            continue
        if node.child_count == 0 or node.type in spec.whole_tokens:
            if node.end_byte > node.start_byte:
                yield node
        else:
            stack.extend(reversed(node.children))


States = dict[str, tuple[int, ...]]  # variable name -> tokens of its reaching definitions


class _Walker:
    """GraphCodeBERT's DFG recursion, driven by a :class:`LanguageSpec`."""

    def __init__(self, spec: LanguageSpec, index: dict[tuple[int, int], int], tokens: Sequence[str]):
        self.spec, self.index, self.tokens = spec, index, tokens

    def _token(self, node: tree_sitter.Node) -> int | None:
        return self.index.get((node.start_byte, node.end_byte))

    def value_tokens(self, node: tree_sitter.Node | None) -> list[int]:
        """Tokens of the variables and literals under ``node``, ERROR subtrees left out."""
        if node is None or node.is_error:
            return []
        token = self._token(node)
        if token is not None and (node.child_count == 0 or node.type in self.spec.whole_tokens):
            return [token] if node.type in self.spec.variables | self.spec.literals else []
        return [t for child in node.children for t in self.value_tokens(child)]

    def define(self, targets: tree_sitter.Node | None, sources: list[int], relation: str,
               states: States) -> tuple[list[FlowNode], States]:
        nodes = []
        states = dict(states)
        for token in self.value_tokens(targets):
            nodes.append(FlowNode(self.tokens[token], token, relation, tuple(sources)))
            states[self.tokens[token]] = (token,)
        return nodes, states

    def walk(self, node: tree_sitter.Node | None, states: States) -> tuple[list[FlowNode], States]:
        spec = self.spec
        if node is None or node.is_error or node.type in spec.comments:
            return [], states
        token = self._token(node)
        if token is not None and (node.child_count == 0 or node.type in spec.whole_tokens):
            return self.leaf(node, token, states)
        kind = node.type
        if kind in spec.declarators:
            value = node.child_by_field_name("value")
            nodes, states = self.walk(value, states)
            defined, states = self.define(node.child_by_field_name(spec.declarator_name),
                                          self.value_tokens(value), COMES_FROM, states)
            return nodes + defined, states
        if kind in spec.assignments:
            right = node.child_by_field_name("right")
            nodes, states = self.walk(right, states)
            defined, states = self.define(node.child_by_field_name("left"), self.value_tokens(right),
                                          COMPUTED_FROM, states)
            return nodes + defined, states
        if kind in spec.increments:
            return self.define(node, self.value_tokens(node), COMPUTED_FROM, states)
        if kind in spec.ifs:
            return self.branch(node, states)
        if kind in spec.fors:
            nodes, states = self.sequence(node.children, states)
            # A second pass (condition, update, body) links uses to the previous iteration's definitions.
            again = [c for i, c in enumerate(node.children) if node.field_name_for_child(i) != spec.for_init]
            more, states = self.sequence(again, states)
            return _merge(nodes + more), states
        if kind in spec.for_eaches:
            nodes = []
            value, body = node.child_by_field_name("value"), node.child_by_field_name("body")
            for _ in range(2):
                more, states = self.walk(value, states)
                defined, states = self.define(node.child_by_field_name("name"), self.value_tokens(value),
                                              COMPUTED_FROM, states)
                body_nodes, states = self.walk(body, states)
                nodes += more + defined + body_nodes
            return _merge(nodes), states
        if kind in spec.whiles:
            nodes, states = self.sequence(node.children, states)
            more, states = self.sequence(node.children, states)
            return _merge(nodes + more), states
        return self.sequence(node.children, states)

    def leaf(self, node: tree_sitter.Node, token: int, states: States) -> tuple[list[FlowNode], States]:
        if node.type not in self.spec.variables | self.spec.literals:
            return [], states
        name = self.tokens[token]
        if name in states:
            return [FlowNode(name, token, COMES_FROM, states[name])], states
        if node.type in self.spec.variables:
            states = {**states, name: (token,)}
        return [FlowNode(name, token, COMES_FROM)], states

    def sequence(self, children: Sequence[tree_sitter.Node], states: States) -> tuple[list[FlowNode], States]:
        nodes: list[FlowNode] = []
        for child in children:
            more, states = self.walk(child, states)
            nodes += more
        return nodes, states

    def branch(self, node: tree_sitter.Node, states: States) -> tuple[list[FlowNode], States]:
        """An if: both branches start after the condition; afterwards a variable may come from either."""
        nodes, states = self.walk(node.child_by_field_name("condition"), states)
        then_nodes, then_states = self.walk(node.child_by_field_name("consequence"), states)
        alternative = node.child_by_field_name("alternative")
        else_nodes, else_states = self.walk(alternative, states)
        merged: dict[str, set[int]] = {}
        for branch_states in (then_states, else_states):
            for name, tokens in branch_states.items():
                merged.setdefault(name, set()).update(tokens)
        return nodes + then_nodes + else_nodes, {name: tuple(sorted(t)) for name, t in merged.items()}


def _merge(nodes: list[FlowNode]) -> list[FlowNode]:
    """Join the nodes that a loop's two passes produced for the same occurrence."""
    sources: dict[tuple[str, int, str], set[int]] = {}
    for node in nodes:
        sources.setdefault((node.name, node.token, node.relation), set()).update(node.sources)
    return [FlowNode(name, token, relation, tuple(sorted(s)))
            for (name, token, relation), s in sorted(sources.items(), key=lambda item: item[0][1])]


def extract_dataflow(code: str, language: str) -> DataFlowGraph:
    """Code tokens and data-flow nodes of one function (never raises on malformed code)."""
    spec = spec_for(language)
    tree = get_parser(language).parse(code.encode("utf-8"))
    token_nodes = list(_token_nodes(tree.root_node, spec))
    tokens = tuple(node.text.decode("utf-8", errors="replace") for node in token_nodes)
    index = {(node.start_byte, node.end_byte): i for i, node in enumerate(token_nodes)}
    try:
        nodes, _ = _Walker(spec, index, tokens).walk(tree.root_node, {})
    except RecursionError:  # pathologically deep code: keep the tokens, drop the graph
        return DataFlowGraph(tokens)
    nodes = _merge(nodes)
    # Like GraphCodeBERT, keep only nodes that take part in an edge.
    linked = {t for node in nodes if node.sources for t in (node.token, *node.sources)}
    return DataFlowGraph(tokens, tuple(node for node in nodes if node.token in linked))


def code_hash(code: str, language: str) -> str:
    """Cache key of a function: its text with line endings normalised, and the language."""
    text = code.replace("\r\n", "\n").replace("\r", "\n")
    return hash_texts([language, str(EXTRACTOR_VERSION), text])


def _extract_all(codes: Sequence[str], language: str, workers: int) -> list[DataFlowGraph]:
    if workers <= 1 or len(codes) < 2 * workers:
        return [extract_dataflow(code, language) for code in codes]
    # fork (like DataLoader workers) needs no `if __name__ == "__main__"` guard in the user's script;
    # the workers only run tree-sitter, never the parent's torch threads.
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(partial(extract_dataflow, language=language), codes,
                             chunksize=max(1, len(codes) // (4 * workers))))


def _read_cache(path: Path, language: str) -> dict[str, DataFlowGraph] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != EXTRACTOR_VERSION or data.get("language") != language:
            return None
        return {key: DataFlowGraph.from_json(value) for key, value in data["graphs"].items()}
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("ignoring unreadable data-flow cache %s (%s); extracting again", path, error)
        return None


def precompute_dataflow(codes: Sequence[str], language: str, cache_dir: str | Path | None = None,
                        workers: int = 1) -> dict[str, DataFlowGraph]:
    """Data-flow graphs of ``codes`` keyed by :func:`code_hash`, extracted in ``workers`` processes.

    With ``cache_dir`` the graphs of this set of functions are stored in one JSON file named after the
    set, and a later call with the same functions reads that file instead of parsing again.
    """
    spec_for(language)
    unique = {code_hash(code, language): code for code in codes}
    cache_file = None
    if cache_dir is not None:
        slice_key = hash_texts(sorted(unique))
        cache_file = Path(cache_dir) / f"dataflow-{language}-{slice_key}.json"
        if cache_file.is_file():
            cached = _read_cache(cache_file, language)
            if cached is not None and unique.keys() <= cached.keys():
                return {key: cached[key] for key in unique}
    keys = list(unique)
    graphs = dict(zip(keys, _extract_all([unique[k] for k in keys], language, workers), strict=True))
    if cache_file is not None:
        payload = {"version": EXTRACTOR_VERSION, "language": language,
                   "graphs": {key: graph.to_json() for key, graph in graphs.items()}}
        atomic_write_text(cache_file, json.dumps(payload))
    return graphs
