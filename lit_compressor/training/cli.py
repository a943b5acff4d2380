"""``LightningCLI`` for fit/validate/test/predict: models chosen with ``--model``, data with ``--data``."""

from __future__ import annotations

from lightning.pytorch.cli import LightningCLI

from lit_compressor.data.task import TaskData
from lit_compressor.training.base import ClassifierModule
from lit_compressor.training.callbacks import WandbSummary
from lit_compressor.training.datamodule import CodeDataModule


def _task(value) -> TaskData:
    """The task config as a ``TaskData``, whether jsonargparse hands over the object or a namespace."""
    if isinstance(value, TaskData):
        return value
    fields = value.get("init_args", value)
    return TaskData(**{k: v for k, v in vars(fields).items() if not k.startswith("__")})


class LitCompressorCLI(LightningCLI):
    """Links the data's shape (pair or single, block size) into the model and tests after ``fit``."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.task", "model.init_args.num_inputs", compute_fn=lambda t: _task(t).num_inputs)
        parser.link_arguments("data.task", "model.init_args.num_labels", compute_fn=lambda t: _task(t).num_labels)
        parser.link_arguments("data.block_size", "model.init_args.block_size")
        parser.add_argument("--test_after_fit", type=bool, default=True,
                            help="After fit, test the best checkpoint (writes metrics.json to output_dir).")
        parser.add_lightning_class_args(WandbSummary, "wandb_summary")  # a no-op without a WandbLogger

    def after_fit(self) -> None:
        if self.config.fit.get("test_after_fit", True) and not self.trainer.interrupted:
            best = getattr(self.trainer.checkpoint_callback, "best_model_path", "") or None
            self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best)


def run_lightning_cli(argv: list[str]) -> LitCompressorCLI:
    return LitCompressorCLI(ClassifierModule, CodeDataModule, subclass_mode_model=True, args=argv,
                            save_config_kwargs={"overwrite": True})
