"""``lit-compressor compress``: the commands a user runs alone, composed, each skipped when current.

    fit (teacher) -> label -> search -> fit (student) -> export -> calibrate -> robustness -> benchmark -> report

A compress config names (or embeds) the stage configs — the very YAML files that ``fit``, ``label``,
``search``, ``export``, ``calibrate``, ``robustness`` and ``benchmark`` take — and adds only the settings
that link the stages: the task, the block size, the output folder, the trainer's hardware and the seed. For
each stage it writes the complete config it runs to ``output/stages/<stage>.yaml``, so any stage can be
re-run by hand::

    lit-compressor fit --config runs/quickstart/stages/teacher.yaml

A stage is skipped when ``output/stages/<stage>.done.json`` records the same config, the same upstream
outputs and the same contents of every data file the stage reads (size and mtime first; a file whose size or
mtime changed is hashed to confirm); a training stage interrupted mid-way resumes from the ``last.ckpt`` of a
run of the same config and training data. ``compress`` runs in one process on one device; for multi-device
training run the ``fit`` and ``label`` stages by hand with ``--trainer.strategy ddp``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lit_compressor.clones.calibration import CALIBRATION_FILE, DEFAULT_PRIOR
from lit_compressor.commands.benchmark import benchmark as benchmark_command
from lit_compressor.commands.calibrate import MIN_PAIRS
from lit_compressor.commands.calibrate import calibrate as calibrate_command
from lit_compressor.commands.export import card_from_report
from lit_compressor.commands.export import export as export_command
from lit_compressor.commands.label import label as label_command
from lit_compressor.commands.report import build_report, collapse_warning, write_report
from lit_compressor.commands.robustness import robustness as robustness_command
from lit_compressor.commands.search import search as search_command
from lit_compressor.core.configs import Stage, deep_merge, read_yaml, resolve_stage, with_checkpoint_folder, write_yaml
from lit_compressor.core.errors import UserError
from lit_compressor.core.files import atomic_write_json
from lit_compressor.core.fingerprint import hash_files, hash_json
from lit_compressor.core.metadata import is_graph_folder, read_metadata
from lit_compressor.data.task import TaskData
from lit_compressor.data.transforms import LANGUAGE_OF_FORMAT
from lit_compressor.runtime.folder import FULL, SHIPPED
from lit_compressor.runtime.robustness import MORPH
from lit_compressor.training.cli import run_lightning_cli, with_settings

QUICKSTART = Path("configs/quickstart.yaml")
MODEL_SUFFIXES = (".onnx", ".safetensors", ".json", ".bin")  # what a model folder's hash reads


@dataclass
class StageRecord:
    name: str
    skipped: bool
    config: str
    seconds: float
    outputs: dict[str, str] = field(default_factory=dict)


# --- stage configs ----------------------------------------------------------------------------------
def fit_config(base: dict[str, Any], what: str, task: TaskData, block_size: int, seed: int,
               trainer: dict[str, Any], model_args: dict[str, Any],
               data_args: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``fit`` config: the stage's file with the linking settings written over it."""
    if "model" not in base:
        raise UserError(f"the {what} stage config has no `model` (a `fit` config is needed).",
                        fix="Name a fit config, e.g. configs/bigclonebench/teacher.yaml.")
    config = deep_merge(base, {"seed_everything": seed, "model": {"init_args": model_args}, "trainer": trainer})
    return with_settings(config, "data", {"task": task.to_dict(), "block_size": block_size, **(data_args or {})})


# --- running stages ---------------------------------------------------------------------------------
class Stages:
    """Writes each stage's config, runs it unless current, and records what it did and how long it took."""

    def __init__(self, output: Path):
        self.output = output
        self.folder = output / "stages"
        self.records: list[StageRecord] = []

    def run(self, name: str, config: dict[str, Any], upstream: dict[str, str], outputs: dict[str, Path],
            work: Callable[[Path], None], reads: list[Path] | None = None) -> StageRecord:
        """Run ``work`` on the stage's config file unless the stage is current; ``reads``: the data files it
        reads, whose contents enter its key."""
        from rich.console import Console

        path = write_yaml(self.folder / f"{name}.yaml", config)
        marker = self.folder / f"{name}.done.json"
        recorded = json.loads(marker.read_text()) if marker.is_file() else {}
        files = file_digests(reads or [], recorded.get("files", {}))
        key = hash_json(config, upstream, {file: digest for file, (_, _, digest) in files.items()})
        current = recorded.get("inputs") == key and all(p.exists() for p in outputs.values())
        started = time.perf_counter()
        if current:
            Console().print(f"[dim]stage {name}: up to date, skipped ({path})[/dim]")
        else:
            Console().rule(f"stage {name}: {path}")
            marker.unlink(missing_ok=True)
            work(path)
            missing = [str(p) for p in outputs.values() if not p.exists()]
            if missing:
                raise RuntimeError(f"stage {name} finished without writing {', '.join(missing)}")
            atomic_write_json(marker, {"inputs": key, "upstream": upstream, "files": files})
        record = StageRecord(name, current, str(path), round(time.perf_counter() - started, 1),
                             {k: str(v) for k, v in outputs.items()})
        self.records.append(record)
        return record


def file_digests(paths: list[Path], known: dict[str, list]) -> dict[str, list]:
    """``{path: [size, mtime_ns, content hash]}``; a file whose size and mtime are those ``known`` keeps its
    recorded hash (no reading), any other is hashed."""
    digests = {}
    for path in sorted(set(paths)):
        if not path.is_file():  # the stage itself says what is missing
            continue
        stat = path.stat()
        old = known.get(str(path))
        same = old is not None and old[0] == stat.st_size and old[1] == stat.st_mtime_ns
        digests[str(path)] = old if same else [stat.st_size, stat.st_mtime_ns, hash_files(path)]
    return digests


def run_command(command: Callable[..., Any], config: Path) -> Any:
    """``command`` run on its config file, as ``lit-compressor NAME --config config`` runs it."""
    from jsonargparse import auto_cli

    return auto_cli(command, args=["--config", str(config)], as_positional=False)


def run_fit(config: Path, checkpoints: Path, command: str = "fit") -> None:
    """``lit-compressor fit --config config`` in this process, resuming from ``checkpoints/last.ckpt``."""
    last = checkpoints / "last.ckpt"
    args = [command, "--config", str(config)] + (["--ckpt_path", str(last)] if last.is_file() else [])
    cli = run_lightning_cli(args)
    if cli.trainer.interrupted:
        raise UserError("training was interrupted.", config, "Run compress again: it resumes from the last checkpoint.")


# --- the command ----------------------------------------------------------------------------------
def compress(task: TaskData | None = None, block_size: int = 128, output: Path = Path("runs/compress"),
             teacher: Stage | None = None, teacher_folder: str | None = None, label: dict[str, Any] | None = None,
             search: Stage | None = None, architecture: str | None = None, student: Stage | None = None,
             export: bool | dict[str, Any] = True, calibrate: bool | dict[str, Any] = True,
             robustness: bool | dict[str, Any] = True, benchmark: dict[str, Any] | None = None,
             trainer: dict[str, Any] | None = None, seed: int = 42) -> dict[str, Any]:
    """Compress a teacher into a tiny student, stage by stage, and report both side by side.

    Run without ``--config``, it runs ``configs/quickstart.yaml`` (the quick start).

    Args:
        task: The data (format, folder, split files, field names, sample limits), linked into every stage.
        block_size: Tokens per function, linked into every stage (the paper: 400).
        output: The run folder: stages/, teacher/, soft_labels.safetensors, search/, student/, export/, report.*.
        teacher: The teacher's ``fit`` config (a TeacherModule), a path or ``{config: PATH, ...overrides}``.
        teacher_folder: An already fine-tuned teacher folder instead: it is tested on this task, not trained.
        label: Settings of the ``label`` stage (e.g. ``batch_size``). With ``from_file`` (and ``kind``,
            ``smoothing``) a teacher's outputs produced elsewhere are the soft labels (``label --from``) and no
            teacher runs here: the teacher stages are skipped, and the report's teacher row is the benchmark's
            reference teacher (``benchmark.teacher``, default ``codebert-shape``), timed but not scored.
        search: The ``search`` config (a path or ``{config: PATH, ...overrides}``); skipped with ``architecture``.
        architecture: An ``architecture.yaml`` to use instead of searching (or the student config's own).
        student: The student's ``fit`` config (a DistillationModule).
        export: ``false``, or settings of the ``export`` stage (e.g. ``samples``).
        calibrate: ``false``, or settings of the ``calibrate`` stage (``prior``: the default share of clone pairs
            among a project's function pairs). For pair tasks it fits the exported student's clone scores to
            probabilities on the valid split and writes ``calibration.json`` into ``export/shipped`` (int8
            encoder) and ``export/full`` (fp32), the folders ``lit-compressor clones`` reads (docs/clones.md).
        robustness: ``false``, or settings of the ``robustness`` stage: the shipped student's agreement with the
            teacher on the test split and the prediction flips of both under Morph's two renamings (default
            ``transformations: [rename_method+rename_parameters]``; any of ``lit-compressor robustness``'s
            settings). It costs about two test passes of the teacher (docs/robustness.md).
        benchmark: Settings of the ``benchmark`` stage (e.g. ``samples``, ``backends``, ``threads``; ``proxy`` times
            another teacher beside the fine-tuned one, e.g. ``codebert-shape`` with ``proxy_block_size: 400``).
        trainer: Trainer settings written over both ``fit`` stages (e.g. ``accelerator``, ``precision``).
        seed: Seed of every stage.
    """
    started = time.perf_counter()
    if task is None:
        raise UserError("compress needs a task.", fix=f"Give --config (e.g. {QUICKSTART}) or --task.")
    external = (label or {}).get("from_file")
    if teacher is None and teacher_folder is None and not external:
        raise UserError("compress needs a teacher: a `teacher` fit config, a fine-tuned `teacher_folder`, or a "
                        "teacher's outputs produced elsewhere (`label: {from_file: FILE}`).")
    if external and (teacher is not None or teacher_folder is not None):
        raise UserError("label.from_file gives the soft labels: the `teacher` or `teacher_folder` would not be used.",
                        fix="Remove the teacher, or remove label.from_file.")
    if external and search is not None and architecture is None:
        raise UserError("the architecture search reads the teacher folder, and label.from_file gives none.",
                        fix="Give `architecture` (an architecture.yaml), or the student config's own genes.")
    if student is None:
        raise UserError("compress needs a `student` fit config (a DistillationModule).")
    if isinstance(calibrate, dict) and (unknown := sorted(set(calibrate) - {"prior"})):
        raise UserError(f"unknown calibrate setting(s) {', '.join(map(repr, unknown))}.",
                        fix="The calibrate stage takes `prior` (or `calibrate: false`).")
    output = Path(output)
    stages = Stages(output)
    hardware = {k: v for k, v in (trainer or {}).items()}
    task_file = write_yaml(output / "task.yaml", task.to_dict())

    # 1. teacher: fine-tuned here (on the labelled split, chosen on valid), or a given folder, then tested; none
    # when its outputs were produced elsewhere
    teacher_dir: Path | None = None
    if external:
        pass
    elif teacher_folder is None:
        teacher_dir = output / "teacher"
        base = fit_config(resolve_stage(teacher, "teacher"), "teacher", task, block_size, seed, hardware,
                          {"output_dir": str(teacher_dir)})
        base["test_after_fit"] = False  # the teacher_test stage tests it, so a new test split does not re-fit it
        training_data = file_digests(task.files_of(["labelled", "valid"]), {})
        run_dir = output / "runs" / f"teacher-{hash_json(base, training_data)}"
        config = deep_merge(base, {"trainer": with_checkpoint_folder(
            {**base.get("trainer", {}), "default_root_dir": str(run_dir)}, run_dir / "checkpoints")})
        stages.run("teacher", config, {}, {"teacher": teacher_dir / "model.safetensors"},
                   lambda path: run_fit(path, run_dir / "checkpoints"), reads=task.files_of(["labelled", "valid"]))
        drop_checkpoints(run_dir)
    else:
        teacher_dir = Path(teacher_folder)
    teacher_hash = hash_files(teacher_dir if teacher_dir is not None else Path(external))
    teacher_metrics = None if teacher_dir is None else test_teacher(stages, output, teacher_dir, teacher_hash, task,
                                                                    block_size, seed, hardware)

    # 2. soft labels
    soft_labels = output / "soft_labels.safetensors"
    if teacher_dir is None:
        config = {**(label or {}), "output": str(soft_labels), "task": task.to_dict()}
    else:
        config = {**(label or {}), "teacher": str(teacher_dir), "output": str(soft_labels), "task": task.to_dict(),
                  "block_size": block_size,
                  **{k: hardware[k] for k in ("accelerator", "devices", "precision") if k in hardware}}
    cached_splits = ["unlabelled", *(label or {}).get("functions_from", [])]
    stages.run("label", config, {"teacher": teacher_hash}, {"soft_labels": soft_labels},
               lambda path: run_command(label_command, path),
               reads=task.files_of(cached_splits) + ([Path(external)] if external else []))

    # 3. architecture search
    student_base = resolve_stage(student, "student")
    student_dir = output / "student"
    links = {"output_dir": str(student_dir), **({"teacher": str(teacher_dir)} if teacher_dir is not None else {})}
    data_links = {"soft_labels": str(soft_labels), "tokenizer_cache": str(output / "tokenizers")}
    if search is not None and architecture is None:
        search_dir = output / "search"
        sample_fit = write_yaml(stages.folder / "search_student.yaml", fit_config(
            student_base, "student", task, block_size, seed, hardware, {**links, "output_dir": None}, data_links))
        config = search_config(resolve_stage(search, "search"), task, block_size, teacher_dir, seed, search_dir,
                               output / "tokenizers", sample_fit)
        upstream = {"teacher": teacher_hash}
        if config.get("predictor"):  # the sampled distillations: the student's config and soft labels
            upstream.update(soft_labels=hash_files(soft_labels), student=sample_fit.read_text())
        reads = task.files_of([*cached_splits, "valid", "test"]) if config.get("mode") == "nsga2" else []
        stages.run("search", config, upstream, {"architecture": search_dir / "architecture.yaml"},
                   lambda path: run_command(search_command, path), reads=reads)
        architecture = str(search_dir / "architecture.yaml")

    # 4. distillation: the student tokenizer is trained on the way
    model_args: dict[str, Any] = dict(links)
    student_block = block_size
    if architecture is not None:
        model_args["architecture"] = architecture
        searched = searched_genes(architecture)
        student_block = searched.pop("block_size", block_size)  # the student may read fewer tokens than the teacher
        model_args.update(searched)
    base = fit_config(student_base, "student", task, student_block, seed, hardware, model_args, data_links)
    upstream = {"soft_labels": hash_files(soft_labels)}
    if architecture is not None:
        upstream["architecture"] = Path(architecture).read_text()
    student_reads = task.files_of([*cached_splits, "valid", "test"])
    training_data = file_digests(task.files_of([*cached_splits, "valid"]), {})
    run_dir = output / "runs" / f"student-{hash_json(base, upstream, training_data)}"
    config = deep_merge(base, {"trainer": with_checkpoint_folder(
        {**base.get("trainer", {}), "default_root_dir": str(run_dir)}, run_dir / "checkpoints")})
    stages.run("student", config, upstream, {"student": student_dir / "metrics.json"},
               lambda path: run_fit(path, run_dir / "checkpoints"), reads=student_reads)
    drop_checkpoints(run_dir)
    warn_if_collapsed("student", student_dir / "metrics.json")
    student_hash = hash_files(student_dir)

    # 5. export: shipped/ and full/ (every form: the benchmark times the fp32 ones too)
    shipped, exported = student_dir, output / "export"
    if export is not False:
        shipped = exported / "full"
        config = {"samples": None, **({} if export is True else export), "model": str(student_dir),
                  "output": str(exported), "data": str(task_file), "overwrite": True, "full": True}
        stages.run("export", config, {"student": student_hash}, {"export": exported / "export.json"},
                   lambda path: run_command(export_command, path), reads=task.files_of(["test"]))

    # 6. calibrate: clone probabilities for `clones`, fit on the valid split, in shipped/ (int8) and full/ (fp32)
    calibration_files = None
    settings = {} if calibrate in (True, False) else dict(calibrate)
    skipped_because = None if calibrate is False else calibrate_skip_reason(task, export, student_dir)
    if skipped_because is not None:
        dim_note(f"stage calibrate: skipped, {skipped_because}")
    elif calibrate is not False:
        calibration_files = {sub: exported / sub / CALIBRATION_FILE for sub in (SHIPPED, FULL)}
        config = {"prior": DEFAULT_PRIOR, **settings, "model": str(exported), "data": str(task_file), "split": "valid"}
        # the export's graphs without the stage's own output: a re-export re-runs it, a calibration alone does not
        upstream = {sub: hash_files(exported / sub, MODEL_SUFFIXES, (CALIBRATION_FILE,)) for sub in (SHIPPED, FULL)}
        stages.run("calibrate", config, upstream, calibration_files, lambda path: run_command(calibrate_command, path),
                   reads=[task_file, *task.files_of(["valid"])])

    # 7. robustness: agreement with the teacher and the renaming flips, the shipped student beside its teacher
    shipped_hash = hash_files(shipped, MODEL_SUFFIXES, (CALIBRATION_FILE,))
    robust_file = None
    settings = {} if robustness in (True, False) else dict(robustness)
    skipped_because = None if robustness is False else robustness_skip_reason(settings, task, teacher_dir,
                                                                               student_dir)
    if skipped_because is not None:
        dim_note(f"stage robustness: skipped, {skipped_because}")
    elif robustness is not False:
        robust_file = output / "robustness.json"
        config = {"transformations": [MORPH], "seeds": [0], **settings,
                  "teacher": str(teacher_dir), "student": str(shipped), "data": str(task_file),
                  "student_backend": "onnx-int8" if export is not False else "pytorch", "output": str(robust_file)}
        upstream = {"shipped": shipped_hash, "teacher": teacher_hash}
        stages.run("robustness", config, upstream, {"robustness": robust_file},
                   lambda path: run_command(robustness_command, path), reads=task.files_of(["test"]))

    # 8. benchmark: the student as shipped beside its teacher
    timing = output / "benchmark.json"
    backends = ["pytorch", "onnx-int8"] if export is not False else ["pytorch"]  # eager and shipped, both sides
    config = {"backends": backends, **(benchmark or {}), **({"teacher": str(teacher_dir)} if teacher_dir else {}),
              "model": str(shipped), "data": str(task_file), "output": str(timing)}
    upstream = {"shipped": shipped_hash, "teacher": teacher_hash}
    stages.run("benchmark", config, upstream, {"benchmark": timing},  # the proxy tokenizer reads the unlabelled code
               lambda path: run_command(benchmark_command, path), reads=task.files_of(["test", "unlabelled"]))

    report = build_report(task, teacher_dir, teacher_metrics, student_dir, timing, stages.records,
                          time.perf_counter() - started, exported / "export.json" if export is not False else None,
                          robust_file, calibration_files)
    if external:
        report["teacher"]["labels_from"] = str(external)
    if export is not False:  # the model card, now with the report's test-split figures
        card_from_report(exported, report)
    record_disk_footprint(output, report)
    write_report(output, report)
    return report


def test_teacher(stages: Stages, output: Path, teacher_dir: Path, teacher_hash: str, task: TaskData, block_size: int,
                 seed: int, hardware: dict[str, Any]) -> Path:
    """The ``teacher_test`` stage: the teacher folder scored on the test split; its ``metrics.json``."""
    evaluation = output / "teacher_test"
    config = {"seed_everything": seed,
              "model": {"class_path": "lit_compressor.training.labelling.TeacherPredictor",
                        "init_args": {"folder": str(teacher_dir), "output_dir": str(evaluation)}},
              "data": {"task": task.to_dict(), "block_size": block_size,
                       # a pair split in batches of functions: each function encoded about twice, not once a pair
                       **({"function_batches": {"size": None}} if task.num_inputs == 2 else {})},
              "trainer": {**hardware, "logger": False, "enable_checkpointing": False,
                          "default_root_dir": str(evaluation)}}  # where LightningCLI saves its config
    stages.run("teacher_test", config, {"teacher": teacher_hash}, {"metrics": evaluation / "metrics.json"},
               lambda path: run_fit(path, evaluation, command="test"), reads=task.files_of(["test"]))
    teacher_metrics = evaluation / "metrics.json"
    warn_if_collapsed("teacher", teacher_metrics)
    return teacher_metrics


def robustness_skip_reason(settings: dict[str, Any], task: TaskData, teacher_dir: Path | None,
                           student_dir: Path) -> str | None:
    """Why the robustness stage cannot run on this run, or ``None`` when it can."""
    if teacher_dir is None:
        return "there is no teacher folder to compare with"
    if task.format not in LANGUAGE_OF_FORMAT and "language" not in settings:
        return f"the language of a {task.format!r} task cannot be told (set robustness: {{language: java}} or c)"
    if any(is_graph_folder(read_metadata(folder)) for folder in (teacher_dir, student_dir)):
        return "it does not measure data-flow folders yet"
    return None


def calibrate_skip_reason(task: TaskData, export: bool | dict[str, Any], student_dir: Path) -> str | None:
    """Why the calibrate stage cannot run on this run, or ``None`` when it can."""
    if task.num_inputs != 2:
        return "a single-input task has no pair scores to calibrate"
    if export is False:
        return "there is no export to calibrate (export: false)"
    if isinstance(export, dict) and export.get("onnx") is False:
        return "the export has no ONNX graphs for clone search (export: {onnx: false})"
    if is_graph_folder(read_metadata(student_dir)):
        return "clone search does not read data-flow folders yet"
    pairs = sum(example.label is not None for example in task.read("valid"))
    if pairs < MIN_PAIRS:
        return f"the valid split has {pairs} labelled pairs, too few to fit on (at least {MIN_PAIRS})"
    return None


def dim_note(text: str) -> None:
    """One dim line on stderr (a stage skipped, and why)."""
    from rich.console import Console

    Console(stderr=True).print(f"[dim]{text}[/dim]")


def drop_checkpoints(run_dir: Path) -> None:
    """Once a training stage has written its folder, its checkpoints are redundant (the stage is skipped while
    current, and a changed config trains in a new run folder): keep only the logs."""
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)


def tree_bytes(path: Path) -> int:
    """Bytes of a file, or of every file under a folder."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def record_disk_footprint(output: Path, report: dict[str, Any]) -> None:
    """What the run leaves on disk: each stage's ``disk_bytes`` (the top-level entries of ``output`` holding its
    outputs, and its training run folder ``runs/<stage>-*``) and the whole folder's (report.* aside). Output files
    a stage writes inside an earlier stage's entry (calibrate's ``calibration.json`` in ``export/``) count for it,
    not for the earlier one."""
    owner: dict[Path, dict[str, Any]] = {}  # each top-level entry's first stage
    for stage in report["stages"]:
        outputs = [Path(path) for path in stage["outputs"].values() if Path(path).is_relative_to(output)]
        entries = {output / path.relative_to(output).parts[0] for path in outputs}
        entries |= set((output / "runs").glob(f"{stage['name']}-*"))
        inside = [path for path in outputs if output / path.relative_to(output).parts[0] in owner]
        stage["disk_bytes"] = sum(tree_bytes(path) for path in entries if path not in owner)
        for path in inside:
            stage["disk_bytes"] += tree_bytes(path)
            owner[output / path.relative_to(output).parts[0]]["disk_bytes"] -= tree_bytes(path)
        owner.update({path: stage for path in entries if path not in owner})
    report["disk_bytes"] = tree_bytes(output)


def search_config(base: dict[str, Any], task: TaskData, block_size: int, teacher_dir: Path, seed: int,
                  output: Path, tokenizers: Path, student_fit: Path) -> dict[str, Any]:
    """The search stage's config: its file with the task's shape, the teacher, the seed and the output linked;
    the block size too unless the search chooses it. An NSGA-II search also gets the task (its test inputs are
    timed), the tokenizer cache, and, with a predictor, the student's own fit config (the file
    ``student_fit``) for its sampled distillations."""
    space = {"num_inputs": task.num_inputs, "num_labels": task.num_labels}
    if not isinstance(base.get("space", {}).get("block_size"), dict):
        space["block_size"] = block_size
    links: dict[str, Any] = {"space": space, "teacher": str(teacher_dir), "seed": seed, "output": str(output)}
    if base.get("mode") == "nsga2":
        links.update({"task": task.to_dict(), "tokenizer_cache": str(tokenizers)})
        if base.get("predictor") is not None:
            links["predictor"] = {"fit": str(student_fit)}
    return deep_merge(base, links)


def searched_genes(architecture: str | Path) -> dict[str, Any]:
    """The genes an ``architecture.yaml`` holds beside the five of the architecture: ``block_size`` (the
    student's ``data.block_size``), ``lr`` and ``dropout`` (the student's ``model.init_args``)."""
    content = read_yaml(architecture, "architecture")
    return {k: content[k] for k in ("block_size", "lr", "dropout") if k in content}


def warn_if_collapsed(name: str, metrics_file: Path) -> None:
    """Print a warning when a model predicts one class for nearly every test example."""
    message = collapse_warning(name, json.loads(metrics_file.read_text()))
    if message:
        from rich.console import Console

        Console(stderr=True).print(f"[bold yellow]warning:[/bold yellow] {message}")

