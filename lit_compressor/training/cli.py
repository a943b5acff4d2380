"""``LightningCLI`` for fit/validate/test/predict: models chosen with ``--model``, data with ``--data``."""

from __future__ import annotations

import re
from typing import Any

from lightning.pytorch.cli import LightningCLI

from lit_compressor.core.configs import deep_merge
from lit_compressor.data.task import TaskData
from lit_compressor.training.base import ClassifierModule
from lit_compressor.training.callbacks import WandbSummary
from lit_compressor.training.datamodule import CodeDataModule
from lit_compressor.training.distillation_data import teacher_record


def _task(value) -> TaskData:
    """The task config as a ``TaskData``, whether jsonargparse hands over the object or a namespace."""
    if isinstance(value, TaskData):
        return value
    fields = value.get("init_args", value)
    return TaskData(**{k: v for k, v in vars(fields).items() if not k.startswith("__")})


class LitCompressorCLI(LightningCLI):
    """Links the data's shape (pair or single, block size) into the model, the model's inputs into the data, and
    tests after ``fit``.

    The data is a :class:`CodeDataModule` (the default: no ``class_path`` needed), which encodes with the
    model's own tokenizer (``data.init_args.encoder``, linked from the model), or a distilled student's
    ``DistillationDataModule``, which serves what the student reads (``data.init_args.student``, linked from
    the model) and whose soft-label file records the teacher the student copies (``model.init_args.teacher_head``,
    linked from ``data.init_args.soft_labels``).
    """

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.init_args.task", "model.init_args.num_inputs",
                              compute_fn=lambda t: _task(t).num_inputs)
        parser.link_arguments("data.init_args.task", "model.init_args.num_labels",
                              compute_fn=lambda t: _task(t).num_labels)
        parser.link_arguments("data.init_args.block_size", "model.init_args.block_size")
        parser.link_arguments("data.init_args.soft_labels", "model.init_args.teacher_head", compute_fn=teacher_record)
        parser.link_arguments("model", "data.init_args.encoder", apply_on="instantiate",
                              compute_fn=lambda model: model.code_encoder)
        parser.link_arguments("model", "data.init_args.student", apply_on="instantiate",
                              compute_fn=lambda model: getattr(model, "student_inputs", None))
        parser.add_argument("--test_after_fit", type=bool, default=True,
                            help="After fit, test the best checkpoint (writes metrics.json to output_dir).")
        parser.add_lightning_class_args(WandbSummary, "wandb_summary")  # a no-op without a WandbLogger

    def after_fit(self) -> None:
        if self.config.fit.get("test_after_fit", True) and not self.trainer.interrupted:
            best = getattr(self.trainer.checkpoint_callback, "best_model_path", "") or None
            self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best)


TASK_OPTION = re.compile(r"--(data(?:\.init_args)?\.task)\.(\w+)$")
NULLS = {"null", "none", "None"}


def task_nulls_as_mappings(argv: list[str]) -> list[str]:
    """``argv`` with ``--data.task.<field> null`` written as ``--data.task={<field>: null}``.

    jsonargparse (4.53) refuses a ``null`` given to a field of a dataclass nested in a ``class_path`` section
    (``NestedArg ... Expected a NoneType``), so ``--data.task.limit null`` (the whole split) would fail; the
    mapping form sets the same field and keeps the task's other fields.
    """
    out: list[str] = []
    args = iter(argv)
    for arg in args:
        option, eq, value = arg.partition("=")
        match = TASK_OPTION.match(option)
        if match and not eq:
            value = next(args, None)
            if value not in NULLS:  # not a null (or no value at all): passed on as given
                out += [arg] if value is None else [arg, value]
                continue
        if match and value in NULLS:
            out.append(f"--{match[1]}={{{match[2]}: null}}")
        else:
            out.append(arg)
    return out


def run_lightning_cli(argv: list[str]) -> LitCompressorCLI:
    return LitCompressorCLI(ClassifierModule, CodeDataModule, subclass_mode_model=True, subclass_mode_data=True,
                            args=task_nulls_as_mappings(argv), save_config_kwargs={"overwrite": True})


CLASS_KEYS = ("class_path", "init_args", "dict_kwargs")


def with_settings(config: dict[str, Any], section: str, settings: dict[str, Any]) -> dict[str, Any]:
    """``config`` (a ``fit`` config) with ``settings`` written over its ``model`` or ``data`` section: into its
    ``init_args`` when the section names its class (``class_path``), else into the section itself. Settings
    already written beside a ``class_path`` (e.g. a stage override ``data: {batch_size: 16}`` merged over a
    config that names its data module) move into its ``init_args`` too, as ``--data.batch_size`` does."""
    part = dict(config.get(section) or {})
    if "class_path" not in part:
        return deep_merge(config, {section: settings})
    loose = {k: part.pop(k) for k in list(part) if k not in CLASS_KEYS}
    part["init_args"] = deep_merge(deep_merge(part.get("init_args") or {}, loose), settings)
    merged = deep_merge(config, {})
    merged[section] = part
    return merged
