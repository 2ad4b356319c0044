"""An attacker's failures from a new IP must not lock the real user out (NIST SP 800-63B
limits consecutive failures per account to 100; riskengine does not even ask the owner on a
trusted device and known network for a captcha because of failures made elsewhere)."""

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
    # Not locked out: strangers' failures do not degrade the owner's trusted phone on the
    # home network (issue #18); the trust of the owner's device still counts.
    assert owner["decision"] == "allow", owner
    codes = {r["code"] for r in owner["reasons"]}
    assert "known_device_known_network" in codes and "account_brute_force" not in codes
