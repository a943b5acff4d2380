"""Tables that stay whole wherever they are printed: Rich on a terminal, Markdown in a file or a pipe."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> None:
    """Print a table; columns from ``right_from`` on are numbers (right-aligned on a terminal).

    Rich shrinks a table to the console's width, cutting headers and numbers, and a console that is not a
    terminal is 80 columns wide: a log or CI output gets a Markdown table instead, every cell whole.
    """
    if not sys.stdout.isatty():
        print(f"{title}\n\n{markdown_table(columns, rows)}\n", flush=True)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for index, column in enumerate(columns):
        table.add_column(column, justify="right" if index >= right_from else "left", overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console().print(table)
