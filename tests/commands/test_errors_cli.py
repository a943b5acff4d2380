"""Bad input, clear errors: every case runs the real CLI and must end with a one-paragraph message.

Each case asserts a non-zero exit, no Python traceback on stderr, and that the message names the
file and line, the config key or the folder at fault. The subprocesses of all cases are started
together on a small pool (two at a time) the first time a case needs its result, so the whole file
takes about one Lightning start-up per case divided by two. Reader-level variants that a subprocess
would add nothing to are tested in-process at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tiny_tasks import ROOT, _tiny_classifier, make_soft_labels, make_tiny_task

from lit_compressor.core.errors import DataError, UserError


@dataclass
class Case:
    """A CLI call on bad input and the fragments its error message must contain."""

    args: list[str]
    expect: list[str]
    ok: bool = False  # the input is unusual but valid: the command must succeed
    result: subprocess.CompletedProcess | None = field(default=None, repr=False)


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def _variant(base: Path, name: str, edit: Callable[[Path], None]) -> Path:
    """A copy of the tiny task folder with one file edited."""
    folder = base.parent / name
    shutil.copytree(base, folder)
    edit(folder)
    return folder


def _replace_line(path: Path, number: int, text: str | bytes) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    lines[number - 1] = text if isinstance(text, bytes) else text.encode()
    path.write_bytes(b"".join(lines))


def _fit_teacher_config(folder: Path, teacher: str, task: Path) -> Path:
    config = {
        "seed_everything": 0,
        "model": {"class_path": "lit_compressor.training.teacher.TeacherModule",
                  "init_args": {"model_name_or_path": teacher}},
        "data": {"task": {"format": "bigclonebench", "data_dir": str(task)}, "block_size": 32, "batch_size": 4},
        "trainer": {"max_epochs": 1, "accelerator": "cpu", "logger": False, "enable_checkpointing": False,
                    "enable_progress_bar": False, "enable_model_summary": False,
                    "default_root_dir": str(folder / "logs")},
        "test_after_fit": False,
    }
    return _write(folder / "fit.json", json.dumps(config))


def build_cases(tmp: Path, tiny_roberta: Path) -> dict[str, Case]:
    task = make_tiny_task(tmp / "task")
    teacher = _tiny_classifier(tmp / "teacher")
    ids = [json.loads(line)["idx"] for line in _lines(task / "data.jsonl")]
    label = ["label", "--teacher", str(teacher), "--block_size", "64", "--batch_size", "8"]

    def label_on(folder: Path, *extra: str) -> list[str]:
        return [*label, "--output", str(folder / "soft.safetensors"), "--task.data_dir", str(folder), *extra]

    cases: dict[str, Case] = {}
    # --- label: the unlabelled split and data.jsonl -------------------------------------------
    missing = _variant(task, "missing", lambda f: (f / "unlabel_train.txt").unlink())
    cases["missing data file"] = Case(label_on(missing), [str(missing / "unlabel_train.txt"), "not found"])
    cases["missing teacher folder"] = Case(
        [*label_on(task), "--teacher", str(tmp / "no-such-teacher")], [str(tmp / "no-such-teacher")])
    as_dir = _variant(task, "as-dir", lambda f: ((f / "data.jsonl").unlink(), (f / "data.jsonl").mkdir()))
    cases["data file is a folder"] = Case(label_on(as_dir), [str(as_dir / "data.jsonl")])
    malformed = _variant(task, "malformed", lambda f: _replace_line(f / "data.jsonl", 3, '{"func": "x", "idx":\n'))
    cases["malformed JSON"] = Case(label_on(malformed), [f"{malformed / 'data.jsonl'}, line 3", "JSON"])
    unknown = _variant(task, "unknown-fn", lambda f: _replace_line(f / "unlabel_train.txt", 2, f"{ids[0]}\t999999\n"))
    cases["pair names an unknown function"] = Case(
        label_on(unknown), [f"{unknown / 'unlabel_train.txt'}, line 2", "'999999'"])
    empty = _variant(task, "empty", lambda f: _write(f / "unlabel_train.txt", ""))
    cases["empty split"] = Case(label_on(empty), [str(empty / "unlabel_train.txt"), "empty"])
    duplicate = _variant(task, "duplicate", lambda f: _write(
        f / "data.jsonl", "".join(_lines(f / "data.jsonl")) + json.dumps({"func": "int f() {}", "idx": ids[4]}) + "\n"))
    cases["duplicate ids"] = Case(label_on(duplicate), [f"{duplicate / 'data.jsonl'}, line {len(ids) + 1}",
                                                        f"'{ids[4]}'"])
    bad_bytes = _variant(task, "non-utf8", lambda f: _replace_line(
        f / "data.jsonl", 5, b'{"func": "int caf\xe9() {}", "idx": "' + ids[4].encode() + b'"}\n'))
    cases["non-UTF-8 bytes in code"] = Case(label_on(bad_bytes), [f"{bad_bytes / 'data.jsonl'}, line 5", "UTF-8"])
    cases["function longer than the block (truncated, not an error)"] = Case(
        [*label_on(task), "--block_size", "16"], [], ok=True)
    cases["unknown option"] = Case([*label_on(task), "--bogus_key", "1"], ["bogus_key"])
    cases["option of the wrong type"] = Case([*label_on(task), "--batch_size", "many"], ["batch_size", "many"])
    no_weights = tmp / "teacher-no-weights"
    shutil.copytree(teacher, no_weights)
    (no_weights / "model.safetensors").unlink()
    cases["teacher folder without weights (label)"] = Case([*label_on(task), "--teacher", str(no_weights)],
                                                           [str(no_weights), "model.safetensors"])
    nonsense = tmp / "teacher-nonsense"
    shutil.copytree(teacher, nonsense)
    config = json.loads((nonsense / "config.json").read_text())
    _write(nonsense / "config.json", json.dumps({**config, "model_type": "nonsense"}))
    cases["teacher of an unknown architecture (label)"] = Case([*label_on(task), "--teacher", str(nonsense)],
                                                               [str(nonsense), "nonsense"])
    cases["block size beyond the teacher's positions"] = Case([*label_on(task), "--block_size", "400"],
                                                              [str(teacher), "block_size", "400"])

    # --- fit (LightningCLI): errors raised inside the Trainer and in model construction --------
    out_of_range = _variant(task, "label-range", lambda f: _replace_line(
        f / "label_train.txt", 3, _lines(f / "label_train.txt")[2].rsplit("\t", 1)[0] + "\t2\n"))
    cases["label outside the task's classes (fit)"] = Case(
        ["fit", "--config", str(_fit_teacher_config(tmp / "fit-range", str(tiny_roberta), out_of_range))],
        [f"{out_of_range / 'label_train.txt'}, line 3", "label 2", "[0, 1]"])
    bare = _write(tmp / "weightless" / "config.json", (Path(tiny_roberta) / "config.json").read_text()).parent
    cases["teacher folder without weights (fit)"] = Case(
        ["fit", "--config", str(_fit_teacher_config(tmp / "fit-bare", str(bare), task))], [str(bare), "weights"])
    odd = tmp / "nonsense-encoder"
    shutil.copytree(tiny_roberta, odd)
    _write(odd / "config.json", json.dumps({**json.loads((odd / "config.json").read_text()), "model_type": "nonsense"}))
    cases["teacher of an unknown architecture (fit)"] = Case(
        ["fit", "--config", str(_fit_teacher_config(tmp / "fit-odd", str(odd), task))], [str(odd), "nonsense"])
    other = make_tiny_task(tmp / "other-task", unlabelled=10)
    (other / "unlabel_train.txt").write_text("".join(_lines(other / "unlabel_train.txt")[::-1][:6]))
    stale = make_soft_labels(other, tmp / "stale.safetensors")
    from tiny_tasks import distill_config

    cases["soft labels that do not match the unlabelled split"] = Case(
        ["fit", "--config", str(distill_config(tmp / "fit-stale", task, stale, exact_resume=False))],
        [str(stale), "do not match the unlabelled split"])
    cases["unknown config key (LightningCLI)"] = Case(
        ["fit", "--config", str(_fit_teacher_config(tmp / "fit-key", str(tiny_roberta), task)),
         "--trainer.max_epoks", "1"], ["max_epoks"])
    cases["config value of the wrong type (LightningCLI)"] = Case(
        ["fit", "--config", str(_fit_teacher_config(tmp / "fit-type", str(tiny_roberta), task)),
         "--data.batch_size", "four"], ["batch_size", "four"])
    cases["missing config file"] = Case(["fit", "--config", str(tmp / "absent.yaml")], ["absent.yaml"])

    # --- search --------------------------------------------------------------------------------
    search = ["search", "--output", str(tmp / "search"), "--population", "4", "--generations", "1",
              "--restarts", "1"]
    cases["search space with no valid genome"] = Case(
        [*search, "--space.hidden_size.choices", "[17, 33]", "--space.num_attention_heads.choices", "[2, 4]"],
        ["no valid genome", "hidden_size", "num_attention_heads"])
    cases["target size the space cannot reach"] = Case([*search, "--target_mb", "100000"],
                                                       ["target_mb=100000", "MB"])

    # --- export --------------------------------------------------------------------------------
    occupied = tmp / "occupied"
    shutil.copytree(tiny_roberta, occupied)
    cases["export folder holding another model"] = Case(
        ["export", "--model", str(teacher), "--output", str(occupied), "--onnx", "false", "--int8", "false"],
        [str(occupied), "another model", "--overwrite"])

    # --- a corrupt model file: benchmark and clones name it ----------------------------------------
    from lit_compressor.commands.export import export

    student = tmp / "student"  # the tiny classifier, reading 64 tokens (it has 130 positions)
    shutil.copytree(teacher, student)
    config = json.loads((student / "config.json").read_text())
    _write(student / "config.json", json.dumps({**config, "lit_compressor": {**config["lit_compressor"],
                                                                            "block_size": 64}}))
    export(student, tmp / "exported", data=str(task), samples=4, full=True)
    exported = tmp / "exported" / "full"
    for name in ("model.int8.onnx", "encoder.optimized.onnx"):
        graph = exported / name
        graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])
    cases["truncated ONNX file (benchmark)"] = Case(
        ["benchmark", "--model", str(exported), "--data", str(task), "--teacher", str(teacher), "--samples", "2",
         "--backends", '["onnx-int8"]'], [str(exported / "model.int8.onnx"), "cannot load this model file"])
    project = _write(tmp / "project" / "A.java", "class A { int f(int x) { return x + 1; } }").parent
    cases["truncated ONNX file (clones)"] = Case(
        ["clones", "--model", str(exported), "--project", str(project)],
        [str(exported / "encoder.optimized.onnx"), "cannot load this model file"])
    return cases


CASE_NAMES = [
    "missing data file", "missing teacher folder", "data file is a folder", "malformed JSON",
    "pair names an unknown function", "empty split", "duplicate ids", "non-UTF-8 bytes in code",
    "function longer than the block (truncated, not an error)", "unknown option", "option of the wrong type",
    "teacher folder without weights (label)", "teacher of an unknown architecture (label)",
    "block size beyond the teacher's positions", "label outside the task's classes (fit)",
    "teacher folder without weights (fit)", "teacher of an unknown architecture (fit)",
    "soft labels that do not match the unlabelled split", "unknown config key (LightningCLI)",
    "config value of the wrong type (LightningCLI)", "missing config file", "search space with no valid genome",
    "target size the space cannot reach", "export folder holding another model", "truncated ONNX file (benchmark)",
    "truncated ONNX file (clones)",
]


def _run(case: Case, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    env.pop("LIT_COMPRESSOR_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "lit_compressor", *case.args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def cases(tmp_path_factory, tiny_roberta) -> dict[str, Case]:
    tmp = tmp_path_factory.mktemp("errors")
    built = build_cases(tmp, tiny_roberta)
    assert sorted(built) == sorted(CASE_NAMES)
    runnable = list(built.values())
    # Lightning commands first: they are the slowest, so the pool stays busy to the end
    runnable.sort(key=lambda c: c.args[0] != "fit")
    with ThreadPoolExecutor(max_workers=2) as pool:
        for case, result in zip(runnable, pool.map(lambda c: _run(c, tmp), runnable), strict=True):
            case.result = result
    return built


@pytest.mark.parametrize("name", CASE_NAMES)
def test_bad_input_gives_a_clear_error(cases, name):
    case = cases[name]
    stderr = case.result.stderr
    assert "Traceback" not in stderr, stderr[-4000:]
    if case.ok:
        assert case.result.returncode == 0, stderr[-4000:]
        return
    assert case.result.returncode != 0, stderr[-4000:]
    message = stderr[stderr.rfind("error:"):] if "error:" in stderr else stderr
    for fragment in case.expect:
        assert fragment in message, f"{fragment!r} not in:\n{message[-3000:]}"


def test_debug_flag_shows_the_traceback(cases, tmp_path):
    """The same bad input with ``--debug``: the traceback is there for whoever asks for it."""
    result = _run(Case([*cases["empty split"].args, "--debug"], []), tmp_path)
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "DataError" in result.stderr


def test_truncated_function_encodes_to_exactly_the_block(tmp_path):
    """A function longer than the block is cut to ``block_size`` tokens (special tokens included)."""
    from transformers import AutoTokenizer

    from lit_compressor.data.readers import Example
    from lit_compressor.nn.tokenization import CodeEncoder

    teacher = _tiny_classifier(tmp_path / "teacher")
    encoder = CodeEncoder(AutoTokenizer.from_pretrained(teacher), block_size=16)
    long_code = "int f() { " + "x = x + 1; " * 500 + "}"
    batch = encoder([Example("a", (long_code, "int g() {}"))])
    assert batch["input_ids"].shape == (1, 2, 16)
    assert batch["attention_mask"][0, 0].sum() == 16 and batch["attention_mask"][0, 1].sum() < 16
    assert batch["input_ids"][0, 0, 0] == 0 and batch["input_ids"][0, 0, -1] == 2  # <s> ... </s> kept


# --- readers in-process: the variants a subprocess adds nothing to ---------------------------------
@pytest.mark.parametrize("value, shown", [("2", "label 2"), ("yes", "label 'yes'"), ("1.0", "label '1.0'"),
                                          ("-1", "label -1")])
def test_pair_labels_outside_the_classes_or_of_the_wrong_type(tmp_path, value, shown):
    from lit_compressor.data.readers import read_pairs

    path = _write(tmp_path / "valid.txt", f"a\tb\t1\na\tb\t{value}\n")
    with pytest.raises(DataError) as error:
        read_pairs(path, {"a": "x", "b": "y"}, labelled=True)
    assert f"{path}, line 2" in str(error.value) and shown in str(error.value) and "[0, 1]" in str(error.value)


@pytest.mark.parametrize("record, shown", [({"func": "f", "idx": 2, "target": 3}, "label 3"),
                                           ({"func": "f", "idx": 2, "target": "bad"}, "label 'bad'"),
                                           ({"func": "f", "idx": 2, "target": True}, "label True"),
                                           ({"func": 5, "idx": 2, "target": 1}, "code of type int"),
                                           ({"code": "f", "idx": 2, "target": 1}, "no field 'func'"),
                                           ({"func": "f", "idx": 1, "target": 1}, "duplicate example id '1'")])
def test_jsonl_bad_records(tmp_path, record, shown):
    from lit_compressor.data.readers import read_jsonl

    path = _write(tmp_path / "test.jsonl", json.dumps({"func": "g", "idx": 1, "target": 0}) + "\n" + json.dumps(record)
                  + "\n")
    with pytest.raises(DataError) as error:
        read_jsonl(path)
    assert f"{path}, line 2" in str(error.value) and shown in str(error.value)


def test_unreadable_file(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("running as root: file permissions do not stop root from reading")
    from lit_compressor.data.readers import read_functions

    path = _write(tmp_path / "data.jsonl", '{"func": "f", "idx": 1}\n')
    path.chmod(0)
    with pytest.raises(UserError) as error:
        read_functions(path)
    assert str(path) in str(error.value)
