"""YAML configs: reading them with clear errors, writing them atomically, and composing them (a file plus
overrides), as ``compress`` composes the stage configs and the IDE search its sampled distillations."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from lit_compressor.core.errors import UserError
from lit_compressor.core.files import atomic_write_text

Stage = str | dict[str, Any]
"""A stage config: a YAML path, or a mapping (``config: PATH`` plus keys merged over that file)."""

MODEL_CHECKPOINT = "lightning.pytorch.callbacks.ModelCheckpoint"


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in: mappings key by key, everything else replaced."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_yaml(path: str | Path, what: str) -> dict[str, Any]:
    """A YAML mapping, or a UserError naming the file (missing, malformed, not a mapping)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} config not found.", path,
                        "Paths in a compress config are relative to the folder you run from.")
    try:
        content = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise UserError(f"malformed YAML ({error}).", path) from None
    if not isinstance(content, dict):
        raise UserError(f"a {what} config must be a mapping.", path)
    return content


def write_yaml(path: str | Path, config: dict[str, Any]) -> Path:
    """Write ``config`` atomically; a file that already holds it is left untouched (its mtime too)."""
    import yaml

    path = Path(path)
    text = yaml.safe_dump(config, sort_keys=False)
    if path.is_file() and path.read_text() == text:
        return path
    return atomic_write_text(path, text)


def resolve_stage(spec: Stage | None, what: str) -> dict[str, Any]:
    """The stage config a compress config names: a file, or ``{config: file, ...overrides}``, or inline."""
    if spec is None:
        return {}
    if isinstance(spec, str):
        return read_yaml(spec, what)
    base = read_yaml(spec["config"], what) if spec.get("config") else {}
    return deep_merge(base, {k: v for k, v in spec.items() if k != "config"})


CHECKPOINT_MOMENTS = ("every_n_train_steps", "every_n_epochs", "train_time_interval", "save_on_train_epoch_end")


def is_checkpoint(callback: Any) -> bool:
    """Whether a config's callback entry is a ModelCheckpoint."""
    return isinstance(callback, dict) and callback.get("class_path", "").endswith("ModelCheckpoint")


def with_checkpoint_folder(trainer: dict[str, Any], folder: Path, monitor: str = "val/accuracy") -> dict[str, Any]:
    """``trainer`` (a fit config's mapping) whose ModelCheckpoint writes to ``folder`` (one is added if none).

    The best checkpoint keeps the weights only; ``last.ckpt``, written by one more ModelCheckpoint at the same
    moments (the latest checkpoint, one kept: Lightning writes ``save_last`` only beside a top-k save), keeps the
    whole training state (optimizer, scheduler, loops) for resuming: one copy of the optimizer state on disk
    instead of two (Adam's moments are two thirds of a checkpoint's bytes)."""
    trainer = copy.deepcopy(trainer)
    # an earlier call's last.ckpt callback is replaced, so that calling twice changes nothing more
    callbacks = [c for c in trainer.get("callbacks", []) if not (is_checkpoint(c) and
                                                                  c.get("init_args", {}).get("filename") == "last")]
    trainer["callbacks"] = callbacks
    checkpoints = [c for c in callbacks if is_checkpoint(c)]
    if not checkpoints:
        checkpoints = [{"class_path": MODEL_CHECKPOINT, "init_args": {"monitor": monitor, "mode": "max"}}]
        callbacks.append(checkpoints[0])
    for callback in checkpoints:
        callback.setdefault("init_args", {}).update({"dirpath": str(folder), "save_last": False,
                                                     "save_weights_only": True})
    moments = {k: v for k, v in checkpoints[0]["init_args"].items() if k in CHECKPOINT_MOMENTS}
    callbacks.append({"class_path": MODEL_CHECKPOINT, "init_args": {
        "dirpath": str(folder), "filename": "last", "monitor": None, "save_top_k": 1, "save_last": False,
        "enable_version_counter": False, **moments}})
    return trainer
