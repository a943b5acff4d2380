"""tree-sitter parsers of the languages the tasks hold (Java, C): one per process, made on first use."""

from __future__ import annotations

from collections.abc import Iterator

import tree_sitter

from lit_compressor.core.errors import UserError

LANGUAGES = ("java", "c")

_PARSERS: dict[str, tree_sitter.Parser] = {}


def get_parser(language: str) -> tree_sitter.Parser:
    """This process's parser for ``language`` (parsers cannot be pickled, so each worker makes its own)."""
    if language not in _PARSERS:
        if language == "java":
            import tree_sitter_java as grammar
        elif language == "c":
            import tree_sitter_c as grammar
        else:
            raise UserError(f"no parser for language {language!r}.", fix=f"Use one of {', '.join(LANGUAGES)}.")
        _PARSERS[language] = tree_sitter.Parser(tree_sitter.Language(grammar.language()))
    return _PARSERS[language]


def iter_nodes(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    """Every node under ``node`` (itself included), depth-first in source order, without recursion (deep trees
    cannot overflow the stack)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))
