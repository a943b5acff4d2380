"""A clone index: one vector per distinct function, the pair head against all of them per query.

On disk (a folder, read by the Node runtime too):

- ``index.json``: ``format``, the model's ``fingerprint``, ``hidden_size``, ``precision``, the row
  ``hashes`` (sha256 of each distinct whitespace-normalised function), the rows' ``tokens`` (the
  model's input length: special tokens included, at most the block size; the minimum size reads it)
  and the ``entries`` (path, name, language, lines, hash) of every indexed function;
- ``vectors.f32``: the rows' pooled vectors, little-endian float32, row-major ``[rows, H]``.

Updating re-encodes only functions whose content hash is new; rows no entry uses are dropped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from lit_compressor.clones.calibration import Calibration
from lit_compressor.clones.extract import SourceFunction
from lit_compressor.clones.model import CloneModel, code_hash
from lit_compressor.core.errors import UserError
from lit_compressor.core.files import atomic_path

INDEX_FORMAT = 2
INDEX_FILE, VECTORS_FILE = "index.json", "vectors.f32"


@dataclass(frozen=True)
class IndexedFunction:
    """An indexed function's location and content hash (its row holds the vector)."""

    path: str
    name: str
    language: str
    start_line: int
    end_line: int
    hash: str

    @classmethod
    def of(cls, function: SourceFunction) -> IndexedFunction:
        return cls(function.path, function.name, function.language, function.start_line, function.end_line,
                   code_hash(function.code))


@dataclass(frozen=True)
class Match:
    function: IndexedFunction
    score: float  # the pair model's clone probability of (query, function)


@dataclass(frozen=True)
class ClonePair:
    first: IndexedFunction
    second: IndexedFunction
    score: float  # mean of the two orders' clone probabilities
    scores: tuple[float, float]  # (first, second) and (second, first)
    similarity: float = 1.0  # cosine of the two functions' vectors
    probability: float | None = None  # calibrated: the chance it is a clone at the project's base rate
    kind: str = "semantic"  # "semantic" (the model's), or a copy: "type 1" (identical), "type 2" (renamed)
    covered: float | None = None  # a copy's share of the smaller function inside the runs the two share

    @property
    def rank(self) -> float:
        """What orders pairs: a copy's covered share, else the calibrated probability, else the score."""
        if self.covered is not None:
            return self.covered
        return self.score if self.probability is None else self.probability


@dataclass(frozen=True)
class UpdateStats:
    functions: int
    embedded: int  # distinct functions encoded now
    reused: int  # distinct functions whose vector was already in the index
    dropped: int  # rows no function uses any more


class CloneIndex:
    """Vectors of many functions for one model; :meth:`search` scores a query against all of them."""

    def __init__(self, model: CloneModel):
        self.model = model
        self.head = model.head  # a single-function model has no pair head: fail now, not at the first search
        self.entries: list[IndexedFunction] = []
        self.hashes: list[str] = []
        self.tokens: list[int] = []  # per row: the model's input length (special tokens included, <= block size)
        self.vectors = np.empty((0, model.hidden_size), dtype=np.float32)
        self._refresh()

    def _refresh(self) -> None:
        self._row = {h: i for i, h in enumerate(self.hashes)}
        self._entry_rows = np.array([self._row[e.hash] for e in self.entries], dtype=np.int64)
        self._tokens = np.array(self.tokens, dtype=np.int64)
        self._prepared = self.head.prepare(self.vectors)

    def __len__(self) -> int:
        return len(self.entries)

    def update(self, functions: Sequence[SourceFunction], on_embedded: Callable[[], None] | None = None,
               on_plan: Callable[[int], None] | None = None) -> UpdateStats:
        """Make the index hold exactly ``functions``, encoding only content it has not seen.

        ``on_plan(n)`` is told how many functions will be encoded, ``on_embedded()`` after each one.
        """
        entries = [IndexedFunction.of(f) for f in functions]
        code_of = {}
        for entry, function in zip(entries, functions, strict=True):
            code_of.setdefault(entry.hash, function.code)
        needed = list(dict.fromkeys(e.hash for e in entries))
        new = [h for h in needed if h not in self._row]
        if on_plan is not None:
            on_plan(len(new))
        fresh = self.model.embed_many([code_of[h] for h in new], on_embedded)
        old = [h for h in needed if h in self._row]
        rows = self.vectors[[self._row[h] for h in old]] if old else np.empty((0, self.model.hidden_size), np.float32)
        dropped = len(set(self.hashes) - set(needed))
        self.tokens = [self.tokens[self._row[h]] for h in old] + [len(self.model.token_ids(code_of[h])) for h in new]
        self.hashes = old + new
        self.vectors = np.ascontiguousarray(np.concatenate([rows, fresh]), dtype=np.float32)
        self.entries = entries
        self._refresh()
        return UpdateStats(len(entries), len(new), len(old), dropped)

    def add(self, function: SourceFunction) -> IndexedFunction:
        """Index one more function (encoded only if its content is new)."""
        entry = IndexedFunction.of(function)
        if entry.hash not in self._row:
            self.hashes.append(entry.hash)
            self.tokens.append(len(self.model.token_ids(function.code)))
            self.vectors = np.concatenate([self.vectors, self.model.embed(function.code)[None]])
        self.entries.append(entry)
        self._refresh()
        return entry

    def scores(self, vector: np.ndarray) -> np.ndarray:
        """Clone probability of ``(query, entry)`` for every entry, from the query's vector."""
        if not self.entries:
            return np.empty(0)
        per_row = self.head.probabilities(vector, self.vectors, self._prepared)
        return per_row[self._entry_rows]

    def search(self, code: str, top_k: int = 10, threshold: float = 0.0) -> list[Match]:
        """The ``top_k`` indexed functions most likely to be clones of ``code`` (score >= ``threshold``)."""
        return self.search_vector(self.model.embed(code), top_k, threshold)

    def search_vector(self, vector: np.ndarray, top_k: int = 10, threshold: float = 0.0) -> list[Match]:
        scores = self.scores(vector)
        if top_k < len(scores):  # only the best need sorting (ties: the earlier entry first, as a full sort)
            cut = np.partition(-scores, top_k - 1)[top_k - 1]
            candidates = np.nonzero(-scores <= cut)[0]
        else:
            candidates = np.arange(len(scores))
        order = candidates[np.argsort(-scores[candidates], kind="stable")][:top_k]
        return [Match(self.entries[i], float(scores[i])) for i in order if scores[i] >= threshold]

    def eligible_rows(self, min_tokens: int = 0) -> np.ndarray:
        """The rows of functions of at least ``min_tokens`` model tokens (the ones :meth:`pairs` compares)."""
        return np.nonzero(self._tokens >= min_tokens)[0]

    def entry_tokens(self) -> np.ndarray:
        """Each entry's model input length (its row's), in entry order: the minimum size reads it."""
        return self._tokens[self._entry_rows]

    def pairs(self, threshold: float = 0.5, per_function: int | None = 10,
              on_row: Callable[[], None] | None = None, min_tokens: int = 0,
              calibration: Calibration | None = None, prior: float | None = None) -> list[ClonePair]:
        """Pairs of indexed functions whose clone probability is >= ``threshold``.

        The probability is ``calibration``'s (from the pair score, the mean of the head's two orders,
        and the vectors' cosine, at the project's ``prior``), or without one the pair score itself.
        Only functions of at least ``min_tokens`` model tokens take part (the minimum size). With
        ``per_function``, a pair is kept only when it is among the ``per_function`` best of one of its
        two functions (highest probability first, of equal ones the earlier row), so the result stays
        ``O(functions * per_function)`` however many pairs an eager model calls clones; ``None`` keeps
        every pair. Identical functions (one row) always pair up when their probability passes. Costs
        one head evaluation per ordered pair of distinct rows; memory stays ``O(rows)``.
        """
        keep = self.eligible_rows(min_tokens)
        vectors, prepared = self.vectors[keep], self._prepared[:, keep]
        wide = vectors.astype(np.float64)
        unit = wide / np.maximum(np.linalg.norm(wide, axis=1), 1e-30)[:, None]
        members: dict[int, list[IndexedFunction]] = {}
        compact = {int(row): k for k, row in enumerate(keep)}
        for entry, row in zip(self.entries, self._entry_rows, strict=True):
            if int(row) in compact:
                members.setdefault(compact[int(row)], []).append(entry)

        def rank(score: np.ndarray, cosine: np.ndarray) -> np.ndarray:
            return score if calibration is None else calibration.probability(score, cosine, prior)

        def pair(a: IndexedFunction, b: IndexedFunction, forward: float, backward: float, cosine: float) -> ClonePair:
            score = (forward + backward) / 2
            probability = None if calibration is None else float(rank(np.array(score), np.array(cosine)))
            return ClonePair(a, b, score, (forward, backward), cosine, probability)

        rows = len(keep)
        width = max(1, min(per_function or rows, rows))
        best = np.full((rows, width), -np.inf)  # each row's best partners so far (per_function only)
        partner = np.full((rows, width), -1, dtype=np.int64)
        scores: dict[tuple[int, int], tuple[float, float, float]] = {}  # (i, j), i < j -> both orders, cosine
        found: list[ClonePair] = []
        for i in range(rows):
            query, same = vectors[i], members.get(i, [])
            if len(same) > 1:  # identical functions
                score = float(self.head.probabilities(query, query[None])[0])
                if rank(np.array([score]), np.array([1.0]))[0] >= threshold:
                    found += [pair(a, b, score, score, 1.0) for k, a in enumerate(same) for b in same[k + 1:]]
            rest = slice(i + 1, rows)
            forward = self.head.probabilities(query, vectors[rest], prepared[:, rest], query_first=True)
            backward = self.head.probabilities(query, vectors[rest], prepared[:, rest], query_first=False)
            cosine = unit[rest] @ unit[i]
            ranks = rank((forward + backward) / 2, cosine)
            hits = np.nonzero(ranks >= threshold)[0]
            if per_function is None:
                scores.update({(i, i + 1 + int(j)): (float(forward[j]), float(backward[j]), float(cosine[j]))
                               for j in hits})
            else:
                self._offer(best, partner, i, hits, ranks, (forward, backward, cosine), scores)
            if on_row is not None:
                on_row()
        chosen = scores if per_function is None else {
            (min(i, int(j)), max(i, int(j))) for i in range(rows) for j in partner[i] if j >= 0}
        for i, j in chosen:
            found += [pair(a, b, *scores[(i, j)]) for a in members.get(i, []) for b in members.get(j, [])]
        found.sort(key=lambda p: (-p.rank, p.first.path, p.first.start_line, p.second.path, p.second.start_line))
        return found

    @staticmethod
    def _offer(best: np.ndarray, partner: np.ndarray, i: int, above: np.ndarray, ranks: np.ndarray,
               measured: tuple[np.ndarray, np.ndarray, np.ndarray],
               scores: dict[tuple[int, int], tuple[float, float, float]]) -> None:
        """Row ``i``'s pairs with the rows after it (``above``: their offsets at or above the threshold)
        enter row ``i``'s best list, and each other row's list where they beat its worst entry."""
        width = best.shape[1]
        mine = above[np.lexsort((above, -ranks[above]))[:width]]  # best first; of equal ranks the earlier row
        candidates = np.concatenate([best[i], ranks[mine]])
        partners = np.concatenate([partner[i], i + 1 + mine])
        top = np.lexsort((partners, -candidates))[:width]
        best[i], partner[i] = candidates[top], partners[top]
        lists, owners = best[i + 1 + above], partner[i + 1 + above]
        # each list's worst entry: the lowest rank, and of equal ranks the latest partner (ties keep the earlier)
        worst = np.where(lists == lists.min(axis=1, keepdims=True), owners, np.iinfo(np.int64).min).argmax(axis=1)
        beats = ranks[above] > lists[np.arange(len(above)), worst]
        for j, slot in zip(above[beats], worst[beats], strict=True):
            best[i + 1 + j, slot], partner[i + 1 + j, slot] = ranks[j], i
        for j in np.union1d(mine, above[beats]):
            scores[(i, i + 1 + int(j))] = tuple(float(values[j]) for values in measured)

    def pair(self, first: IndexedFunction, second: IndexedFunction, calibration: Calibration | None = None,
             prior: float | None = None) -> ClonePair:
        """The model's scores of one pair of indexed functions (as :meth:`pairs` gives them)."""
        a, b = self._row[first.hash], self._row[second.hash]
        forward = float(self.head.probabilities(self.vectors[a], self.vectors[[b]], self._prepared[:, [b]])[0])
        backward = float(self.head.probabilities(self.vectors[b], self.vectors[[a]], self._prepared[:, [a]])[0])
        wide = self.vectors[[a, b]].astype(np.float64)
        cosine = float(wide[0] @ wide[1] / max(np.linalg.norm(wide[0]) * np.linalg.norm(wide[1]), 1e-30))
        score = (forward + backward) / 2
        probability = None if calibration is None else float(calibration.probability(score, cosine, prior))
        return ClonePair(first, second, score, (forward, backward), cosine, probability)

    def save(self, folder: str | Path) -> Path:
        """Write ``index.json`` and ``vectors.f32`` (each replaced atomically)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"format": INDEX_FORMAT, "fingerprint": self.model.fingerprint(), "precision": self.model.precision,
                "hidden_size": self.model.hidden_size, "rows": len(self.hashes), "hashes": self.hashes,
                "tokens": self.tokens,
                "entries": [asdict(e) for e in self.entries]}
        vectors = self.vectors.astype("<f4", copy=False).tobytes()
        for name, data in ((VECTORS_FILE, vectors), (INDEX_FILE, json.dumps(meta).encode())):
            with atomic_path(folder / name) as tmp:
                tmp.write_bytes(data)
        return folder

    @classmethod
    def load(cls, folder: str | Path, model: CloneModel) -> CloneIndex:
        """Read an index written by :meth:`save` (Python or Node) for the same model."""
        folder = Path(folder)
        meta_path = folder / INDEX_FILE
        try:
            meta = json.loads(meta_path.read_text())
            data = (folder / VECTORS_FILE).read_bytes()
        except FileNotFoundError as error:
            raise UserError(f"no clone index here ({Path(error.filename).name} missing).", folder,
                            "Build one with `lit-compressor clones --index DIR`.") from None
        except (OSError, ValueError) as error:
            raise UserError(f"unreadable clone index ({error}).", meta_path,
                            "Delete the folder to rebuild it.") from None
        if meta.get("format") != INDEX_FORMAT:
            raise UserError(f"index format {meta.get('format')!r}, this version reads {INDEX_FORMAT}.", meta_path,
                            "Delete the folder to rebuild it.")
        if meta.get("fingerprint") != model.fingerprint():
            raise UserError("the index was built with another model, tokenizer, block size or precision.", meta_path,
                            "Delete the folder (or pass another --index) to rebuild it for this model.")
        hidden, hashes, tokens = int(meta["hidden_size"]), list(meta["hashes"]), [int(t) for t in meta["tokens"]]
        if len(tokens) != len(hashes):
            raise UserError(f"{len(tokens)} token counts for {len(hashes)} rows.", meta_path,
                            "Delete the folder to rebuild it.")
        if len(data) != 4 * hidden * len(hashes):
            raise UserError(f"{VECTORS_FILE} holds {len(data)} bytes, not {len(hashes)} x {hidden} float32.",
                            folder / VECTORS_FILE, "Delete the folder to rebuild it.")
        index = cls(model)
        index.hashes, index.tokens = hashes, tokens
        index.vectors = np.frombuffer(data, dtype="<f4").reshape(len(hashes), hidden).astype(np.float32)
        index.entries = [IndexedFunction(**e) for e in meta["entries"]]
        known = set(hashes)
        if any(e.hash not in known for e in index.entries):
            raise UserError("an entry's hash has no vector.", meta_path, "Delete the folder to rebuild it.")
        index._refresh()
        return index

