"""``lit-compressor clones``: the clone pairs of a whole Java/C project, from an exported pair student.

Extracts every function with tree-sitter, brings the project's index up to date (only new or changed
functions are encoded, with a progress bar), scores every pair of indexed functions with the
student's pair head on the cached vectors, adds the copies a copy detector finds (``clones.copies``),
and prints (or writes as JSON) the pairs above a threshold grouped into classes.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lit_compressor.clones.calibration import Calibration
from lit_compressor.clones.classes import CloneClass, clone_classes
from lit_compressor.clones.copies import DEFAULT_COPY_TOKENS, copy_matches, with_copies
from lit_compressor.clones.extract import scan_project
from lit_compressor.clones.index import INDEX_FILE, CloneIndex, ClonePair
from lit_compressor.clones.model import CloneModel
from lit_compressor.core.errors import UserError
from lit_compressor.runtime.clone_graphs import ensure_clone_graphs
from lit_compressor.runtime.folder import SHIPPED

DEFAULT_INDEX_DIR = ".lit-compressor-index"
# Functions shorter than this many model tokens (special tokens included; the quick start's block is 128)
# are not compared: accessors, delegating one-liners and empty bodies (docs/clones.md, "Minimum size").
DEFAULT_MIN_TOKENS = 64
# The calibrated probability a reported pair must reach at the project's prior: chosen on commons-io and Lua so that
# the quick start's student reports at most one pair per 20 functions on both (docs/benchmarks.md, issue 24).
DEFAULT_THRESHOLD = 0.05
RAW_THRESHOLD = 0.5  # the raw score's default, for a model without calibration.json


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)


def open_index(folder: Path, model: CloneModel, console: Console) -> CloneIndex:
    """The saved index in ``folder``, or an empty one (saying why) when it is missing or stale."""
    if not (folder / INDEX_FILE).is_file():
        return CloneIndex(model)
    try:
        return CloneIndex.load(folder, model)
    except UserError as error:
        console.print(f"[yellow]rebuilding the index[/]: {error.message}")
        return CloneIndex(model)


def clones(model: Path, project: Path, index: Path | None = None, output: Path | None = None,
           threshold: float | None = None, prior: float | None = None, min_tokens: int = DEFAULT_MIN_TOKENS,
           languages: list[Literal["java", "c"]] | None = None, per_function: int | None = 10,
           precision: Literal["fp32", "int8"] | None = None, threads: int | None = None,
           report: Literal["classes", "pairs"] = "classes", show: int = 20, copies: bool = True,
           copy_tokens: int = DEFAULT_COPY_TOKENS) -> dict[str, Any]:
    """Find clone pairs among the Java and C functions of a project with an exported pair student.

    Args:
        model: An exported clone detection (pair) student: the shipped folder ``lit-compressor export`` writes
            (``export/shipped``), its export folder, or a full export (``export/full``).
        project: The source tree (or one file) to scan for ``.java``, ``.c`` and ``.h`` files.
        index: Folder of the project's clone index (default: ``PROJECT/.lit-compressor-index``);
            reused and updated incrementally by content hash.
        output: Write every pair above the threshold, the skipped files and timings as JSON here.
        threshold: Report pairs whose calibrated clone probability at the project's ``prior`` is at least this:
            the precision of the pairs reported near the threshold (with a model that has no
            ``calibration.json``, the raw score: the mean of both orders' probabilities).
        prior: The share of clone pairs among the project's function pairs (above the minimum size) that the
            probabilities assume; default: the one stored by ``lit-compressor calibrate``.
        min_tokens: Compare only functions of at least this many model tokens (special tokens included, at most
            the block size): leaves accessors and delegating one-liners out; 0 compares every function.
        per_function: Keep a pair only when it is among the ``per_function`` best of one of its functions
            (bounds the output of a model that calls many pairs clones); ``null`` keeps every pair.
        languages: Languages to scan (default: java and c).
        precision: Encoder graph: ``int8`` (the shipped one) or ``fp32`` (a full export's: scores equal the pair
            model's); default: the folder's own.
        threads: ONNX Runtime intra-op threads (default: all cores).
        report: Print clone ``classes`` (connected groups of reported pairs) or the ``pairs``; the JSON has both.
        show: How many of the best classes (or pairs) to print.
        copies: Also report copies, as a copy detector finds them: pairs of functions (both of at least
            ``min_tokens``) aligned by runs of at least ``copy_tokens`` language tokens, identifiers and literals
            normalised, over each file's functions in source order, that map at least half of each function onto
            the other (type 1: identical tokens, type 2: renamed), whatever the model says; they join the same
            classes. ``false`` reports the model's pairs only.
        copy_tokens: The copy pass's minimum run, in language tokens (jscpd's default minimum is 50).
    """
    console = Console()
    model, project = Path(model), Path(project)
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise UserError(f"threshold {threshold} is not a probability.", fix="Pass --threshold between 0 and 1.")
    if not (model / "config.json").is_file() and not (model / SHIPPED).is_dir():
        raise UserError("not a model folder (no config.json).", model,
                        "Give --model the shipped folder `lit-compressor export` writes (OUTPUT/shipped).")
    if ensure_clone_graphs(model, int8=precision != "fp32"):
        console.print(f"wrote the encoder-only graph and pair head into {model}")
    clone_model = CloneModel.from_pretrained(model, precision, threads)
    clone_model.head  # noqa: B018 -- a single-function model stops here, before the scan
    calibration = Calibration.load(clone_model.folder)
    if threshold is None:
        threshold = RAW_THRESHOLD if calibration is None else DEFAULT_THRESHOLD
    if calibration is None:
        console.print(f"[yellow]no calibration in {clone_model.folder}[/]: --threshold applies to the raw score; run "
                      "`lit-compressor calibrate` for probabilities at the project's base rate")
    else:
        calibration.shift(prior)  # a bad --prior stops here, before the scan
    if copy_tokens < 1:
        raise UserError(f"copy_tokens {copy_tokens} is not a positive number of tokens.",
                        fix=f"Pass --copy_tokens of at least 1 (default {DEFAULT_COPY_TOKENS}).")
    if min_tokens > clone_model.block_size:
        raise UserError(f"min_tokens {min_tokens} is above the model's block size {clone_model.block_size}.",
                        fix=f"Pass --min_tokens of at most {clone_model.block_size}.")
    root = project if project.is_dir() else project.parent
    index_dir = Path(index) if index is not None else root / DEFAULT_INDEX_DIR

    started = time.perf_counter()
    scan = scan_project(project, languages or ["java", "c"])
    scan_s = time.perf_counter() - started
    for skipped in scan.skipped:
        console.print(f"[yellow]skipped[/] {skipped.path}: {skipped.reason}")
    console.print(f"{len(scan.functions)} functions in {scan.files} files ({scan_s:.1f} s)")

    started = time.perf_counter()
    clone_index = open_index(index_dir, clone_model, console)
    with _progress(console) as progress:
        task = progress.add_task("encoding functions", total=None)
        stats = clone_index.update(scan.functions, on_embedded=lambda: progress.advance(task),
                                   on_plan=lambda n: progress.update(task, total=n))
    clone_index.save(index_dir)
    index_s = time.perf_counter() - started
    console.print(f"index {index_dir}: {stats.embedded} functions encoded, {stats.reused} reused, "
                  f"{stats.dropped} dropped ({index_s:.1f} s)")

    started = time.perf_counter()
    compared = len(clone_index.eligible_rows(min_tokens))
    with _progress(console) as progress:
        task = progress.add_task("comparing functions", total=compared)
        pairs = clone_index.pairs(threshold, per_function, on_row=lambda: progress.advance(task),
                                  min_tokens=min_tokens, calibration=calibration, prior=prior)
    search_s = time.perf_counter() - started
    started = time.perf_counter()
    semantic = len(pairs)
    if copies:
        large = clone_index.entry_tokens() >= min_tokens  # copies obey the minimum size as the model's pairs do
        matches = [m for m in copy_matches(scan.functions, copy_tokens) if large[m.first] and large[m.second]]
        pairs = with_copies(pairs, matches, clone_index.entries,
                            lambda a, b: clone_index.pair(a, b, calibration, prior))
    copies_s = time.perf_counter() - started
    classes = clone_classes(pairs)

    used_prior = None if calibration is None else (calibration.prior if prior is None else prior)
    what = "raw score" if calibration is None else f"clone probability (prior {used_prior:g})"
    bound = f", at most {per_function} best per function" if per_function else ""
    console.print(f"{semantic} clone pairs with {what} >= {threshold} among {compared} "
                  f"distinct functions of >= {min_tokens} tokens{bound}")
    kinds = {kind: sum(p.kind == kind for p in pairs) for kind in ("type 1", "type 2", "semantic")}
    if copies:
        console.print(f"with the copies (runs of >= {copy_tokens} normalised tokens): {len(pairs)} pairs "
                      f"({kinds['type 1']} type 1, {kinds['type 2']} type 2, {kinds['semantic']} semantic only) "
                      f"in {len(classes)} classes ({copies_s:.1f} s)")
    console.print(_classes_table(classes[:show]) if report == "classes" else _pairs_table(pairs[:show]))
    result = {
        "model": str(model), "project": str(project), "index": str(index_dir), "threshold": threshold,
        "prior": used_prior, "min_tokens": min_tokens, "per_function": per_function,
        "copies": copies, "copy_tokens": copy_tokens if copies else None, "kinds": kinds,
        "calibration": None if calibration is None else {k: v for k, v in asdict(calibration).items() if k != "fit"},
        "precision": clone_model.precision, "files": scan.files, "functions": len(scan.functions),
        "compared": compared, "skipped": [asdict(s) for s in scan.skipped],
        "index_update": asdict(stats),
        "seconds": {"scan": round(scan_s, 3), "index": round(index_s, 3), "pairs": round(search_s, 3),
                    "copies": round(copies_s, 3)},
        "classes": [{"size": len(c.members), "pairs": c.pairs, "types": c.kinds, "covered": c.covered, "score": c.score,
                     "probability": c.probability, "members": [asdict(m) for m in c.members]} for c in classes],
        "pairs": [{"type": p.kind, "covered": p.covered, "score": p.score, "probability": p.probability,
                   "similarity": p.similarity, "scores": list(p.scores), "first": asdict(p.first),
                   "second": asdict(p.second)} for p in pairs],
    }
    if output is not None:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2) + "\n")
        console.print(f"wrote {output}")
    return result


def _where(entry) -> str:
    return f"{entry.path}:{entry.start_line} {entry.name}"


def _chance(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _classes_table(classes: list[CloneClass]) -> Table:
    table = Table(title="clone classes, largest first")
    for column in ("#", "functions", "pairs", "types", "best covered", "best probability", "members"):
        table.add_column(column)
    for number, found in enumerate(classes, 1):
        members = "\n".join(_where(m) for m in found.members[:6])
        if len(found.members) > 6:
            members += f"\n... and {len(found.members) - 6} more"
        types = ", ".join(f"{count} {kind}" for kind, count in found.kinds.items())
        table.add_row(str(number), str(len(found.members)), str(found.pairs), types, _chance(found.covered),
                      _chance(found.probability), members)
    return table


def _pairs_table(pairs: list[ClonePair]) -> Table:
    table = Table(title="clone pairs, best first")
    for column in ("type", "covered", "probability", "score", "cosine", "function", "clone"):
        table.add_column(column)
    for pair in pairs:
        table.add_row(pair.kind, _chance(pair.covered), _chance(pair.probability), f"{pair.score:.4f}",
                      f"{pair.similarity:.5f}", _where(pair.first), _where(pair.second))
    return table
