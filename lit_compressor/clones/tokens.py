"""A function's language tokens, as a copy detector reads them: tree-sitter's leaves, comments left out.

Each token is kept twice: as written (type-1 copies are equal on these) and normalised (type-2 copies
are equal on these): every identifier (names of variables, methods, fields, types, labels) becomes
``ID`` and every literal one symbol per kind (``NUM``, ``STR``, ``CHR``, ``BOOL``). Primitive types
(``int``, ``byte``, ``void``) are type names too, so they become ``ID`` as class names do: the
per-type overloads of one method (``clear(ByteBuffer)`` / ``clear(CharBuffer)``, ``(byte) 0`` /
``(char) 0``) are type-2 copies. Keywords, operators and punctuation stay as they are, and so does
``null``.
"""

from __future__ import annotations

import tree_sitter

IDENTIFIER = "ID"
PRIMITIVE_TYPES = {"void_type", "boolean_type", "primitive_type"}  # leaves: Java's void/boolean, C's int, char...
PRIMITIVE_PARENTS = {"integral_type", "floating_point_type"}  # Java: their keyword leaf (int, long, double...)


def _literal_kind(node_type: str) -> str | None:
    """The normalised symbol of a literal node type, or None when the node is not a literal."""
    if node_type in ("true", "false"):
        return "BOOL"
    if node_type == "concatenated_string" or node_type in ("string_literal", "text_block"):
        return "STR"
    if node_type in ("character_literal", "char_literal"):
        return "CHR"
    if node_type == "null_literal":
        return None
    if node_type.endswith("_literal"):  # decimal/hex/octal/binary integers, floating point, C's number_literal
        return "NUM"
    return None


def leaf_tokens(node: tree_sitter.Node) -> tuple[tuple[str, str], ...]:
    """``(normalised, raw)`` for each token of ``node`` in source order (a literal is one token)."""
    tokens: list[tuple[str, str]] = []
    stack = [node]
    while stack:
        current = stack.pop()
        kind = current.type
        if "comment" in kind:
            continue
        literal = _literal_kind(kind)
        if literal is not None or current.child_count == 0:
            raw = current.text.decode("utf-8", "replace")
            if not raw:  # a zero-width node (none survive in a function without errors; be safe)
                continue
            if literal is None:
                named_type = kind in PRIMITIVE_TYPES or (current.parent is not None
                                                         and current.parent.type in PRIMITIVE_PARENTS)
                literal = IDENTIFIER if "identifier" in kind or named_type else raw
            tokens.append((literal, raw))
            continue
        stack.extend(reversed(current.children))
    return tuple(tokens)
