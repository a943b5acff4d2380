"""Import students saved by the Compressor research code (``torch.save(model.state_dict())``).

Two layouts (see ``docs/compressor-import.md``): clone detection keeps a ``RobertaModel`` under
``encoder.`` and a pair head ``classifier.dense [H, 2H]`` / ``classifier.out_proj``; vulnerability
prediction keeps a whole ``RobertaForSequenceClassification`` under ``encoder.`` (whose class index 0
means *vulnerable*). The architecture is not in the file: the user gives L/H/A/D/V.

We always store the positive class (clone, vulnerable) at index 1, so the import swaps the output
rows when the checkpoint's positive index is 0; probabilities are unchanged, only their order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from tokenizers import Tokenizer, processors

from lit_compressor.checkpoints import load_checkpoint_state
from lit_compressor.errors import UserError
from lit_compressor.models.classifier import CodeClassifier
from lit_compressor.models.hf_folder import save_classifier
from lit_compressor.models.student import build_student
from lit_compressor.search.architecture import StudentArchitecture
from lit_compressor.tokenization import wrap_tokenizer

COMPRESSOR_POSITIONS = 514
Layout = Literal["clone", "vulnerability"]


def detect_layout(state: dict[str, torch.Tensor]) -> Layout:
    if any(k.startswith("encoder.roberta.") for k in state):
        return "vulnerability"
    if "classifier.dense.weight" in state:
        return "clone"
    raise UserError("not a Compressor checkpoint: no `encoder.roberta.*` nor `classifier.dense` keys.")


def convert_state_dict(state: dict[str, torch.Tensor], layout: Layout) -> dict[str, torch.Tensor]:
    """Compressor's keys -> our :class:`CodeClassifier`'s (pooler and position-id buffers dropped)."""
    converted = {}
    for key, value in state.items():
        if layout == "vulnerability":
            if key.startswith("encoder.roberta."):
                key = "encoder." + key[len("encoder.roberta."):]
            elif key.startswith("encoder.classifier."):
                key = key[len("encoder."):]
        if ".pooler." in key or key.endswith("position_ids"):
            continue
        converted[key] = value
    return converted


def load_compressor_model(checkpoint: Path, architecture: StudentArchitecture, layout: Layout | None = None,
                          positive_index: int | None = None) -> tuple[CodeClassifier, Layout]:
    """A :class:`CodeClassifier` with the checkpoint's weights, positive class at index 1."""
    state = load_checkpoint_state(checkpoint, key=None)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    layout = layout or detect_layout(state)
    num_inputs = 2 if layout == "clone" else 1
    model = build_student(architecture, num_inputs=num_inputs, family="roberta", max_positions=COMPRESSOR_POSITIONS)
    converted = convert_state_dict(state, layout)
    expected = model.state_dict()
    wrong = [k for k, v in converted.items() if k in expected and expected[k].shape != v.shape]
    missing = [k for k in expected if k not in converted and not k.endswith("position_ids")]
    if wrong or missing:
        detail = (f"shape of {wrong[0]}: {tuple(converted[wrong[0]].shape)} in the file, "
                  f"{tuple(expected[wrong[0]].shape)} for the given architecture" if wrong else f"missing {missing[0]}")
        raise UserError(f"the checkpoint does not fit the given architecture ({detail}).", checkpoint,
                        "Give the L/H/A/D/V it was trained with (the paper's 3 MB genome: 12/96/8/64/1000).")
    if positive_index is None:
        positive_index = 0 if layout == "vulnerability" else 1
    if positive_index == 0:  # store the positive class at index 1, our convention
        for name in ("classifier.out_proj.weight", "classifier.out_proj.bias"):
            converted[name] = converted[name].flip(0)
    model.load_state_dict(converted, strict=False)
    return model.eval(), layout


def load_compressor_tokenizer(path: Path):
    """Compressor's BPE ``tokenizer.json``, with ``<s> … </s>`` added around each function."""
    if not Path(path).is_file():
        raise UserError("tokenizer file not found.", path, "Give the tokenizer.json the student was trained with.")
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", tokenizer.token_to_id("<s>")), ("</s>", tokenizer.token_to_id("</s>"))])
    return wrap_tokenizer(tokenizer)


def import_compressor(checkpoint: Path, tokenizer: Path, output: Path, num_hidden_layers: int = 12,
                      hidden_size: int = 96, num_attention_heads: int = 8, intermediate_size: int = 64,
                      vocab_size: int = 1000, layout: Layout | None = None, positive_index: int | None = None,
                      block_size: int = 400) -> Path:
    """Convert a Compressor research-code student into a lit-compressor model folder.

    Args:
        checkpoint: the ``model.bin`` state dict saved by Compressor.
        tokenizer: its BPE ``tokenizer.json``.
        output: the model folder to write (config.json, model.safetensors, tokenizer files).
        num_hidden_layers: L. hidden_size: H. num_attention_heads: A. intermediate_size: D. vocab_size: V.
        layout: ``clone`` or ``vulnerability``; detected from the keys when omitted.
        positive_index: the output index of the positive class in the checkpoint (default: 1 for clone
            detection, 0 for Compressor's vulnerability code, which calls softmax[:, 0] > 0.5 vulnerable).
        block_size: tokens per function (Compressor: 400).
    """
    architecture = StudentArchitecture(num_hidden_layers, hidden_size, num_attention_heads, intermediate_size,
                                       vocab_size)
    model, layout = load_compressor_model(checkpoint, architecture, layout, positive_index)
    metadata = {"block_size": block_size, "positive_label": 1, "method": "Compressor (imported)",
                "architecture": architecture.to_dict(), "family": "roberta"}
    folder = save_classifier(model, load_compressor_tokenizer(tokenizer), output, metadata)
    print(f"imported a {layout} student into {folder}")
    return folder
