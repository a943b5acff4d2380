"""What the benchmark scripts (``scripts/bench_*.py``, ``scripts/compare_*.py``) and ``benchmark`` share: timing a
block with the load average around it, timing each call, and memory (peak and current resident set).

Tables are :func:`lit_compressor.core.console.markdown_table` (for ``docs/benchmarks.md``) or
:func:`~lit_compressor.core.console.print_table` (Rich on a terminal, Markdown elsewhere).
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil


def load_text(load: tuple[float, float, float] | None = None) -> str:
    """``load average: 0.52, 0.58, 0.59``, as ``uptime`` shows it (now, or of ``load``)."""
    return "load average: " + ", ".join(f"{value:.2f}" for value in load or os.getloadavg())


@dataclass
class Timed:
    """Wall seconds of a ``with timed()`` block (set when it ends) and the load average before and after."""

    load_before: tuple[float, float, float] = field(default_factory=os.getloadavg)
    seconds: float = 0.0
    load_after: tuple[float, float, float] | None = None

    def to_dict(self) -> dict:
        return {"seconds": round(self.seconds, 3), "load_before": self.load_before, "load_after": self.load_after}


@contextmanager
def timed() -> Iterator[Timed]:
    """``with timed() as clock: work()`` → ``clock.seconds``, ``clock.load_before``, ``clock.load_after``."""
    clock = Timed()
    started = time.perf_counter()
    try:
        yield clock
    finally:
        clock.seconds = time.perf_counter() - started
        clock.load_after = os.getloadavg()


def call_times_ms(function: Callable, inputs: Iterable) -> list[float]:
    """Wall milliseconds of ``function(x)`` for each ``x`` of ``inputs``."""
    times = []
    for x in inputs:
        started = time.perf_counter()
        function(x)
        times.append((time.perf_counter() - started) * 1000)
    return times


def rss_mb() -> float:
    """This process's resident memory now, in MiB."""
    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB: ``VmHWM`` on Linux (a forked child's ``ru_maxrss``
    starts from its parent's), else ``ru_maxrss``."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakRss:
    """Peak RSS growth inside a ``with`` block, by sampling from a thread (``delta_mb``, in MiB)."""

    def __init__(self, interval: float = 0.001):
        self.process, self.interval = psutil.Process(), interval
        self.peak = self.start = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> PeakRss:
        self.start = self.peak = self.process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def delta_mb(self) -> float:
        return (self.peak - self.start) / 2**20
