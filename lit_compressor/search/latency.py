"""Measured CPU latency of candidates, from a small per-layer table (no benchmark per genome).

One encoder layer (``transformers`` RoBERTa layer, batch 1, fp32, eval mode) is timed once on this
machine over a grid of (hidden H, intermediate D, sequence S) points; the table is cached as JSON
(keyed by CPU, torch version and thread count) and reused. A genome's latency is
``num_inputs * L * layer_ms(H, D, S=block_size)`` with ``layer_ms`` interpolated multilinearly on
the grid (clamped at its edges); each point is the fastest of ``repeats`` runs. Embedding lookups
and the head are not timed: they are a small, size-independent share of a forward pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lit_compressor.search.space import Genome, SearchSpace

DEFAULT_CACHE = Path(os.environ.get("LIT_COMPRESSOR_CACHE", Path.home() / ".cache" / "lit_compressor"))


@dataclass(frozen=True)
class LatencyGrid:
    hidden: tuple[int, ...] = (16, 128, 384, 768)
    intermediate: tuple[int, ...] = (32, 768, 3072)
    seq: tuple[int, ...] = (128, 512)
    repeats: int = 7


@dataclass
class LatencyTable:
    """``ms[i][j][k]``: one layer's latency at ``hidden[i]``, ``intermediate[j]``, ``seq[k]``."""

    hidden: list[int]
    intermediate: list[int]
    seq: list[int]
    ms: list[list[list[float]]]
    machine: dict

    def layer_ms(self, hidden: int, intermediate: int, seq: int) -> float:
        axes = (self.hidden, self.intermediate, self.seq)
        point = (hidden, intermediate, seq)
        brackets = [_bracket(axis, value) for axis, value in zip(axes, point, strict=True)]
        total = 0.0
        for corner in range(8):
            weight, index = 1.0, []
            for dim, (low, high, frac) in enumerate(brackets):
                upper = (corner >> dim) & 1
                weight *= frac if upper else 1.0 - frac
                index.append(high if upper else low)
            if weight:
                total += weight * self.ms[index[0]][index[1]][index[2]]
        return total

    def latency_ms(self, genome: Genome, space: SearchSpace) -> float:
        layers, hidden, _, inter, _ = genome
        return space.num_inputs * layers * self.layer_ms(hidden, inter, space.block_size)


def _bracket(axis: list[int], value: float) -> tuple[int, int, float]:
    """Indices around ``value`` on a sorted axis and its fraction between them (clamped to [0, 1])."""
    if value <= axis[0] or len(axis) == 1:
        return 0, 0, 0.0
    if value >= axis[-1]:
        return len(axis) - 1, len(axis) - 1, 0.0
    high = next(i for i, v in enumerate(axis) if v >= value)
    low = high - 1
    return low, high, (value - axis[low]) / (axis[high] - axis[low])


def machine_key() -> dict:
    import torch

    return {"cpu": platform.processor() or platform.machine(), "node": platform.node(),
            "torch": torch.__version__, "threads": torch.get_num_threads()}


def _time_layer(hidden: int, intermediate: int, seq: int, repeats: int) -> float:
    import torch
    from transformers import RobertaConfig
    from transformers.models.roberta.modeling_roberta import RobertaLayer

    heads = max(a for a in (1, 2, 4, 8) if hidden % a == 0)
    config = RobertaConfig(hidden_size=hidden, intermediate_size=intermediate, num_attention_heads=heads)
    config._attn_implementation = "sdpa"  # what a built student uses
    layer = RobertaLayer(config).eval()
    x = torch.randn(1, seq, hidden)
    times = []
    with torch.inference_mode():
        for _ in range(2):
            layer(x)
        for _ in range(repeats):
            start = time.perf_counter()
            layer(x)
            times.append(time.perf_counter() - start)
    return min(times) * 1e3  # the least disturbed run: other processes only ever add time


def measure(grid: LatencyGrid = LatencyGrid()) -> LatencyTable:
    ms = [[[_time_layer(h, d, s, grid.repeats) for s in grid.seq] for d in grid.intermediate]
          for h in grid.hidden]
    return LatencyTable(list(grid.hidden), list(grid.intermediate), list(grid.seq), ms, machine_key())


def load_or_measure(cache_dir: Path = DEFAULT_CACHE, grid: LatencyGrid = LatencyGrid()) -> LatencyTable:
    """The cached table for this machine and grid, measuring it (a few seconds) the first time."""
    key = {**machine_key(), **asdict(grid)}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"latency_{digest}.json"
    if path.exists():
        return LatencyTable(**json.loads(path.read_text()))
    table = measure(grid)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(asdict(table)))
    os.replace(tmp, path)
    return table
