"""Every YAML config in configs/ parses with the command it is for (without running it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lit_compressor.commands.cli import run_function_command

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def command_of(path: Path, config: dict) -> str | None:
    if {"sweeps", "logging", "architectures"} & set(path.relative_to(CONFIGS).parts):
        return None  # W&B sweeps, logger fragments, fixed genes: tests/test_sweeps.py, tests/test_wandb.py, below
    if {"teacher", "teacher_folder", "student"} & set(config):
        return "compress"
    if "model" in config:
        return "fit"
    if path.parent.name == "search":
        return "search"
    return "compress"


COMMAND_CONFIGS = sorted(p for p in CONFIGS.rglob("*.yaml") if command_of(p, yaml.safe_load(p.read_text())))


@pytest.mark.parametrize("path", COMMAND_CONFIGS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_config_parses(path: Path, capsys):
    command = command_of(path, yaml.safe_load(path.read_text()))
    with pytest.raises(SystemExit) as done:
        if command == "fit":
            from lit_compressor.training.cli import run_lightning_cli

            run_lightning_cli(["fit", "--config", str(path), "--print_config"])
        else:
            run_function_command(command, ["--config", str(path), "--print_config"])
    assert done.value.code in (0, None), capsys.readouterr().err
    printed = yaml.safe_load(capsys.readouterr().out)
    assert isinstance(printed, dict) and printed
    if command == "fit":
        assert printed["model"]["class_path"].startswith("lit_compressor.")


@pytest.mark.parametrize("path", sorted(p for p in CONFIGS.rglob("compress*.yaml")) + [CONFIGS / "quickstart.yaml"],
                         ids=lambda p: str(p.relative_to(CONFIGS)))
def test_compress_configs_name_stage_configs_that_parse(path: Path, capsys, tmp_path):
    """The stage files a compress config names exist, and parse with their command once linked."""
    from lit_compressor.core.configs import resolve_stage
    from lit_compressor.training.cli import run_lightning_cli, with_settings

    config = yaml.safe_load(path.read_text())
    for stage in ("teacher", "student"):
        if config.get(stage) is None:
            continue
        merged = resolve_stage(config[stage], stage)
        assert merged["model"]["class_path"].startswith("lit_compressor.training."), stage
        merged = with_settings(merged, "data", {"task": config["task"]})
        file = tmp_path / f"{stage}.yaml"
        file.write_text(yaml.safe_dump(merged))
        with pytest.raises(SystemExit) as done:
            run_lightning_cli(["fit", "--config", str(file), "--print_config"])
        assert done.value.code in (0, None), capsys.readouterr().err
    if config.get("search"):
        assert resolve_stage(config["search"], "search")["space"]["num_hidden_layers"]


def test_shipped_architecture_fits_3mb_where_the_compress_configs_use_it():
    """The quick start's fixed student is within 3 MB for both tasks' heads and block sizes (the count the
    quick start's student was built with: 707,074)."""
    from lit_compressor.search.architecture import load_architecture
    from lit_compressor.search.cost import cost
    from lit_compressor.search.space import SearchSpace

    genes = load_architecture(CONFIGS / "architectures/shallow_wide_3mb.yaml")
    genome = (genes.num_hidden_layers, genes.hidden_size, genes.num_attention_heads, genes.intermediate_size,
              genes.vocab_size)
    pairs = cost(genome, SearchSpace(block_size=128, num_inputs=2, family="bert", pair_head="interaction"))
    single = cost(genome, SearchSpace(block_size=256, num_inputs=1, family="bert"))
    from lit_compressor.nn.student import build_student

    built = [sum(p.numel() for p in build_student(genes, n, "bert", block + 2, pair_head=head).parameters())
             for n, block, head in ((2, 128, "interaction"), (1, 256, "concat"))]
    assert [pairs.params, single.params] == built == [707_074, 674_306]
    assert max(pairs.size_mb, single.size_mb) <= 3.0


@pytest.mark.parametrize("option", [["--data.task.limit", "null"], ["--data.task.limit=none"],
                                    ["--data.init_args.task.limit", "None"]])
def test_a_null_task_field_on_the_command_line_clears_it_and_keeps_the_others(option: list[str], capsys):
    from lit_compressor.training.cli import run_lightning_cli

    path = CONFIGS / "bigclonebench" / "teacher.yaml"
    assert yaml.safe_load(path.read_text())["data"]["task"]["limit"]  # the config limits the splits
    with pytest.raises(SystemExit) as done:
        run_lightning_cli(["fit", "--config", str(path), "--data.task.seed", "7", *option, "--print_config"])
    assert done.value.code in (0, None), capsys.readouterr().err
    task = yaml.safe_load(capsys.readouterr().out)["data"]["init_args"]["task"]
    assert task["limit"] is None
    assert (task["seed"], task["data_dir"]) == (7, "../shared/data/bigclonebench")
