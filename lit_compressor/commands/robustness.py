"""``lit-compressor robustness``: how a teacher and its shipped student hold up when code is edited.

For each semantic-preserving transformation (method, parameter and local renaming, dead code, comparison swap,
and Morph's two renamings together): the accuracy of both models on the transformed test split, the drop from
the clean split and the prediction flips; on the clean split, the student's agreement with the teacher.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

from lit_compressor.core.console import print_table
from lit_compressor.core.errors import UserError
from lit_compressor.core.files import atomic_write_json
from lit_compressor.core.metadata import is_graph_folder, read_metadata
from lit_compressor.data.task import load_task, seeded_sample
from lit_compressor.data.transforms import check_transformation, language_of
from lit_compressor.runtime.folder import backend_files, resolve_folder
from lit_compressor.runtime.robustness import DEFAULT_TRANSFORMATIONS, folder_predictor, measure_robustness


def _check_folder(folder: Path, role: str, backend: str) -> None:
    metadata = read_metadata(resolve_folder(folder, backend_files(backend)))  # an export folder: what it ships
    if is_graph_folder(metadata):  # its pair predictions do not come back one row a pair yet
        raise UserError(f"robustness does not measure data-flow (GraphCodeBERT) folders yet ({role}).", folder,
                        "Measure a plain (code sub-word) teacher and student.")
    if not metadata:
        raise UserError(f"not a lit-compressor model folder (no lit_compressor block in config.json) for the "
                        f"{role}.", folder, f"Give the {role}'s folder (e.g. runs/quickstart/"
                        f"{'teacher' if role == 'teacher' else 'export'}).")


def _number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def print_report(report: dict[str, Any], title: str) -> None:
    names = list(report["clean"])
    columns = ["transformation", "seed", "examples changed"]
    for name in names:
        columns += [f"{name} acc", f"{name} drop", f"{name} flips"]
    rows = [["(clean)", "", ""] + [cell for name in names
                                  for cell in (_number(report["clean"][name]["accuracy"]), "", "")]]
    for row in report["transformed"]:
        cells = [row["transformation"], str(row["seed"]), f"{row['examples_changed']:,}"]
        for name in names:
            model = row["models"][name]
            cells += [_number(model["accuracy"]), _number(model["drop"], signed=True),
                      f"{model['flips']} ({100 * model['flip_rate']:.1f} %)"]
        rows.append(cells)
    print_table(title, columns, rows, right_from=1)
    if report["transformed"]:
        functions = report["transformed"][0]["functions"]
        print(f"{functions['functions']:,} distinct functions; {functions['unparsed']:,} could not be parsed (left as "
              f"they are), {functions['partial']:,} parsed with local syntax errors (transformed around them).")
    for name, clean in report["clean"].items():
        if "agreement_with_teacher" in clean:
            print(f"{name} agrees with the teacher on {clean['agreements']:,} of {report['examples']:,} clean "
                  f"examples ({100 * clean['agreement_with_teacher']:.1f} %).")


def robustness(teacher: Path, student: Path, data: str, output: Path | None = None,
               student_backend: Literal["pytorch", "onnx", "onnx-int8"] = "onnx-int8",
               teacher_backend: Literal["pytorch", "onnx", "onnx-int8"] = "pytorch",
               transformations: list[str] | None = None, seeds: list[int] | None = None,
               limit: int | None = None, sample_seed: int = 0, language: Literal["java", "c"] | None = None,
               batch_size: int = 16, threads: int | None = None, block_size: int | None = None) -> dict[str, Any]:
    """Accuracy, drop and prediction flips of a teacher and its student on transformed test code.

    Args:
        teacher: The fine-tuned teacher's folder.
        student: The shipped student's folder (an exported folder for the ONNX backends).
        data: The task whose test split is transformed: a task YAML (e.g. a run's task.yaml) or a task folder.
        output: Where to write the JSON report (default: only print).
        student_backend: The student's runtime (default: the int8 ONNX model that ships).
        teacher_backend: The teacher's runtime.
        transformations: Transformations to apply, ``a+b`` for one after the other (default: rename_method,
            rename_parameters, rename_locals, dead_code, swap_comparisons, rename_method+rename_parameters).
        seeds: Transformation seeds (one row each; default: 0). Record them: a robust student must be tested
            on seeds its training never saw.
        limit: Test examples to keep (a seeded sample; default: the whole split as the task reads it).
        sample_seed: Seed of that sample.
        language: The functions' language (default: java for BigCloneBench, c for Devign).
        batch_size: Examples per prediction batch.
        threads: CPU threads of each model.
        block_size: Tokens per function for both models (default: each folder's own).
    """
    teacher, student = Path(teacher), Path(student)
    _check_folder(teacher, "teacher", teacher_backend)
    _check_folder(student, "student", student_backend)
    transformations = transformations or list(DEFAULT_TRANSFORMATIONS)
    for transformation in transformations:
        for step in transformation.split("+"):
            check_transformation(step)
    seeds = seeds if seeds is not None else [0]
    task = load_task(data)
    language = language_of(task.format, language)
    examples = seeded_sample(task.read("test"), limit, sample_seed)
    predictors = {"teacher": folder_predictor(teacher, teacher_backend, threads, block_size, batch_size),
                  "student": folder_predictor(student, student_backend, threads, block_size, batch_size)}
    report = measure_robustness(predictors, examples, language, transformations, seeds,
                                progress=lambda message: print(message, file=sys.stderr, flush=True))
    report.update(teacher={"folder": str(teacher), "backend": teacher_backend},
                  student={"folder": str(student), "backend": student_backend}, data=str(data),
                  sample={"limit": limit, "seed": sample_seed})
    unit = "pairs (both functions transformed)" if report["inputs_per_example"] > 1 else "functions"
    print_report(report, f"Robustness on {len(examples):,} test {unit}: teacher ({teacher_backend}) and student "
                         f"({student_backend}); drop = clean - transformed accuracy; flips over all examples")
    if output is not None:
        atomic_write_json(output, report)
    return report
