"""``TinyClassifier``: PyTorch and ONNX backends agree on real code; importing it stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SHARED_DATA

from lit_compressor.commands.export import export
from lit_compressor.core.errors import UserError
from lit_compressor.data.readers import read_functions, read_jsonl
from lit_compressor.nn.folders import save_classifier
from lit_compressor.nn.student import build_student
from lit_compressor.nn.tokenization import train_student_tokenizer
from lit_compressor.runtime.classifier import TinyClassifier
from lit_compressor.search.architecture import StudentArchitecture

BCB = SHARED_DATA / "bigclonebench"
DEVIGN = SHARED_DATA / "devign"


@pytest.fixture(scope="module")
def code() -> list[str]:
    return list(read_functions(BCB / "data.jsonl").values())[:300]


@pytest.fixture(scope="module", params=[1, 2], ids=["single", "pair"])
def exported(request, tmp_path_factory, code) -> Path:
    import torch

    torch.manual_seed(request.param)
    arch = StudentArchitecture(num_hidden_layers=2, hidden_size=64, num_attention_heads=2,
                               intermediate_size=128, vocab_size=500)
    root = tmp_path_factory.mktemp(f"inference{request.param}")
    save_classifier(build_student(arch, num_inputs=request.param, max_positions=130),
                    train_student_tokenizer(code, arch.vocab_size), root / "student", {"block_size": 128})
    export(root / "student", root / "exported", full=True)
    return root / "exported"


def test_pytorch_and_onnx_agree_on_real_code(exported, code):
    torch_model = TinyClassifier.from_pretrained(exported, backend="pytorch")
    onnx_model = TinyClassifier.from_pretrained(exported, backend="onnx", threads=1)
    if torch_model.num_inputs == 1:
        rows = [e.codes[0] for e in read_jsonl(DEVIGN / "test.jsonl")[:6]]
    else:
        rows = [(code[i], code[i + 1]) for i in range(0, 12, 2)]
    for a, b in zip(torch_model.predict_batch(rows), onnx_model.predict_batch(rows), strict=True):
        assert a.label == b.label
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-5)
        assert a.probability == max(a.probabilities) and sum(a.probabilities) == pytest.approx(1.0)
    single = torch_model.predict(*([rows[0]] if isinstance(rows[0], str) else rows[0]))
    assert single == torch_model.predict_batch(rows[:1])[0]
    int8 = TinyClassifier.from_pretrained(exported, backend="onnx-int8").predict_batch(rows)
    fp32 = torch_model.predict_batch(rows)
    assert len(int8) == len(rows)
    for quantized, exact in zip(int8, fp32, strict=True):  # int8 weights move a probability only a little
        assert quantized.probabilities == pytest.approx(exact.probabilities, abs=0.05)


def test_wrong_number_of_functions_is_a_user_error(exported, code):
    model = TinyClassifier.from_pretrained(exported, backend="pytorch")
    with pytest.raises(UserError, match="function"):
        model.predict(*code[: 3 - model.num_inputs])


def test_a_pair_passed_as_one_tuple_is_the_same_prediction(exported, code):
    model = TinyClassifier.from_pretrained(exported)
    if model.num_inputs == 1:
        assert model.predict((code[0],)) == model.predict(code[0])
        return
    assert model.predict((code[0], code[1])) == model.predict(code[0], code[1])
    with pytest.raises(UserError, match=r"Call predict\(code_a, code_b\)"):
        model.predict(code[0])


def test_a_truncated_onnx_file_is_a_user_error_that_names_it(tmp_path, exported):
    import shutil

    folder = tmp_path / "broken"
    shutil.copytree(exported / "full", folder)
    graph = folder / "model.int8.onnx"
    graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])
    with pytest.raises(UserError) as error:
        TinyClassifier.from_pretrained(folder, backend="onnx-int8")
    assert str(error.value).startswith(f"{graph}: ONNX Runtime cannot load this model file")
    assert "export the model again" in str(error.value)


def test_onnx_backend_on_a_folder_without_onnx_says_how_to_export(tmp_path, exported):
    folder = tmp_path / "plain"
    folder.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((exported / "full" / name).read_bytes())
    with pytest.raises(UserError, match="lit-compressor export"):
        TinyClassifier.from_pretrained(folder, backend="onnx")


def test_import_does_not_pull_in_training_libraries():
    script = ("import sys, lit_compressor; lit_compressor.TinyClassifier; "
              "bad = [m for m in ('lightning', 'pytorch_lightning', 'deap', 'wandb') if m in sys.modules]; "
              "assert not bad, bad")
    subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).parents[2])


def test_shipped_folder_runs_the_int8_graph_the_full_export_checked(exported, code):
    """The shipped folder (no weights, int8 only; a single-function student's graph in the transformers.js layout)
    loads by default as int8 and predicts exactly what the full export's model.int8.onnx predicts."""
    shipped = TinyClassifier.from_pretrained(exported / "shipped")
    assert shipped.backend == "onnx-int8"
    assert TinyClassifier.from_pretrained(exported).backend == "onnx-int8"  # the export folder: its shipped form
    if shipped.num_inputs == 1:
        assert shipped.runner.path.name == "model_quantized.onnx" and shipped.runner.per_function
        rows = [e.codes[0] for e in read_jsonl(DEVIGN / "test.jsonl")[:8]]
    else:
        assert shipped.runner.path.name == "model.int8.onnx"
        rows = [(code[i], code[i + 1]) for i in range(0, 16, 2)]
    full = TinyClassifier.from_pretrained(exported / "full", backend="onnx-int8")
    assert full.runner.path.name == "model.int8.onnx"
    for a, b in zip(shipped.predict_batch(rows, 1), full.predict_batch(rows, 1), strict=True):
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-6)


def test_export_without_full_forms_says_how_to_get_them(tmp_path, exported):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "shipped").symlink_to(exported / "shipped")
    with pytest.raises(UserError, match="--full true"):
        TinyClassifier.from_pretrained(folder, backend="pytorch")
