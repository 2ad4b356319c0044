"""The simulator's signal scenarios: the rest of a seed's traffic unchanged, the lists that
go with them, and every signal rule exercised by a replay."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from riskengine.core.wire import ScoreRequest
from riskengine.service.build import build_engine
from riskengine.service.settings import Settings
from riskengine.tools.replay import Replayer
from riskengine.tools.simulate import SCENARIOS, SIGNAL_SCENARIOS, Simulator, simulate_to

USERS, DAYS, SEED = 200, 21, 7


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> tuple[list[dict[str, Any]], dict[str, Path]]:
    sim = Simulator(users=USERS, days=DAYS, seed=SEED, signals=True)
    events = list(sim.events())
    return events, sim.write_signal_files(tmp_path_factory.mktemp("lists"))


def test_the_rest_of_the_traffic_is_exactly_what_the_seed_gives_without(simulated) -> None:
    events, _ = simulated
    plain = list(Simulator(users=USERS, days=DAYS, seed=SEED).events())
    assert [e for e in events if not e["event_id"].startswith(f"sim{SEED}s-")] == plain
    assert len(events) > len(plain)


def test_signal_events_are_valid_in_time_order_and_deterministic(simulated) -> None:
    events, _ = simulated
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)
    assert len({e["event_id"] for e in events}) == len(events)
    for e in events:
        ScoreRequest(**{k: v for k, v in e.items() if k != "label"})
    counts = Counter(e["label"]["scenario"] for e in events)
    assert set(counts) == {"customer", *SCENARIOS, *SIGNAL_SCENARIOS}
    again = Simulator(users=USERS, days=DAYS, seed=SEED, signals=True)
    assert list(again.events()) == events


def test_the_lists_are_valid_signal_files(simulated) -> None:
    _, paths = simulated
    settings = Settings(env="test", store="memory:", _env_file=None, **paths)
    signals = build_engine(settings).engine.signals
    assert signals is not None
    entries = {p["name"]: p["entries"] for p in signals.status()["providers"]}
    assert entries["phone-risk-file"] >= 3 and entries["recycled-file"] >= 3
    assert entries["ip-reputation-file"] > 10


def test_lists_exist_only_once_the_events_are_read(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        Simulator(users=10, days=3, seed=1, signals=True).write_signal_files(tmp_path)


def test_simulate_to_writes_the_lists_beside(tmp_path: Path) -> None:
    n = simulate_to(tmp_path / "events.jsonl", users=60, days=16, seed=2,
                    signals_dir=tmp_path / "lists")
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert n == len(lines)
    assert any(json.loads(line)["label"]["scenario"] == "high_risk_registration"
               for line in lines)
    assert sorted(p.name for p in (tmp_path / "lists").iterdir()) == [
        "ip_reputation.csv", "phone_risk.csv", "recycled.csv"]


def test_a_replay_with_the_lists_exercises_every_signal_rule(simulated) -> None:
    events, paths = simulated
    engine = build_engine(Settings(env="test", store="memory:", _env_file=None,
                                   **paths)).engine
    hits: Counter[tuple[str, str]] = Counter()
    decisions: dict[str, Counter[str]] = {}

    def observe(scored: Any, scenario: str, user: str) -> None:
        decisions.setdefault(scenario, Counter())[scored.body["decision"]] += 1
        for reason in scored.body["reasons"]:
            hits[(scenario, reason["code"])] += 1

    Replayer(engine, warmup_days=0).run(events, progress=False, observe=observe)
    assert hits[("recycled_number_takeover", "recycled_number_sms_login")] >= 3
    assert hits[("high_risk_registration", "high_risk_number_registration")] > 0
    assert hits[("high_risk_registration", "voip_number_registration")] > 0
    assert hits[("high_risk_registration", "phone_many_accounts")] > 0
    assert hits[("credential_stuffing", "ip_reputation_botnet")] > 0
    assert hits[("password_spraying", "ip_reputation_proxy_abuse")] > 0
    # None of these attacks is let through.
    for scenario in SIGNAL_SCENARIOS:
        assert decisions[scenario]["allow"] == 0, (scenario, decisions[scenario])
    # Customers: only the victims' own next login after their number was reassigned.
    signal_rules = {"recycled_number_sms_login", "recycled_number",
                    "high_risk_number_registration", "high_risk_number",
                    "voip_number_registration", "phone_many_accounts", "ip_reputation_botnet",
                    "ip_reputation_proxy_abuse"}
    customer_hits = sum(n for (scenario, code), n in hits.items()
                        if scenario == "customer" and code in signal_rules)
    assert customer_hits <= 2 * hits[("recycled_number_takeover", "recycled_number")]
