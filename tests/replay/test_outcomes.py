"""Replay answers challenges as the labels say, sends the victims' late reports at their
time, counts what the wire refuses, and keeps per-account and per-day figures."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

import pytest

from riskengine.core.feedback import Label, Source
from riskengine.core.wire import parse_timestamp
from riskengine.service.build import build_engine
from riskengine.service.settings import Settings
from riskengine.tools.replay import Replayer, format_report, period
from riskengine.tools.simulate import Simulator
from riskengine.tools.worlds import World


def _engine() -> Any:
    return build_engine(Settings(env="development", store="memory:", _env_file=None)).engine


class Watched:
    """The engine's own answers and feedback calls, as the replay made them (the engine
    still does all the work; this only writes down what passed through)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.scored: dict[str, dict[str, Any]] = {}
        self.confirms: list[tuple[str, bool]] = []
        self.feedback: list[tuple[str, Label, Source, datetime | None]] = []
        self.clock: datetime | None = None  # the time of the last login scored
        self.caller_ids: dict[str, str] = {}  # the engine's event id: the file's
        score_event, feedback = engine.score_event, engine.feedback

        def spy_score(event: Any, **kw: Any) -> Any:
            scored = score_event(event, **kw)
            self.caller_ids[event.event_id] = scored.body["event_id"]
            self.scored[scored.body["event_id"]] = scored.body
            self.clock = event.timestamp
            return scored

        def spy_feedback(tenant: str, event_id: str, *, label: Label, source: Source) -> Any:
            # The replay names the login as the caller does (the answer's event_id).
            caller_id = self.caller_ids.get(event_id, event_id)
            if source in (Source.CHALLENGE_PASSED, Source.CHALLENGE_FAILED):
                self.confirms.append((caller_id, source is Source.CHALLENGE_PASSED))
            else:
                self.feedback.append((caller_id, label, source, self.clock))
            return feedback(tenant, event_id, label=label, source=source)

        engine.score_event = spy_score
        engine.feedback = spy_feedback


@pytest.fixture(scope="module")
def drawn() -> tuple[list[dict[str, Any]], Watched, dict[str, Any]]:
    world = World.draw(2).replace(report_share=1.0, report_median_hours=6.0,
                                  weak_spot_share=0.03)
    events = list(Simulator(users=120, days=24, seed=3, world=world).events())
    watched = Watched(_engine())
    data = Replayer(watched.engine, seed=1).run(copy.deepcopy(events), progress=False).to_dict()
    return events, watched, data


def test_challenges_are_answered_as_the_label_says(drawn) -> None:
    events, watched, _ = drawn
    by_id = {e["event_id"]: e for e in events}
    assert watched.confirms
    for event_id, passed in watched.confirms:
        label, body = by_id[event_id]["label"], watched.scored[event_id]
        assert passed == (body["challenge"] in label["passes"]), (event_id, label, body)
    outcomes = {passed for _, passed in watched.confirms}
    assert outcomes == {True, False}


def test_late_reports_are_sent_at_their_time_for_attacks_that_got_in(drawn) -> None:
    events, watched, data = drawn
    by_id = {e["event_id"]: e for e in events}
    expected = set()
    for event_id, body in watched.scored.items():
        e = by_id[event_id]
        label = e["label"]
        if not label["attack"] or label["reported_after_hours"] is None or \
                e["auth_result"] != "success":
            continue
        passed = (event_id, True) in watched.confirms
        if body["decision"] == "allow" or passed:
            expected.add(event_id)
    assert expected, "the world has attacks that got in"
    sent = {event_id for event_id, *_ in watched.feedback}
    assert sent == expected
    stamps = sorted(parse_timestamp(e["timestamp"]) for e in events)
    for event_id, label, source, clock in watched.feedback:
        assert (label, source) == (Label.FRAUD, Source.USER_REPORT)
        e = by_id[event_id]
        due = parse_timestamp(e["timestamp"]) + timedelta(
            hours=e["label"]["reported_after_hours"])
        if clock is not None and due <= stamps[-1]:
            # Sent before the first login at or after its time, after every one before.
            assert clock < due
    assert sum(data["user_reports"].values()) == len(expected)


def test_old_labels_replay_as_before() -> None:
    """Without ``passes``: customers pass at the pass rate; only a SIM swapper asked for an
    SMS code passes; no reports are sent."""
    events = list(Simulator(users=120, days=24, seed=3).events())
    assert all("passes" not in e["label"] for e in events)
    watched = Watched(_engine())
    data = Replayer(watched.engine, customer_pass_rate=1.0).run(events, progress=False)
    by_id = {e["event_id"]: e for e in events}
    assert watched.confirms
    for event_id, passed in watched.confirms:
        scenario = by_id[event_id]["label"]["scenario"]
        if scenario == "customer":
            assert passed
        else:
            assert passed == (scenario == "sim_swap" and
                              watched.scored[event_id]["challenge"] == "sms_otp")
    assert not watched.feedback and not data.to_dict()["user_reports"]


def test_prevented_counts_step_ups_the_attacker_cannot_pass(drawn) -> None:
    events, watched, data = drawn
    by_id = {e["event_id"]: e for e in events}
    for scenario, t in data["scenarios"].items():
        assert t["prevented"] <= t["blocked"] + 1e-12, scenario
    # Holding the number, the SMS code is no obstacle: a challenge by SMS is not prevented.
    sms = [i for i, b in watched.scored.items()
           if by_id[i]["label"]["scenario"] == "number_port" and b["challenge"] == "sms_otp"]
    if sms and data["scenarios"]["number_port"]["deny"] == 0:
        assert data["scenarios"]["number_port"]["prevented"] < \
            data["scenarios"]["number_port"]["blocked"]


def test_refused_requests_are_counted_and_shown() -> None:
    good = {"user_id": "+8613800138000", "ip": "123.120.5.9", "phone": "+8613800138000",
            "timestamp": "2026-10-01T01:00:00Z", "label": {"attack": False}}
    lines = [
        good,
        {**good, "event_id": "bad-ip", "ip": "not-an-address"},
        {**good, "event_id": "bad-imei", "device": {"id": "123456789012345"}},  # Luhn
        {**good, "event_id": "bad-attack", "ip": "300.1.1.1",
         "label": {"attack": True, "scenario": "credential_stuffing"}},
    ]
    report = Replayer(_engine(), warmup_days=0).run(lines, progress=False).to_dict()
    assert report["events"] == 1
    assert report["refused"] == {"events": 3, "by_field": {"ip": 2, "device.id": 1},
                                 "by_scenario": {"customer": 2, "credential_stuffing": 1}}
    assert "refused by the wire model: 3 (device.id 1, ip 2)" in format_report(report)


def test_per_day_tallies_add_up_and_cut_periods(drawn) -> None:
    _, _, data = drawn
    days = data["per_day"]
    assert min(int(d) for d in days) == 15  # the first measured day, after 14 warm-up days
    assert sum(t["customer_events"] for t in days.values()) == data["customers"]["events"]
    attacks = sum(t["events"] for t in data["scenarios"].values())
    assert sum(t["attack_events"] for t in days.values()) == attacks
    whole = period(data, 1, 10_000)
    assert whole["customers_challenged"] == pytest.approx(data["customers"]["challenge"])
    blocked = sum(t["blocked"] * t["events"] for t in data["scenarios"].values())
    assert whole["attacks_blocked"] == pytest.approx(blocked / attacks)
    early, late = period(data, 15, 19), period(data, 20, 24)
    assert early["customer_events"] + late["customer_events"] == whole["customer_events"]
    assert period(data, 100, 200)["customers_challenged"] is None


def test_customers_challenged_at_least_once(drawn) -> None:
    events, watched, data = drawn
    once = data["customers_challenged_once"]
    warm_end = parse_timestamp(events[0]["timestamp"]) + timedelta(days=14)
    measured = [e for e in events if not e["label"]["attack"]
                and e["event_id"] in watched.scored
                and parse_timestamp(e["timestamp"]) >= warm_end]
    accounts = {e["user_id"] for e in measured}
    stopped = {e["user_id"] for e in measured
               if watched.scored[e["event_id"]]["decision"] != "allow"}
    assert once["accounts"] == len(accounts)
    assert once["share"] == pytest.approx(len(stopped) / len(accounts))
