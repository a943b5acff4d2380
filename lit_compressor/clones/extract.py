"""The Java and C functions of a source tree, extracted with tree-sitter.

Java: every method, constructor and compact constructor with a body (nested and anonymous classes
included). C: every ``function_definition``. A function is its node's source text, from its first
modifier or annotation to its closing brace (a preceding Javadoc comment is not part of it).

Bad input never stops a scan: a file that cannot be read or is not UTF-8 is listed and skipped; in a
file with syntax errors, the functions that contain an error are dropped and the file is listed with
the first error's line (a file whose every function is broken yields nothing).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import tree_sitter

from lit_compressor.clones.tokens import leaf_tokens
from lit_compressor.core.errors import UserError
from lit_compressor.data.parsing import get_parser, iter_nodes

EXTENSIONS = {".java": "java", ".c": "c", ".h": "c"}
FUNCTION_NODES = {"java": ("method_declaration", "constructor_declaration", "compact_constructor_declaration"),
                  "c": ("function_definition",)}
SKIPPED_DIRS = {"node_modules", "build", "target", "__pycache__"}


@dataclass(frozen=True)
class SourceFunction:
    """One function of a project: where it is and its source text."""

    path: str  # relative to the project root, with forward slashes
    name: str
    language: str
    start_line: int  # 1-based, inclusive
    end_line: int
    code: str
    # (normalised, raw) language tokens, comments left out (clones.tokens); what the copy pass compares
    tokens: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class SkippedFile:
    """A file left out of the scan (or partly), and why."""

    path: str
    reason: str


@dataclass
class ProjectScan:
    functions: list[SourceFunction]
    skipped: list[SkippedFile]  # unreadable files; files with syntax errors or bad bytes (what was kept)
    files: int  # source files seen


def parser_for(language: str) -> tree_sitter.Parser:
    return get_parser(language)


def _first_error_line(root: tree_sitter.Node) -> int | None:
    for node in iter_nodes(root):
        if node.is_error or node.is_missing:
            return node.start_point[0] + 1
    return None


def function_name(node: tree_sitter.Node, language: str) -> str:
    """A Java method's name, or the identifier a C function declarator declares."""
    if language == "java":
        name = node.child_by_field_name("name")
        return name.text.decode("utf-8", "replace") if name is not None else "<anonymous>"
    declarator = node.child_by_field_name("declarator")
    while declarator is not None and declarator.type != "function_declarator":
        declarator = declarator.child_by_field_name("declarator")
    target = declarator.child_by_field_name("declarator") if declarator is not None else None
    for inner in iter_nodes(target) if target is not None else ():
        if inner.type in ("identifier", "field_identifier"):
            return inner.text.decode("utf-8", "replace")
    return "<anonymous>"


@dataclass
class FileFunctions:
    functions: list[SourceFunction]
    error_line: int | None  # the first syntax error's line, None when the file parses
    broken: int  # functions dropped because they contain a syntax error


def extract_functions(source: str, language: str, path: str = "<string>") -> FileFunctions:
    """The functions of one file's text."""
    if language not in FUNCTION_NODES:
        raise UserError(f"unknown language {language!r}.", fix=f"Use one of {', '.join(sorted(FUNCTION_NODES))}.")
    data = source.encode("utf-8")
    tree = parser_for(language).parse(data)
    error_line = _first_error_line(tree.root_node) if tree.root_node.has_error else None
    result = FileFunctions([], error_line, 0)
    for node in iter_nodes(tree.root_node):
        if node.type not in FUNCTION_NODES[language]:
            continue
        if node.has_error:
            result.broken += 1
            continue
        if language == "java" and node.child_by_field_name("body") is None:
            continue  # abstract or interface method: no code
        result.functions.append(SourceFunction(
            path, function_name(node, language), language, node.start_point[0] + 1, node.end_point[0] + 1,
            data[node.start_byte:node.end_byte].decode("utf-8"), leaf_tokens(node)))
    return result


def source_files(root: Path, languages: Sequence[str]) -> list[Path]:
    """Files with a Java or C extension under ``root``, sorted; hidden and build folders are skipped."""
    wanted = {ext for ext, language in EXTENSIONS.items() if language in languages}
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS)
        found += [Path(folder) / name for name in names if Path(name).suffix in wanted]
    return sorted(found)


def scan_project(root: str | Path, languages: Sequence[str] = ("java", "c")) -> ProjectScan:
    """Extract every function of the Java/C files under ``root`` (a folder, or a single file)."""
    root = Path(root)
    unknown = [language for language in languages if language not in FUNCTION_NODES]
    if unknown:
        raise UserError(f"unknown language {unknown[0]!r}.", fix=f"Use {' and/or '.join(sorted(FUNCTION_NODES))}.")
    if not root.exists():
        raise UserError("no such file or folder.", root, "Give --project the folder of a source tree.")
    files = [root] if root.is_file() else source_files(root, languages)
    base = root.parent if root.is_file() else root
    scan = ProjectScan([], [], len(files))
    for path in files:
        relative = path.relative_to(base).as_posix()
        language = EXTENSIONS.get(path.suffix)
        if language is None or language not in languages:
            scan.skipped.append(SkippedFile(relative, f"not a {'/'.join(languages)} source file"))
            continue
        try:
            data = path.read_bytes()
        except OSError as error:
            scan.skipped.append(SkippedFile(relative, f"cannot be read ({error.strerror or error})"))
            continue
        try:
            source = data.decode("utf-8")
        except UnicodeDecodeError as error:  # legacy code, e.g. Latin-1 comments: the code itself is ASCII
            line = data[:error.start].count(b"\n") + 1
            source = data.decode("utf-8", "replace")
            scan.skipped.append(SkippedFile(relative, f"not UTF-8 text (first at line {line}): read with "
                                                      "replacement characters, its functions kept"))
        found = extract_functions(source, language, relative)
        if found.error_line is not None:
            kept = len(found.functions)
            scan.skipped.append(SkippedFile(relative, f"syntax error at line {found.error_line}: kept {kept} of "
                                                      f"{kept + found.broken} functions"))
        scan.functions += found.functions
    return scan

