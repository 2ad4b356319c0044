"""One error shape for every 4xx and 5xx: ``{"error": ..., "fields": [...]}``, with the right
status for each way a request can be wrong, and 503 with Retry-After when the store is down or
the service is at its limit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from riskengine.adapters.auth import KeyStore, Scope
from riskengine.api import create_app
from riskengine.api.errors import as_conflict, conflict
from riskengine.api.guards import InFlightLimit
from riskengine.service.settings import Settings
from tests.servers import store_down_client

LOGIN = {"user_id": "li.wei@example.cn", "ip": "123.120.5.9"}
JSON = {"Content-Type": "application/json"}


def shaped(response: Any, status: int, fields: list[str] | None = None) -> dict[str, Any]:
    """The body of ``response``, checked to be the one error shape with ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["fields"], list) and all(isinstance(f, str) for f in body["fields"])
    if fields is not None:
        assert body["fields"] == fields
    return body


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(env="test", auth="open", store=f"sqlite:{tmp_path / 'r.db'}",
                        _env_file=None)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize(
    "body",
    [b"not json", b"{not json", b'{"user_id": "a", "ip": "1.2.3.4",}',
     b'{"user_id": "\xff\xfe", "ip": "1.2.3.4"}', b"[" * 20_000 + b"]" * 20_000,
     b"\xef\xbb\xbf{}" + b"\x00"],
    ids=["words", "broken", "trailing comma", "invalid utf-8", "deep nesting", "nul"])
def test_a_body_that_is_not_json_is_400_naming_the_body(client: TestClient, body: bytes
                                                        ) -> None:
    for path in ("/v1/score", "/v1/feedback", "/v1/users/data"):
        answer = shaped(client.post(path, content=body, headers=JSON), 400, ["body"])
        assert "detail" not in answer  # no byte offset passed off as a field name


@pytest.mark.parametrize("content_type", [
    "application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x",
    "application/xml"])
def test_another_content_type_is_415(client: TestClient, content_type: str) -> None:
    body = b"user_id=li.wei&ip=123.120.5.9"
    for path in ("/v1/score", "/v1/feedback", "/v1/users/erase"):
        shaped(client.post(path, content=body, headers={"Content-Type": content_type}), 415,
               ["body"])


def test_a_form_body_is_415(client: TestClient) -> None:
    shaped(client.post("/v1/score", data=LOGIN), 415, ["body"])


def test_json_with_a_charset_or_a_json_suffix_is_taken(client: TestClient) -> None:
    for content_type in ("application/json; charset=utf-8", "application/vnd.api+json"):
        answer = client.post("/v1/score", content=json.dumps(LOGIN),
                             headers={"Content-Type": content_type})
        assert answer.status_code == 200, answer.text


def test_a_missing_or_bad_field_is_422_naming_it(client: TestClient) -> None:
    body = shaped(client.post("/v1/score", json={"ip": "123.120.5.9"}), 422, ["user_id"])
    assert body["detail"][0]["field"] == "user_id"
    shaped(client.post("/v1/score", json={**LOGIN, "ip": "999.1.1.1"}), 422, ["ip"])
    shaped(client.post("/v1/score", json=[LOGIN]), 422, ["body"])


def test_unknown_paths_and_methods(client: TestClient) -> None:
    shaped(client.get("/v1/nothing"), 404, [])
    wrong = client.get("/v1/score")
    shaped(wrong, 405, [])
    assert "POST" in wrong.headers["allow"]
    shaped(client.put("/v1/feedback", json={}), 405, [])
    shaped(client.delete("/healthz"), 405, [])


def test_a_body_over_the_limit_is_413(client: TestClient) -> None:
    body = shaped(client.post("/v1/score", json={**LOGIN, "user_agent": "a" * 70_000}), 413,
                  ["body"])
    assert body["limit_bytes"] == 64 * 1024


def test_an_unknown_event_is_404_naming_it(client: TestClient) -> None:
    shaped(client.post("/v1/feedback", json={"event_id": "never", "label": "fraud",
                                             "source": "user_report"}), 404, ["event_id"])


def test_401_and_403_have_the_shape(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "keys.json")
    _, scorer = keys.create("s", [Scope.SCORE], tenants=["shop"])
    settings = Settings(env="test", auth="keys", store=f"sqlite:{tmp_path / 'r.db'}",
                        api_keys=keys.path, _env_file=None)
    with TestClient(create_app(settings)) as client:
        denied = client.post("/v1/score", json=LOGIN)
        shaped(denied, 401, [])
        assert denied.headers["www-authenticate"] == "Bearer"
        shaped(client.post("/v1/users/data", json={"user_id": "x"}), 401, [])
        as_scorer = {"Authorization": f"Bearer {scorer}"}
        shaped(client.post("/v1/feedback", json={}, headers=as_scorer), 403, [])
        shaped(client.post("/v1/score", json=LOGIN, headers=as_scorer), 403, ["tenant"])


def test_the_conflict_helpers_answer_409_naming_the_field(tmp_path: Path) -> None:
    """What the event-id check raises (``conflict`` in a route, ``as_conflict`` for an
    exception from below the API)."""

    class Reused(Exception):
        pass

    router = APIRouter()

    @router.post("/v1/test/conflict")
    def clash() -> None:
        raise conflict("event_id", "this event_id was used for another login")

    @router.post("/v1/test/reused")
    def reused() -> None:
        raise Reused("event_id used for another login")

    app = create_app(Settings(env="test", auth="open", store=f"sqlite:{tmp_path / 'r.db'}",
                              _env_file=None))
    app.include_router(router)
    app.add_exception_handler(Reused, as_conflict("event_id"))
    with TestClient(app) as client:
        shaped(client.post("/v1/test/conflict"), 409, ["event_id"])
        body = shaped(client.post("/v1/test/reused"), 409, ["event_id"])
    assert body["error"] == "event_id used for another login"


def test_an_unexpected_error_is_a_500_in_the_shape(client: TestClient) -> None:
    router = APIRouter()

    @router.get("/v1/test/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    app = client.app
    assert isinstance(app, FastAPI)
    app.include_router(router)
    body = shaped(client.get("/v1/test/boom"), 500, [])
    assert "a bug" not in body["error"]


# -- the store down ---------------------------------------------------------------------


@pytest.fixture
def store_down(tmp_path: Path) -> Iterator[TestClient]:
    """An app whose Redis store listens nowhere."""
    with store_down_client(tmp_path) as client:
        yield client


def test_with_the_store_down_user_data_routes_are_503_with_retry_after(
        store_down: TestClient) -> None:
    for path in ("/v1/users/data", "/v1/users/erase"):
        answer = store_down.post(path, json={"user_id": "li.wei@example.cn"})
        shaped(answer, 503, [])
        assert int(answer.headers["retry-after"]) >= 1


def test_with_the_store_down_scoring_and_feedback_still_answer(store_down: TestClient) -> None:
    scored = store_down.post("/v1/score", json=LOGIN)
    assert scored.status_code == 200 and scored.json()["failover"] is True
    told = store_down.post("/v1/feedback", json={"event_id": "e", "label": "fraud",
                                                 "source": "user_report"})
    assert told.status_code == 202  # kept in the outbox for when the store is back


# -- the concurrency limit ----------------------------------------------------------------


def test_past_the_concurrency_limit_the_answer_is_503_with_retry_after() -> None:
    """Two requests held inside the app, a limit of two: the third is refused at once, in the
    shape, and taken again once one of the two is done. The health probe is never refused."""
    release = asyncio.Event()

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    limit = InFlightLimit(slow_app, max_in_flight=2, retry_after_s=3)

    async def call(path: str) -> tuple[int, dict[bytes, bytes], bytes]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await limit({"type": "http", "path": path, "method": "POST"}, receive, send)
        return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]

    async def scenario() -> None:
        held = [asyncio.create_task(call("/v1/score")) for _ in range(2)]
        await asyncio.sleep(0)
        assert limit.in_flight == 2
        status, headers, body = await call("/v1/score")
        assert status == 503 and headers[b"retry-after"] == b"3"
        answer = json.loads(body)
        assert answer["fields"] == [] and "limit" in answer["error"]
        health = asyncio.create_task(call("/healthz"))
        await asyncio.sleep(0)
        assert not health.done()  # let through, waiting in the app like the others
        release.set()
        assert [(await t)[0] for t in (*held, health)] == [200, 200, 200]
        assert limit.in_flight == 0
        assert (await call("/v1/score"))[0] == 200

    asyncio.run(scenario())
