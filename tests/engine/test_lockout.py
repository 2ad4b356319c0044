"""An attacker's failures from a new IP must not lock the real user out (NIST SP 800-63B
limits consecutive failures per account to 100; riskengine never denies the owner on a
trusted device and known network for failures made elsewhere: it asks for a captcha at most)."""

from __future__ import annotations

from datetime import timedelta

from riskengine.core.wire import ScoreRequest
from tests.engine.conftest import HOME, at, home_history


def test_an_attackers_failures_do_not_lock_the_owner_out(make_engine):
    engine = make_engine()
    last = home_history(engine, 10)
    engine.score(ScoreRequest(**{**HOME, "login_method": "sms_otp",  # the phone is trusted
                                 "timestamp": at(last + timedelta(hours=1))}))
    attacker = []
    for i in range(120):  # more than NIST's 100 consecutive failures
        attacker.append(engine.score(ScoreRequest(
            user_id=HOME["user_id"], ip="45.83.64.10", auth_result="failure",
            timestamp=at(last + timedelta(hours=2, seconds=20 * i)))).body)
    assert all(b["decision"] != "allow" for b in attacker)
    owner = engine.score(ScoreRequest(**{**HOME, "timestamp": at(
        last + timedelta(hours=2, minutes=41))})).body
    # Not locked out: the owner gets at most a captcha, the cheapest step-up, while the
    # account is under attack; the trust of the owner's device still counts.
    assert owner["decision"] == "challenge" and owner["challenge"] == "captcha"
    assert {"account_brute_force", "known_device_known_network"} <= {
        r["code"] for r in owner["reasons"]}
