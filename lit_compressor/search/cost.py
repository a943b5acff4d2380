"""Exact cost of a candidate, from its numbers alone, for the module ``build_student`` builds.

The module is a ``RobertaModel``/``BertModel`` without pooler (``type_vocab_size=1``) and the
:class:`ClassificationHead` ``dense(nH -> H) -> tanh -> out_proj(H -> num_labels)``, n = num_inputs
(4 for a pair with the ``interaction`` head).

- **params**: exactly ``sum(p.numel() for p in model.parameters())`` (checked in tests).
- **size_mb**: fp32 weights, ``params * 4 / 1e6``: MB = 10^6 bytes, as Compressor's ``searcher.py``
  (``abs(target - params) * 4 / 1e6``).
- **int8_mb**: dynamic quantization of every ``nn.Linear`` (``torch.ao.quantization.quantize_dynamic``):
  each linear weight 1 byte, its bias fp32 (4 bytes), plus 8 bytes per linear for its per-tensor
  scale (fp32) and zero point (int32); everything else (embeddings, LayerNorms) stays fp32.
- **flops**: inference FLOPs of one example (n sequences of ``block_size`` tokens), counting
  ``2*m*n*k`` per matmul as ``torch.utils.flop_counter.FlopCounterMode`` does: the linear layers, the
  attention's ``QK^T`` and ``AV``; lookups, LayerNorm, softmax and activations count 0. Per layer and
  sequence of S tokens: ``8*S*H^2`` (Q, K, V, output) + ``4*S^2*H`` (QK^T, AV) + ``4*S*H*D`` (FFN).
  The head reads one vector per example: ``2*nH*H + 2*H*num_labels``. A data-flow student
  (``inputs: dataflow``, GraphCodeBERT's inputs) also embeds each node as the mean of its code
  sub-words', one ``[S, S] x [S, H]`` product per sequence: ``2*S^2*H``. GFLOPs = FLOPs / 1e9.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from lit_compressor.search.architecture import head_inputs
from lit_compressor.search.space import Genome, SearchSpace

FP32_BYTES = 4
QPARAM_BYTES = 8  # per quantized linear: fp32 scale + int32 zero point
MB = 1e6


@dataclass(frozen=True)
class Cost:
    params: int
    size_mb: float
    int8_mb: float | None
    flops: int

    @property
    def gflops(self) -> float:
        return self.flops / 1e9

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "gflops": self.gflops}


def linear_params(genome: Genome, space: SearchSpace) -> tuple[int, int, int]:
    """(weights, biases, count) of all ``nn.Linear`` modules of the student."""
    layers, hidden, _, inter, _ = genome[:5]
    n, labels = head_inputs(space.num_inputs, space.pair_head), space.num_labels
    weights = layers * (4 * hidden * hidden + 2 * hidden * inter) + n * hidden * hidden + hidden * labels
    biases = layers * (4 * hidden + inter + hidden) + hidden + labels
    return weights, biases, 6 * layers + 2


def count_params(genome: Genome, space: SearchSpace) -> int:
    layers, hidden, _, _, vocab = genome[:5]
    # word, position and one token-type embedding, and a LayerNorm
    embeddings = (vocab + space.positions_of(genome) + 1) * hidden + 2 * hidden
    weights, biases, _ = linear_params(genome, space)
    layer_norms = layers * 2 * 2 * hidden
    return embeddings + weights + biases + layer_norms


def count_flops(genome: Genome, space: SearchSpace, seq_len: int | None = None) -> int:
    layers, hidden, _, inter, _ = genome[:5]
    s = space.block_of(genome) if seq_len is None else seq_len
    per_layer = 8 * s * hidden * hidden + 4 * s * s * hidden + 4 * s * hidden * inter
    node_means = 2 * s * s * hidden if space.inputs == "dataflow" else 0
    n, head = space.num_inputs, head_inputs(space.num_inputs, space.pair_head)
    return n * (layers * per_layer + node_means) + 2 * head * hidden * hidden + 2 * hidden * space.num_labels


def cost(genome: Genome, space: SearchSpace, seq_len: int | None = None) -> Cost:
    params = count_params(genome, space)
    weights, biases, count = linear_params(genome, space)
    int8_bytes = weights + FP32_BYTES * (params - weights) + QPARAM_BYTES * count
    return Cost(params, params * FP32_BYTES / MB, int8_bytes / MB, count_flops(genome, space, seq_len))


def size_of(c: Cost, kind: str) -> float:
    """The size a search targets: ``"fp32"`` (Compressor) or ``"int8"``."""
    return c.size_mb if kind == "fp32" else c.int8_mb


def size_bounds(space: SearchSpace, kind: str = "fp32") -> tuple[float, float]:
    """Smallest and largest size (MB) of any valid genome: size grows with every gene."""
    layers, hidden, heads, inter, vocab = space.values[:5]
    valid = [(h, a) for h in hidden for a in heads if h % a == 0]
    (h_lo, a_lo), (h_hi, a_hi) = valid[0], valid[-1]
    extras_lo = tuple(values[0] for values in space.values[5:])  # the block size is the first extra
    extras_hi = tuple(values[-1] for values in space.values[5:])
    low = cost((layers[0], h_lo, a_lo, inter[0], vocab[0], *extras_lo), space)
    high = cost((layers[-1], h_hi, a_hi, inter[-1], vocab[-1], *extras_hi), space)
    return size_of(low, kind), size_of(high, kind)
