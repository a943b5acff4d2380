"""``lit-compressor label``: the fine-tuned teacher's soft labels of the unlabelled split."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

from lit_compressor.core.errors import UserError
from lit_compressor.core.fingerprint import hash_files
from lit_compressor.core.metadata import teacher_head
from lit_compressor.data.readers import Example
from lit_compressor.data.task import TaskData, fingerprint, load_task
from lit_compressor.data.transforms import language_of
from lit_compressor.labels.copies import COPY_SEED, check_transformations, transformed_copies
from lit_compressor.labels.external import Kind, read_teacher_outputs
from lit_compressor.labels.soft_labels import SoftLabels, function_key, is_current, save_soft_labels


def label(teacher: str | None = None, output: Path = Path("runs/soft_labels.safetensors"),
          task: TaskData | str | None = None, block_size: int = 400, batch_size: int = 64, accelerator: str = "auto",
          devices: int | str = 1, strategy: str = "auto", precision: str | None = None, force: bool = False,
          from_file: Path | None = None, kind: Kind = "auto", smoothing: float = 0.0,
          functions_from: list[Literal["unlabelled", "labelled"]] | None = None,
          transformed: list[str] | None = None, transform_seed: int = COPY_SEED,
          language: Literal["java", "c"] | None = None) -> Path:
    """Label the unlabelled split with a fine-tuned teacher folder, or read a teacher's outputs produced
    elsewhere (``--from FILE``); skipped when the file is current.

    Args:
        teacher: the fine-tuned teacher's Hugging Face folder (written by fitting a TeacherModule).
        output: the soft-label file (safetensors).
        task: the data: its fields (as in the ``data.task`` block of a fit config), or a task YAML or folder.
        block_size: tokens per function.
        batch_size: functions per forward pass (the teacher encodes each unique function once).
        accelerator: Lightning accelerator (cpu, gpu, auto).
        devices: number of devices; with ``strategy: ddp`` each labels a shard and rank 0 writes the file.
        strategy: Lightning strategy (auto, ddp).
        precision: Lightning precision (e.g. bf16-mixed).
        force: label again even when the file is current.
        from_file: (``--from``) teacher outputs produced elsewhere: JSONL, CSV or TSV with an id (or the two
            function ids of a pair) and logits, probabilities or a hard label per example of the split
            (see :mod:`lit_compressor.labels.external`). No teacher runs; no function cache is written.
        kind: what ``from_file`` holds when its header does not say: logits, probabilities or label.
        smoothing: hard labels from ``from_file`` become ``(1 - smoothing) * onehot + smoothing / classes``.
        functions_from: the splits whose functions the function cache holds (default: the unlabelled
            split). Adding ``labelled`` gives distillation's function batches the teacher's view of its own
            training functions too (their code, never their labels); valid and test functions never enter.
        transformed: robust distillation (off by default): also cache the teacher's vectors of one transformed
            copy of each cached function, its transformation drawn per function from this list (``a+b``: one
            after the other; e.g. ``[rename_method+rename_parameters, rename_locals, dead_code,
            swap_comparisons]``), for the student's function batches (``augment.transformed``). At most one
            more teacher pass a function.
        transform_seed: seed of the copies' transformations (keep it away from the robustness report's).
        language: the functions' language for ``transformed`` (default: java for BigCloneBench, c for Devign).
    """
    import lightning as L
    from torch.utils.data import DataLoader

    from lit_compressor.labels.soft_labels import unique_functions
    from lit_compressor.training.labelling import SoftLabelWriter, TeacherPredictor

    task = load_task(task) if task is not None else TaskData()
    examples = task.read("unlabelled")
    if from_file is not None:
        return label_from_file(Path(from_file), Path(output), task, examples, kind, smoothing, force)
    if teacher is None:
        raise UserError("label needs a teacher folder, or teacher outputs with --from FILE.")
    splits = sorted(set(functions_from or ["unlabelled"]) | {"unlabelled"}, reverse=True)  # unlabelled first
    extra = [e for split in splits[1:] for e in task.read(split)]
    teacher_hash, data_hash = hash_files(teacher), fingerprint(examples)
    settings = {"block_size": str(block_size), "functions_from": ",".join(splits),
                "functions_data": fingerprint(extra), "transformed": ",".join(transformed or []),
                "transform_seed": str(transform_seed) if transformed else ""}
    if transformed:
        check_transformations(transformed)
        language = language_of(task.format, language)
    if not force and is_current(output, teacher_hash, data_hash, **settings):
        print(f"soft labels are current: {output}")
        return output
    head = {k: str(v) for k, v in teacher_head(teacher).items()
            if k in ("family", "pooling", "pair_head", "inputs", "language", "flow_length")}
    functions = unique_functions(examples + extra)
    copies = []
    if transformed:
        started = time.perf_counter()
        cached = {function.id for function in functions}
        copies = [c for c in transformed_copies([f.codes[0] for f in functions], language, transformed, transform_seed)
                  if function_key(c.copy) not in cached]
        print(f"transformed copies: {len(copies):,} of {len(functions):,} functions in "
              f"{time.perf_counter() - started:.1f} s")
    writer = SoftLabelWriter(output, examples, functions, metadata={
        "teacher": teacher_hash, "data": data_hash, "teacher_path": str(teacher), **settings, **head}, copies=copies)
    copy_functions = unique_functions([Example(function_key(c.copy), (c.copy,)) for c in copies])
    predictor = TeacherPredictor(teacher, block_size, function_vectors=True)
    trainer = L.Trainer(accelerator=accelerator, devices=devices, strategy=strategy, precision=precision,
                        callbacks=[writer], logger=False, enable_checkpointing=False)
    trainer.predict(predictor, dataloaders=DataLoader(functions + copy_functions, batch_size=batch_size,
                                                      collate_fn=predictor.collate),
                    return_predictions=False)
    if trainer.is_global_zero:
        passes, unique = sum(len(e.codes) for e in examples), len(unique_functions(examples))
        print(f"soft labels: {len(examples):,} examples from {unique:,} teacher passes, one per unique function "
              f"instead of {passes:,} ({1 - unique / passes:.0%} fewer); function cache: {len(functions):,} "
              f"functions of the {' and '.join(splits)} split(s)"
              + (f" and {len(copies):,} transformed copies" if transformed else "") + f" -> {output}")
    return output


def label_from_file(source: Path, output: Path, task: TaskData, examples: list, kind: Kind, smoothing: float,
                    force: bool) -> Path:
    """The soft-label file of teacher outputs read from ``source`` (validated whole before writing)."""

    source_hash, data_hash = hash_files(source), fingerprint(examples)
    settings = {"smoothing": str(smoothing), "requested_kind": kind}  # another --kind reads the file otherwise
    if not force and is_current(output, source_hash, data_hash, **settings):
        print(f"soft labels are current: {output}")
        return output
    logits, kind = read_teacher_outputs(source, examples, task.num_inputs, task.num_labels, kind, smoothing)
    save_soft_labels(output, SoftLabels([e.id for e in examples], logits, {
        "teacher": source_hash, "data": data_hash, "teacher_path": str(source), "source_kind": kind, **settings}))
    print(f"soft labels: {len(examples):,} examples from {source} ({kind}) -> {output}")
    return output
