"""The package's shape: layers that import only downwards, and no import cycle.

Every module's imports are read from its source, imports placed inside functions and modules named in
strings (``importlib``) included: a cycle hidden behind a function-local import is still a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "lit_compressor"

LAYERS = {  # a module may import its own layer and the layers below (smaller numbers)
    "core": 0,
    "search": 1, "data": 1,
    "nn": 2, "graphcodebert": 2, "labels": 2,
    "runtime": 3,
    "training": 4, "clones": 4,
    "measure": 5,
    "commands": 6,
}
HEAVY = ("torch", "transformers", "lightning", "tokenizers", "onnxruntime")
LIGHT_LAYERS = ("core", "search")  # importable without the heavy libraries


def module_names(root: Path = PACKAGE) -> dict[str, Path]:
    names = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imports_of(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The package modules ``name`` imports anywhere in its source (and names in string constants)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.Constant) and str(node.value).startswith("lit_compressor."):
            targets = [str(node.value)]  # importlib.import_module("lit_compressor....")
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def external_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
    return found


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    modules = module_names(root)
    return {name: imports_of(path, name, modules) for name, path in modules.items()}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Imports of a higher layer from a lower one (the package root and ``__main__`` stand above all)."""
    wrong = []
    for module, targets in graph.items():
        here = layer_of(module)
        for target in targets:
            there = layer_of(target)
            if here is None and module in ("lit_compressor", "lit_compressor.__main__"):
                continue
            if here is None or there is None:
                wrong.append(f"{module} -> {target} (every module belongs to a layer)")
            elif LAYERS[there] > LAYERS[here]:
                wrong.append(f"{module} ({here}) -> {target} ({there})")
    return sorted(wrong)


def test_the_package_has_no_import_cycle():
    assert find_cycle(import_graph()) is None


def test_layers_import_only_downwards_and_nothing_imports_a_command():
    graph = import_graph()
    assert upward_imports(graph) == []
    importers = sorted(m for m, targets in graph.items() for t in targets
                       if layer_of(t) == "commands" and layer_of(m) != "commands" and m != "lit_compressor.__main__")
    assert importers == []


@pytest.mark.parametrize("layer", LIGHT_LAYERS)
def test_the_light_layers_import_no_heavy_library_even_inside_functions(layer):
    heavy = {f"{path.relative_to(PACKAGE)}: {lib}" for path in (PACKAGE / layer).rglob("*.py")
             for lib in external_imports(path) if lib in HEAVY}
    assert heavy == set()


def test_the_checks_catch_a_hidden_cycle_and_an_upward_import(tmp_path):
    """The same checks on a copy of the package with one function-local import added from ``core`` to a
    command: they must report the cycle and the upward import."""
    import shutil

    copy = tmp_path / "lit_compressor"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    errors = copy / "core" / "errors.py"
    errors.write_text(errors.read_text() + "\n\ndef _hidden():\n    from lit_compressor.commands import cli  # noqa\n")
    graph = import_graph(copy)
    cycle = find_cycle(graph)
    assert cycle is not None and "lit_compressor.core.errors" in cycle and "lit_compressor.commands.cli" in cycle
    assert "lit_compressor.core.errors (core) -> lit_compressor.commands.cli (commands)" in upward_imports(graph)
