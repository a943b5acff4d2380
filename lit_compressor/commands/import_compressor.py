"""Import students saved by the Compressor research code (``torch.save(model.state_dict())``).

Three key layouts are recognised (see ``docs/compressor-import.md``); anything else is refused:

- CodeBERT clone detection: a ``RobertaModel`` under ``encoder.`` and a pair head
  ``classifier.dense [H, 2H]`` / ``classifier.out_proj``; plain inputs.
- GraphCodeBERT clone detection: a ``RobertaForSequenceClassification`` under ``encoder.`` (its inner
  ``encoder.classifier`` is unused) and the outer pair head ``classifier.*``; data-flow inputs.
- vulnerability prediction: a ``RobertaForSequenceClassification`` under ``encoder.``. CodeBERT and
  GraphCodeBERT students have the same keys, so the user says which inputs it reads (``inputs``).
  This code's class index 0 means *vulnerable*.

The architecture is not in the file: the user gives L/H/A/D/V. Students are built as the research
code built them, from CodeBERT's / GraphCodeBERT's config (``layer_norm_eps`` 1e-5, 514 positions).
We always store the positive class (clone, vulnerable) at index 1, so the import swaps the output
rows when the checkpoint's positive index is 0; probabilities are unchanged, only their order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from tokenizers import Tokenizer, processors
from transformers import AutoModel

from lit_compressor.core.errors import UserError
from lit_compressor.graphcodebert.folder import graph_metadata
from lit_compressor.graphcodebert.inputs import COMPRESSOR_CLONE, COMPRESSOR_VULNERABILITY
from lit_compressor.graphcodebert.model import GraphCodeBERTClassifier
from lit_compressor.nn.classifier import CodeClassifier
from lit_compressor.nn.folders import save_classifier
from lit_compressor.nn.student import student_config
from lit_compressor.nn.tokenization import wrap_tokenizer
from lit_compressor.search.architecture import StudentArchitecture
from lit_compressor.training.resume import load_checkpoint_state

COMPRESSOR_POSITIONS = 514
CODEBERT_LAYER_NORM_EPS = 1e-5  # microsoft/codebert-base's and graphcodebert-base's config
DOC = "docs/compressor-import.md"
Layout = Literal["clone", "vulnerability"]
Inputs = Literal["plain", "dataflow"]
DEFAULT_LANGUAGE = {"clone": "java", "vulnerability": "c"}


@dataclass(frozen=True)
class CheckpointLayout:
    """What a checkpoint's keys say: the task, the inputs (None when the keys cannot tell) and where
    the encoder's weights are."""

    task: Layout
    inputs: Inputs | None
    encoder_prefix: str


def _has(state: dict[str, torch.Tensor], prefix: str) -> bool:
    return any(key.startswith(prefix) for key in state)


def detect_layout(state: dict[str, torch.Tensor]) -> CheckpointLayout:
    """The layout of a Compressor state dict, or a UserError naming the layouts it knows."""
    outer = {"classifier.dense.weight", "classifier.out_proj.weight"} <= state.keys()
    inner = {"encoder.classifier.dense.weight", "encoder.classifier.out_proj.weight"} <= state.keys()
    if _has(state, "encoder.roberta.embeddings.") and inner:
        if outer:
            return CheckpointLayout("clone", "dataflow", "encoder.roberta.")
        return CheckpointLayout("vulnerability", None, "encoder.roberta.")
    if _has(state, "encoder.embeddings.") and outer:
        return CheckpointLayout("clone", "plain", "encoder.")
    found = ", ".join(sorted(state)[:4]) if state else "no keys"
    raise UserError(f"not a layout of the Compressor research code (first keys: {found}).",
                    fix="Known layouts: `encoder.*` + `classifier.*` (CodeBERT clone detection), "
                        "`encoder.roberta.*` + `encoder.classifier.*` (vulnerability prediction), and both "
                        f"with an outer `classifier.*` (GraphCodeBERT clone detection); see {DOC}.")


def convert_state_dict(state: dict[str, torch.Tensor], layout: CheckpointLayout) -> dict[str, torch.Tensor]:
    """Compressor's keys -> our :class:`CodeClassifier`'s; pooler, position-id buffers and the unused
    inner head of GraphCodeBERT clone students are dropped. Unknown keys are a UserError."""
    converted, unknown = {}, []
    clone_with_inner = layout.task == "clone" and layout.encoder_prefix == "encoder.roberta."
    for key, value in state.items():
        if ".pooler." in key or key.endswith("position_ids"):
            continue
        if key.startswith("encoder.classifier."):
            if not clone_with_inner:
                converted[key[len("encoder."):]] = value
        elif key.startswith(layout.encoder_prefix):
            converted["encoder." + key[len(layout.encoder_prefix):]] = value
        elif key.startswith("classifier.") and layout.task == "clone":
            converted[key] = value
        else:
            unknown.append(key)
    if unknown:
        raise UserError(f"unexpected keys for a {layout.task} student: {', '.join(unknown[:3])}.",
                        fix=f"This is not one of the layouts in {DOC}.")
    return converted


def shapes_hint(state: dict[str, torch.Tensor], prefix: str) -> str:
    """What the file's tensor shapes say about L/H/D/V (A cannot be read from shapes)."""
    words = state.get(f"{prefix}embeddings.word_embeddings.weight")
    dense = state.get(f"{prefix}encoder.layer.0.intermediate.dense.weight")
    if words is None or dense is None:
        return ""
    layers = len({k.split(".")[len(prefix.split(".")) + 1] for k in state if k.startswith(f"{prefix}encoder.layer.")})
    return (f" The file's shapes say num_hidden_layers {layers}, hidden_size {words.shape[1]}, "
            f"intermediate_size {dense.shape[0]}, vocab_size {words.shape[0]}.")


def build_compressor_student(architecture: StudentArchitecture, num_inputs: int, inputs: Inputs) -> CodeClassifier:
    """An empty student shaped as the research code built it (CodeBERT's config, 514 positions)."""
    config = student_config(architecture, "roberta", max_positions=COMPRESSOR_POSITIONS)
    config.layer_norm_eps = CODEBERT_LAYER_NORM_EPS
    encoder = AutoModel.from_config(config, add_pooling_layer=False)
    if inputs == "dataflow":
        return GraphCodeBERTClassifier(encoder, num_inputs=num_inputs)
    return CodeClassifier(encoder, num_inputs=num_inputs)


def resolve_inputs(layout: CheckpointLayout, inputs: Inputs | None, checkpoint: Path) -> Inputs:
    """The inputs the student reads: from the keys, or from the user when the keys cannot tell."""
    if layout.inputs is None:
        if inputs is None:
            raise UserError("the keys of a vulnerability-prediction student are the same for CodeBERT and "
                            "GraphCodeBERT students, and the two read different inputs.", checkpoint,
                            "Say which: --inputs plain (a CodeBERT student) or --inputs dataflow (a "
                            "GraphCodeBERT student, trained with data-flow graphs).")
        return inputs
    if inputs is not None and inputs != layout.inputs:
        kind = "GraphCodeBERT" if layout.inputs == "dataflow" else "CodeBERT"
        raise UserError(f"--inputs {inputs}, but the keys are those of a {kind} {layout.task} student, which "
                        f"reads {layout.inputs} inputs.", checkpoint, "Leave --inputs out for this checkpoint.")
    return layout.inputs


def load_compressor_model(checkpoint: Path, architecture: StudentArchitecture, layout: Layout | None = None,
                          positive_index: int | None = None, inputs: Inputs | None = None
                          ) -> tuple[CodeClassifier, CheckpointLayout, Inputs]:
    """The student with the checkpoint's weights (positive class at index 1), its layout and inputs."""
    state = load_checkpoint_state(checkpoint, key=None)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UserError("not a state dict.", checkpoint, "Give the model.bin saved by the Compressor code.")
    try:
        found = detect_layout(state)
    except UserError as error:
        raise UserError(error.what, checkpoint, error.fix) from None
    if layout is not None and layout != found.task:
        raise UserError(f"--layout {layout}, but the keys are those of a {found.task} student.", checkpoint,
                        "Leave --layout out: it is read from the keys.")
    inputs = resolve_inputs(found, inputs, checkpoint)
    model = build_compressor_student(architecture, 2 if found.task == "clone" else 1, inputs)
    converted = convert_state_dict(state, found)
    expected = model.state_dict()
    wrong = [k for k, v in converted.items() if k in expected and expected[k].shape != v.shape]
    missing = [k for k in expected if k not in converted and not k.endswith("position_ids")]
    if wrong or missing:
        detail = (f"shape of {wrong[0]}: {tuple(converted[wrong[0]].shape)} in the file, "
                  f"{tuple(expected[wrong[0]].shape)} for the given architecture" if wrong else f"missing {missing[0]}")
        raise UserError(f"the checkpoint does not fit the given architecture ({detail}).", checkpoint,
                        "Give the L/H/A/D/V it was trained with (the paper's 3 MB genome: 12/96/8/64/1000)."
                        + shapes_hint(state, found.encoder_prefix))
    if positive_index is None:
        positive_index = 0 if found.task == "vulnerability" else 1
    if positive_index not in (0, 1):
        raise UserError(f"positive_index must be 0 or 1, got {positive_index}.", fix="Pass --positive_index 0 or 1.")
    if positive_index == 0:  # store the positive class at index 1, our convention
        for name in ("classifier.out_proj.weight", "classifier.out_proj.bias"):
            converted[name] = converted[name].flip(0)
    model.load_state_dict(converted, strict=False)
    return model.eval(), found, inputs


def load_compressor_tokenizer(path: Path, vocab_size: int | None = None):
    """Compressor's BPE ``tokenizer.json``, with ``<s> … </s>`` added around each function.

    With ``vocab_size`` (the checkpoint's V), a tokenizer that can emit ids the embeddings lack is refused.
    """
    if not Path(path).is_file():
        raise UserError("tokenizer file not found.", path, "Give the tokenizer.json the student was trained with.")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as error:  # the tokenizers library raises a bare Exception for unreadable files
        raise UserError(f"not a tokenizers JSON file ({error}).", path,
                        "Give the BPE tokenizer.json the student was trained with.") from None
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    if vocab_size is not None and size > vocab_size:
        raise UserError(f"the tokenizer has {size} tokens but the student's vocabulary (V) is {vocab_size}: its "
                        f"ids above {vocab_size - 1} have no embedding.", path,
                        "Give the tokenizer the student was trained with (Compressor: BPE_<V>.json of the same "
                        "task), or the V it was trained with.")
    specials = {name: tokenizer.token_to_id(name) for name in ("<s>", "</s>", "<pad>", "<unk>")}
    if None in specials.values():
        absent = ", ".join(name for name, i in specials.items() if i is None)
        raise UserError(f"the tokenizer lacks the special tokens {absent}.", path,
                        "Give the BPE tokenizer the Compressor code trained (<s>, <pad>, </s>, <unk>).")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", specials["<s>"]), ("</s>", specials["</s>"])])
    return wrap_tokenizer(tokenizer)


def import_compressor(checkpoint: Path, tokenizer: Path, output: Path, num_hidden_layers: int = 12,
                      hidden_size: int = 96, num_attention_heads: int = 8, intermediate_size: int = 64,
                      vocab_size: int = 1000, layout: Layout | None = None, positive_index: int | None = None,
                      block_size: int = 400, inputs: Inputs | None = None, language: Literal["java", "c"] | None = None,
                      code_length: int = 384, flow_length: int = 128) -> Path:
    """Convert a Compressor research-code student into a lit-compressor model folder.

    Args:
        checkpoint: the ``model.bin`` state dict saved by Compressor.
        tokenizer: its BPE ``tokenizer.json``.
        output: the model folder to write (config.json, model.safetensors, tokenizer files).
        num_hidden_layers: L. hidden_size: H. num_attention_heads: A. intermediate_size: D. vocab_size: V.
        layout: ``clone`` or ``vulnerability``; read from the keys (when given, it must agree).
        positive_index: the output index of the positive class in the checkpoint (default: 1 for clone
            detection, 0 for Compressor's vulnerability code, which calls softmax[:, 0] > 0.5 vulnerable).
        block_size: tokens per function of a plain student (Compressor: 400).
        inputs: ``plain`` (CodeBERT students) or ``dataflow`` (GraphCodeBERT students). Read from the keys
            for clone detection; required for vulnerability prediction, whose keys are the same for both.
        language: the parser of a data-flow student (default: java for clone detection, c for vulnerability).
        code_length: code positions of a data-flow student (Compressor: 384).
        flow_length: data-flow positions of a data-flow student (Compressor: 128).
    """
    architecture = StudentArchitecture(num_hidden_layers, hidden_size, num_attention_heads, intermediate_size,
                                       vocab_size)
    bpe = load_compressor_tokenizer(tokenizer, vocab_size)
    model, found, inputs = load_compressor_model(checkpoint, architecture, layout, positive_index, inputs)
    metadata = {"block_size": block_size, "positive_label": 1, "method": "Compressor (imported)",
                "architecture": architecture.to_dict(), "family": "roberta",
                "imported_layout": {"task": found.task, "inputs": inputs}}
    if inputs == "dataflow":
        if code_length < 4 or flow_length < 0 or code_length + flow_length > COMPRESSOR_POSITIONS - 2:
            raise UserError(f"code_length {code_length} + flow_length {flow_length} must fit the student's "
                            f"{COMPRESSOR_POSITIONS - 2} positions.", fix="Compressor used 384 + 128.")
        rules = COMPRESSOR_CLONE if found.task == "clone" else COMPRESSOR_VULNERABILITY
        metadata.update(graph_metadata(language or DEFAULT_LANGUAGE[found.task], code_length, flow_length, rules))
    elif block_size > COMPRESSOR_POSITIONS - 2:
        raise UserError(f"block_size {block_size} is longer than the student's {COMPRESSOR_POSITIONS - 2} positions.",
                        fix="Compressor used 400.")
    folder = save_classifier(model, bpe, output, metadata)
    print(f"imported a {found.task} student ({inputs} inputs) into {folder}")
    return folder
