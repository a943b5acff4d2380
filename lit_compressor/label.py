"""``lit-compressor label``: the fine-tuned teacher's soft labels of the unlabelled split."""

from __future__ import annotations

from pathlib import Path

from lit_compressor.data.task import TaskData
from lit_compressor.soft_labels import file_fingerprint, is_current


def label(teacher: str, output: Path = Path("runs/soft_labels.safetensors"), task: TaskData | None = None,
          block_size: int = 400, batch_size: int = 64, accelerator: str = "auto", devices: int | str = 1,
          strategy: str = "auto", precision: str | None = None, force: bool = False) -> Path:
    """Label the unlabelled split with a fine-tuned teacher folder; skipped when the file is current.

    Args:
        teacher: the fine-tuned teacher's Hugging Face folder (written by fitting a TeacherModule).
        output: the soft-label file (safetensors).
        task: the data (as in the ``data.task`` block of a fit config).
        block_size: tokens per function.
        batch_size: examples per forward pass.
        accelerator: Lightning accelerator (cpu, gpu, auto).
        devices: number of devices; with ``strategy: ddp`` each labels a shard and rank 0 writes the file.
        strategy: Lightning strategy (auto, ddp).
        precision: Lightning precision (e.g. bf16-mixed).
        force: label again even when the file is current.
    """
    import lightning as L

    from lit_compressor.data.datamodule import CodeDataModule
    from lit_compressor.data.task import fingerprint
    from lit_compressor.modules.labelling import SoftLabelWriter, TeacherPredictor

    task = task or TaskData()
    data = CodeDataModule(task, eval_batch_size=batch_size, block_size=block_size)
    teacher_hash, data_hash = file_fingerprint(teacher), fingerprint(data.split("unlabelled"))
    if not force and is_current(output, teacher_hash, data_hash, block_size=str(block_size)):
        print(f"soft labels are current: {output}")
        return output
    writer = SoftLabelWriter(output, metadata={"teacher": teacher_hash, "data": data_hash, "teacher_path": str(teacher),
                                               "block_size": str(block_size)})
    trainer = L.Trainer(accelerator=accelerator, devices=devices, strategy=strategy, precision=precision,
                        callbacks=[writer], logger=False, enable_checkpointing=False)
    trainer.predict(TeacherPredictor(teacher, block_size), datamodule=data, return_predictions=False)
    return output
