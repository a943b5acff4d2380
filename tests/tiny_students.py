"""Exported tiny students with spread-out probabilities, shared by the clone search and Node runtime tests.

A randomly initialised student gives every input nearly the same probability (a few seconds of
training teach a student this small nothing either), so a label comparison would be meaningless: its
output layer is rescaled on real examples so that the label-1 margin has mean 0 (both labels are
common) and standard deviation 2, the scale capped at 50 so that float rounding stays far below the
export's 1e-4 check.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import torch
from conftest import SHARED_DATA

from lit_compressor.commands.export import export
from lit_compressor.data.readers import read_functions
from lit_compressor.nn.folders import save_classifier
from lit_compressor.nn.student import build_student
from lit_compressor.nn.tokenization import CodeEncoder, train_student_tokenizer
from lit_compressor.runtime.evaluate import sample_test_split
from lit_compressor.search.architecture import StudentArchitecture

BCB = SHARED_DATA / "bigclonebench"
DEVIGN = SHARED_DATA / "devign"
TINY = StudentArchitecture(num_hidden_layers=2, hidden_size=48, num_attention_heads=2, intermediate_size=96,
                           vocab_size=600)
BLOCK_SIZE = 128


@functools.cache
def bcb_functions() -> dict[str, str]:
    return read_functions(BCB / "data.jsonl")


def calibrate(model, encoder: CodeEncoder, rows: list[tuple[str, ...]], max_scale: float = 50.0) -> None:
    """Rescale the output layer so the label-1 margin on ``rows`` is centred, with std 2 (scale capped)."""
    with torch.no_grad():
        batch = encoder.encode_codes(rows)
        logits = model.eval()(batch["input_ids"], batch["attention_mask"])
        margin = logits[:, 1] - logits[:, 0]
        scale = min(2.0 / float(margin.std()), max_scale)
        out = model.classifier.out_proj
        out.weight.mul_(scale)
        out.bias.mul_(scale)
        out.bias[1] -= float(margin.mean()) * scale


@functools.cache
def exported_student(kind: str, pooling: str = "first", pair_head: str = "concat") -> Path:
    """``kind`` "pair" (BigCloneBench) or "single" (Devign): an exported, calibrated tiny student (its full/ folder:
    every form, fp32 and int8; ``.parent / "shipped"`` is what ships)."""
    torch.manual_seed(7)
    num_inputs = 2 if kind == "pair" else 1
    data = BCB if kind == "pair" else DEVIGN
    texts = list(bcb_functions().values())[:400]
    tokenizer = train_student_tokenizer(texts, TINY.vocab_size)
    model = build_student(TINY, num_inputs=num_inputs, max_positions=BLOCK_SIZE + 2, pooling=pooling,
                          pair_head=pair_head)
    rows = [e.codes for e in sample_test_split(data, 64, seed=1)]
    calibrate(model, CodeEncoder(tokenizer, BLOCK_SIZE), rows)
    root = Path(tempfile.mkdtemp(prefix=f"tiny-{kind}-{pair_head}-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    save_classifier(model, tokenizer, root / "student", {"block_size": BLOCK_SIZE})
    export(root / "student", root / "export", data=data, samples=16, full=True)
    return root / "export" / "full"
