"""``lit-compressor clones``: the clone pairs of a whole Java/C project, from an exported pair student.

Extracts every function with tree-sitter, brings the project's index up to date (only new or changed
functions are encoded, with a progress bar), scores every pair of indexed functions with the
student's pair head on the cached vectors, and prints (or writes as JSON) the pairs above a threshold.
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

from lit_compressor.clones.extract import scan_project
from lit_compressor.clones.index import INDEX_FILE, CloneIndex
from lit_compressor.clones.model import CloneModel
from lit_compressor.core.errors import UserError
from lit_compressor.runtime.clone_graphs import ensure_clone_graphs
from lit_compressor.runtime.folder import SHIPPED

DEFAULT_INDEX_DIR = ".lit-compressor-index"


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
           threshold: float = 0.5, languages: list[Literal["java", "c"]] | None = None,
           per_function: int | None = 10, precision: Literal["fp32", "int8"] | None = None, threads: int | None = None,
           show: int = 20) -> dict[str, Any]:
    """Find clone pairs among the Java and C functions of a project with an exported pair student.

    Args:
        model: An exported clone detection (pair) student: the shipped folder ``lit-compressor export`` writes
            (``export/shipped``), its export folder, or a full export (``export/full``).
        project: The source tree (or one file) to scan for ``.java``, ``.c`` and ``.h`` files.
        index: Folder of the project's clone index (default: ``PROJECT/.lit-compressor-index``);
            reused and updated incrementally by content hash.
        output: Write every pair above the threshold, the skipped files and timings as JSON here.
        threshold: Report pairs whose clone probability (mean of both orders) is at least this.
        per_function: Keep a pair only when it is among the ``per_function`` best of one of its functions
            (bounds the output of a model that calls many pairs clones); ``null`` keeps every pair.
        languages: Languages to scan (default: java and c).
        precision: Encoder graph: ``int8`` (the shipped one) or ``fp32`` (a full export's: scores equal the pair
            model's); default: the folder's own.
        threads: ONNX Runtime intra-op threads (default: all cores).
        show: How many of the best pairs to print.
    """
    console = Console()
    model, project = Path(model), Path(project)
    if not 0.0 <= threshold <= 1.0:
        raise UserError(f"threshold {threshold} is not a probability.", fix="Pass --threshold between 0 and 1.")
    if not (model / "config.json").is_file() and not (model / SHIPPED).is_dir():
        raise UserError("not a model folder (no config.json).", model,
                        "Give --model the shipped folder `lit-compressor export` writes (OUTPUT/shipped).")
    if ensure_clone_graphs(model, int8=precision != "fp32"):
        console.print(f"wrote the encoder-only graph and pair head into {model}")
    clone_model = CloneModel.from_pretrained(model, precision, threads)
    clone_model.head  # noqa: B018 -- a single-function model stops here, before the scan
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
    with _progress(console) as progress:
        task = progress.add_task("comparing functions", total=len(clone_index.hashes))
        pairs = clone_index.pairs(threshold, per_function, on_row=lambda: progress.advance(task))
    search_s = time.perf_counter() - started

    bound = f", at most {per_function} best per function" if per_function else ""
    table = Table(title=f"{len(pairs)} clone pairs with probability >= {threshold}{bound}")
    for column in ("score", "function", "clone"):
        table.add_column(column)
    for pair in pairs[:show]:
        table.add_row(f"{pair.score:.3f}", _where(pair.first), _where(pair.second))
    console.print(table)
    result = {
        "model": str(model), "project": str(project), "index": str(index_dir), "threshold": threshold,
        "per_function": per_function,
        "precision": clone_model.precision, "files": scan.files, "functions": len(scan.functions),
        "skipped": [asdict(s) for s in scan.skipped],
        "index_update": asdict(stats),
        "seconds": {"scan": round(scan_s, 3), "index": round(index_s, 3), "pairs": round(search_s, 3)},
        "pairs": [{"score": p.score, "scores": list(p.scores), "first": asdict(p.first), "second": asdict(p.second)}
                  for p in pairs],
    }
    if output is not None:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2) + "\n")
        console.print(f"wrote {output}")
    return result


def _where(entry) -> str:
    return f"{entry.path}:{entry.start_line} {entry.name}"
