"""``bench/interpreters.py`` runs ``hotpath.py`` under two interpreters in rounds, checks both
decided alike and writes the ratios."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_interpreters_benchmark_runs_two_rounds_and_compares(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "interpreters.py"), sys.executable,
         sys.executable, "--rounds", "2", "--events", "300", "--warmup", "300",
         "--out", str(out)],
        capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(out.read_text())
    memory = got["stores"]["memory"]
    assert len(memory["rounds"]) == 2
    for row in memory["rounds"]:
        assert row["a"]["events"] == row["b"]["events"] == 300
        assert row["a"]["decisions"] == row["b"]["decisions"]
        assert row["rate_ratio"] == row["b"]["events_per_cpu_s"] / row["a"]["events_per_cpu_s"]
    assert memory["summary"]["rate_ratio"] > 0
    assert got["interpreters"][0]["version"] == sys.version.split()[0]
