"""Untrusted files: no pickle runs code, models are safetensors, no remote code is ever trusted."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_tasks import ROOT, _tiny_classifier, make_tiny_task

from lit_compressor.core.errors import UserError
from lit_compressor.training.resume import load_checkpoint_state

PACKAGE = ROOT / "lit_compressor"


def _calls(name: str) -> list[tuple[Path, ast.Call]]:
    """Every call of ``<module>.<name>(...)`` or ``<name>(...)`` in the package's source."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                if called == name:
                    found.append((path, node))
    return found


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def test_every_torch_load_is_weights_only():
    loads = [(path, call) for path, call in _calls("load")
             if isinstance(call.func, ast.Attribute) and getattr(call.func.value, "id", None) == "torch"]
    assert loads, "expected at least one torch.load in the package (training/resume.py)"
    unsafe = [f"{path.relative_to(ROOT)}:{call.lineno}" for path, call in loads
              if not (isinstance(value := _keyword(call, "weights_only"), ast.Constant) and value.value is True)]
    assert not unsafe, f"torch.load without weights_only=True: {unsafe}"


def test_textual_grep_agrees():
    """A plain-text check too, for calls ``ast`` would miss (e.g. ``getattr(torch, 'load')``)."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        for start in [i for i in range(len(text)) if text.startswith("torch.load(", i)]:
            depth, end = 0, start + len("torch.load")
            for end in range(start + len("torch.load"), len(text)):
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                if depth == 0:
                    break
            if "weights_only=True" not in text[start:end]:
                offenders.append(f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, start) + 1}")
        assert "getattr(torch, \"load\")" not in text and "getattr(torch, 'load')" not in text
    assert not offenders, offenders


def test_remote_code_is_never_trusted():
    enabled = [f"{path.relative_to(ROOT)}:{call.lineno}" for name in ("from_pretrained", "for_model", "pipeline")
               for path, call in _calls(name)
               if (value := _keyword(call, "trust_remote_code")) is not None
               and not (isinstance(value, ast.Constant) and value.value is False)]
    assert not enabled, f"trust_remote_code enabled at {enabled}"
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text().replace(" ", "")
        assert "trust_remote_code=True" not in text and '"trust_remote_code":True' not in text, path


def test_no_pickle_writers_in_the_package():
    """Models are written as safetensors: no ``torch.save``, no ``pickle.dump``, no unsafe ``save_pretrained``."""
    writers = [f"{path.relative_to(ROOT)}:{call.lineno}" for name in ("save", "dump", "dumps")
               for path, call in _calls(name)
               if isinstance(call.func, ast.Attribute) and getattr(call.func.value, "id", None) in ("torch", "pickle")]
    assert not writers, writers
    unsafe = [f"{path.relative_to(ROOT)}:{call.lineno}" for path, call in _calls("save_pretrained")
              if isinstance(value := _keyword(call, "safe_serialization"), ast.Constant) and value.value is False]
    assert not unsafe, unsafe


def test_saved_models_are_safetensors_only(tmp_path):
    from safetensors import safe_open

    folder = _tiny_classifier(tmp_path / "model")
    names = {p.name for p in folder.iterdir()}
    assert "model.safetensors" in names
    assert not names & {"pytorch_model.bin", "model.bin", "model.pt", "model.ckpt"}
    with safe_open(str(folder / "model.safetensors"), framework="pt") as handle:
        assert len(list(handle.keys())) > 10


class _RunsCode:
    """Unpickling this runs a shell command (what a malicious checkpoint does)."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def malicious_checkpoint(path: Path, marker: Path) -> Path:
    """A checkpoint that looks like a state dict but whose loading would ``touch marker``."""
    torch.save({"state_dict": {"weight": torch.zeros(2)}, "payload": _RunsCode(f"touch {marker}")}, path)
    return path


def test_checkpoint_loader_refuses_code(tmp_path):
    marker = tmp_path / "pwned_marker"
    path = malicious_checkpoint(tmp_path / "evil.ckpt", marker)
    with pytest.raises(UserError) as error:
        load_checkpoint_state(path)
    assert str(path) in str(error.value) and "refused" in str(error.value)
    assert not marker.exists()
    # the same container without the payload loads
    torch.save({"state_dict": {"weight": torch.ones(2)}}, tmp_path / "plain.ckpt")
    assert load_checkpoint_state(tmp_path / "plain.ckpt")["weight"].tolist() == [1.0, 1.0]


def test_truncated_or_foreign_checkpoint_is_a_user_error(tmp_path):
    torch.save({"state_dict": {"weight": torch.ones(64)}}, tmp_path / "good.ckpt")
    (tmp_path / "cut.ckpt").write_bytes((tmp_path / "good.ckpt").read_bytes()[:100])
    (tmp_path / "text.ckpt").write_text("hello")
    for name in ("cut.ckpt", "text.ckpt", "absent.ckpt"):
        with pytest.raises(UserError) as error:
            load_checkpoint_state(tmp_path / name)
        assert str(tmp_path / name) in str(error.value)
    with pytest.raises(UserError, match="no 'state_dict' entry"):
        torch.save({"weights": torch.ones(1)}, tmp_path / "other.ckpt")
        load_checkpoint_state(tmp_path / "other.ckpt")


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}
    env.pop("LIT_COMPRESSOR_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "lit_compressor", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_import_compressor_refuses_a_malicious_checkpoint(tmp_path):
    """The Compressor importer reads ``torch.save`` files from elsewhere: the payload must not run."""
    marker = tmp_path / "pwned_import"
    path = malicious_checkpoint(tmp_path / "model.bin", marker)
    teacher = _tiny_classifier(tmp_path / "teacher")
    result = _cli(["import-compressor", "--checkpoint", str(path), "--tokenizer", str(teacher / "tokenizer.json"),
                   "--output", str(tmp_path / "out"), "--num_hidden_layers", "1", "--hidden_size", "32",
                   "--num_attention_heads", "2", "--intermediate_size", "64", "--vocab_size", "400"], tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert str(path) in result.stderr
    assert not marker.exists()


def test_fit_refuses_a_malicious_resume_checkpoint(tmp_path, tiny_roberta):
    """``fit --ckpt_path`` goes through Lightning's loader (torch's weights-only default): refused, cleanly."""
    marker = tmp_path / "pwned_fit"
    path = malicious_checkpoint(tmp_path / "evil.ckpt", marker)
    task = make_tiny_task(tmp_path / "task")
    config = {"model": {"class_path": "lit_compressor.training.teacher.TeacherModule",
                        "init_args": {"model_name_or_path": str(tiny_roberta)}},
              "data": {"task": {"data_dir": str(task)}, "block_size": 32, "batch_size": 4},
              "trainer": {"max_epochs": 1, "accelerator": "cpu", "logger": False, "enable_checkpointing": False,
                          "enable_progress_bar": False, "default_root_dir": str(tmp_path / "logs")}}
    (tmp_path / "fit.json").write_text(json.dumps(config))
    result = _cli(["fit", "--config", str(tmp_path / "fit.json"), "--ckpt_path", str(path)], tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert str(path) in result.stderr and "refused" in result.stderr
    assert not marker.exists()
