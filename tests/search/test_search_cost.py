"""The cost model prices exactly the module ``build_student`` builds."""

import random

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from lit_compressor.nn.student import build_student
from lit_compressor.search.cost import cost, size_bounds
from lit_compressor.search.space import SearchSpace

SEQ = 64


def _random_cases(count: int = 24):
    rng = random.Random(0)
    for i in range(count):
        heads = rng.choice([1, 2, 4, 8])
        hidden = heads * rng.randint(1, 6)
        genome = (rng.randint(1, 3), hidden, heads, 32 * rng.randint(1, 4), rng.randint(50, 400))
        yield genome, ("roberta", "bert")[i % 2], 1 + (i // 2) % 2, ("concat", "interaction")[(i // 4) % 2]


@pytest.mark.parametrize(("genome", "family", "num_inputs", "pair_head"), list(_random_cases()))
def test_params_exact_and_flops_match_flop_counter(genome, family, num_inputs, pair_head):
    space = SearchSpace(block_size=SEQ, num_inputs=num_inputs, family=family, pair_head=pair_head)
    model = build_student(space.architecture(genome), num_inputs, family, space.positions,
                          pair_head=pair_head).eval()
    c = cost(genome, space)
    assert c.params == sum(p.numel() for p in model.parameters())
    assert c.size_mb == pytest.approx(c.params * 4 / 1e6)

    model.encoder.set_attn_implementation("eager")  # CPU SDPA kernels are invisible to FlopCounterMode
    ids = torch.randint(3, genome[4], (1, num_inputs, SEQ))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(ids, torch.ones_like(ids))
    assert c.flops == pytest.approx(counter.get_total_flops(), rel=0.02)


def test_int8_size_counts_linear_weights_as_bytes():
    space = SearchSpace(block_size=SEQ, num_inputs=2)
    genome = (2, 32, 4, 64, 100)
    model = build_student(space.architecture(genome), 2, "roberta", space.positions)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    weight_bytes = sum(m.weight.numel() for m in linears)
    other = sum(p.numel() for p in model.parameters()) - weight_bytes
    assert cost(genome, space).int8_mb * 1e6 == weight_bytes + 4 * other + 8 * len(linears)


def test_paper_genome_cost():
    """The paper's 3 MB genome, counted by hand: H=96, 12 layers, D=64, V=1,000, 402 positions (block 400 + 2)."""
    h, layers, d, vocab, positions = 96, 12, 64, 1000, 402
    embeddings = (vocab + positions + 1) * h + 2 * h  # word, position, token-type tables and their LayerNorm
    layer = 4 * (h * h + h) + (h * d + d) + (d * h + h) + 2 * 2 * h  # Q, K, V, O; FFN in and out; two LayerNorms
    head = (2 * h * h + h) + (h * 2 + 2)  # Compressor's pair head: dense [2H -> H], out_proj [H -> 2]
    c = cost((12, 96, 8, 64, 1000), SearchSpace(num_inputs=2))
    assert c.params == embeddings + layers * layer + head == 754_562
    assert c.size_mb == pytest.approx(4 * c.params / 1e6)
    assert c.gflops == pytest.approx(2.418315648)


def test_size_bounds_of_paper_space():
    low, high = size_bounds(SearchSpace())
    assert low == pytest.approx(cost((1, 16, 1, 32, 1000), SearchSpace()).size_mb)
    assert high == pytest.approx(cost((12, 768, 8, 3072, 50000), SearchSpace()).size_mb)
    assert 0.05 < low < 0.2 and 400 < high < 600
