"""Compressor-exact mode: its cost formula (flops.py), its operators (searcher.py), and the configs using them."""

import json
import random

import pytest
import yaml

from lit_compressor.commands.cli import run_function_command
from lit_compressor.commands.search import run_search
from lit_compressor.core.errors import UserError
from lit_compressor.search import compressor
from lit_compressor.search.ga import define_type
from lit_compressor.search.space import Gene, SearchSpace

PAPER_3MB = (12, 96, 8, 64, 1000)
COMPRESSOR_SPACE = SearchSpace(intermediate_size=Gene(32, 3040, 32), num_inputs=2)


def _fitness(genome, target=3.0):
    c = compressor.compressor_cost(genome)
    return c.gflops - abs(c.size_mb - target)


def test_formula_matches_the_reference_values_of_flops_py():
    # computed with Compressor's flops.py: TransformerHparams(96, 12, 514, 1000, 64, heads)
    c = compressor.compressor_cost(PAPER_3MB)
    assert c.params == 765_410
    assert c.size_mb == pytest.approx(3.06164)
    assert c.flops == 2_253_176_568
    assert _fitness(PAPER_3MB) == pytest.approx(2.191536568)
    assert compressor.compressor_cost((12, 96, 2, 64, 1000)).flops == 2_062_955_448  # heads cost: 10·s·A per token
    # CodeBERT itself (flops.py's default TransformerHparams(): 768, 12, 514, 50265, 3072, 12 heads)
    codebert = (12, 768, 12, 3072, 50265)
    assert compressor.compressor_params(codebert) == 125_237_762
    assert compressor.compressor_flops(codebert) == 138_406_299_384


def test_paper_genome_beats_its_neighbours_under_the_formula():
    """The paper's 3 MB genome is the best of every genome one step away in any gene."""
    space = COMPRESSOR_SPACE
    best = _fitness(PAPER_3MB)
    for index, values in enumerate(space.values):
        position = values.index(PAPER_3MB[index])
        for neighbour in values[max(0, position - 2): position + 3]:
            genome = list(PAPER_3MB)
            genome[index] = neighbour
            assert _fitness(tuple(genome)) <= best + 1e-12


def test_mutation_redraws_a_suffix_of_the_genomes_own_key_order():
    individual = define_type("CompressorOrderTest", (1.0,))
    rng = random.Random(0)
    for tag, order in enumerate(compressor.ORDERS):
        for _ in range(300):
            genome = individual(COMPRESSOR_SPACE.random_genome(rng))
            genome.tag = tag
            before = list(genome)
            compressor.mutation(genome, COMPRESSOR_SPACE, rng)
            changed = [i for i in range(5) if genome[i] != before[i]]
            assert changed and sorted(changed) == sorted(order[len(order) - len(changed):])
            assert genome.tag == tag


def test_crossover_swaps_a_sorted_key_suffix_and_marks_children_sorted():
    individual = define_type("CompressorOrderTest", (1.0,))
    rng = random.Random(1)
    for _ in range(200):
        a, b = individual(COMPRESSOR_SPACE.random_genome(rng)), individual(COMPRESSOR_SPACE.random_genome(rng))
        before_a, before_b = list(a), list(b)
        compressor.crossover(a, b, COMPRESSOR_SPACE, rng)
        swapped = [i for i in range(5) if a[i] == before_b[i] and b[i] == before_a[i] and before_a[i] != before_b[i]]
        kept = [i for i in range(5) if a[i] == before_a[i] and b[i] == before_b[i] and before_a[i] != before_b[i]]
        assert len(swapped) + len(kept) == sum(x != y for x, y in zip(before_a, before_b, strict=True))
        order = compressor.SORTED_ORDER
        suffix = set(order[min(order.index(i) for i in swapped):]) if swapped else set()
        assert set(swapped) <= suffix and not set(kept) & suffix
        assert a.tag == b.tag == 1


def test_config_picks_the_paper_genome_with_compressors_fitness(tmp_path, capsys):
    run_function_command("search", ["--config", "configs/search/compressor_3mb.yaml", "--output", str(tmp_path / "a"),
                                    "--plot", "false"])
    report = json.loads((tmp_path / "a/report.json").read_text())
    best = report["best"]
    assert tuple(best[k] for k in ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size",
                                   "vocab_size")) == PAPER_3MB
    assert best["params"] == 765_410 and best["fitness"] == pytest.approx(2.1916, abs=5e-4)
    assert best["built"]["params"] == 754_562  # the pair student we build: no pooler, a [2H -> H] head, 402 positions
    assert report["settings"]["restarts"] == 10 and report["settings"]["operators"] == "compressor"
    architecture = yaml.safe_load((tmp_path / "a/architecture.yaml").read_text())
    assert architecture["priced_for"]["params"] == 754_562
    run_function_command("search", ["--config", "configs/search/compressor_3mb.yaml", "--output", str(tmp_path / "b"),
                                    "--plot", "false"])
    assert (tmp_path / "a/architecture.yaml").read_bytes() == (tmp_path / "b/architecture.yaml").read_bytes()
    assert "fitness 2.1915" in capsys.readouterr().out


def test_resumed_compressor_search_keeps_each_genomes_key_order(tmp_path):
    kwargs = dict(target_mb=3.0, restarts=1, seed=4, plot=False, cost_model="compressor", operators="compressor")
    run_search(COMPRESSOR_SPACE, generations=7, output=tmp_path / "resumed", **kwargs)
    saved = json.loads((tmp_path / "resumed/checkpoint.json").read_text())
    assert set(saved["finished"] and saved["tags"] or [0]) <= {0, 1}
    resumed = run_search(COMPRESSOR_SPACE, generations=25, output=tmp_path / "resumed", **kwargs)
    straight = run_search(COMPRESSOR_SPACE, generations=25, output=tmp_path / "straight", **kwargs)
    assert resumed.report["history"] == straight.report["history"]
    assert resumed.report["population"] == straight.report["population"]


def test_compressor_cost_model_refuses_extra_genes(tmp_path):
    space = SearchSpace(block_size=Gene(choices=[128, 256]))
    with pytest.raises(UserError, match="five model genes"):
        run_search(space, 3.0, cost_model="compressor", output=tmp_path)
