"""The request's keyed digest (``edge.request_digest``): what an event id reused for another
login is told apart by. The stores hold these digests, so its bytes must not change."""

from __future__ import annotations

from itertools import islice
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from riskengine.core.edge import request_digest
from riskengine.core.privacy import Kind, Pseudonymizer
from riskengine.core.wire import ScoreRequest
from riskengine.tools.simulate import Simulator

KEY = b"test-key-0123456789abcdef"
P = Pseudonymizer(KEY, key_id="k1")
LOGIN: dict[str, Any] = {
    "event_id": "e-1", "tenant": "acme", "user_id": "li.wei@example.cn",
    "ip": "2408:8207:1:0::1", "timestamp": "2026-11-02T09:30:00+08:00",
    "user_agent": "MallApp/8.6.2 (中文; é)",
    "device": {"id": "86AD0001-B259-E5E8-4573-65D172954F8F", "bluetooth_mac": "3C-22-FB-12-34-56"},
    "network": {"type": "WIFI", "ssid": '"Home"'}, "sim": {"imsi": "460001234567890"},
    "phone": "+8613800138000",
}


def as_written(req: ScoreRequest) -> str:
    """The digest's definition: the pseudonym of the request's JSON text without its event
    id (as ``request_digest`` computed it up to 9bdb02a)."""
    return P(Kind.REQUEST, req.model_dump_json(exclude={"event_id"}), scope=req.tenant)


def test_a_known_digest_does_not_change() -> None:
    # Made by request_digest at 9bdb02a: a different byte would answer 409 to a retry.
    assert request_digest(ScoreRequest.model_validate(LOGIN), P) == "k1.8wJQxyLCofA5_b6VhJAMZQ"


def test_the_digests_of_simulated_logins_are_as_defined() -> None:
    for event in islice(Simulator(users=300, days=3, seed=1).events(), 2000):
        req = ScoreRequest.model_validate({k: v for k, v in event.items() if k != "label"})
        assert request_digest(req, P) == as_written(req)


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=40).filter(lambda t: t.strip() and t.isprintable()),
       st.sampled_from(["default", "acme", "t-1"]))
def test_any_text_is_digested_as_defined(agent: str, tenant: str) -> None:
    req = ScoreRequest.model_validate({**LOGIN, "user_agent": agent, "tenant": tenant})
    assert request_digest(req, P) == as_written(req)


def test_the_same_login_has_the_same_digest_however_it_is_written() -> None:
    digest = request_digest(ScoreRequest.model_validate(LOGIN), P)
    reordered = dict(reversed(list(LOGIN.items())))
    spelled_out = {**LOGIN, "event_type": "login", "auth_result": "success",
                   "login_method": "password", "ip": "2408:8207:1::1", "event_id": "e-2"}
    for body in (reordered, spelled_out):
        assert request_digest(ScoreRequest.model_validate(body), P) == digest
    other = {**LOGIN, "auth_result": "failure"}
    assert request_digest(ScoreRequest.model_validate(other), P) != digest
