"""Natural, human-like identifiers for the renaming transformations: a verb and a noun for a method, a noun
(or an adjective and a noun) for a variable, written in the style of the name they replace."""

from __future__ import annotations

import random
import re
from collections.abc import Collection, Iterator

VERBS = ("get", "compute", "process", "handle", "update", "build", "load", "read", "write", "check", "create",
         "find", "parse", "convert", "apply", "prepare", "collect", "resolve", "render", "send", "fetch", "store",
         "validate", "format", "merge", "copy", "init", "scan", "extract", "transform")
NOUNS = ("value", "item", "data", "input", "result", "count", "index", "size", "buffer", "target", "source",
         "entry", "element", "offset", "length", "key", "label", "node", "total", "flag", "handle", "context",
         "state", "record", "text", "list", "limit", "position", "message", "status", "path", "file", "stream",
         "config", "request", "response", "content", "output", "token", "field", "block", "chunk", "frame",
         "header", "payload", "option", "counter", "pointer", "range", "width", "height", "number", "score")
ADJECTIVES = ("current", "next", "prev", "old", "first", "last", "max", "min", "temp", "local", "base", "raw",
              "initial", "main", "inner", "outer", "total", "partial", "cached", "pending", "saved", "extra")

JAVA_KEYWORDS = frozenset(
    "abstract assert boolean break byte case catch char class const continue default do double else enum extends "
    "final finally float for goto if implements import instanceof int interface long native new package private "
    "protected public return short static strictfp super switch synchronized this throw throws transient try void "
    "volatile while true false null var record yield sealed permits".split())
C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline int long "
    "register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while "
    "bool true false NULL main index".split())  # `index` is a legacy libc function: a local named so may shadow it
KEYWORDS = {"java": JAVA_KEYWORDS, "c": C_KEYWORDS}

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def words(code: str) -> set[str]:
    """Every identifier-like word of ``code`` (comments and strings included): names a new name must avoid."""
    return set(_WORD.findall(code))


def style_of(name: str, language: str) -> str:
    """``snake`` or ``camel``: the style of ``name``, or the language's default for a one-word lower-case name."""
    core = name.strip("_")
    if "_" in core:
        return "snake"
    if any(ch.isupper() for ch in core[1:]):
        return "camel"
    return "camel" if language == "java" else "snake"


def join(parts: tuple[str, ...], style: str) -> str:
    if style == "snake":
        return "_".join(parts)
    return parts[0] + "".join(part.capitalize() for part in parts[1:])


def _proposals(kind: str, rng: random.Random, nouns: Iterator[str]) -> Iterator[tuple[str, ...]]:
    """Words for one new name: a variable's unused plain nouns first (``nouns``, shuffled once per function),
    then random pairs (a verb and a noun for a method, an adjective and a noun for a variable)."""
    if kind != "method":
        yield from ((noun,) for noun in nouns)
    first = VERBS if kind == "method" else ADJECTIVES
    while True:
        yield rng.choice(first), rng.choice(NOUNS)


def fresh_names(olds: list[str], kind: str, language: str, taken: Collection[str],
                rng: random.Random) -> dict[str, str]:
    """A new name for each of ``olds`` (``kind``: ``method`` or ``variable``), in each old name's style, none of
    them in ``taken``, a keyword or another new name. Variables prefer one noun, then an adjective and a noun."""
    used = set(taken) | KEYWORDS[language]
    shuffled = list(NOUNS)
    rng.shuffle(shuffled)
    nouns = iter(shuffled)
    chosen: dict[str, str] = {}
    for old in olds:
        style = style_of(old, language)
        for attempt, parts in enumerate(_proposals(kind, rng, nouns)):
            name = join(parts, style) + (str(attempt // 1000) if attempt >= 1000 else "")  # a name-packed function
            if name not in used:
                break
        used.add(name)
        chosen[old] = name
    return chosen
