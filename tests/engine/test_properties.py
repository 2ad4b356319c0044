"""Properties that must hold for every input (hypothesis)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.event import LoginEvent
from riskengine.adapters.stores import MemoryStore
from riskengine.core.policy import decide
from riskengine.core.rules import load_ruleset
from riskengine.core.wire import ScoreRequest
from riskengine.service.scorer import Engine
from tests.engine.conftest import T0

IPS = ["123.120.5.9", "114.88.3.4", "81.167.144.58", "185.220.101.1", "52.95.110.1",
       "2408:8207:1::1", "10.1.1.1"]
DEVICES = [None, "490154203237518", "356938035643809", "7d3c1e2a-9f8b-4c6d-a1e0-5b4f3c2d1e0f"]

events = st.lists(st.fixed_dictionaries({
    "user_id": st.sampled_from(["+8613800138000", "li.wei@example.cn", "u3"]),
    "ip": st.sampled_from(IPS),
    "device": st.sampled_from(DEVICES).map(lambda d: {"id": d} if d else None),
    "auth_result": st.sampled_from(["success", "failure"]),
    "login_method": st.sampled_from(["password", "sms_otp", "email_otp", "oauth"]),
    "network": st.sampled_from([None, {"type": "wifi", "ssid": "Home"}, {"type": "cellular"}]),
    "minutes": st.integers(min_value=0, max_value=60 * 24 * 30),
}), min_size=1, max_size=25)

SLOW = settings(max_examples=15, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _requests(batch):
    out = []
    for i, e in enumerate(sorted(batch, key=lambda e: e["minutes"])):
        body = {k: v for k, v in e.items() if k != "minutes" and v is not None}
        body["timestamp"] = (T0 + timedelta(minutes=e["minutes"])).isoformat()
        body["event_id"] = f"p{i}"
        out.append(ScoreRequest(**body))
    return out


def _bodies(engine: Engine, requests):
    return [{k: v for k, v in engine.score(r).body.items() if k != "latency_ms"}
            for r in requests]


@SLOW
@given(batch=events)
def test_scores_are_in_range_and_decisions_valid(make_engine, batch) -> None:
    engine = make_engine(store=MemoryStore())
    for body in _bodies(engine, _requests(batch)):
        assert 0.0 <= body["score"] <= 1.0
        assert body["decision"] in ("allow", "challenge", "deny")
        assert (body["challenge"] is not None) == (body["decision"] == "challenge")


@SLOW
@given(batch=events)
def test_the_same_events_on_the_same_state_give_the_same_answers(make_engine, batch) -> None:
    requests = _requests(batch)
    first = _bodies(make_engine(store=MemoryStore()), requests)
    second = _bodies(make_engine(store=MemoryStore()), requests)
    assert first == second


@SLOW
@given(batch=events)
def test_replaying_event_ids_changes_nothing(make_engine, batch) -> None:
    engine = make_engine(store=MemoryStore())
    requests = _requests(batch)
    first = _bodies(engine, requests)
    profiles = {r.user_id: engine.store.get_profile(
        "default", engine.to_event(r, received_at=T0).user_key) for r in requests}
    again = _bodies(engine, requests)
    assert again == first
    for r in requests:
        key = engine.to_event(r, received_at=T0).user_key
        assert engine.store.get_profile("default", key) == profiles[r.user_id]


RULES = load_ruleset()
BASE = st.fixed_dictionaries({
    "user_is_new": st.booleans(), "device_known": st.booleans(),
    "device_trusted": st.booleans(), "new_device": st.sampled_from([None, True, False]),
    "ssid_known": st.booleans(), "ip_prefix_known": st.booleans(),
    "asn_known": st.booleans(), "new_ip_prefix": st.sampled_from([None, True, False]),
    "new_asn": st.sampled_from([None, True, False]),
    "user_failures_10m": st.integers(0, 3), "user_failures_24h": st.integers(0, 10),
    "ip_users_10m": st.integers(1, 5), "ip_failures_10m": st.integers(0, 5),
    "auth_failed": st.booleans(), "login_method": st.sampled_from(["password", "sms_otp"]),
})
RED_FLAGS = {
    "new country": {"new_country": True, "ip_country": "DE"},
    "hosting IP": {"ip_is_hosting": True},
    "failure burst": {"user_failures_10m": 9, "user_failures_24h": 30, "ip_failures_10m": 40,
                      "ip_users_10m": 30},
    "impossible travel": {"geo_velocity_kmh": 9000.0, "geo_distance_km": 4000.0},
}
EVENT = LoginEvent(event_id="x", tenant="default", user_key="u", timestamp=T0, ip="1.1.1.1",
                   ip_key="i", ip_prefix_key="p")


def _score(values: dict, model_risk: float) -> float:
    return decide(event=EVENT, values=values, results=RULES.evaluate(values), ruleset=RULES,
                  model_score=0.5, model_risk=model_risk, model_version="m").score


@settings(max_examples=300, deadline=None)
@given(base=BASE, flag=st.sampled_from(sorted(RED_FLAGS)), risk=st.floats(0, 1))
def test_a_red_flag_never_lowers_the_risk(base, flag, risk) -> None:
    flagged = {**base, **RED_FLAGS[flag]}
    assert _score(flagged, risk) >= _score(base, risk) - 1e-9
