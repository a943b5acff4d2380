"""The files a search leaves in its output folder: architecture.yaml, report.json, search.png."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from lit_compressor.search.architecture import StudentArchitecture


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_architecture(path: Path, architecture: StudentArchitecture, priced_for: dict | None = None) -> None:
    """The five genes at top level, then ``priced_for``: the student settings and parameter count the
    search priced, which distillation checks against the module it builds."""
    content = {**architecture.to_dict(), **({"priced_for": priced_for} if priced_for else {})}
    _atomic_write(path, yaml.safe_dump(content, sort_keys=False))


def write_report(path: Path, report: dict) -> None:
    _atomic_write(path, json.dumps(report, indent=2))


def plot_fitness(path: Path, history: list[dict], title: str) -> None:
    """Best and mean fitness over generations (the GA)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    generations = [h["generation"] for h in history]
    ax.plot(generations, [h["best_fitness"] for h in history], label="best")
    ax.plot(generations, [h["mean_fitness"] for h in history], label="population mean", alpha=0.7)
    ax.set(xlabel="generation", ylabel="fitness (GFLOPs - |MB - target|)", title=title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_front(path: Path, population: list[dict], front: list[dict], chosen: dict, title: str) -> None:
    """Size against GFLOPs, coloured by latency: the final population, its front and the pick."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([p["size_mb"] for p in population], [p["gflops"] for p in population], s=10, c="lightgray",
               label="population")
    points = ax.scatter([p["size_mb"] for p in front], [p["gflops"] for p in front], s=25,
                        c=[p["latency_ms"] for p in front], cmap="viridis", label="Pareto front")
    ax.scatter([chosen["size_mb"]], [chosen["gflops"]], s=120, marker="*", c="red", label="picked")
    fig.colorbar(points, ax=ax, label="latency (ms)")
    ax.set(xlabel="size (MB)", ylabel="GFLOPs", title=title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
