"""Small classifiers trained for real on real data, for the tests that need learned weights: Node.js and
transformers.js parity, and the smoke tests of the packed npm and Python packages.

Each is a 2-layer BERT of a student's size (hidden 64, a 1,000-token BPE vocabulary trained on the task's code),
fine-tuned with the project's own ``TeacherModule`` on the task's labelled split (supervised on the labels: CI has
no teacher to distil from) for a few seconds, then exported with ``lit-compressor export --full true``:

- ``pair``: BigCloneBench (mean pooling, the interaction head), the layout of the quick start's student;
- ``single``: Devign (one C function), the layout transformers.js loads.

Run as a script to write both to a folder (``python tests/trained_students.py OUTPUT``); the tests train them
once per session into a temporary folder, or once per CI run into ``$LIT_COMPRESSOR_TRAINED_STUDENTS`` (kept
there and reused by the next pytest session of the same run).
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
BLOCK_SIZE = 128
SHAPE = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}
VOCAB_SIZE = 1000
TASKS = {  # kind -> (task format, labelled pairs/functions trained on, epochs)
    "pair": ("bigclonebench", 2000, 2),
    "single": ("devign", None, 3),
}


def base_model(folder: Path, texts: list[str]) -> Path:
    """A randomly initialised BERT of a student's size with a BPE tokenizer trained on ``texts``."""
    import torch
    from transformers import AutoModel, BertConfig

    from lit_compressor.nn.tokenization import train_student_tokenizer

    torch.manual_seed(0)
    tokenizer = train_student_tokenizer(texts, VOCAB_SIZE)
    config = BertConfig(vocab_size=VOCAB_SIZE, max_position_embeddings=BLOCK_SIZE + 2, pad_token_id=1,
                        type_vocab_size=1, **SHAPE)
    AutoModel.from_config(config, add_pooling_layer=False).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def train(kind: str, output: Path) -> Path:
    """Train the ``kind`` classifier and export it to ``output`` (``shipped/``, ``full/``, ``export.json``)."""
    import lightning as L
    import torch

    from lit_compressor.commands.export import export
    from lit_compressor.data.task import TaskData
    from lit_compressor.training.datamodule import CodeDataModule
    from lit_compressor.training.teacher import TeacherModule

    name, labelled, epochs = TASKS[kind]
    data = SHARED_DATA / name
    task = TaskData(format=name, data_dir=str(data), limit={"labelled": labelled, "valid": 64})
    started = time.perf_counter()
    codes = list(dict.fromkeys(code for e in task.read("labelled") for code in e.codes))
    work = Path(tempfile.mkdtemp(prefix=f"trained-{kind}-"))
    threads = torch.get_num_threads()
    try:
        L.seed_everything(0, verbose=False)
        module = TeacherModule(str(base_model(work / "base", codes)), pooling="mean", pair_head="interaction",
                               num_inputs=2 if kind == "pair" else 1, block_size=BLOCK_SIZE, lr=2e-3,
                               warmup_ratio=0.1, output_dir=str(work / "model"))
        trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                            limit_val_batches=0)
        torch.set_num_threads(1)  # two threads on a busy 2-core machine ran 14x slower than one
        trainer.fit(module, datamodule=CodeDataModule(task, batch_size=32, block_size=BLOCK_SIZE,
                                                     encoder=module.code_encoder))
        print(f"trained {kind} in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        export(work / "model", output, data=str(data), samples=200, full=True, overwrite=True)
        print(f"exported {kind} in {time.perf_counter() - started:.0f} s")
        return output
    finally:
        torch.set_num_threads(threads)
        shutil.rmtree(work, ignore_errors=True)


@functools.cache
def trained_student(kind: str) -> Path:
    """The export folder of the ``kind`` classifier (``shipped/``: what ships; ``full/``: every form), trained once."""
    if os.environ.get("LIT_COMPRESSOR_TRAINED_STUDENTS"):
        folder = Path(os.environ["LIT_COMPRESSOR_TRAINED_STUDENTS"]) / kind
        return folder if (folder / "export.json").is_file() else train(kind, folder)
    root = Path(tempfile.mkdtemp(prefix=f"trained-{kind}-export-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return train(kind, root / "export")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python tests/trained_students.py OUTPUT")
    sys.path.insert(0, str(ROOT))
    for kind in TASKS:
        started = time.perf_counter()
        folder = train(kind, Path(sys.argv[1]) / kind)
        print(f"{kind}: {folder} in {time.perf_counter() - started:.0f} s")
