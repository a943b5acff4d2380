"""transformers.js (``@huggingface/transformers``) loads a shipped single-function student offline with
``pipeline("text-classification", folder)`` and gives Python's labels, probabilities within 1e-3, on 200 real
Devign functions: the shipped folder (int8, the dtype its config names) and the full export (fp32)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from conftest import ROOT, SHARED_DATA

JS = ROOT / "js"
NODE = shutil.which("node")
TOLERANCE = 1e-3

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed"),
    pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="shared data not present"),
    pytest.mark.skipif(not (JS / "node_modules" / "@huggingface" / "transformers").is_dir(),
                       reason="js/node_modules missing: run `npm ci` in js/"),
]


def case(folder, codes: list[str], backend: str, dtype: str | None) -> dict:
    from lit_compressor.runtime.classifier import TinyClassifier

    model = TinyClassifier.from_pretrained(folder, backend=backend)
    config = json.loads((folder / "config.json").read_text())
    labels = [config.get("id2label", {}).get(str(i), f"LABEL_{i}") for i in range(config.get("num_labels", 2))]
    return {"folder": str(folder), "dtype": dtype, "codes": codes, "labels": labels, "backend": backend,
            "file": model.runner.path.name if hasattr(model.runner, "path") else "model.safetensors",
            "probabilities": [list(p.probabilities) for p in model.predict_batch(codes, 1)],
            "batch8": [list(p.probabilities) for p in model.predict_batch(codes, 8)]}


def test_transformers_js_pipeline_gives_pythons_labels_and_probabilities(tmp_path):
    from trained_students import trained_student

    from lit_compressor.data.readers import read_jsonl

    export = trained_student("single")
    codes = [e.codes[0] for e in read_jsonl(SHARED_DATA / "devign" / "test.jsonl")[:200]]
    reference = {"cases": [case(export / "shipped", codes, "onnx-int8", None),  # q8: onnx/model_quantized.onnx
                           case(export / "full", codes, "pytorch", "fp32")]}  # fp32: onnx/model.onnx
    assert reference["cases"][0]["file"] == "model_quantized.onnx"
    (tmp_path / "reference.json").write_text(json.dumps(reference))
    env = {**os.environ, "LIT_COMPRESSOR_TRANSFORMERS_JS": str(tmp_path / "reference.json"),
           "LIT_COMPRESSOR_PARITY_OUT": str(tmp_path)}
    result = subprocess.run([NODE, "--test", "test/transformers.test.js"], cwd=JS, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    runs = json.loads((tmp_path / "summary-transformers.json").read_text())["runs"]
    print(json.dumps(runs, indent=1))
    assert [run["folder"] for run in runs] == ["shipped", "full"]
    for run in runs:
        assert run["inputs"] == 200 and run["label_mismatches"] == 0
        assert run["max_probability_diff"] <= TOLERANCE and run["max_probability_diff_batch8"] <= TOLERANCE
        assert 0 < run["positive_labels"] < run["inputs"]  # both labels occur: the comparison means something
