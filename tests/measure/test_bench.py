"""The benchmark scripts' helpers: a timed block, per-call times, peak and current memory."""

from __future__ import annotations

import time

from lit_compressor.measure.bench import PeakRss, call_times_ms, load_text, peak_rss_mb, rss_mb, timed


def test_timed_block_and_per_call_times():
    with timed() as clock:
        time.sleep(0.05)
    assert 0.05 <= clock.seconds < 1.0 and len(clock.load_before) == len(clock.load_after) == 3
    assert clock.to_dict()["seconds"] == round(clock.seconds, 3)
    times = call_times_ms(time.sleep, [0.01, 0.03])
    assert len(times) == 2 and 10 <= times[0] < times[1] and times[1] >= 30
    assert load_text((0.5, 1.25, 2.0)) == "load average: 0.50, 1.25, 2.00"


def test_peak_memory_sees_a_short_lived_allocation():
    with PeakRss() as memory:
        block = bytearray(96 * 2**20)  # zero-filled pages: resident once written
        block[:: 4096] = b"x" * len(block[:: 4096])
        time.sleep(0.05)
        del block
    assert 80 <= memory.delta_mb < 400
    assert peak_rss_mb() >= rss_mb() > 0
