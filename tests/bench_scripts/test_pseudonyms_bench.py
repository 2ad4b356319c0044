"""``bench/pseudonyms.py`` runs against today's edge: it records every call the edge makes
of the ``Pseudonymizer`` (a call it does not know breaks the recording stand-in)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_pseudonyms_benchmark_records_and_replays_a_login(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "pseudonyms.py"), "--events", "200",
         "--repeat", "1", "--out", str(tmp_path / "out.json")],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads((tmp_path / "out.json").read_text())
    one, rotating = got["one key"], got["rotating"]
    # The request's digest and the identifiers, each under the current key ...
    assert one["hmacs_per_login"] > 5
    assert one["repeated_per_login"] == 0
    # ... and during a rotation each alias under the retired key as well.
    assert rotating["hmacs_per_login"] > one["hmacs_per_login"]
    assert one["pseudonyms_us"] > 0 and one["edge_us"] > one["pseudonyms_us"]
