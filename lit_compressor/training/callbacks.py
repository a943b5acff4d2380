"""Callbacks: writing a module's output folder, and what a W&B run records beyond Lightning's own logging."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger

from lit_compressor.core.errors import UserError
from lit_compressor.nn.folders import parameter_count
from lit_compressor.training.resume import load_checkpoint_state

ARCHITECTURE_KEYS = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size",
                     "vocab_size")
RUN_ID = "{run_id}"


def wandb_logger(trainer: L.Trainer) -> WandbLogger | None:
    return next((logger for logger in trainer.loggers if isinstance(logger, WandbLogger)), None)


def architecture_of(pl_module: L.LightningModule) -> dict[str, int]:
    """The five genes of the module's classifier: a student's architecture, or a teacher's config."""
    architecture = getattr(pl_module, "architecture", None)
    if architecture is not None:
        return architecture.to_dict()
    config = getattr(getattr(pl_module, "model", None), "config", None)
    return {key: getattr(config, key) for key in ARCHITECTURE_KEYS if hasattr(config, key)}


def model_size(pl_module: L.LightningModule) -> dict[str, float | None]:
    """As in ``metrics.json``: parameters, fp32 MB (1e6 bytes, as the search prices it) and the exported
    ``model.safetensors``'s MB on disk (None before export)."""
    params = parameter_count(pl_module.model)
    output_dir = getattr(pl_module, "output_dir", None)
    weights = Path(output_dir) / "model.safetensors" if output_dir else None
    disk = weights.stat().st_size / 1e6 if weights is not None and weights.is_file() else None
    return {"params": params, "size_mb": params * 4 / 1e6, "disk_mb": disk}


class SaveModelFolder(Callback):
    """Writes the module's ``output_dir`` (rank 0 only; nothing when it is unset).

    After ``fit``: the best checkpoint's weights (the last ones without a checkpoint) as a model folder, with
    the tokenizer of the data module when it owns one (a distilled student's BPE), else the module's own; the
    module keeps its current weights. After ``test``: ``metrics.json``, the test metrics, parameters, fp32
    size (MB = 1e6 bytes, as the search prices it) and the weights' size on disk.
    """

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not pl_module.output_dir or not trainer.is_global_zero:
            return
        best = getattr(trainer.checkpoint_callback, "best_model_path", "")
        current = {k: v.clone() for k, v in pl_module.state_dict().items()}
        if best:
            pl_module.load_state_dict(load_checkpoint_state(best), strict=False)
        pl_module.save_model_folder(pl_module.output_dir, getattr(trainer.datamodule, "tokenizer", None))
        pl_module.load_state_dict(current, strict=False)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not pl_module.output_dir or not trainer.is_global_zero or pl_module.test_results is None:
            return
        folder = Path(pl_module.output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "metrics.json").write_text(json.dumps({**pl_module.test_results, **model_size(pl_module)},
                                                         indent=2) + "\n")


class WandbSummary(Callback):
    """Writes the student's architecture, size and final test metrics to the W&B run's summary.

    Does nothing unless the trainer has a ``WandbLogger``, so the CLI always adds it (config key
    ``wandb_summary``). ``report`` (e.g. ``runs/search/report.json``) is uploaded as a ``search-report``
    artifact, so a run records which search chose its student. A ``{run_id}`` in the model's
    ``output_dir`` becomes the W&B run id (so the runs of a sweep export to different folders).
    Summary keys: ``architecture/<gene>``, ``params``, ``size_mb``, ``disk_mb`` and every ``test/<metric>``.
    """

    def __init__(self, report: str | None = None):
        self.report = report
        self._report_logged = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        logger = wandb_logger(trainer)
        output_dir = getattr(pl_module, "output_dir", None)
        if output_dir and RUN_ID in output_dir:
            run_id = logger.experiment.id if logger is not None and trainer.is_global_zero else None
            if run_id is None and logger is None and trainer.logger is not None:
                run_id = str(trainer.logger.version)
            run_id = trainer.strategy.broadcast(run_id or "local")
            pl_module.output_dir = output_dir.replace(RUN_ID, run_id)
        if logger is None:
            return
        if self.report and not Path(self.report).is_file():
            raise UserError("search report not found.", self.report,
                            "Run `lit-compressor search` first, or unset wandb_summary.report.")
        if trainer.is_global_zero and self.report and not self._report_logged:
            import wandb

            artifact = wandb.Artifact("search-report", type="search-report",
                                      description="the architecture search that chose this student")
            artifact.add_file(str(self.report), name="report.json")
            logger.experiment.log_artifact(artifact)
            self._report_logged = True

    def _write(self, trainer: L.Trainer, values: dict[str, Any]) -> None:
        logger = wandb_logger(trainer)
        if logger is None or not trainer.is_global_zero:
            return
        summary = logger.experiment.summary
        for key, value in values.items():
            if value is not None:
                summary[key] = value

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        architecture = {f"architecture/{k}": v for k, v in architecture_of(pl_module).items()}
        self._write(trainer, {**architecture, **model_size(pl_module)})

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
        architecture = {f"architecture/{k}": v for k, v in architecture_of(pl_module).items()}
        self._write(trainer, {**architecture, **model_size(pl_module), **metrics})


class TrainingCost(Callback):
    """What each training epoch cost and scored, validation excluded: wall and CPU seconds (this process), the
    functions encoded (a pair batch encodes two a pair; a batch of functions each once) and the examples scored.

    Logged as ``cost/epoch_seconds``, ``cost/epoch_cpu_seconds``, ``cost/functions_encoded``,
    ``cost/examples_scored`` and ``cost/examples_per_function``; :attr:`epochs` keeps one record an epoch.
    """

    def __init__(self):
        self.epochs: list[dict[str, float]] = []
        self._started: tuple[float, float] | None = None
        self._evaluation: tuple[float, float] = (0.0, 0.0)
        self._evaluation_started: tuple[float, float] | None = None
        self._functions = self._examples = 0

    @staticmethod
    def _now() -> tuple[float, float]:
        import time

        return time.perf_counter(), time.process_time()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started, self._evaluation = self._now(), (0.0, 0.0)
        self._functions = self._examples = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        ids = batch["input_ids"]
        self._functions += ids.shape[0] * (ids.shape[1] if ids.dim() == 3 else 1)
        self._examples += len(batch["pair_index"]) if "pair_index" in batch else ids.shape[0]

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._evaluation_started = self._now()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._evaluation_started is not None and self._started is not None:
            now = self._now()
            self._evaluation = tuple(spent + now[i] - self._evaluation_started[i]  # type: ignore[assignment]
                                     for i, spent in enumerate(self._evaluation))
        self._evaluation_started = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._started is None:
            return
        now = self._now()
        record = {"epoch": trainer.current_epoch,
                  "epoch_seconds": now[0] - self._started[0] - self._evaluation[0],
                  "epoch_cpu_seconds": now[1] - self._started[1] - self._evaluation[1],
                  "functions_encoded": self._functions, "examples_scored": self._examples,
                  "examples_per_function": self._examples / max(self._functions, 1)}
        self.epochs.append(record)
        pl_module.log_dict({f"cost/{k}": float(v) for k, v in record.items() if k != "epoch"})
        self._started = None
