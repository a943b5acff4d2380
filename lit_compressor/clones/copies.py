"""The copy pass: pairs of functions that share a run of at least ``window`` normalised tokens.

What copy detectors (jscpd, PMD's CPD) find, per function: each function's language tokens
(:mod:`lit_compressor.clones.tokens`: identifiers one symbol, literals one symbol per kind) are cut
into every window of ``window`` consecutive tokens, and a hash table of the windows finds the
functions that share one. A pair is a *type 1* copy when the tokens as written are equal on every
shared window of the smaller function (an exact copy, layout and comments aside), else *type 2*
(renamed identifiers, changed literals). Its ``covered`` share is the fraction of the smaller
function's tokens inside shared windows. A function is not paired with one nested inside it (a method
of an anonymous class shares all its tokens with the method around it). Costs one dictionary entry
per token of the project.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import combinations

from lit_compressor.clones.extract import SourceFunction
from lit_compressor.clones.index import ClonePair, IndexedFunction

# jscpd's default minimum clone size (`--min-tokens 50`, its README's options table).
DEFAULT_COPY_TOKENS = 50
TYPE_1, TYPE_2 = "type 1", "type 2"


@dataclass(frozen=True)
class CopyMatch:
    first: int  # indices into the functions given, first < second
    second: int
    kind: str  # TYPE_1 or TYPE_2
    covered: float  # share of the smaller function's tokens inside windows the two share


def _encode(tokens: Sequence[str], codes: dict[str, str]) -> str:
    """One character per token, so a window is a substring (hashed and compared in C)."""
    return "".join(codes.setdefault(token, chr(0x100 + len(codes))) for token in tokens)


def _nested(f: SourceFunction, g: SourceFunction) -> bool:
    """Whether one of the two functions lies inside the other (same file, its lines within the other's)."""
    if f.path != g.path:
        return False
    return (f.start_line <= g.start_line and g.end_line <= f.end_line) or (
        g.start_line <= f.start_line and f.end_line <= g.end_line)


def copy_matches(functions: Sequence[SourceFunction], window: int = DEFAULT_COPY_TOKENS) -> list[CopyMatch]:
    """Every pair of ``functions`` sharing a run of at least ``window`` normalised tokens, most covered first."""
    if window < 1:
        raise ValueError(f"window {window} is not positive")
    codes: dict[str, str] = {}
    texts = [_encode([normal for normal, _ in f.tokens], codes) for f in functions]
    raws = [[raw for _, raw in f.tokens] for f in functions]
    places: list[dict[str, list[int]]] = []  # per function: window -> its start positions
    table: dict[str, list[int]] = defaultdict(list)  # window -> the functions holding it
    for number, text in enumerate(texts):
        mine: dict[str, list[int]] = defaultdict(list)
        for start in range(len(text) - window + 1):
            mine[text[start:start + window]].append(start)
        for key in mine:
            table[key].append(number)
        places.append(mine)
    shared: dict[tuple[int, int], list[str]] = defaultdict(list)
    for key, holders in table.items():
        for a, b in combinations(holders, 2):
            shared[(a, b)].append(key)
    found = []
    for (a, b), keys in shared.items():
        if _nested(functions[a], functions[b]):  # a method of an anonymous class inside the method it is in
            continue
        small, large = (a, b) if len(texts[a]) <= len(texts[b]) else (b, a)
        covered, exact = set(), set()
        for key in keys:
            for start in places[small][key]:
                span = range(start, start + window)
                covered.update(span)
                raw = raws[small][start:start + window]
                if any(raws[large][other:other + window] == raw for other in places[large][key]):
                    exact.update(span)
        kind = TYPE_1 if exact == covered else TYPE_2
        found.append(CopyMatch(a, b, kind, len(covered) / len(texts[small])))
    found.sort(key=lambda m: (-m.covered, m.kind, m.first, m.second))
    return found


def with_copies(pairs: Sequence[ClonePair], matches: Sequence[CopyMatch], entries: Sequence[IndexedFunction],
                measure: Callable[[IndexedFunction, IndexedFunction], ClonePair]) -> list[ClonePair]:
    """The model's ``pairs`` and the copy ``matches`` (indices into ``entries``) in one list, best first.

    A pair both found keeps the model's scores and takes the copy's type and share; a copy the model did
    not report gets its scores from ``measure`` (the model on the two functions). Copies rank by their
    covered share, the model's pairs by their probability (or score).
    """
    found = {frozenset((p.first, p.second)): p for p in pairs}
    for match in matches:
        first, second = entries[match.first], entries[match.second]
        if first == second:  # the same function listed twice (cannot happen from a scan)
            continue
        key = frozenset((first, second))
        model = found.get(key) or measure(first, second)
        found[key] = replace(model, kind=match.kind, covered=match.covered)
    return sorted(found.values(), key=lambda p: (-p.rank, p.kind, p.first.path, p.first.start_line,
                                                 p.second.path, p.second.start_line))
