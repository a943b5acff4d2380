"""Latency of a candidate on the runtime that ships, from a model fitted to real timings.

Timings (taken by :mod:`lit_compressor.measure.timing`, batch 1, the configured threads) are of whole
predictions as an IDE makes them: real test inputs of the task, tokenised by a BPE tokenizer of the
genome's vocabulary, truncated to its block size, run by the shipped runtime (``onnx-int8``: the
fused ONNX graph quantised to int8 in ONNX Runtime; ``onnx``: the fused fp32 graph; ``pytorch``: eager).

The model: the time of one input whose functions have at most ``S`` tokens (a pair is padded to its
longer function, so both rows have ``S``) on a genome with ``n`` inputs is

    t = c0 + c1·nL + c2·nLS + c3·nLSH + c4·nLSH² + c5·nLSHD + c6·nLS²H + c7·nSH + c8·nLSD + c9·nLAS²

(per-call overhead with tokenisation; per-layer overhead; per-token work; layer norms and residuals; the
matrix products of each layer; the attention products; the embeddings; the feed-forward activation;
the softmax over each head's scores), with non-negative coefficients fitted by least squares on
relative error over every (genome, input) timing. (Without the last two terms the model missed five
random genomes by 17 % on average, up to 31 %; with them by 6 %, up to 10 %, on this machine.)
A genome's latency is the median over the inputs of ``t``: its p50. Token counts of an input for a
vocabulary size V are interpolated (in log V) between the counts of the tokenizers that were actually
trained, then truncated to the block size.

Light on purpose: arithmetic only, so the search imports it freely; fitting needs numpy.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import asdict, dataclass, field

from lit_compressor.search.space import Genome, SearchSpace

RUNTIMES = ("onnx-int8", "onnx", "pytorch")
FEATURES = ("call", "layer", "layer_token", "SH", "SH2", "SHD", "S2H", "embed", "SD", "AS2")


def features(genome: Genome, space: SearchSpace, seq: int) -> tuple[float, ...]:
    """The model's terms for one input whose longest function has ``seq`` tokens."""
    layers, hidden, heads, inter, _ = genome[:5]
    n = space.num_inputs
    nl = n * layers
    return (1.0, nl, nl * seq, nl * seq * hidden, nl * seq * hidden * hidden, nl * seq * hidden * inter,
            nl * seq * seq * hidden, n * seq * hidden, nl * seq * inter, nl * heads * seq * seq)


@dataclass
class Timing:
    """Measured times (ms) of one genome on each input, with the token counts it ran on."""

    genome: list
    ms: list[float]
    tokens: list[int]
    """Per input: the longest function's token count after truncation (what the runtime ran)."""


@dataclass
class LatencyModel:
    """Fitted coefficients, and each input's token counts under the tokenizers that were trained."""

    coefficients: list[float]
    vocab_sizes: list[int]
    """Vocabulary sizes of the trained tokenizers, ascending."""
    token_counts: list[list[list[int]]]
    """``token_counts[k][i]``: untruncated token counts of input ``i``'s functions at ``vocab_sizes[k]``."""
    runtime: str
    machine: dict
    timings: list[Timing] = field(default_factory=list)
    """The timings the model was fitted to."""

    def tokens(self, vocab: int, block: int) -> list[int]:
        """Each input's longest function, in tokens, at vocabulary ``vocab`` truncated to ``block``."""
        sizes = self.vocab_sizes
        k = bisect.bisect_left(sizes, vocab)
        if k == 0 or k == len(sizes):
            k = min(k, len(sizes) - 1)
            rows = [max(counts) for counts in self.token_counts[k]]
        else:
            frac = (math.log(vocab) - math.log(sizes[k - 1])) / (math.log(sizes[k]) - math.log(sizes[k - 1]))
            rows = [max((1 - frac) * lo + frac * hi for lo, hi in zip(a, b, strict=True))
                    for a, b in zip(self.token_counts[k - 1], self.token_counts[k], strict=True)]
        return [min(block, round(count)) for count in rows]

    def input_ms(self, genome: Genome, space: SearchSpace, seq: int) -> float:
        return sum(c * f for c, f in zip(self.coefficients, features(genome, space, seq), strict=True))

    def latency_ms(self, genome: Genome, space: SearchSpace) -> float:
        """Predicted p50 latency (ms) of one prediction: the median over the inputs."""
        times = sorted(self.input_ms(genome, space, s) for s in self.tokens(genome[4], space.block_of(genome)))
        return median(times)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LatencyModel:
        timings = [Timing(**t) for t in data.get("timings", [])]
        return cls(**{**data, "timings": timings})


def median(values: list[float]) -> float:
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def fit(timings: list[Timing], space: SearchSpace) -> list[float]:
    """Non-negative coefficients minimising the relative squared error of every (genome, input) time."""
    import numpy as np

    rows, targets = [], []
    for timing in timings:
        for ms, seq in zip(timing.ms, timing.tokens, strict=True):
            rows.append(np.array(features(tuple(timing.genome), space, seq)) / ms)
            targets.append(1.0)
    a, b = np.array(rows), np.array(targets)
    scale = np.abs(a).max(axis=0)
    scale[scale == 0] = 1.0
    return [float(c) for c in nnls(a / scale, b) / scale]


def nnls(a, b, tolerance: float = 1e-10, max_iter: int = 200):
    """Non-negative least squares ``min ||Ax - b||, x >= 0`` (Lawson and Hanson's active-set method)."""
    import numpy as np

    n = a.shape[1]
    x, passive = np.zeros(n), np.zeros(n, dtype=bool)
    gradient = a.T @ (b - a @ x)
    for _ in range(max_iter):
        if passive.all() or gradient[~passive].max(initial=-np.inf) <= tolerance:
            break
        passive[np.argmax(np.where(passive, -np.inf, gradient))] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (z[passive] > tolerance).all():
                x = z
                break
            blocked = passive & (z <= tolerance)
            alpha = np.min(x[blocked] / (x[blocked] - z[blocked]))
            x = x + alpha * (z - x)
            passive &= x > tolerance
        gradient = a.T @ (b - a @ x)
    return x
