"""Short distillations of sampled genomes: the measurements the accuracy predictor is fitted to.

Each sampled genome is distilled with the student's own ``fit`` config (the one ``compress`` passes to
the student stage: its DistillationModule, its data module's soft labels, task and tokenizer cache, the
teacher and the seed), with
the genome's architecture, block size and training genes written over it, on a slice of the training
budget: ``epochs`` epochs of at most ``train_batches`` batches of the unlabelled split (the split and its
soft labels are unchanged, so the cached soft labels serve every unit). A unit's accuracy is its best
validation accuracy.

Each unit also measures its own **prediction flips** (Morph's metamorphic test, no teacher pass): its best
weights predict the valid split it scored, once clean and once with Morph's two renamings applied (method,
then parameter renaming, seed 0; :func:`~lit_compressor.runtime.robustness.transform_split`); ``flip_rate`` is
the share of valid examples whose predicted class changes, and ``flips`` their count. A task whose language
cannot be told (a ``jsonl`` task) gets ``flip_rate: null`` and the reason. Results written before flips
were measured have no ``flip_rate``: they still load, and the search predicts flips only when every sample has
one.

Every unit is cached: ``DIR/samples/<i>-<key>/result.json`` (key: a hash of the unit's complete config
and of the soft-label file). A finished unit is never run again; a unit killed mid-way (no
``result.json``) is run again from its start — seeded, so it ends as it would have.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lit_compressor.core.configs import deep_merge, resolve_stage, with_checkpoint_folder, write_yaml
from lit_compressor.core.errors import UserError
from lit_compressor.core.files import atomic_write_json
from lit_compressor.core.fingerprint import hash_files, hash_json
from lit_compressor.data.readers import Example
from lit_compressor.data.transforms import LANGUAGE_OF_FORMAT
from lit_compressor.runtime.robustness import MORPH, Predict, transform_split
from lit_compressor.search.space import Genome, SearchSpace
from lit_compressor.training.cli import run_lightning_cli, with_settings
from lit_compressor.training.resume import load_checkpoint_state

RESULT = "result.json"
FLIP_SEED = 0
"""The renamings' seed: the same new names for every unit, so their flip rates compare."""


def student_fit_config(fit: str | Path | dict[str, Any] | None) -> dict[str, Any]:
    """The student's ``fit`` config: a file (the CLI's ``predictor.fit``), or a mapping (Python callers)."""
    if fit is None:
        raise UserError("the accuracy predictor needs the student's fit config (predictor.fit).",
                        fix="Set predictor.fit to a distillation config, e.g. configs/bigclonebench/distill_3mb.yaml "
                            "(compress links its own student stage).")
    config = resolve_stage(str(fit) if isinstance(fit, Path) else fit, "student")
    if "model" not in config:
        raise UserError("predictor.fit is not a fit config (no `model`).",
                        fix="Give a distillation fit config, e.g. configs/bigclonebench/distill_3mb.yaml.")
    return config


def unit_config(fit: dict[str, Any], genome: Genome, space: SearchSpace, epochs: int, train_batches: int | None,
                folder: Path) -> dict[str, Any]:
    """The fit config of one unit: the student's, with the genome and the slice written over it."""
    extras = space.extras(genome)
    model = {"architecture": space.architecture(genome).to_dict(), "output_dir": None}
    model.update({k: extras[k] for k in ("lr", "dropout") if k in extras})
    trainer = {"max_epochs": epochs, "limit_train_batches": train_batches or 1.0, "logger": False,
               "enable_progress_bar": False, "enable_model_summary": False, "default_root_dir": str(folder)}
    config = deep_merge(fit, {"model": {"init_args": model}, "trainer": trainer, "test_after_fit": False})
    config = with_settings(config, "data", {"block_size": space.block_of(genome)})
    config["trainer"] = with_checkpoint_folder(config["trainer"], folder / "checkpoints")
    for callback in config["trainer"]["callbacks"]:  # only the best score is needed, not the weights
        if isinstance(callback, dict) and callback.get("class_path", "").endswith("ModelCheckpoint"):
            callback["init_args"].update({"save_last": False, "save_top_k": 1})
    return config


def run_unit(config_path: Path) -> tuple[float, dict[str, Any]]:
    """Fit one unit in this process; its best validation accuracy, and the flips of its best weights."""
    cli = run_lightning_cli(["fit", "--config", str(config_path)])
    if cli.trainer.interrupted:
        raise UserError("a sampled distillation was interrupted.", config_path, "Run the search again: it resumes.")
    callback = cli.trainer.checkpoint_callback
    if callback.best_model_score is None:
        raise RuntimeError(f"{config_path}: the unit logged no val/accuracy")
    module, data = cli.model, cli.datamodule
    if data.task.format not in LANGUAGE_OF_FORMAT:
        return float(callback.best_model_score), {
            "flip_rate": None, "flips_skipped": f"the language of a {data.task.format!r} task cannot be told"}
    if callback.best_model_path:  # the weights that scored best, not the last epoch's
        best = load_checkpoint_state(callback.best_model_path)
        missing, unexpected = module.load_state_dict(best, strict=False)
        if unexpected or any(not key.startswith("teacher.") for key in missing):
            raise RuntimeError(f"{callback.best_model_path}: not the unit's weights ({missing}, {unexpected})")
    predict = module_predictor(module.cpu(), data.collate, data.eval_batch_size)
    return float(callback.best_model_score), measure_flips(predict, data.split("valid"),
                                                           LANGUAGE_OF_FORMAT[data.task.format])


def module_predictor(module: torch.nn.Module, collate, batch_size: int) -> Predict:
    """The predicted class of each example by a classifier module, batches built as its validation builds them."""

    def predict(examples: list[Example]) -> np.ndarray:
        module.eval()
        out = [np.zeros(0, dtype=int)]
        with torch.inference_mode():
            for start in range(0, len(examples), batch_size):
                out.append(module(collate(examples[start:start + batch_size])).argmax(-1).numpy())
        return np.concatenate(out)

    return predict


def measure_flips(predict: Predict, examples: list[Example], language: str) -> dict[str, Any]:
    """``flip_rate``: the share of ``examples`` whose predicted class changes under Morph's two renamings
    (``flips`` of ``flip_examples``), and the wall seconds it took."""
    started = time.perf_counter()
    clean = predict(examples)
    renamed = predict(transform_split(examples, language, MORPH, FLIP_SEED).examples)
    flips = int((clean != renamed).sum())
    return {"flip_rate": flips / len(examples) if examples else None, "flips": flips,
            "flip_examples": len(examples), "flip_transformation": MORPH, "flip_seed": FLIP_SEED,
            "flip_seconds": round(time.perf_counter() - started, 1)}


def distil(genomes: list[Genome], space: SearchSpace, fit: str | dict[str, Any] | None, epochs: int,
           train_batches: int | None, output: Path, on_done: Callable[[int], None] | None = None) -> list[dict]:
    """Each genome's unit result (``genome``, ``accuracy``, ``flip_rate``, ``seconds``...), running the units not
    yet done."""
    base = student_fit_config(fit)
    soft_labels = base.get("data", {}).get("init_args", {}).get("soft_labels")
    labels = hash_files(Path(soft_labels)) if soft_labels and Path(soft_labels).exists() else None
    results = []
    for index, genome in enumerate(genomes):
        draft = unit_config(base, genome, space, epochs, train_batches, Path("UNIT"))
        folder = Path(output) / "samples" / f"{index:02d}-{hash_json(draft, labels)}"
        result_file = folder / RESULT
        if result_file.is_file():
            results.append(json.loads(result_file.read_text()))
        else:
            results.append(_run(genome, unit_config(base, genome, space, epochs, train_batches, folder), folder))
        if on_done is not None:
            on_done(index + 1)
    return results


def _run(genome: Genome, config: dict[str, Any], folder: Path) -> dict:
    if folder.exists():  # killed mid-way: start the unit again (seeded: it ends as it would have)
        shutil.rmtree(folder)
    path = write_yaml(folder / "fit.yaml", copy.deepcopy(config))
    started = time.perf_counter()
    accuracy, flips = run_unit(path)
    result = {"genome": list(genome), "accuracy": accuracy, **flips,
              "seconds": round(time.perf_counter() - started, 1), "config": str(path)}
    shutil.rmtree(folder / "checkpoints", ignore_errors=True)
    atomic_write_json(folder / RESULT, result)
    return result
