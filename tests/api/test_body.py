"""The score body parsed from its bytes (``riskengine.api.body``) answers as FastAPI's own
parsing of a declared ``body: ScoreRequest`` does: the same model for what it accepts, the
same status and error body for what it refuses, and the same OpenAPI document.

The reference is FastAPI itself: a route declared the way the scoring route was before it
parsed its own body, added to the same app (same middleware, same error handlers).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskengine.api import admin, create_app, routes, users
from riskengine.api.body import parse
from riskengine.core.wire import Device, Network, ScoreRequest, Sim
from riskengine.service.settings import Settings

GOOD: dict[str, Any] = {
    "event_id": "body-1",
    "tenant": "default",
    "user_id": "li.wei@example.cn",
    "event_type": "login",
    "auth_result": "success",
    "login_method": "password",
    "ip": "123.120.5.9",
    "timestamp": "2026-11-02T09:30:00+08:00",
    "user_agent": "okhttp/4.12",
    "device": {"id": "490154203237518", "model": "Xiaomi 14", "os_name": "Android",
               "os_version": "14", "bluetooth_mac": "3c:22:fb:12:34:56"},
    "network": {"type": "wifi", "ssid": "Home"},
    "sim": {"imsi": "460001234567890", "iccid": "89860012345678901234"},
    "phone": "+8613800138000",
}
REFERENCE = "/reference/score"


def _reference(body: Any) -> dict[str, Any]:
    return {"parsed": body.model_dump(mode="json")}


# Set here, not as an annotation: this module postpones annotations to strings.
_reference.__annotations__ = {"body": ScoreRequest, "return": dict[str, Any]}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    db = tmp_path_factory.mktemp("body") / "re.db"
    app = create_app(Settings(env="test", auth="open", store=f"sqlite:{db}"))
    app.post(REFERENCE)(_reference)
    with TestClient(app) as c:
        yield c


def _post(client: TestClient, path: str, raw: bytes,
          content_type: str = "application/json") -> tuple[int, Any]:
    answer = client.post(path, content=raw, headers={"content-type": content_type})
    return answer.status_code, answer.json()


def same_as_fastapi(client: TestClient, raw: bytes) -> None:
    """``raw`` posted to the scoring route is refused exactly as FastAPI refuses it, or
    parsed into the model FastAPI makes of it."""
    status, expected = _post(client, REFERENCE, raw)
    if status == 200:
        assert parse(ScoreRequest, raw).model_dump(mode="json") == expected["parsed"]
        return
    got = _post(client, "/v1/score", raw)
    assert got == (status, expected), raw


def _variants() -> Iterator[bytes]:
    """Every field of the body (nested ones too) set to values of every JSON type and to
    values each field's checks refuse, and the body dropped or replaced whole."""
    odd = [None, 0, 1.5, True, "", " ", "x" * 2000, [], {}, ["a"], {"a": 1}, "a\nb",
           "\u0000", "é", "999.1.1.1", "2026-13-02T09:30:00+08:00"]
    for name in GOOD:
        for value in odd:
            yield json.dumps({**GOOD, name: value}).encode()
        yield json.dumps({k: v for k, v in GOOD.items() if k != name}).encode()
    for part in ("device", "network", "sim"):
        for name, value in itertools.product(GOOD[part], odd):
            yield json.dumps({**GOOD, part: {**GOOD[part], name: value}}).encode()


RAW = [
    b"", b" ", b"null", b"[]", b"{}", b'"text"', b"1", b"true", b"{", b"}", b"{'a': 1}",
    b"NaN", b'{"user_id": NaN, "ip": "1.2.3.4"}', b"\xff\xfe", b"\xff",
    b"\xef\xbb\xbf" + json.dumps(GOOD).encode(),  # a UTF-8 byte-order mark
    json.dumps(GOOD).encode("utf-16"),
    b'{"user_id": "\\ud800", "ip": "1.2.3.4"}',  # a lone surrogate
    b'{"user_id": "a", "user_id": "b", "ip": "1.2.3.4"}',  # the last one counts
    b"[" * 2000 + b"]" * 2000, b'{"a":' * 600 + b"1" + b"}" * 600,
    json.dumps(GOOD).encode() + b" trailing",
    json.dumps({"user_id": "u", "ip": "1.2.3.4"}).encode(),
    json.dumps(GOOD).encode(),
]


@pytest.mark.parametrize("raw", RAW, ids=[str(i) for i in range(len(RAW))])
def test_whole_bodies_answer_as_fastapi_does(client: TestClient, raw: bytes) -> None:
    same_as_fastapi(client, raw)


def test_every_field_with_every_kind_of_value_answers_as_fastapi_does(
        client: TestClient) -> None:
    variants = list(_variants())
    assert len(variants) > 350
    for raw in variants:
        same_as_fastapi(client, raw)


def test_the_error_shape_is_the_service_one(client: TestClient) -> None:
    status, body = _post(client, "/v1/score", b"{not json")
    assert (status, body) == (400, {"error": body["error"], "fields": ["body"]})
    status, body = _post(client, "/v1/score", json.dumps({**GOOD, "ip": "abc"}).encode())
    assert status == 422 and body["fields"] == ["ip"]
    assert body["detail"][0]["field"] == "ip"
    status, body = _post(client, "/v1/score", b"")
    assert status == 422 and body["fields"] == ["body"]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=6)
_fields = st.sampled_from([*GOOD, *(f"{p}.{n}" for p in ("device", "network", "sim")
                                    for n in GOOD[p])])


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(_fields, _json | st.text(max_size=30), max_size=4))
def test_arbitrary_values_answer_as_fastapi_does(client: TestClient,
                                                 changes: dict[str, Any]) -> None:
    body = json.loads(json.dumps(GOOD))
    for path, value in changes.items():
        *parent, name = path.split(".")
        node = body
        if parent:
            if not isinstance(node.get(parent[0]), dict):
                node[parent[0]] = {}
            node = node[parent[0]]
        node[name] = value
    same_as_fastapi(client, json.dumps(body).encode())


def test_the_scoring_route_scores_what_it_parsed(client: TestClient) -> None:
    status, answer = _post(client, "/v1/score", json.dumps(GOOD).encode())
    assert status == 200
    assert answer["event_id"] == GOOD["event_id"]
    # +json media types are JSON too, as FastAPI reads them.
    status, answer = _post(client, "/v1/score",
                           json.dumps({**GOOD, "event_id": "body-2"}).encode(),
                           content_type="application/vnd.login+json; charset=utf-8")
    assert (status, answer["event_id"]) == (200, "body-2")


def _declared_the_fastapi_way(app: FastAPI) -> FastAPI:
    """An app with ``app``'s routers, its scoring route declared as FastAPI parses a body:
    ``body: ScoreRequest`` as a parameter, and no ``openapi_extra``."""
    route = next(r for r in routes.router.routes
                 if isinstance(r, APIRoute) and r.path == "/v1/score")

    async def score(body: Any) -> Any:  # pragma: no cover - documented, never called
        return None

    score.__annotations__ = {"body": ScoreRequest, "return": Any}
    score.__doc__ = route.endpoint.__doc__
    declared = APIRouter(responses=routes.router.responses)
    for other in routes.router.routes:
        if other is route:
            declared.add_api_route(
                route.path, score, methods=sorted(route.methods),
                response_model=route.response_model, tags=route.tags,
                operation_id=route.operation_id, dependencies=route.dependencies,
                responses=route.responses,
                name=route.name)
        else:
            declared.routes.append(other)
    reference = FastAPI(title=app.title, version=app.version, summary=app.summary)
    # The routers in create_app's order.
    for router in (declared, users.router, admin.router, admin.page):
        reference.include_router(router)
    return reference


def test_the_openapi_document_is_the_one_fastapi_writes_for_a_declared_body(
        tmp_path: Path) -> None:
    app = create_app(Settings(env="test", auth="open", store=f"sqlite:{tmp_path / 're.db'}"))
    ours = app.openapi()
    theirs = _declared_the_fastapi_way(app).openapi()
    assert json.dumps(ours, sort_keys=False) == json.dumps(theirs, sort_keys=False)
    score = ours["paths"]["/v1/score"]["post"]
    assert score["requestBody"] == {"content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/ScoreRequest"}}}, "required": True}
    for model in (ScoreRequest, Device, Network, Sim):
        assert model.__name__ in ours["components"]["schemas"]


def test_the_key_is_checked_before_the_body_is_read(tmp_path: Path) -> None:
    """With keys, a caller without one gets 401 whatever its body, a body that is not JSON
    included (FastAPI's declared body answered that one 400 before checking the key)."""
    app = create_app(Settings(env="test", auth="keys", store=f"sqlite:{tmp_path / 're.db'}",
                              api_keys=tmp_path / "keys.json", outbox=tmp_path / "o.db"))
    with TestClient(app) as keyless:
        for raw in (b"{not json", b"", b"null", json.dumps(GOOD).encode()):
            status, body = _post(keyless, "/v1/score", raw)
            assert status == 401 and body["fields"] == [], raw
