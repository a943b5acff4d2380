"""User-facing errors: one clear paragraph, a non-zero exit, no traceback unless asked for."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

DEBUG_ENV = "LIT_COMPRESSOR_DEBUG"


class UserError(Exception):
    """A mistake in the user's input: data, files or config. Printed without a traceback."""

    def __init__(self, what: str, where: str | Path | None = None, fix: str | None = None, line: int | None = None):
        self.what, self.where, self.fix, self.line = what, where, fix, line
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = self.what
        if self.where is not None:
            location = f"{self.where}, line {self.line}" if self.line is not None else str(self.where)
            text = f"{location}: {text}"
        if self.fix:
            text += f" {self.fix}"
        return text


class DataError(UserError):
    """Bad data in a data file: names the file and line."""


def debug_enabled(argv: list[str] | None = None) -> bool:
    argv = sys.argv if argv is None else argv
    return "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def run_guarded(fn: Callable[[], T]) -> T:
    """Run ``fn``; a ``UserError`` (or a missing file) ends the process with a message, not a traceback."""
    try:
        return fn()
    except (UserError, FileNotFoundError, PermissionError, IsADirectoryError) as error:
        if debug_enabled():
            raise
        message = error.message if isinstance(error, UserError) else f"{error.filename}: {error.strerror}."
        print(f"error: {message}\n(run with --debug or {DEBUG_ENV}=1 for the traceback)", file=sys.stderr)
        raise SystemExit(2) from None
