"""The paper-reproduction script's table and plot, fed fake result rows (formatting only, no training)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "reproduce_paper.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("reproduce_paper", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def fake_rows(script) -> list:
    genes = {"num_hidden_layers": 12, "hidden_size": 96, "num_attention_heads": 8, "intermediate_size": 64,
             "vocab_size": 1000}
    rows = []
    for task, teacher in (("bigclonebench", 0.96), ("devign", 0.62)):
        for target, accuracy, p50 in ((3.0, 0.90, 4.0), (25.0, 0.93, 9.0), (50.0, 0.94, None)):
            rows.append(script.ResultRow(task, target, target * 0.98, int(target * 250_000), accuracy * teacher,
                                         0.8, teacher, 481.0, p50, 40.0, genes))
    return rows


def test_table_has_a_row_per_task_and_target(script) -> None:
    rows = fake_rows(script)
    table = script.results_table(rows).splitlines()
    assert len(table) == 2 + len(rows)
    assert all(line.count("|") == 12 for line in table)
    first = table[2]
    assert first.startswith("| bigclonebench | 3 | 2.94 | 750,000 | 12-96-8-64-1000 | 0.8640 |")
    assert "| 90.0% | 4.0 | 10.0x |" in first  # accuracy kept, p50, teacher p50 / student p50
    assert table[4].endswith("| 94.0% | n/a | n/a |")  # no latency measured: no speed-up


def test_write_results_writes_markdown_json_and_plot(script, tmp_path: Path) -> None:
    rows = fake_rows(script)
    markdown = script.write_results(rows, tmp_path, {"scale": "tiny", "seed": 42})
    assert (tmp_path / "results.md").read_text() == markdown
    assert "- scale: tiny" in markdown and "- devign: 481.0 MB, p50 40.0 ms" in markdown
    records = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert [r["target_mb"] for r in records] == [3.0, 25.0, 50.0] * 2
    assert records[0]["accuracy_kept"] == pytest.approx(0.9)
    assert (tmp_path / "accuracy_vs_size.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_row_from_report_reads_compress_output(script) -> None:
    report = {"student": {"size_mb": 3.1, "params": 775_000, "accuracy": 0.9, "f1": 0.85, "p50_ms": 5.0},
              "teacher": {"size_mb": 90.9, "params": 22_700_000, "accuracy": 0.95, "f1": 0.9, "p50_ms": 20.0}}
    row = script.row_from_report("bigclonebench", 3.0, report, {"vocab_size": 1000})
    assert (row.student_mb, row.teacher_mb, row.speed_up) == (3.1, 90.9, 4.0)
    assert row.accuracy_kept == pytest.approx(0.9 / 0.95)
