"""The files a search leaves in its output folder: architecture.yaml, report.json, search.png.

Figures are drawn with ``matplotlib.figure.Figure`` on the Agg canvas (``pyplot`` is never imported:
it costs a quarter of a second more), imported only when drawing.
"""

from __future__ import annotations

import json
from pathlib import Path

from deap import tools

from lit_compressor.core.files import atomic_write_text
from lit_compressor.search.architecture import StudentArchitecture


def write_architecture(path: Path, architecture: StudentArchitecture, priced_for: dict | None = None,
                       extras: dict | None = None) -> None:
    """The five genes at top level, then the other searched genes (``block_size``, ``lr``, ``dropout``),
    then ``priced_for``: the student settings and parameter count the search priced, which distillation
    checks against the module it builds."""
    import yaml

    content = {**architecture.to_dict(), **(extras or {}), **({"priced_for": priced_for} if priced_for else {})}
    atomic_write_text(path, yaml.safe_dump(content, sort_keys=False))


def write_report(path: Path, report: dict) -> None:
    atomic_write_text(path, json.dumps(report, indent=2))


def _figure(width: float = 6, height: float = 4):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def plot_fitness(path: Path, history: tools.Logbook, title: str) -> None:
    """Best and mean fitness over generations (the GA's logbook)."""
    figure = _figure()
    ax = figure.add_subplot()
    generations, best, mean = history.select("generation", "best_fitness", "mean_fitness")
    ax.plot(generations, best, label="best")
    ax.plot(generations, mean, label="population mean", alpha=0.7)
    ax.set(xlabel="generation", ylabel="fitness (GFLOPs - |MB - target|)", title=title)
    ax.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def plot_front(path: Path, result: dict, size_kind: str, title: str) -> None:
    """Accuracy against latency: the final population, its Pareto front coloured by size, the sampled
    (distilled) genomes at their measured accuracy, the pick and the budgets."""
    size_key = "size_mb" if size_kind == "fp32" else "int8_mb"
    accuracy_key = "predicted_accuracy" if "predictor" in result else "gflops_objective"
    figure = _figure(7, 4.5)
    ax = figure.add_subplot()
    population = [p for p in result["population"] if p.get("feasible", True)]
    front, best = result["pareto_front"], result["best"]
    ax.scatter([p["latency_ms"] for p in population], [p[accuracy_key] for p in population], s=10, c="lightgray",
               label="final population")
    points = ax.scatter([p["latency_ms"] for p in front], [p[accuracy_key] for p in front],
                        s=[20 + 30 * p[size_key] for p in front], c=[p[size_key] for p in front], cmap="viridis",
                        edgecolors="black", linewidths=0.3, label="Pareto front (area ~ size)")
    samples = result.get("predictor", {}).get("samples", [])
    if samples:
        ax.scatter([s["latency_ms"] for s in samples], [s["accuracy"] for s in samples], marker="x", c="tab:red", s=30,
                   label="distilled samples (measured)")
    ax.scatter([best["latency_ms"]], [best[accuracy_key]], s=220, marker="*", c="red", edgecolors="black",
               label="picked")
    budget = result.get("pick", {}).get("max_latency_ms")
    if budget is not None:
        ax.axvline(budget, color="tab:red", linestyle="--", linewidth=0.8, label="latency budget")
    figure.colorbar(points, ax=ax, label=f"size ({size_kind} MB)")
    ax.set_xscale("log")
    ax.set(xlabel=f"p50 latency (ms, {result.get('latency_model', {}).get('runtime', '')})",
           ylabel="predicted accuracy" if accuracy_key == "predicted_accuracy" else "GFLOPs (proxy)", title=title)
    ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
