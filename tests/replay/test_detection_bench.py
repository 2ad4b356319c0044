"""The detection benchmark's own arithmetic: periods, what counts as stopped, the acceptance
checks over worlds and which world is the worst (on hand-made reports, no engine)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

_PATH = Path(__file__).parents[2] / "bench" / "detection.py"
_spec = importlib.util.spec_from_file_location("bench_detection", _PATH)
assert _spec is not None and _spec.loader is not None
detection = importlib.util.module_from_spec(_spec)
sys.modules["bench_detection"] = detection
_spec.loader.exec_module(detection)


def _run(*, challenged: float, once: float, catch: float, freeman: float, refused: int = 0,
         sim_prevented: float = 1.0, early: float = 0.01, late: float = 0.005) -> dict[str, Any]:
    def tally(blocked: float, prevented: float) -> dict[str, Any]:
        return {"events": 100, "blocked": blocked, "prevented": prevented, "deny": 0.0}

    def span(days: list[int], customers: float) -> dict[str, Any]:
        return {"days": days, "customers_challenged": customers, "attacks_blocked": 0.99}

    return {
        "events": 1000, "events_per_second": 1000.0,
        "customers": {"challenge": challenged, "deny": 0.0, "events": 900},
        "customers_challenged_once": {"share": once, "accounts": 100},
        "refused": {"events": refused},
        "riskengine": {"catch_rate_at": {"1%": {"attacks_caught": catch}}},
        "freeman": {"catch_rate_at": {"1%": {"attacks_caught": freeman}}},
        # The SIM swapper is blocked every time but passes the SMS code: only prevented
        # counts for it.
        "scenarios": {"sim_swap": tally(1.0, sim_prevented),
                      "account_takeover": tally(0.99, 0.5)},
        "slow_poisoning_after_3_weeks": {"events": 0, "blocked": 0.0},
        "periods": {"early": span([15, 37], early), "late": span([39, 60], late)},
        "world": {"seed": 1},
    }


def test_periods_cut_the_measured_days_around_the_middle() -> None:
    assert detection.periods(60) == ((15, 37), (39, 60))
    assert detection.periods(30) == ((15, 22), (24, 30))


def test_acceptance_over_worlds() -> None:
    good = {"w1": _run(challenged=0.006, once=0.1, catch=0.98, freeman=0.7),
            "w2": _run(challenged=0.007, once=0.15, catch=0.99, freeman=0.8),
            "w3": _run(challenged=0.011, once=0.3, catch=0.95, freeman=0.6)}
    checks = {name: ok for name, _, ok in detection.acceptance(good)}
    assert all(checks.values()), checks
    bad = {**good, "w4": _run(challenged=0.02, once=0.5, catch=0.5, freeman=0.6, refused=3,
                              sim_prevented=0.2, early=0.01, late=0.02)}
    checks = {name: ok for name, _, ok in detection.acceptance(bad)}
    assert not checks["customers challenged <= 1.2% worst"]
    assert not checks["customers challenged <= 0.8% median"]  # (.007 + .011) / 2
    assert not checks["catch rate @1% above Freeman in every world"]
    assert not checks["0 refused (all worlds)"]
    assert not checks["late period challenges fewer at equal catch, every world"]
    assert checks["sim_swap prevented >= 97% median"]
    assert detection.worst_world(bad) == "w4"


def test_a_number_holder_is_stopped_only_when_prevented() -> None:
    run = _run(challenged=0.006, once=0.1, catch=0.98, freeman=0.7, sim_prevented=0.4)
    assert detection.stopped(run, "sim_swap") == pytest.approx(0.4)
    assert detection.stopped(run, "account_takeover") == pytest.approx(0.99)
    assert ("sim_swap stopped >= 97%", False) in detection.world_checks(run)
    text = detection.table({"w1": run})
    assert "sim_swap prevented" in text and "days 39-60 customers challenged" in text
