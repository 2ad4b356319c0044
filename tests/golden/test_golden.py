"""Decisions of the golden run are exactly the recorded ones (see ``tests/golden/run.py``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.golden.run import decisions, read_golden


def test_the_golden_run_decides_as_recorded(tmp_path: Path) -> None:
    expected = read_golden()
    got = list(decisions(tmp_path))
    assert len(got) == len(expected)
    # Every kind of answer, both lists and the signals are exercised, or the file proves little.
    kinds = Counter(r["decision"] for r in expected)
    assert kinds["allow"] and kinds["challenge"] and kinds["deny"]
    codes = {c for r in expected for c in r["reasons"]}
    assert {"allow_listed_network", "deny_listed_network", "ip_reputation_botnet",
            "sim_swap_sms_login"} <= codes
    changed = [(e, g) for e, g in zip(expected, got, strict=True) if e != g]
    assert not changed, f"{len(changed)} decisions changed; first: {changed[:3]}"
