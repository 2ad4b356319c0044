"""A short bounded load test (the 60 s run and the 10 min soak are `bench/load.py`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.bench_scripts import bench_module

load = bench_module("load")


def test_ten_seconds_at_a_fixed_rate(tmp_path: Path) -> None:
    proc, base = load.start_server(tmp_path)
    try:
        result = asyncio.run(load.fixed_rate(base, rate=40, seconds=10, pid=proc.pid))
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    figures = result.summary()
    assert figures["sent"] == 400
    assert figures["fail_ratio"] < 0.001, figures
    # Memory stays flat: well under 100 MB of growth over the run (the first requests warm
    # the caches; a leak of one event's worth per request would show as far more).
    assert figures["rss_mb_end"] - figures["rss_mb_start"] < 100, figures
