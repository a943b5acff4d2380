"""The packages install and run where a plug-in developer puts them (``-m packaging``; ``.ci/run`` runs them):

- ``python -m build`` gives a wheel that installs into a fresh virtual environment with the inference
  dependencies only (no Lightning, DEAP or W&B) and predicts with a shipped student as the source tree does;
- ``npm pack`` of ``js/`` gives a tarball that another Node project installs and predicts with.

Both predict with a pair student trained for real (``trained_students``), from its shipped folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import ROOT, SHARED_DATA

JS = ROOT / "js"
NODE, NPM = shutil.which("node"), shutil.which("npm")
TOLERANCE = 1e-6

pytestmark = [pytest.mark.packaging,
              pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="shared data not present")]


def run(args: list[str], cwd: Path, timeout: int = 900, env: dict | None = None) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})})
    assert result.returncode == 0, f"{' '.join(map(str, args))}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def shipped_pair() -> tuple[Path, list[list[str]], list[list[float]]]:
    """The trained pair student's shipped folder, 8 real test pairs and the source tree's probabilities."""
    from tiny_students import BCB
    from trained_students import trained_student

    from lit_compressor.runtime.classifier import TinyClassifier
    from lit_compressor.runtime.evaluate import sample_test_split

    shipped = trained_student("pair") / "shipped"
    pairs = [list(e.codes) for e in sample_test_split(BCB, 8)]
    expected = [list(p.probabilities) for p in TinyClassifier.from_pretrained(shipped).predict_batch(pairs, 1)]
    return shipped, pairs, expected


def test_wheel_installs_without_training_libraries_and_predicts(tmp_path, shipped_pair):
    shipped, pairs, expected = shipped_pair
    source = tmp_path / "source"  # a copy: setuptools writes build/ and *.egg-info next to the sources
    shutil.copytree(ROOT / "lit_compressor", source / "lit_compressor", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"), str(source)], cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("lit_compressor-*.whl"))
    run([sys.executable, "-m", "venv", str(tmp_path / "venv")], cwd=tmp_path)
    python = tmp_path / "venv" / "bin" / "python"
    run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], cwd=tmp_path)  # torch==2.13.0 from disk
    (tmp_path / "pairs.json").write_text(json.dumps(pairs))
    script = ("import importlib.util, json, sys; from lit_compressor import TinyClassifier; "
              f"model = TinyClassifier.from_pretrained({str(shipped)!r}); "
              "pairs = json.load(open('pairs.json')); "
              "print(json.dumps({'probabilities': [list(p.probabilities) for p in model.predict_batch(pairs, 1)], "
              "'backend': model.backend, 'module': __import__('lit_compressor').__file__, "
              "'absent': [m for m in ('lightning', 'deap', 'wandb', 'jsonargparse', 'torchmetrics') "
              "if importlib.util.find_spec(m) is None]}))")
    got = json.loads(run([str(python), "-c", script], cwd=tmp_path).strip().splitlines()[-1])
    assert got["module"].startswith(str(tmp_path / "venv"))  # the installed wheel, not the source tree
    assert got["absent"] == ["lightning", "deap", "wandb", "jsonargparse", "torchmetrics"]
    assert got["backend"] == "onnx-int8"
    for a, b in zip(got["probabilities"], expected, strict=True):
        assert a == pytest.approx(b, abs=TOLERANCE)
    cli = subprocess.run([str(tmp_path / "venv" / "bin" / "lit-compressor"), "export", "--help"], capture_output=True,
                         text=True, timeout=60)
    assert cli.returncode == 2 and "pip install 'lit-compressor[training]'" in cli.stderr  # one clear line


@pytest.mark.skipif(NODE is None or NPM is None, reason="node and npm are not installed")
def test_npm_tarball_installs_into_another_project_and_predicts(tmp_path, shipped_pair):
    shipped, pairs, expected = shipped_pair
    tarball = tmp_path / run([NPM, "pack", "--pack-destination", str(tmp_path)], cwd=JS).strip().splitlines()[-1]
    with tarfile.open(tarball) as archive:
        names = sorted(archive.getnames())
    assert "package/package.json" in names and "package/src/index.js" in names and "package/README.md" in names
    assert not [n for n in names if n.startswith(("package/test/", "package/vscode-sample/", "package/node_modules/"))]
    project = tmp_path / "plugin"
    project.mkdir()
    (project / "package.json").write_text(json.dumps({"name": "a-plugin", "version": "1.0.0", "type": "module"}))
    run([NPM, "install", "--no-audit", "--no-fund", "--prefer-offline", str(tarball)], cwd=project,
        env={"ONNXRUNTIME_NODE_INSTALL_CUDA": "skip"})
    (project / "pairs.json").write_text(json.dumps(pairs))
    (project / "predict.mjs").write_text(
        'import { readFileSync } from "node:fs";\n'
        'import { TinyClassifier } from "lit-compressor-runtime";\n'
        f"const model = await TinyClassifier.fromPretrained({json.dumps(str(shipped))});\n"
        'const pairs = JSON.parse(readFileSync("pairs.json", "utf8"));\n'
        "const out = [];\n"
        "for (const [a, b] of pairs) out.push((await model.predict(a, b)).probabilities);\n"
        "console.log(JSON.stringify(out));\n")
    got = json.loads(run([NODE, "predict.mjs"], cwd=project).strip().splitlines()[-1])
    installed = json.loads((project / "node_modules" / "lit-compressor-runtime" / "package.json").read_text())
    assert installed["version"] == json.loads((JS / "package.json").read_text())["version"]
    for a, b in zip(got, expected, strict=True):
        assert a == pytest.approx(b, abs=1e-4)  # Node's ONNX Runtime: the parity tests' tolerance
