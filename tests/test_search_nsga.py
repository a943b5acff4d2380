"""NSGA-II over size, FLOPs and latency; the latency table."""

import json

import pytest

from lit_compressor.errors import UserError
from lit_compressor.search.command import run_search
from lit_compressor.search.latency import LatencyGrid, LatencyTable, load_or_measure
from lit_compressor.search.space import SearchSpace


def _table() -> LatencyTable:
    """A synthetic table: ms = H * D / 1e4 + S / 100 (linear, so interpolation is exact)."""
    hidden, inter, seq = [16, 768], [32, 3072], [128, 512]
    ms = [[[h * d / 1e4 + s / 100 for s in seq] for d in inter] for h in hidden]
    return LatencyTable(hidden, inter, seq, ms, {"cpu": "synthetic"})


def test_interpolation_is_exact_on_a_bilinear_table():
    table = _table()
    assert table.layer_ms(768, 3072, 512) == pytest.approx(768 * 3072 / 1e4 + 5.12)
    assert table.layer_ms(400, 1000, 400) == pytest.approx(
        0.25 * 16 * 32 / 1e4 + 4.0 + (400 * 1000 - 16 * 32) / 1e4, rel=0.05)
    assert table.layer_ms(8, 16, 64) == table.layer_ms(16, 32, 128)  # clamped at the edges
    genome = (3, 96, 8, 64, 1000)
    expected = 2 * 3 * table.layer_ms(96, 64, 400)
    assert table.latency_ms(genome, SearchSpace(num_inputs=2)) == pytest.approx(expected)


def test_nsga2_front_is_non_dominated_and_pick_respects_budgets(tmp_path):
    result = run_search(SearchSpace(), mode="nsga2", generations=20, restarts=1, size_kind="int8",
                        max_size_mb=3.0, max_latency_ms=20.0, latency_table=_table(), output=tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    front = report["pareto_front"]
    points = [(p["int8_mb"], -p["gflops"], p["latency_ms"]) for p in front]
    for a in points:
        assert not any(all(x <= y for x, y in zip(b, a, strict=True)) and b != a for b in points)
    best = report["best"]
    assert best["int8_mb"] <= 3.0 and best["latency_ms"] <= 20.0
    inside = [p for p in front if p["int8_mb"] <= 3.0 and p["latency_ms"] <= 20.0]
    assert best["gflops"] == max(p["gflops"] for p in inside)
    assert result.architecture.num_hidden_layers == best["num_hidden_layers"]
    assert (tmp_path / "search.png").stat().st_size > 1000
    assert len(report["history"]) == 21


def test_impossible_budgets_are_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no genome on the Pareto front"):
        run_search(SearchSpace(), mode="nsga2", generations=3, restarts=1, max_latency_ms=1e-6,
                   latency_table=_table(), output=tmp_path, plot=False)


def test_latency_table_is_measured_once_and_cached(tmp_path):
    grid = LatencyGrid(hidden=(16, 64), intermediate=(32,), seq=(16,), repeats=2)
    table = load_or_measure(tmp_path, grid)
    assert len(table.ms) == 2 and all(ms > 0 for row in table.ms for col in row for ms in col)
    (cached,) = tmp_path.glob("latency_*.json")
    assert load_or_measure(tmp_path, grid).ms == table.ms
    assert json.loads(cached.read_text())["hidden"] == [16, 64]
