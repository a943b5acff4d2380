"""W&B sweep definitions: every command line a ``wandb agent`` would run parses, with the swept values."""

from __future__ import annotations

import math

import pytest
import yaml
from conftest import ROOT

SWEEPS = sorted((ROOT / "configs" / "sweeps").glob("*.yaml"))


def candidate_values(spec: dict) -> list:
    """Values a sweep can pick for one parameter: every listed value, else both ends and the middle."""
    if "values" in spec:
        return list(spec["values"])
    if "value" in spec:
        return [spec["value"]]
    low, high = spec["min"], spec["max"]
    middle = math.sqrt(low * high) if "log" in spec.get("distribution", "") else (low + high) / 2
    if isinstance(low, int) and isinstance(high, int):
        middle = int(middle)
    return [low, middle, high]


def sample_runs(parameters: dict) -> list[dict]:
    """Enough parameter sets to use every candidate value of every parameter at least once."""
    choices = {name: candidate_values(spec) for name, spec in parameters.items()}
    count = max(len(values) for values in choices.values())
    return [{name: values[i % len(values)] for name, values in choices.items()} for i in range(count)]


def agent_command(sweep: dict, run: dict) -> list[str]:
    """The command line ``wandb agent`` runs for ``run``, built with wandb's own helpers."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command, create_sweep_command_args

    macros = create_sweep_command_args({"args": {k: {"value": v} for k, v in run.items()}})
    macros.update(env=["/usr/bin/env"], interpreter=["python"])
    command = []
    for chunk in create_sweep_command(list(sweep["command"])):
        command += macros[chunk[2:-1]] if chunk.startswith("${") else [chunk]
    return command


def nested(config: dict, dotted: str):
    for key in dotted.split("."):
        config = config[key]
    return config


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_sweep_is_a_wandb_sweep_definition(path):
    sweep = yaml.safe_load(path.read_text())
    assert sweep["method"] in ("grid", "random", "bayes")
    assert sweep["metric"]["goal"] in ("maximize", "minimize") and sweep["metric"]["name"].startswith("val/")
    assert sweep["parameters"] and "${args}" in sweep["command"]
    if sweep["method"] == "grid":  # grid sweeps need finite values
        assert all("values" in spec or "value" in spec for spec in sweep["parameters"].values())
    combinations = math.prod(len(candidate_values(s)) for s in sweep["parameters"].values())
    assert combinations > 1


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_every_agent_command_line_parses(path, monkeypatch, capsys):
    from lit_compressor.training.cli import run_lightning_cli

    monkeypatch.chdir(ROOT)  # the agent runs from the repo root; config paths are relative to it
    sweep = yaml.safe_load(path.read_text())
    runs = sample_runs(sweep["parameters"])
    for run in runs:
        command = agent_command(sweep, run)
        assert command[:5] == ["/usr/bin/env", "python", "-m", "lit_compressor", "fit"]
        assert all(f"--{k}={v}" in command for k, v in run.items())
        with pytest.raises(SystemExit) as exit_:
            run_lightning_cli([*command[4:], "--print_config"])
        assert exit_.value.code in (0, None)
        config = yaml.safe_load(capsys.readouterr().out)
        assert config["trainer"]["logger"]["class_path"].endswith("WandbLogger")
        assert config["model"]["init_args"]["output_dir"].endswith("{run_id}")
        for name, value in run.items():
            parsed = nested(config, name)
            if isinstance(value, str) and value.endswith(".yaml"):  # an architecture file
                assert parsed == yaml.safe_load((ROOT / value).read_text())
            else:
                assert parsed == pytest.approx(value), name


def test_sample_runs_cover_every_value():
    runs = sample_runs({"a": {"values": [1, 2, 3]}, "b": {"min": 1e-4, "max": 1e-2,
                                                         "distribution": "log_uniform_values"}})
    assert [r["a"] for r in runs] == [1, 2, 3]
    assert [r["b"] for r in runs] == pytest.approx([1e-4, 1e-3, 1e-2])
