"""Issue #18, item 4: a caller's event_id must not return another login's answer, hide
attempts, or carry a phone number into the store and the logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from riskengine.api import create_app
from riskengine.service.settings import Settings

LOGIN = {"user_id": "u1", "ip": "123.120.5.9", "device": {"id": "490154203237518"},
         "network": {"type": "wifi", "ssid": "Zhang-Home"}}
ATTACK = {"user_id": "u2", "ip": "185.220.101.1", "auth_result": "failure"}  # a Tor exit


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(env="test", auth="open", store=f"sqlite:{tmp_path / 'r.db'}",
                        trust_event_time=False, _env_file=None)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def answer(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = dict(response.json())
    body.pop("latency_ms")
    return body


def conflict(response: Any) -> bool:
    return response.status_code == 409 and response.json().get("fields") == ["event_id"]


def test_an_event_id_reused_for_another_login_is_a_409_and_counts_nothing(
        client: TestClient) -> None:
    # Observed: the same id sent with another user, a Tor address and a failure came back
    # with the first login's allow, and counted nothing.
    first = answer(client.post("/v1/score", json={**LOGIN, "event_id": "evt-1"}))
    reused = client.post("/v1/score", json={**ATTACK, "event_id": "evt-1"})

    assert first["decision"] == "allow"
    assert conflict(reused), reused.text
    # Nothing of the refused login was counted: u2's first real failure is its first.
    engine = client.app.state.built.engine
    [key] = engine.user_keys("default", "u2")
    assert engine.store.get_profile("default", key) is None


def test_failures_reusing_one_event_id_cannot_hide_a_brute_force(client: TestClient) -> None:
    # Observed: eight failures reusing one id counted as one.
    now = datetime.now(UTC)
    answers = [client.post("/v1/score", json={
        "user_id": "victim", "ip": "45.83.64.10", "auth_result": "failure", "event_id": "f-1",
        "timestamp": (now - timedelta(seconds=n)).isoformat()}) for n in range(8)]

    assert answers[0].status_code == 200
    assert all(conflict(a) for a in answers[1:])


def test_the_same_login_sent_again_gets_the_same_answer_and_counts_once(
        client: TestClient) -> None:
    failure = {"user_id": "victim", "ip": "45.83.64.10", "auth_result": "failure",
               "timestamp": datetime.now(UTC).isoformat()}
    answers = [answer(client.post("/v1/score", json={**failure, "event_id": "f-1"}))
               for _ in range(6)]

    assert all(a == answers[0] for a in answers)
    engine = client.app.state.built.engine
    [key] = engine.user_keys("default", "victim")
    profile = engine.store.get_profile("default", key)
    assert profile is not None and len(profile.failures) == 1


def test_event_ids_are_pseudonymized_in_the_store_and_the_logs(
        client: TestClient, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Observed: caller-chosen event ids, which may carry a phone number, were stored and
    # logged raw.
    caplog.set_level(logging.DEBUG)
    event_id = "login-+8613800138000-0001"
    scored = answer(client.post("/v1/score", json={**LOGIN, "event_id": event_id,
                                                   "ip": "185.220.101.1"}))
    feedback = client.post("/v1/feedback", json={"event_id": event_id, "label": "fraud",
                                                 "source": "user_report"})
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("r.db*"))

    assert scored["event_id"] == event_id  # the answer echoes the caller's own id
    assert feedback.status_code == 200 and feedback.json()["status"] == "applied"
    assert b"8613800138000" not in stored
    engine = client.app.state.built.engine
    assert engine.event_key("default", event_id).encode() in stored  # it did land
    assert "8613800138000" not in caplog.text
