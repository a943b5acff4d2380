"""``lit-compressor export``: ONNX matches PyTorch on real code, int8 loads and is scored, safe output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA

from lit_compressor.commands.export import ONNX_TOLERANCE, export
from lit_compressor.core.errors import UserError
from lit_compressor.data.readers import read_functions
from lit_compressor.nn.folders import save_classifier
from lit_compressor.nn.student import build_student
from lit_compressor.nn.tokenization import train_student_tokenizer
from lit_compressor.runtime.evaluate import sample_test_split
from lit_compressor.search.architecture import StudentArchitecture

BCB = SHARED_DATA / "bigclonebench"
DEVIGN = SHARED_DATA / "devign"
TINY = StudentArchitecture(num_hidden_layers=2, hidden_size=64, num_attention_heads=2, intermediate_size=128,
                           vocab_size=500)


def make_student(folder: Path, num_inputs: int, texts: list[str], block_size: int = 128) -> Path:
    """A real student folder: BPE tokenizer trained on real code, random weights."""
    import torch

    torch.manual_seed(num_inputs)
    tokenizer = train_student_tokenizer(texts, TINY.vocab_size)
    model = build_student(TINY, num_inputs=num_inputs, max_positions=block_size + 2)
    return save_classifier(model, tokenizer, folder, {"block_size": block_size})


@pytest.fixture(scope="module")
def code() -> list[str]:
    return list(read_functions(BCB / "data.jsonl").values())[:300]


@pytest.fixture(scope="module")
def pair_student(tmp_path_factory, code) -> Path:
    return make_student(tmp_path_factory.mktemp("pair") / "student", 2, code)


@pytest.fixture(scope="module")
def single_student(tmp_path_factory, code) -> Path:
    return make_student(tmp_path_factory.mktemp("single") / "student", 1, code)


@pytest.fixture(scope="module")
def pair_export(tmp_path_factory, pair_student) -> tuple[Path, dict]:
    output = tmp_path_factory.mktemp("pair-export") / "out"
    return output, export(pair_student, output, data=BCB, samples=24, full=True)


PAIR_SHIPPED = {"README.md", "config.json", "tokenizer.json", "tokenizer_config.json", "model.int8.onnx",
                "encoder.int8.onnx", "weights.int8.bin", "head_prepare.onnx", "head.onnx"}
SINGLE_SHIPPED = {"README.md", "config.json", "tokenizer.json", "tokenizer_config.json", "onnx/model_quantized.onnx"}


def files_under(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def test_pair_export_ships_only_what_a_runtime_loads_and_matches_pytorch(pair_export):
    output, report = pair_export
    assert files_under(output / "shipped") == report["shipped"]["files"]
    assert set(report["shipped"]["files"]) == PAIR_SHIPPED
    assert report["shipped"]["bytes"] == sum(files_under(output / "shipped").values())
    for name in ("config.json", "model.safetensors", "tokenizer.json", "model.onnx", "model.optimized.onnx",
                 "model.int8.onnx", "encoder.onnx", "encoder.optimized.onnx"):  # every form, asked for with full
        assert (output / "full" / name).is_file(), name
    assert report["check_inputs"].startswith("24 test examples")
    assert max(report["onnx_max_abs_diff"].values()) <= ONNX_TOLERANCE
    assert report["tokenizer_check"] == {"functions": 48, "differ": 0}
    assert json.loads((output / "export.json").read_text())["block_size"] == 128
    # the shipped files are byte for byte the checked ones, but for the classifier and encoder graphs, whose
    # common weights are stored once (weights.int8.bin): the same outputs, the encoder's weights not twice
    for name in PAIR_SHIPPED - {"README.md", "config.json", "model.int8.onnx", "encoder.int8.onnx", "weights.int8.bin"}:
        assert (output / "shipped" / name).read_bytes() == (output / "full" / name).read_bytes(), name
    two_graphs = report["files"]["model.int8.onnx"] + report["files"]["encoder.int8.onnx"]
    shipped = sum(report["shipped"]["files"][n] for n in ("model.int8.onnx", "encoder.int8.onnx", "weights.int8.bin"))
    assert shipped < 0.75 * two_graphs and report["shipped"]["shared_weights"]["stored_once"] > 0
    from transformers import AutoTokenizer

    from lit_compressor.nn.tokenization import CodeEncoder
    from lit_compressor.runtime.runners import OrtRunner

    batch = CodeEncoder(AutoTokenizer.from_pretrained(output / "shipped"), 128).encode_codes(
        [e.codes for e in sample_test_split(BCB, 8)])
    for graph in ("model.int8.onnx", "encoder.int8.onnx"):
        inputs = batch if graph.startswith("model") else {k: v[:, 0] for k, v in batch.items()}
        runs = [OrtRunner(output / folder / graph).session.run(None, {k: v.numpy() for k, v in inputs.items()})[0]
                for folder in ("shipped", "full")]
        assert np.array_equal(*runs), graph


def test_single_export_ships_the_transformers_js_layout_and_nothing_else_unless_asked(tmp_path, single_student):
    report = export(single_student, tmp_path / "out", data=DEVIGN, samples=16)
    assert not (tmp_path / "out" / "full").exists()  # the other forms only on request
    assert set(files_under(tmp_path / "out" / "shipped")) == SINGLE_SHIPPED
    config = json.loads((tmp_path / "out" / "shipped" / "config.json").read_text())
    assert config["transformers.js_config"] == {"dtype": "q8"} and config["lit_compressor"]["num_inputs"] == 1
    checks = report["transformers_js"]
    assert checks["longer_than_block"] > 0  # the graph's own truncation was exercised on real functions
    assert checks["onnx/model.onnx"]["max_abs_diff"] <= ONNX_TOLERANCE
    assert checks["onnx/model_quantized.onnx"]["max_abs_diff"] == pytest.approx(0.0, abs=1e-5)  # = model.int8.onnx
    assert report["accuracy"]["onnx/model_quantized.onnx"] == report["accuracy"]["model.int8.onnx"]


def test_fp32_only_export_ships_fp32_graphs(tmp_path, single_student):
    report = export(single_student, tmp_path / "out", int8=False, data=DEVIGN, samples=16)
    assert max(report["onnx_max_abs_diff"].values()) <= ONNX_TOLERANCE
    assert set(report["shipped"]["files"]) == SINGLE_SHIPPED - {"onnx/model_quantized.onnx"} | {"onnx/model.onnx"}
    assert "model.int8.onnx" not in report["files"]


def test_int8_loads_and_reports_accuracy(pair_export):
    import onnxruntime as ort

    output, report = pair_export
    session = ort.InferenceSession(str(output / "shipped" / "model.int8.onnx"), providers=["CPUExecutionProvider"])
    ids = np.full((1, 2, 10), 5, dtype=np.int64)
    assert session.run(["logits"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0].shape == (1, 2)
    assert report["files"]["model.int8.onnx"] < report["files"]["model.onnx"]
    # the reported figures are what the two graphs give on the same 24 real pairs
    from lit_compressor.nn.folders import load_classifier
    from lit_compressor.nn.tokenization import CodeEncoder
    from lit_compressor.runtime.evaluate import batched_logits
    from lit_compressor.runtime.runners import OrtRunner

    examples = sample_test_split(BCB, 24)
    encoder = CodeEncoder(load_classifier(output / "full")[1], 128)
    int8 = batched_logits(OrtRunner(output / "shipped" / "model.int8.onnx"), encoder, examples).argmax(-1)
    fp32 = batched_logits(OrtRunner(output / "full" / "model.onnx"), encoder, examples).argmax(-1)
    labels = np.array([e.label for e in examples])
    assert report["accuracy"]["model.int8.onnx"] == pytest.approx(float((int8 == labels).mean()))
    assert report["int8"]["agreement_with_fp32"] == pytest.approx(float((int8 == fp32).mean()))
    assert report["int8"]["max_abs_prob_diff"] < 0.1


def test_int8_graphs_score_each_example_alone(pair_export):
    """A graph quantised at run time gives each example the logits it gets alone, whatever the batch size asked
    for (batched, its activation ranges would come from the neighbours); fp32 graphs keep their batches."""
    from lit_compressor.nn.folders import load_classifier
    from lit_compressor.nn.tokenization import CodeEncoder
    from lit_compressor.runtime.evaluate import batched_logits
    from lit_compressor.runtime.runners import OrtRunner

    output, _ = pair_export
    examples = sample_test_split(BCB, 24)
    encoder = CodeEncoder(load_classifier(output / "full")[1], 128)
    int8, fp32 = OrtRunner(output / "shipped" / "model.int8.onnx"), OrtRunner(output / "full" / "model.onnx")
    assert int8.batch_dependent and not fp32.batch_dependent
    alone = np.concatenate([int8(**encoder.encode_codes([e.codes])) for e in examples])
    np.testing.assert_array_equal(batched_logits(int8, encoder, examples, batch_size=8), alone)
    batched = np.concatenate([int8(**encoder.encode_codes([e.codes for e in examples[k:k + 8]]))
                              for k in range(0, len(examples), 8)])
    assert np.abs(batched - alone).max() > 0  # what running it batched would have given: not the same


def test_shipped_tokenizer_collapses_whitespace_itself(pair_export, pair_student, code):
    """tokenizer.json alone (no Python preprocessing) gives the student's ids, whatever whitespace the code has."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    from lit_compressor.nn.tokenization import CodeEncoder

    output, _ = pair_export
    encoder = CodeEncoder(AutoTokenizer.from_pretrained(pair_student), 128)  # the student's own, as trained
    shipped = Tokenizer.from_file(str(output / "shipped" / "tokenizer.json"))
    spaces = [chr(c) for c in range(0x110000) if chr(c).isspace()]
    texts = [code[0], code[1].replace("\n", "\r\n\t "), " \x1c\u2028 " + code[2] + " \u3000\x85",
             "a\ufeffb  c", "x\u200by", "".join(spaces) + "f(" + "".join(spaces) + ")" + "".join(spaces)]
    for text in texts:
        assert shipped.encode(text).ids == encoder.encode(text), repr(text[:40])


def test_export_refuses_a_folder_with_another_model(tmp_path, pair_student, single_student):
    output = tmp_path / "out"
    export(single_student, output, onnx=False, int8=False)
    assert set(files_under(output / "shipped")) == {"README.md", "config.json", "tokenizer.json",
                                                      "tokenizer_config.json", "model.safetensors"}
    with pytest.raises(UserError, match="overwrite") as error:
        export(pair_student, output, onnx=False, int8=False)
    assert str(output) in error.value.message
    export(pair_student, output, onnx=False, int8=False, overwrite=True)
    assert json.loads((output / "shipped" / "config.json").read_text())["lit_compressor"]["num_inputs"] == 2
    with pytest.raises(UserError, match="student folder itself"):
        export(pair_student, pair_student, onnx=False, int8=False, overwrite=True)


def test_model_card_parses_and_says_what_the_export_measured(pair_export, tmp_path, single_student):
    from lit_compressor.runtime.card import megabytes, read_card

    output, report = pair_export
    meta, body = read_card(output / "shipped" / "README.md")
    assert meta["library_name"] == "lit-compressor" and meta["pipeline_tag"] == "text-classification"
    assert {"code", "int8", "onnx"} <= set(meta["tags"]) and "model-index" not in meta  # no run report given
    assert f"{report['parameters']:,}-parameter" in body
    assert f"is {report['accuracy']['model.int8.onnx']:.4f}" in body
    for name in ("model.int8.onnx", "weights.int8.bin"):
        assert f"`{name}` ({megabytes(report['shipped']['files'][name])})" in body
    single = export(single_student, tmp_path / "single", data=DEVIGN, samples=8)
    meta, body = read_card(tmp_path / "single" / "shipped" / "README.md")
    assert meta["library_name"] == "transformers.js" and 'pipeline("text-classification", folder)' in body
    model_bytes = single["shipped"]["bytes"] - single["shipped"]["files"]["README.md"]
    assert f"come to {model_bytes / 1e6:.2f} MB (this card aside)" in body


def test_check_examples_are_a_seeded_mix_of_labels_from_a_folder_or_a_task_yaml(tmp_path):
    examples = sample_test_split(BCB, 40)
    assert len(examples) == 40 and {e.label for e in examples} == {0, 1}  # test.txt is sorted by label
    task = tmp_path / "task.yaml"
    task.write_text(f"data:\n  task:\n    format: bigclonebench\n    data_dir: {BCB}\n")  # a fit config's block
    assert [e.id for e in sample_test_split(task, 40)] == [e.id for e in examples]
    assert [e.id for e in sample_test_split(BCB, 40, seed=1)] != [e.id for e in examples]


def test_own_jsonl_task_is_read_with_its_field_names(tmp_path, single_student):
    """A task YAML with its own field and file names: export reads its test split, not Devign's defaults."""
    rows = [json.loads(line) for line in (DEVIGN / "test.jsonl").read_text().splitlines()[:12]]
    (tmp_path / "eval.jsonl").write_text("".join(
        json.dumps({"id": f"f{r['idx']}", "code": r["func"], "vulnerable": r["target"]}) + "\n" for r in rows))
    task = tmp_path / "task.yaml"
    task.write_text(f"format: jsonl\ndata_dir: {tmp_path}\nfiles: {{test: eval.jsonl}}\ncode_fields: [code]\n"
                    "label_field: vulnerable\nid_field: id\n")
    report = export(single_student, tmp_path / "out", int8=False, data=str(task), samples=100)
    assert report["check_inputs"] == f"12 test examples from {task}"
    assert report["tokenizer_check"] == {"functions": 12, "differ": 0}
    assert report["accuracy"]["pytorch"] == report["accuracy"]["model.onnx"]
