"""Do the transformations preserve what a compiler sees? javac (Java) and gcc (C) on real test functions.

Each function is compiled as it is and after each transformation; a transformation that renamed a name but
missed one of its uses, renamed a field, or inserted a statement the compiler refuses gives a function
whose compiler errors change. Real functions do not compile alone (their classes, types and headers are
missing), so the check compares the errors (messages with names masked, and counted) before and after,
not their absence. Prints one row per language and transformation; a renamed method's call to another overload
(which keeps the old name) changes javac's message and is counted apart.

    python scripts/check_transforms.py --java 800 --c 547
"""

from __future__ import annotations

import argparse
import collections
import random
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from lit_compressor.core.console import print_table
from lit_compressor.data.parsing import get_parser
from lit_compressor.data.scopes import function_node
from lit_compressor.data.task import TaskData
from lit_compressor.data.transforms import TRANSFORMATIONS, transform

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
JAVA_IMPORTS = ("import java.io.*; import java.util.*; import java.net.*; import java.util.zip.*; import java.sql.*; "
                "import java.security.*; import java.nio.*; import java.nio.channels.*;\n")
C_HEADERS = "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <stdint.h>\n#include <errno.h>\n"
QUOTED = re.compile(r"‘[^’]*’|'[^']*'")


def masked(message: str) -> str:
    return QUOTED.sub("X", message.split("; did you mean")[0])


def overload_call(lost: collections.Counter, new: collections.Counter) -> bool:
    """A renamed method's call to another overload of the old name (other arguments), which keeps the old name:
    javac said the only method of that name took other arguments, it now finds no method of that name. Both
    are the error of the overload missing from the snippet, not of the renaming."""
    return (bool(lost) and all("cannot be applied to given types" in message for message in lost)
            and set(new) == {"cannot find symbol"} and sum(lost.values()) == sum(new.values()))


def java_errors(functions: list[str], folder: Path) -> list[collections.Counter]:
    """javac's errors of each function, compiled as the only method of its own class (200 files a run)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i, code in enumerate(functions):
        (folder / f"C{i}.java").write_text(f"{JAVA_IMPORTS}class C{i} {{\n{code}\n}}\n")
    errors = [collections.Counter() for _ in functions]
    for start in range(0, len(functions), 200):
        files = [str(folder / f"C{i}.java") for i in range(start, min(start + 200, len(functions)))]
        run = subprocess.run(["javac", "-proc:none", "-nowarn", "-Xmaxerrs", "100000", "-d", str(folder / "out"),
                              *files], capture_output=True, text=True)
        for i, message in re.findall(r"C(\d+)\.java:\d+: error: ([^\n]*)", run.stdout + run.stderr):
            errors[int(i)][masked(message)] += 1
    return errors


def c_errors(functions: list[str], folder: Path) -> list[collections.Counter]:
    folder.mkdir(parents=True, exist_ok=True)
    errors = []
    for i, code in enumerate(functions):
        path = folder / f"f{i}.c"
        path.write_text(C_HEADERS + code)
        run = subprocess.run(["gcc", "-fsyntax-only", "-w", "-fmax-errors=0", str(path)], capture_output=True,
                             text=True)
        errors.append(collections.Counter(masked(m) for m in re.findall(r"error: (.*)", run.stderr)))
    return errors


def java_functions(limit: int, seed: int) -> list[str]:
    """Methods (not constructors: javac wants a constructor's class name) of the 1,000 test pairs of
    compress_cpu.yaml that parse without errors (javac stops at a syntax error in any file of a run)."""
    task = TaskData(format="bigclonebench", data_dir=str(DATA / "bigclonebench"), limit={"test": 1000})
    functions = sorted({code for example in task.read("test") for code in example.codes})

    def clean_method(code: str) -> bool:
        tree = get_parser("java").parse(code.encode())
        node = function_node(tree.root_node, "java")
        return not tree.root_node.has_error and node is not None and node.type == "method_declaration"

    functions = [code for code in functions if clean_method(code)]
    return random.Random(seed).sample(functions, min(limit, len(functions)))


def c_functions(limit: int, seed: int) -> list[str]:
    task = TaskData(format="devign", data_dir=str(DATA / "devign"))
    functions = [code for split in ("test", "valid") for example in task.read(split) for code in example.codes]
    return random.Random(seed).sample(functions, min(limit, len(functions)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--java", type=int, default=800, help="Java methods to check")
    parser.add_argument("--c", type=int, default=547, help="C functions to check")
    parser.add_argument("--seed", type=int, default=0, help="transformation and sample seed")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for language, functions, compile_ in (("java", java_functions(args.java, args.seed), java_errors),
                                              ("c", c_functions(args.c, args.seed), c_errors)):
            before = compile_(functions, Path(tmp) / language / "original")
            for name in TRANSFORMATIONS:
                results = [transform(code, language, name, args.seed) for code in functions]
                after = compile_([r.code for r in results], Path(tmp) / language / name)
                differ = [i for i, r in enumerate(results) if r.status == "changed" and after[i] != before[i]]
                overloads = [i for i in differ if overload_call(before[i] - after[i], after[i] - before[i])]
                rows.append([language, name, str(len(functions)), str(sum(r.status == "changed" for r in results)),
                             str(len(differ) - len(overloads)), str(len(overloads))])
                for i in [i for i in differ if i not in overloads][:3]:
                    lost, new = dict(before[i] - after[i]), dict(after[i] - before[i])
                    print(f"{language} {name} #{i}: errors lost {lost}, new {new}")
    print_table("compiler errors before and after each transformation",
                ["language", "transformation", "functions", "changed", "errors changed",
                 "a call to another overload"], rows, right_from=2)


if __name__ == "__main__":
    main()
