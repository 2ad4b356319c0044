"""Issue #18, item 1: a caller's timestamp must not steer the engine's windows and caps.

Each test replays an attack observed against 9f1c20e through the HTTP API, with production
time settings (the server's clock decides) unless it says otherwise.
"""

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

HOME = {"ip": "123.120.5.9", "device": {"id": "490154203237518", "model": "HUAWEI Mate 60"},
        "network": {"type": "wifi", "ssid": "Zhang-Home"}}
FAILURE = {"ip": "123.120.5.9", "auth_result": "failure"}


def client_for(tmp_path: Path, **settings: Any) -> TestClient:
    """A client of an app as production runs it (the server's clock), SQLite underneath.
    ``trust_event_time`` is named either way, so that the environment cannot change it."""
    values: dict[str, Any] = {"env": "test", "auth": "open",
                              "store": f"sqlite:{tmp_path / 'r.db'}", "_env_file": None,
                              "trust_event_time": False, **settings}
    return TestClient(create_app(Settings(**values)), raise_server_exceptions=False)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with client_for(tmp_path) as c:
        yield c


def stamp(when: datetime) -> str:
    return when.isoformat()


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(response.json())


def judged(response: Any) -> tuple[str, list[str]]:
    """The decision and its reasons' codes."""
    body = ok(response)
    return body["decision"], [r["code"] for r in body["reasons"]]


def refused_for_timestamp(response: Any) -> bool:
    return response.status_code == 422 and response.json().get("fields") == ["timestamp"]


def test_a_failure_stamped_in_2099_is_refused_and_wipes_no_failure_history(
        client: TestClient) -> None:
    # Observed: one failure stamped 2099 wiped the account's failures; seven later ones were
    # all allowed while a control account was challenged from its fifth.
    forged = client.post("/v1/score", json={**FAILURE, "user_id": "victim",
                                            "timestamp": "2099-01-01T00:00:00Z"})
    victim = [judged(client.post("/v1/score", json={**FAILURE, "user_id": "victim"}))
              for _ in range(7)]
    control = [judged(client.post("/v1/score", json={**FAILURE, "user_id": "control"}))
               for _ in range(7)]

    assert refused_for_timestamp(forged)
    assert "account_brute_force" in control[4][1]  # the rule there is to be dodged
    assert victim == control


@pytest.mark.parametrize("trust", [False, True], ids=["server clock", "trusted event time"])
@pytest.mark.parametrize("timestamp", [
    "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+01:00", "1999-12-31T23:59:59Z",
    "2101-01-01T00:00:00Z"])
def test_a_time_no_clock_can_mean_is_a_422_naming_timestamp(
        tmp_path: Path, timestamp: str, trust: bool) -> None:
    # Observed: these two gave a failover answer with internal_error and a traceback on
    # every request (features/extract.py).
    with client_for(tmp_path, trust_event_time=trust) as client:
        answer = client.post("/v1/score", json={**HOME, "user_id": "u1", "timestamp": timestamp})

    assert refused_for_timestamp(answer), answer.text


@pytest.mark.parametrize(("ahead", "refused"), [
    (timedelta(minutes=30), True), (timedelta(minutes=6), True),
    (timedelta(minutes=4), False), (timedelta(hours=-23), False),
    (timedelta(hours=-25), True), (timedelta(days=-40), True)])
def test_a_timestamp_is_bounded_around_the_servers_clock(
        client: TestClient, ahead: timedelta, refused: bool) -> None:
    answer = client.post("/v1/score", json={**HOME, "user_id": "u1",
                                            "timestamp": stamp(datetime.now(UTC) + ahead)})

    assert refused_for_timestamp(answer) is refused, answer.text
    assert answer.status_code in (200, 422)


def test_logins_stamped_days_ahead_teach_the_model_nothing(client: TestClient) -> None:
    # Observed: fifteen logins stamped two to thirty days ahead taught the model 15 lessons
    # from one account, against a cap of 8 a day.
    engine = client.app.state.built.engine
    before = engine.model.n_learned_
    now = datetime.now(UTC)
    answers = [client.post("/v1/score", json={**HOME, "user_id": "poisoner",
                                              "timestamp": stamp(now + timedelta(days=d))})
               for d in range(2, 32, 2)]

    assert all(refused_for_timestamp(a) for a in answers)
    assert engine.model.n_learned_ - before <= 8


def test_logins_within_the_skew_still_meet_the_daily_cap(client: TestClient) -> None:
    engine = client.app.state.built.engine
    before = engine.model.n_learned_
    now = datetime.now(UTC)
    for n in range(15):  # a known device on a known network: every one is learnable
        ok(client.post("/v1/score", json={**HOME, "user_id": "poisoner",
                                          "timestamp": stamp(now + timedelta(seconds=16 * n))}))

    assert engine.model.n_learned_ - before == 8  # the per-user cap of a day


def test_the_last_login_is_the_servers_receive_time(client: TestClient) -> None:
    # Observed: a login dated 30 minutes ahead became the profile's last login.
    engine = client.app.state.built.engine
    sent = datetime.now(UTC) + timedelta(minutes=4)  # within the allowed skew
    before = datetime.now(UTC).timestamp()
    ok(client.post("/v1/score", json={**HOME, "user_id": "u1", "timestamp": stamp(sent)}))
    after = datetime.now(UTC).timestamp()

    [key] = engine.user_keys("default", "u1")
    profile = engine.store.get_profile("default", key)
    assert profile is not None and profile.last_login is not None
    assert before <= profile.last_login <= after
    [stored] = engine.store.export_user("default", key).decisions
    assert before <= stored.ts <= after


def test_in_replay_mode_an_earlier_stamp_cannot_rewind_the_windows(tmp_path: Path) -> None:
    # RISKENGINE_TRUST_EVENT_TIME=1 runs the windows on the callers' timestamps (replays of
    # recorded traffic); a failure stamped before the account's latest one still counts
    # with everything after it: stamping each failure an hour before the last one must not
    # give an empty window every time.
    t0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    with client_for(tmp_path, trust_event_time=True) as client:
        rewinding = [judged(client.post("/v1/score", json={
            **FAILURE, "user_id": "victim", "timestamp": stamp(t0 - timedelta(hours=n))}))
            for n in range(7)]
        control = [judged(client.post("/v1/score", json={
            **FAILURE, "user_id": "control", "timestamp": stamp(t0 + timedelta(seconds=n))}))
            for n in range(7)]

    assert "account_brute_force" in control[4][1]
    assert rewinding == control


def test_in_replay_mode_old_timestamps_have_no_age_limit(tmp_path: Path) -> None:
    with client_for(tmp_path, trust_event_time=True) as client:
        answer = client.post("/v1/score", json={**HOME, "user_id": "u1",
                                                "timestamp": "2021-03-04T05:06:07+08:00"})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("trust", [False, True], ids=["server clock", "trusted event time"])
def test_trusting_the_callers_time_is_announced_at_start(
        tmp_path: Path, trust: bool, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="riskengine")
    with client_for(tmp_path, trust_event_time=trust) as client:
        assert client.get("/healthz").status_code == 200

    warned = [r for r in caplog.records
              if r.levelno == logging.WARNING and "RISKENGINE_TRUST_EVENT_TIME" in r.getMessage()]
    assert len(warned) == int(trust)
