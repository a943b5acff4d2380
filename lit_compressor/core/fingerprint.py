"""One hash for everything keyed by content (caches, stage records, soft-label provenance): SHA-256 in hex,
cut to 16 characters (64 bits: no collision among the millions of functions a cache holds)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

LENGTH = 16


def hash_texts(texts: Iterable[str]) -> str:
    """The hash of a sequence of texts (each ended by a NUL, so ``["ab"]`` and ``["a", "b"]`` differ)."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()[:LENGTH]


def hash_json(*parts: Any) -> str:
    """The hash of JSON-able values (keys sorted; other objects by their ``str``)."""
    return hash_texts([json.dumps(parts, sort_keys=True, default=str)])


def hash_files(path: str | Path, suffixes: tuple[str, ...] = (".safetensors", ".bin", ".json"),
               exclude: tuple[str, ...] = ()) -> str:
    """The hash of a file's bytes, or of the files with ``suffixes`` in a folder (a model's weights and config),
    those named in ``exclude`` aside."""
    path = Path(path)
    files = [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in suffixes and p.name not in exclude)
    digest = hashlib.sha256()
    for file in files:
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:LENGTH]
