"""Cold start, step-up choice, velocity rules and failover, through the engine."""

from __future__ import annotations

import json
import logging
import math
from datetime import timedelta
from pathlib import Path

import pytest

from riskengine.adapters.stores.base import StoreError
from riskengine.core.rules import Action
from riskengine.core.wire import ScoreRequest
from tests.engine.conftest import HOME, T0, at, home_history


def score(engine, **fields):
    return engine.score(ScoreRequest(**fields)).body


class TestColdStart:
    def test_a_new_customer_on_a_residential_line_is_allowed(self, make_engine):
        body = score(make_engine(), **{**HOME, "timestamp": at(T0)})
        assert body["decision"] == "allow"

    def test_a_new_user_from_a_data_centre_gets_a_captcha(self, make_engine):
        body = score(make_engine(), user_id="new.user@example.cn", ip="52.95.110.1",
                     event_type="registration", timestamp=at(T0))
        assert body["decision"] == "challenge"
        assert body["challenge"] == "captcha"
        assert "new_user_from_hosting" in {r["code"] for r in body["reasons"]}

    def test_novelty_rules_do_not_fire_without_history(self, make_engine):
        body = score(make_engine(), **{**HOME, "ip": "81.167.144.58", "timestamp": at(T0)})
        codes = {r["code"] for r in body["reasons"]}
        assert not codes & {"new_device", "new_country", "new_device_new_country"}


class TestStepUp:
    def test_sim_swap_then_sms_login_is_not_challenged_by_sms(self, make_engine):
        engine = make_engine()
        last = home_history(engine, 5)
        swapped = {**HOME, "sim": {"iccid": "89860099999999999999"}, "login_method": "sms_otp",
                   "device": {"id": "356938035643809"}, "timestamp": at(last + timedelta(hours=3))}
        body = score(engine, **swapped)
        assert body["decision"] in ("challenge", "deny")
        assert "sim_swap_sms_login" in {r["code"] for r in body["reasons"]}
        assert body["challenge"] != "sms_otp"

    def test_email_accounts_get_an_email_code(self, make_engine):
        engine = make_engine()
        user = {**HOME, "user_id": "li.wei@example.cn", "phone": None, "sim": None}
        last = home_history(engine, 5, **user)
        body = score(engine, **{**user, "ip": "81.167.144.58", "device": {"id": "356938035643809"},
                                "timestamp": at(last + timedelta(days=2))})
        assert body["decision"] == "challenge"
        assert body["challenge"] == "email_otp"

    def test_phone_accounts_get_an_sms_code(self, make_engine):
        engine = make_engine()
        last = home_history(engine, 5)
        body = score(engine, **{**HOME, "device": {"id": "356938035643809"}, "ip": "81.167.144.58",
                                "timestamp": at(last + timedelta(days=2))})
        assert body["decision"] == "challenge"
        assert body["challenge"] == "sms_otp"


class TestVelocity:
    def test_credential_stuffing_from_one_ip_gets_a_captcha(self, make_engine):
        engine = make_engine()
        bodies = [
            score(engine, user_id=f"victim{i}@example.cn", ip="45.83.64.10", auth_result="failure",
                  timestamp=at(T0 + timedelta(seconds=5 * i)))
            for i in range(15)
        ]
        assert "ip_credential_stuffing" not in {r["code"] for r in bodies[0]["reasons"]}
        last = bodies[-1]
        assert last["decision"] == "challenge" and last["challenge"] == "captcha"
        assert "ip_credential_stuffing" in {r["code"] for r in last["reasons"]}

    def test_a_busy_carrier_nat_address_is_not_credential_stuffing(self, make_engine):
        # 190 customers behind one carrier-NAT address within ten minutes, one in fifteen
        # mistyping the password: many accounts and a dozen failures, but far fewer failures
        # than accounts.
        engine = make_engine()
        bodies = [
            score(engine, user_id=f"+86139{i:08d}", ip="112.96.1.7",
                  network={"type": "cellular"},
                  auth_result="failure" if i % 15 == 14 else "success",
                  timestamp=at(T0 + timedelta(seconds=3 * i)))
            for i in range(190)
        ]
        assert sum(i % 15 == 14 for i in range(190)) == 12
        fired = [i for i, b in enumerate(bodies)
                 if "ip_credential_stuffing" in {r["code"] for r in b["reasons"]}]
        assert fired == []

    def test_brute_force_on_one_account(self, make_engine):
        engine = make_engine()
        last = home_history(engine, 5)
        bodies = [
            score(engine, **{**HOME, "auth_result": "failure", "device": None,
                             "timestamp": at(last + timedelta(minutes=1 + i))})
            for i in range(6)
        ]
        assert "account_brute_force" in {r["code"] for r in bodies[-1]["reasons"]}
        assert bodies[-1]["decision"] == "challenge"
        assert bodies[-1]["challenge"] == "captcha"

    def test_guessing_from_a_foreign_network_is_stopped(self, make_engine):
        engine = make_engine()
        last = home_history(engine, 5)
        body = score(engine, **{**HOME, "ip": "81.167.144.58", "auth_result": "failure",
                                "device": None, "timestamp": at(last + timedelta(minutes=1))})
        assert body["decision"] in ("challenge", "deny")
        assert "failed_from_unfamiliar_network" in {r["code"] for r in body["reasons"]}


class _DeadStore:
    def load(self, query):
        raise StoreError("connection refused")

    def record(self, *args):
        raise StoreError("connection refused")

    def ping(self):
        raise StoreError("connection refused")

    def close(self):
        pass


class TestFailover:
    @pytest.mark.parametrize("failover", [Action.CHALLENGE, Action.DENY])
    def test_a_dead_store_gives_the_configured_failover(self, make_engine, failover, caplog):
        with caplog.at_level(logging.WARNING, logger="riskengine.decision"):
            body = score(make_engine(store=_DeadStore(), failover=failover),
                         **{**HOME, "timestamp": at(T0)})
        assert body["decision"] == failover.value
        assert body["failover"] is True
        assert body["reasons"][0]["code"] == "store_unavailable"
        # The operator's log says why: a timeout, a refused connection, a contended user.
        [line] = [json.loads(r.getMessage()) for r in caplog.records
                  if "store_error" in r.getMessage()]
        assert line == {"event": "store_error", "error": "StoreError",
                        "cause": "connection refused"}

    def test_allow_is_never_a_failover(self, make_engine):
        with pytest.raises(ValueError):
            make_engine(failover=Action.ALLOW)

    def test_a_model_returning_nan_gives_the_failover(self, make_engine):
        engine = make_engine()
        engine.model.score_one = lambda values: math.nan  # type: ignore[method-assign]
        body = score(engine, **{**HOME, "timestamp": at(T0)})
        assert body["decision"] == "challenge"
        assert body["failover"] is True
        assert body["reasons"][0]["code"] == "internal_error"


def test_a_deny_carries_a_message_for_the_customer_and_a_reference(make_engine):
    engine = make_engine()
    last = home_history(engine, 20)
    body = score(engine, **{**HOME, "ip": "81.167.144.58", "event_id": "ref-42",
                            "device": {"id": "356938035643809"}, "network": {"type": "cellular"},
                            "timestamp": at(last + timedelta(minutes=30))})
    assert body["decision"] == "deny"
    assert "ref-42" in body["user_message"]
    assert "impossible" not in body["user_message"].lower()  # names no rule
    allowed = score(engine, **{**HOME, "timestamp": at(last + timedelta(days=2))})
    assert allowed["user_message"] is None


class TestInternalFaults:
    def test_a_rule_that_raises_gives_the_failover(self, make_engine):
        from riskengine.core.rules import parse_ruleset

        shipped = (Path(__file__).parents[2] / "riskengine" / "data" /
                   "default_rules.yaml").read_text()
        rules = parse_ruleset(shipped.replace("{feature: ip_is_tor, op: is_true}\n    score: 0.35",
                                              "{feature: ip_country, op: in, value: [DE]}\n"
                                              "    score: 0.35"))
        class Unhashable:
            """A signal source whose value makes the set lookup of that rule raise."""

            guards: tuple = ()

            def start(self, event, **_):
                pass

            def collect(self, event, ip, profile):
                return {"ip_country": ["not", "hashable"]}

        engine = make_engine(ruleset=rules, signals=Unhashable())
        body = score(engine, **{**HOME, "timestamp": at(T0)})
        assert body["decision"] == "challenge" and body["failover"] is True
        assert body["reasons"][0]["code"] == "rule_error"

    def test_a_corrupt_profile_row_gives_the_failover(self, make_engine, tmp_path):
        import sqlite3

        engine = make_engine()
        last = home_history(engine, 3)
        conn = sqlite3.connect(engine.store.path)
        conn.execute("UPDATE profiles SET profile = '{not json'")
        conn.commit()
        conn.close()
        body = score(engine, **{**HOME, "timestamp": at(last + timedelta(days=1))})
        assert body["decision"] == "challenge" and body["failover"] is True
        assert body["reasons"][0]["code"] == "store_unavailable"
