"""The copy pass: pairs of functions aligned by a shared run of at least ``window`` normalised tokens.

Copy detectors (jscpd, PMD's CPD) read a whole file's tokens, so one duplicated run may span the end
of one function and the start of the next; this pass reads files the same way. Each file is one
*stream*: the language tokens (:mod:`lit_compressor.clones.tokens`: identifiers one symbol, literals
one symbol per kind) of its outermost functions in source order. Tokens outside every function
(fields, a nested class's header) are left out, so a run may continue across them; a function nested
in another (a method of an anonymous or local class) is the stretch of its parent's stream that holds
its tokens. Every window of ``window`` consecutive tokens is hashed; two places holding one window map
its tokens onto each other, and the windows at one offset join into maximal runs. Two functions f and g
are a *copy pair* when the runs map at least half of f's tokens onto g's tokens and at least half of
g's onto f's (the function-level mapping of a copy detector's duplicated ranges, token by token): a run
over the end of ``a1`` and the start of ``a2``, copied as the end of ``b1`` and the start of ``b2``,
pairs ``a1`` with ``b1`` and ``a2`` with ``b2``, never ``a1`` with ``b2``. A pair is *type 1* when the
tokens as written are equal at every mapped position (an exact copy, layout and comments aside), else
*type 2* (renamed identifiers, changed literals); its ``covered`` share is the fraction of the smaller
function's tokens mapped onto the other. A function is never paired with one nested in it.

A window found in more than :data:`MAX_PLACES` places (boilerplate repeated all over a project) is
left out, so the pass stays linear in the project's tokens instead of quadratic in one idiom's copies.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from itertools import combinations, product

from lit_compressor.clones.extract import SourceFunction
from lit_compressor.clones.index import ClonePair, IndexedFunction

# jscpd's default minimum clone size (`--min-tokens 50`, its README's options table).
DEFAULT_COPY_TOKENS = 50
# a window held in more places than this is not used to pair them (at most MAX_PLACES**2 / 2 seeds a window)
MAX_PLACES = 32
TYPE_1, TYPE_2 = "type 1", "type 2"


@dataclass(frozen=True)
class CopyMatch:
    first: int  # indices into the functions given, first < second
    second: int
    kind: str  # TYPE_1 or TYPE_2
    covered: float  # share of the smaller function's tokens mapped onto the other's


@dataclass(frozen=True)
class _Stream:
    """One file's outermost functions' tokens in source order, and where each function lies in them."""

    text: str  # one character per normalised token
    raws: list[str]  # the tokens as written
    spans: list[tuple[int, int, int]]  # (function, start, end), end exclusive


@dataclass
class _Frame:
    """A function the next ones (in source order) may be nested in."""

    function: SourceFunction
    start: int  # its first token's position in the stream
    text: str
    cursor: int = 0  # where its next nested function's tokens are looked for, relative to ``start``


@dataclass
class _Mapping:
    """What the runs map of one function pair: each one's mapped positions, and whether all are equal as written."""

    spans: dict[int, list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))
    exact: bool = True


def _encode(tokens: Sequence[str], codes: dict[str, str]) -> str:
    """One character per token, so a window is a substring (hashed and compared in C)."""
    return "".join(codes.setdefault(token, chr(0x100 + len(codes))) for token in tokens)


def _within(inner: SourceFunction, outer: SourceFunction) -> bool:
    return inner.path == outer.path and outer.start_line <= inner.start_line and inner.end_line <= outer.end_line


def _nested(f: SourceFunction, g: SourceFunction) -> bool:
    """Whether one of the two functions lies inside the other (same file, its lines within the other's)."""
    return _within(f, g) or _within(g, f)


def _streams(functions: Sequence[SourceFunction], codes: dict[str, str]) -> list[_Stream]:
    files: dict[str, list[int]] = defaultdict(list)
    for number, function in enumerate(functions):
        files[function.path].append(number)
    streams = []
    for numbers in files.values():
        texts: list[str] = []
        raws: list[str] = []
        spans: list[tuple[int, int, int]] = []
        frames: list[_Frame] = []
        for number in sorted(numbers, key=lambda n: (functions[n].start_line, -functions[n].end_line, n)):
            function = functions[number]
            text = _encode([normal for normal, _ in function.tokens], codes)
            while frames and not _within(function, frames[-1].function):
                frames.pop()
            at = frames[-1].text.find(text, frames[-1].cursor) if frames else -1
            if at >= 0:  # nested: its tokens are a stretch of its parent's
                start = frames[-1].start + at
                frames[-1].cursor = at + len(text)
            else:  # outermost (or two functions on one line: the second follows the first)
                start = len(raws)
                texts.append(text)
                raws += [raw for _, raw in function.tokens]
            spans.append((number, start, start + len(text)))
            frames.append(_Frame(function, start, text))
        streams.append(_Stream("".join(texts), raws, spans))
    return streams


def _runs(streams: Sequence[_Stream], window: int) -> dict[tuple[int, int, int], list[tuple[int, int]]]:
    """Maximal shared runs of >= ``window`` tokens: (stream a, stream b, offset in b - offset in a) -> [start, end)
    in a. Stream a <= stream b; in one stream the offset is positive."""
    places: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for number, stream in enumerate(streams):
        for start in range(len(stream.text) - window + 1):
            places[stream.text[start:start + window]].append((number, start))
    starts: dict[tuple[int, int, int], list[int]] = defaultdict(list)
    for held in places.values():
        if 1 < len(held) <= MAX_PLACES:
            for (a, at), (b, bt) in combinations(held, 2):  # held in (stream, start) order
                starts[(a, b, bt - at)].append(at)
    runs: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
    for key, found in starts.items():
        merged: list[tuple[int, int]] = []
        for start in sorted(found):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], start + window)
            else:
                merged.append((start, start + window))
        runs[key] = merged
    return runs


def _length(spans: list[tuple[int, int]]) -> int:
    """How many positions the (possibly overlapping) spans cover."""
    total, reached = 0, 0
    for start, end in sorted(spans):
        total += max(0, end - max(start, reached))
        reached = max(reached, end)
    return total


def copy_matches(functions: Sequence[SourceFunction], window: int = DEFAULT_COPY_TOKENS) -> list[CopyMatch]:
    """Every pair of ``functions`` aligned by shared runs of at least ``window`` normalised tokens (each mapping at
    least half of either function onto the other), most covered first."""
    if window < 1:
        raise ValueError(f"window {window} is not positive")
    streams = _streams(functions, {})
    mappings: dict[tuple[int, int], _Mapping] = defaultdict(_Mapping)
    for (a, b, offset), runs in _runs(streams, window).items():
        first, second = streams[a], streams[b]
        for low, high in runs:
            here = [span for span in first.spans if span[1] < high and span[2] > low]
            there = [span for span in second.spans if span[1] < high + offset and span[2] > low + offset]
            for (f, f_start, f_end), (g, g_start, g_end) in product(here, there):
                start = max(low, f_start, g_start - offset)
                end = min(high, f_end, g_end - offset)
                if start >= end or f == g or _nested(functions[f], functions[g]):
                    continue
                mapping = mappings[(min(f, g), max(f, g))]
                mapping.spans[f].append((start, end))
                mapping.spans[g].append((start + offset, end + offset))
                mapping.exact &= first.raws[start:end] == second.raws[start + offset:end + offset]
    found = []
    for (f, g), mapping in mappings.items():
        sizes = {n: len(functions[n].tokens) for n in (f, g)}
        mapped = {n: _length(mapping.spans[n]) for n in (f, g)}
        if all(2 * mapped[n] >= sizes[n] for n in (f, g)):
            small = f if sizes[f] <= sizes[g] else g
            found.append(CopyMatch(f, g, TYPE_1 if mapping.exact else TYPE_2, mapped[small] / sizes[small]))
    found.sort(key=lambda m: (-m.covered, m.kind, m.first, m.second))
    return found


def with_copies(pairs: Sequence[ClonePair], matches: Sequence[CopyMatch], entries: Sequence[IndexedFunction],
                measure: Callable[[IndexedFunction, IndexedFunction], ClonePair]) -> list[ClonePair]:
    """The model's ``pairs`` and the copy ``matches`` (indices into ``entries``) in one list, best first.

    A pair both found keeps the model's scores and takes the copy's type and share; a copy the model did
    not report gets its scores from ``measure`` (the model on the two functions). Copies rank by their
    covered share (then the longer copy, then the model's score), the model's pairs by their probability (or
    score).
    """
    found = {frozenset((p.first, p.second)): p for p in pairs}
    for match in matches:
        first, second = entries[match.first], entries[match.second]
        if first == second:  # the same function listed twice (cannot happen from a scan)
            continue
        key = frozenset((first, second))
        model = found.get(key) or measure(first, second)
        found[key] = replace(model, kind=match.kind, covered=match.covered)
    return sorted(found.values(), key=lambda p: (-p.rank, p.kind, -_lines(p), -p.score, p.first.path,
                                                 p.first.start_line, p.second.path, p.second.start_line))


def _lines(pair: ClonePair) -> int:
    """The smaller function's lines: of copies covered alike, the longer copy ranks first."""
    return min(f.end_line - f.start_line + 1 for f in (pair.first, pair.second))
