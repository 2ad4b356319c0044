# ruff: noqa: F811 - the engine tests' fixtures are imported by name and used as arguments
"""Feedback can only confirm what happened (issue #18, item 2): a step-up result needs a
login that was challenged with that step-up, a legit on a denied login trusts nothing unless
an analyst says so, trust grants per day are capped, and an analyst's reversal lifts the
marks of the label it reverses. Each of these failed on 9f1c20e."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from riskengine.api import create_app
from riskengine.core.feedback import FeedbackConflict, Label, Source
from riskengine.core.wire import ScoreRequest
from riskengine.service.settings import Settings
from tests.engine.conftest import HOME, at, home_history, ipintel, make_engine  # noqa: F401

ABROAD = "81.2.69.1"  # London, residential: a stranger's network for a Beijing customer
SHANGHAI = "114.88.3.4"  # China Telecom Shanghai: a stranger's network at home
TOR_EXIT = "185.220.101.1"  # denied by the engine of 9f1c20e too, where London was challenged
NEW_PHONE = {"id": "356938035643809", "model": "Xiaomi 14", "os_name": "Android",
             "os_version": "14"}


def score(engine, **fields: Any) -> dict[str, Any]:
    return engine.score(ScoreRequest(**fields)).body


def profile_of(engine):
    key = engine.user_keys("default", HOME["user_id"])[0]
    return engine.store.get_profile("default", key)


def attacker_login(engine, when, event_id: str, ip: str = ABROAD) -> dict[str, Any]:
    return score(engine, **{**HOME, "device": NEW_PHONE, "ip": ip, "sim": None,
                            "network": {"type": "wifi"}, "event_id": event_id,
                            "timestamp": at(when)})


def test_a_step_up_result_for_a_denied_login_is_a_conflict(make_engine):
    engine = make_engine()
    last = home_history(engine, 10)
    denied = []
    for i in range(10):  # abroad, every other one through Tor
        body = attacker_login(engine, last + timedelta(days=1, minutes=i), f"a{i}",
                              TOR_EXIT if i % 2 else ABROAD)
        denied.append(body)
    target = next(b for b in denied if b["decision"] == "deny")
    before = profile_of(engine).to_dict()

    with pytest.raises(FeedbackConflict):
        engine.feedback("default", target["event_id"], label=Label.LEGIT,
                        source=Source.CHALLENGE_PASSED)

    assert profile_of(engine).to_dict() == before


@pytest.mark.parametrize("source", ["challenge_passed", "challenge_failed"])
def test_a_step_up_result_sent_for_a_login_never_challenged_is_a_409_naming_source(
        tmp_path: Path, source: str) -> None:
    # The red team's call, over HTTP: a step-up result on a login that asked for none.
    settings = Settings(env="test", auth="open", store=f"sqlite:{tmp_path / 'r.db'}",
                        _env_file=None)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        scored = client.post("/v1/score", json={**HOME, "event_id": "e1"}).json()
        assert scored["challenge"] is None, scored

        forged = client.post("/v1/feedback", json={"event_id": "e1", "label": "legit",
                                                   "source": source})

        assert forged.status_code == 409, forged.text
        assert forged.json()["fields"] == ["source"]
        engine = client.app.state.built.engine
        stored = engine.store.get_decision("default", engine.event_key("default", "e1"))
        assert stored is not None and not stored.feedback  # nothing was applied


def test_a_step_up_result_must_name_the_step_up_that_was_asked(make_engine):
    engine = make_engine()
    last = home_history(engine, 10)
    body = attacker_login(engine, last + timedelta(days=1), "x1", SHANGHAI)
    assert body["decision"] == "challenge", body

    other = "captcha" if body["challenge"] != "captcha" else "email_otp"
    with pytest.raises(FeedbackConflict):
        engine.feedback("default", "x1", label=Label.LEGIT, source=Source.CHALLENGE_PASSED,
                        challenge=other)
    assert engine.feedback("default", "x1", label=Label.LEGIT, source=Source.CHALLENGE_PASSED,
                           challenge=body["challenge"]).value == "applied"


def test_a_users_legit_on_a_denied_login_trusts_no_device(make_engine):
    engine = make_engine()
    last = home_history(engine, 10)
    for i in range(10):
        body = attacker_login(engine, last + timedelta(days=1, minutes=i), f"d{i}")
    engine.feedback("default", body["event_id"], label=Label.LEGIT, source=Source.USER_REPORT)

    trusted_before = dict(profile_of(engine).trusted)
    nxt = attacker_login(engine, last + timedelta(days=1, minutes=30), "d-next")

    # "That was me" verifies the login (the profile learns it) but proves no device.
    assert "known_device_known_network" not in {r["code"] for r in nxt["reasons"]}
    assert profile_of(engine).trusted == trusted_before


def test_trust_grants_are_capped_per_day(make_engine):
    engine = make_engine()
    last = home_history(engine, 10)
    from features.identifiers import luhn_ok

    phones = [p for p in (f"3569380356{n:04d}0" for n in range(200))
              if luhn_ok(p)][:5]
    for i, phone in enumerate(phones):
        # Each a new phone at home, by SMS code: each would earn trust.
        score(engine, **{**HOME, "device": {**NEW_PHONE, "id": phone}, "login_method": "sms_otp",
                         "timestamp": at(last + timedelta(hours=1, minutes=i))})
    assert len(profile_of(engine).trusted) <= 3  # the home phone and at most two new ones


def test_an_analysts_reversal_lifts_the_fraud_marks(make_engine):
    engine = make_engine()
    last = home_history(engine, 10)
    body = attacker_login(engine, last + timedelta(days=1), "r1", SHANGHAI)
    assert body["decision"] == "challenge"
    engine.feedback("default", "r1", label=Label.FRAUD, source=Source.USER_REPORT)
    assert profile_of(engine).bad

    engine.feedback("default", "r1", label=Label.LEGIT, source=Source.ANALYST)

    assert profile_of(engine).bad == {}
