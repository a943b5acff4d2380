"""Tiny real tasks and runs shared by tests: a BigCloneBench-format folder of real sample functions, seeded soft
labels, a tiny distillation fit config, a random pair classifier folder, and running the CLI in a subprocess."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from lightning.pytorch.callbacks import Callback

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "bigclonebench-sample"


class KillAtStep(Callback):
    """SIGKILLs its own process right after optimiser step ``step`` (before that step's checkpoint)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def make_tiny_task(folder: Path, functions: int = 12, unlabelled: int = 24, valid: int = 8) -> Path:
    """A BigCloneBench-format folder of real sample functions: 16 labelled, ``unlabelled``, ``valid``, 8 test pairs
    (``valid`` 24 needs 13 ``functions``: 78 pairs)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (SAMPLE / "data.jsonl").open() as handle:
        records = [json.loads(line) for line, _ in zip(handle, range(functions), strict=False)]
    (folder / "data.jsonl").write_text("".join(json.dumps({"func": r["func"], "idx": r["idx"]}) + "\n"
                                               for r in records))
    pairs = list(itertools.combinations([r["idx"] for r in records], 2))
    labelled, rest = pairs[:16], pairs[16:]
    (folder / "label_train.txt").write_text("".join(f"{a}\t{b}\t{i % 2}\n" for i, (a, b) in enumerate(labelled)))
    (folder / "unlabel_train.txt").write_text("".join(f"{a}\t{b}\n" for a, b in rest[:unlabelled]))
    evaluation = rest[unlabelled:]
    (folder / "valid.txt").write_text("".join(f"{a}\t{b}\t{i % 2}\n" for i, (a, b) in enumerate(evaluation[:valid])))
    (folder / "test.txt").write_text("".join(f"{a}\t{b}\t{i % 2}\n"
                                             for i, (a, b) in enumerate(evaluation[valid:valid + 8])))
    return folder


def make_soft_labels(task_dir: Path, output: Path, seed: int = 0) -> Path:
    """Seeded random teacher logits for every unlabelled pair (what `label` would cache)."""
    import torch

    from lit_compressor.data.task import TaskData, fingerprint
    from lit_compressor.labels.soft_labels import SoftLabels, save_soft_labels

    examples = TaskData(data_dir=str(task_dir)).read("unlabelled")
    logits = torch.randn(len(examples), 2, generator=torch.Generator().manual_seed(seed)) * 3
    return save_soft_labels(output, SoftLabels([e.id for e in examples], logits, {"data": fingerprint(examples)}))


def sampled_unit_fit(folder: Path) -> tuple[Path, dict]:
    """A tiny task with soft labels under ``folder``, and a search's sampled-distillation ``fit`` config on it."""
    task_dir = make_tiny_task(folder / "task", functions=14, unlabelled=40)
    soft = make_soft_labels(task_dir, folder / "soft.safetensors")
    data = {"task": {"format": "bigclonebench", "data_dir": str(task_dir)}, "batch_size": 8, "eval_batch_size": 8,
            "soft_labels": str(soft), "tokenizer_cache": str(folder / "tokenizers")}
    return task_dir, {"seed_everything": 3,
                      "model": {"class_path": "lit_compressor.training.distillation.DistillationModule"},
                      "data": {"class_path": "lit_compressor.training.distillation_data.DistillationDataModule",
                               "init_args": data},
                      "trainer": {"accelerator": "cpu", "devices": 1}}


def distill_config(run: Path, task_dir: Path, soft_labels: Path, kill_at: int | None = None,
                   exact_resume: bool = True, max_epochs: int = 2, every_n_steps: int = 4,
                   function_batches: dict | None = None) -> Path:
    """A tiny DistillationModule fit (1 layer, H=16, 24 pairs, batch 4: 6 steps an epoch) writing under ``run``
    (``function_batches``: in batches of functions of the unlabelled pair graph instead)."""
    callbacks = [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                  "init_args": {"dirpath": str(run / "checkpoints"), "every_n_train_steps": every_n_steps,
                                "save_last": True}}]
    if exact_resume:
        callbacks.append({"class_path": "lit_compressor.training.resume.ExactResume"})
    if kill_at is not None:
        callbacks.append({"class_path": "tiny_tasks.KillAtStep", "init_args": {"step": kill_at}})
    config = {
        "seed_everything": 7,
        "model": {"class_path": "lit_compressor.training.distillation.DistillationModule", "init_args": {
            "architecture": {"num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2,
                             "intermediate_size": 32, "vocab_size": 300},
            "dropout": 0.1, "output_dir": str(run / "student")}},
        "data": {"class_path": "lit_compressor.training.distillation_data.DistillationDataModule", "init_args": {
            "task": {"format": "bigclonebench", "data_dir": str(task_dir)}, "block_size": 64, "batch_size": 4,
            "eval_batch_size": 8, "soft_labels": str(soft_labels), "tokenizer_cache": str(run / "tokenizers"),
            **({"function_batches": function_batches} if function_batches else {})}},
        "trainer": {"max_epochs": max_epochs, "accelerator": "cpu", "devices": 1, "logger": False,
                    "enable_progress_bar": False, "enable_model_summary": False,
                    "default_root_dir": str(run), "callbacks": callbacks},
    }
    run.mkdir(parents=True, exist_ok=True)
    path = run / "config.json"  # JSON is YAML
    path.write_text(json.dumps(config, indent=1))
    return path


def distillation(architecture, task, soft_labels=None, *, kind=None, augment=None, tokenizer_cache=None,
                 batch_size: int = 16, eval_batch_size: int = 64, block_size: int = 64, **model_args):
    """A student module (``kind``, default ``DistillationModule``) and its ``DistillationDataModule``, paired as
    ``LitCompressorCLI`` pairs them: the model copies the teacher recorded in ``soft_labels``, the data module
    serves the model's ``student_inputs``."""
    from lit_compressor.training.distillation import DistillationModule
    from lit_compressor.training.distillation_data import DistillationDataModule, teacher_record

    kind = kind or DistillationModule
    model_args.setdefault("num_inputs", task.num_inputs)
    if architecture is not None:
        model_args["architecture"] = architecture
    module = kind(teacher_head=teacher_record(str(soft_labels) if soft_labels else None), block_size=block_size,
                  **model_args)
    data = DistillationDataModule(task, soft_labels=str(soft_labels) if soft_labels else None, augment=augment,
                                  tokenizer_cache=str(tokenizer_cache or "runs/cache/tokenizers"),
                                  student=module.student_inputs, batch_size=batch_size,
                                  eval_batch_size=eval_batch_size, block_size=block_size)
    return module, data


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}


def cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lit_compressor", *args], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen, timeout: float = 240) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=timeout)
    return process.returncode, stderr


def student_state(run: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(run / "student" / "model.safetensors")


def _tiny_classifier(folder: Path) -> Path:
    """A 1-layer H=32 RoBERTa pair classifier folder (random weights), usable as a labelling teacher."""
    import torch

    from lit_compressor.nn.folders import save_classifier
    from lit_compressor.nn.student import build_student
    from lit_compressor.nn.tokenization import train_student_tokenizer
    from lit_compressor.search.architecture import StudentArchitecture

    torch.manual_seed(0)
    with (SAMPLE / "data.jsonl").open() as handle:
        corpus = [json.loads(line)["func"] for line, _ in zip(handle, range(200), strict=False)]
    model = build_student(StudentArchitecture(1, 32, 2, 64, 400), num_inputs=2, max_positions=130)
    return save_classifier(model, train_student_tokenizer(corpus, 400), folder)
