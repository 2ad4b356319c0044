"""The issue's acceptance scenarios, end to end through the engine with the SQLite store."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from riskengine.core.wire import ScoreRequest
from tests.engine.conftest import HOME, at, home_history


def test_regular_customer_is_allowed_and_a_takeover_30_minutes_later_is_stopped(make_engine):
    engine = make_engine()
    last = home_history(engine, 20)

    nxt = last + timedelta(days=1)
    allowed = engine.score(ScoreRequest(**{**HOME, "timestamp": at(nxt)})).body
    assert allowed["decision"] == "allow"
    assert allowed["score"] < engine.ruleset.thresholds.challenge

    attack = {
        **HOME,
        "ip": "81.167.144.58",  # Norway
        "device": {"id": "356938035643809", "model": "iPhone 15", "os_name": "iOS",
                   "os_version": "17.5"},
        "network": {"type": "cellular"},
        "timestamp": at(nxt + timedelta(minutes=30)),
    }
    stopped = engine.score(ScoreRequest(**attack)).body
    assert stopped["decision"] in ("challenge", "deny")
    codes = {r["code"] for r in stopped["reasons"]}
    assert {"impossible_travel", "new_device", "new_country"} <= codes
    assert abs(sum(r["contribution"] for r in stopped["reasons"]) - stopped["score"]) < 1e-3


def test_a_stopped_login_does_not_teach_the_profile(make_engine):
    engine = make_engine()
    last = home_history(engine, 10)
    user_key = engine.to_event(ScoreRequest(**HOME), received_at=last).user_key
    before = engine.store.get_profile("default", user_key)
    attack = {**HOME, "ip": "185.220.101.1", "device": {"id": "356938035643809"},
              "timestamp": at(last + timedelta(hours=1))}
    assert engine.score(ScoreRequest(**attack)).body["decision"] != "allow"
    after = engine.store.get_profile("default", user_key)
    assert after == before


def test_model_learns_only_from_allowed_successful_logins(make_engine):
    engine = make_engine()
    start = engine.model.n_learned_
    last = home_history(engine, 3)
    assert engine.model.n_learned_ == start + 3
    failed = {**HOME, "auth_result": "failure", "timestamp": at(last + timedelta(hours=2))}
    engine.score(ScoreRequest(**failed))
    assert engine.model.n_learned_ == start + 3


def test_a_passed_step_up_makes_the_new_device_known(make_engine):
    engine = make_engine()
    last = home_history(engine, 10)
    new_phone = {**HOME, "device": {"id": "356938035643809", "model": "iPhone 15"},
                 "ip": "81.167.144.58", "event_id": "new-phone-1",
                 "timestamp": at(last + timedelta(days=1))}
    first = engine.score(ScoreRequest(**new_phone)).body
    assert first["decision"] == "challenge"
    learned_before = engine.model.n_learned_

    assert engine.confirm("default", "new-phone-1", passed=True).value == "applied"
    assert engine.confirm("default", "new-phone-1", passed=True).value == "duplicate"
    assert engine.model.n_learned_ == learned_before + 1

    again = {**new_phone, "event_id": "new-phone-2", "timestamp": at(last + timedelta(days=2))}
    codes = {r["code"] for r in engine.score(ScoreRequest(**again)).body["reasons"]}
    assert "new_device" not in codes and "new_country" not in codes


def test_a_failed_step_up_teaches_nothing_and_marks_the_attacker(make_engine):
    engine = make_engine()
    last = home_history(engine, 10)
    attack = {**HOME, "device": {"id": "356938035643809"}, "ip": "81.167.144.58",
              "event_id": "atk-1", "timestamp": at(last + timedelta(days=1))}
    engine.score(ScoreRequest(**attack))
    user_key = engine.to_event(ScoreRequest(**HOME), received_at=last).user_key
    before = engine.store.get_profile("default", user_key)
    assert engine.confirm("default", "atk-1", passed=False).value == "applied"
    after = engine.store.get_profile("default", user_key)
    assert replace(after, bad={}) == replace(before, bad={})  # nothing learned
    assert len(after.bad) == 2  # the attacker's device and address block are marked
    again = {**attack, "event_id": "atk-2", "timestamp": at(last + timedelta(days=2))}
    codes = {r["code"] for r in engine.score(ScoreRequest(**again)).body["reasons"]}
    assert "marked_bad" in codes
    assert engine.confirm("default", "missing", passed=True).value == "unknown_event"
