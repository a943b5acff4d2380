"""User-facing errors: one clear paragraph, a non-zero exit, no traceback unless asked for."""

from __future__ import annotations

import os
import pickle
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
        UserError.last = self

    last: UserError | None = None
    """The most recent UserError: jsonargparse re-raises a constructor's error as a new ValueError that
    only quotes its text; :func:`user_error_in` recognises it by that text."""

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


CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
WRAPPING_PACKAGES = ("lightning", "pytorch_lightning", "lightning_fabric", "jsonargparse")


def user_error_in(error: BaseException) -> BaseException | None:
    """``error`` or the first error it wraps (``__cause__``/``__context__``) that is the user's to fix.

    Lightning and jsonargparse sometimes re-raise an error from a hook or a constructor inside their own;
    the user's error underneath is what the message must show. ``__context__`` (an error raised while
    handling another) is followed only out of those libraries' own errors, so a bug of ours that happens
    while handling a user error still shows its traceback.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (UserError, FileNotFoundError, PermissionError, IsADirectoryError,
                                pickle.UnpicklingError)):
            return current
        wrapper = type(current).__module__.split(".")[0] in WRAPPING_PACKAGES
        current = current.__cause__ or (current.__context__ if wrapper else None)
    last = UserError.last
    if last is not None and last.message in str(error):  # quoted, e.g. by jsonargparse's union check
        return last
    return None


def describe(error: BaseException, argv: list[str] | None = None) -> str:
    """The one-paragraph message for a user error (see :func:`user_error_in`)."""
    if isinstance(error, UserError):
        return error.message
    if isinstance(error, pickle.UnpicklingError):
        argv = sys.argv if argv is None else argv
        files = [a.split("=", 1)[-1] for a in argv if a.split("=", 1)[-1].endswith(CHECKPOINT_SUFFIXES)]
        where = f"{', '.join(files)}: " if files else ""
        reason = str(error).strip().splitlines()[0] if str(error).strip() else "unsupported object"
        return (f"{where}refused to load the checkpoint: it holds Python objects other than tensors, whose "
                f"unpickling could run code ({reason}). Only load checkpoints you trust; ours are written by "
                f"`fit` and hold tensors and plain values only.")
    filename = getattr(error, "filename", None)
    return f"{filename}: {error.strerror}." if filename else str(error)


def run_guarded(fn: Callable[[], T]) -> T:
    """Run ``fn``; a ``UserError`` (or a missing file, or a refused pickle) ends the process with a message.

    The error may come wrapped by Lightning or jsonargparse: the user's error underneath is shown. The
    traceback is printed only with ``--debug`` or ``LIT_COMPRESSOR_DEBUG=1``.
    """
    try:
        return fn()
    except Exception as error:
        found = user_error_in(error)
        if found is None or debug_enabled():
            raise
        print(f"error: {describe(found)}\n(run with --debug or {DEBUG_ENV}=1 for the traceback)", file=sys.stderr)
        raise SystemExit(2) from None
