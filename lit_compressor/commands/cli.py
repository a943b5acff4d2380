"""The ``lit-compressor`` entry point.

``fit``/``validate``/``test``/``predict`` go to :class:`LitCompressorCLI` (a thin ``LightningCLI``);
every other subcommand is a typed function that jsonargparse turns into a CLI, as in litgpt. Each is
imported only when called, so ``lit-compressor search`` never pays for importing Lightning.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

from lit_compressor.core.errors import run_guarded

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
FUNCTION_COMMANDS = {
    "search": ("lit_compressor.commands.search", "search",
               "Search a student architecture (Compressor's GA or NSGA-II)."),
    "label": ("lit_compressor.commands.label", "label", "Write the teacher's soft labels of the unlabelled split."),
    "export": ("lit_compressor.commands.export", "export", "Export a student folder to ONNX and int8."),
    "benchmark": ("lit_compressor.commands.benchmark", "benchmark", "Benchmark a student against its teacher."),
    "compress": ("lit_compressor.commands.compress", "compress",
                 "Run every stage: teacher to shipped tiny model (default: configs/quickstart.yaml)."),
    "import-compressor": ("lit_compressor.commands.import_compressor", "import_compressor",
                          "Import a checkpoint of the Compressor research code."),
    "clones": ("lit_compressor.commands.clones", "clones",
               "Find clone pairs among a project's Java and C functions with a pair student."),
    "robustness": ("lit_compressor.commands.robustness", "robustness",
                   "Accuracy drop and prediction flips of teacher and student on renamed and edited code."),
    "calibrate": ("lit_compressor.commands.calibrate", "calibrate",
                  "Fit a pair student's clone scores to probabilities on a validation split (for clones)."),
}


def _usage() -> str:
    lines = ["usage: lit-compressor COMMAND [--config FILE] [options]  (COMMAND --help for its options)", ""]
    lines += [f"  {name:<18} LightningCLI: {name} a model (--model, --data, --trainer)" for name in LIGHTNING_COMMANDS]
    lines += [f"  {name:<18} {doc}" for name, (_, _, doc) in FUNCTION_COMMANDS.items()]
    return "\n".join(lines)


def run_function_command(name: str, args: list[str]):
    """Parse ``args`` for the function behind ``name`` and call it."""
    from jsonargparse import auto_cli

    module, function, _ = FUNCTION_COMMANDS[name]
    fn = getattr(importlib.import_module(module), function)
    args = [a for a in args if a != "--debug"]
    if name == "label":  # `--from` reads better than the parameter's name, which cannot be `from`
        args = ["--from_file" + a[len("--from"):] if a.split("=")[0] == "--from" else a for a in args]
    if name == "compress" and not any(a.split("=")[0] in ("--config", "-h", "--help") for a in args):
        from lit_compressor.commands.compress import QUICKSTART

        if QUICKSTART.is_file():  # the quick start, run from the repository's root
            args = ["--config", str(QUICKSTART), *args]
    return auto_cli(fn, args=args, as_positional=False)


TRAINING_MODULES = ("jsonargparse", "lightning", "rich")


def require_training_extras() -> None:
    """The commands need the ``training`` extras; the base install only runs shipped students (TinyClassifier)."""
    missing = [name for name in TRAINING_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        print(f"error: the lit-compressor commands need the training extras ({', '.join(missing)} not installed): "
              "pip install 'lit-compressor[training]'. The base install runs shipped students from Python "
              "(lit_compressor.TinyClassifier, lit_compressor.clones).", file=sys.stderr)
        raise SystemExit(2)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return
    require_training_extras()
    command = argv[0]
    if command in LIGHTNING_COMMANDS:
        from lit_compressor.training.cli import run_lightning_cli

        run_guarded(lambda: run_lightning_cli(argv))
    elif command in FUNCTION_COMMANDS:
        run_guarded(lambda: run_function_command(command, argv[1:]))
    else:
        print(f"error: unknown command {command!r}.\n\n{_usage()}", file=sys.stderr)
        raise SystemExit(2)


if __name__ == "__main__":
    main()
