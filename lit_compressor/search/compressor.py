"""Compressor's own search, term by term: the cost formula of its ``flops.py`` and the operators of its
``searcher.py`` (soarsmu/Compressor), written anew for our genomes (L, H, A, D, V).

**Cost** (``cost_model: compressor``). ``searcher.py`` prices every candidate with
``TransformerHparams(h=H, l=L, s=514, v=V, i=D, heads=A)`` at 514 tokens, one sequence per example,
whatever the task's block size or inputs. Per token:

- each layer: ``8H² + 4HD + 4Hs`` (Q, K, V and output projections, FFN, scores and weighted values)
  ``+ 10sA`` (softmax 5, dropout 4 and scaling 1 per score and head: the term that makes heads cost)
  ``+ 9D + 20H + 5`` (GELU, biases, dropouts, residuals, LayerNorms; its attention LayerNorm counts a
  constant 5, not 5H);
- embeddings: ``2HV`` (the lookup counted as a one-hot matmul) ``+ 2H(s + 2) + 11H``;
- head: ``2H² + 15H`` — counted per token too.

FLOPs = ``s · (L · layer + embeddings + head)``. Parameters: ``VH + sH + 3H`` (token, 514 position,
token-type and LayerNorm counted as 3H) ``+ L(4H² + 9H + 2HD + D) + 2H² + 4H + 2`` (a pooler, a dense
layer and two logits). Size ``params · 4 / 1e6`` MB; fitness ``GFLOPs - |MB - target|``.

**Operators.** Mutation picks a locus and redraws every gene from it on, each uniformly among its other
values. Which genes follow the locus depends on the genome's key order in ``searcher.py``: a genome
drawn at initialisation keeps the search space's order (V, A, H, D, L); a crossover child is built in
sorted key order (A, H, D, L, V), and a mutated copy keeps its parent's order. One-point crossover cuts
the sorted order at 1..4. Each individual's ``tag`` records its order (0: space order, 1: sorted).
"""

from __future__ import annotations

import random

from lit_compressor.core.errors import UserError
from lit_compressor.search.cost import Cost
from lit_compressor.search.space import Genome, SearchSpace

SEQ_LEN = 514
"""``searcher.py``'s sequence length: CodeBERT's 512 tokens + 2 positions."""
SPACE_ORDER = (4, 2, 1, 3, 0)
"""Genome indices in ``searcher.py``'s search-space key order: vocab_size, attention_heads, hidden_dim,
intermediate_size, n_layers."""
SORTED_ORDER = (2, 1, 3, 0, 4)
"""The same keys sorted by name (``sorted(search_space)``): crossover's order."""
ORDERS = (SPACE_ORDER, SORTED_ORDER)


def compressor_params(genome: Genome) -> int:
    layers, hidden, _, inter, vocab = genome[:5]
    embeddings = vocab * hidden + SEQ_LEN * hidden + 3 * hidden
    layer = 4 * hidden * hidden + 9 * hidden + 2 * hidden * inter + inter
    head = 2 * hidden * hidden + 4 * hidden + 2
    return embeddings + layers * layer + head


def compressor_flops(genome: Genome) -> int:
    layers, hidden, heads, inter, vocab = genome[:5]
    s = SEQ_LEN
    layer = 8 * hidden * hidden + 4 * hidden * inter + 4 * hidden * s + 10 * s * heads + 9 * inter + 20 * hidden + 5
    embeddings = 2 * hidden * vocab + 2 * hidden * (s + 2) + 11 * hidden
    head = 2 * hidden * hidden + 15 * hidden
    return s * (layers * layer + embeddings + head)


def compressor_fitness(genome: Genome, target_mb: float) -> float:
    """``searcher.py``'s fitness: ``GFLOPs - |target - params| · 4 / 1e6``."""
    return compressor_flops(genome) / 1e9 - abs(target_mb * 1e6 / 4 - compressor_params(genome)) * 4 / 1e6


def compressor_cost(genome: Genome, space: SearchSpace | None = None) -> Cost:
    """Compressor's price of a genome (``int8_mb`` is not part of its model: None)."""
    params = compressor_params(genome)
    return Cost(params, params * 4 / 1e6, None, compressor_flops(genome))


def check_space(space: SearchSpace) -> None:
    """Compressor's formula and operators know the five model genes only."""
    if len(space.gene_names) > 5:
        raise UserError(f"cost_model: compressor searches the five model genes only, but the space also searches "
                        f"{', '.join(space.gene_names[5:])}.",
                        fix="Give a fixed block_size and no lr/dropout genes, or use cost_model: exact.")


def mutation(individual: list, space: SearchSpace, rng: random.Random) -> tuple[list]:
    """``Genome.mutation`` of ``searcher.py``: every gene from a random locus on (in the genome's own key
    order) gets another value, drawn uniformly."""
    order = ORDERS[getattr(individual, "tag", 0)]
    locus = int(rng.random() * len(order))  # uniform over 0..4, as random.randint(0, len - 1)
    for index in order[locus:]:
        space.resample(individual, index, rng)
    space.repair(individual)  # a no-op in Compressor's space: every H (multiple of 16) divides by 1, 2, 4, 8
    return (individual,)


def crossover(ind1: list, ind2: list, space: SearchSpace, rng: random.Random) -> tuple[list, list]:
    """``crossover_and_mutation``'s recombination: keys sorted, a cut at 1..4, the tails swapped."""
    cut = 1 + int(rng.random() * (len(SORTED_ORDER) - 1))  # uniform over 1..4, as random.randint(1, len - 1)
    for index in SORTED_ORDER[cut:]:
        ind1[index], ind2[index] = ind2[index], ind1[index]
    for child in (ind1, ind2):
        child.tag = 1
        space.repair(child)
    return ind1, ind2
