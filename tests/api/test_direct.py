"""The scoring route served directly (``riskengine.api.direct``): the same answers as its
FastAPI route, the same key checks, and nothing a route declares skipped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPBearer
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers
from starlette.routing import Route

from riskengine.adapters.auth import KeyStore, Scope
from riskengine.api import create_app, routes
from riskengine.api.direct import declared_scopes, direct, find_route
from riskengine.api.security import presented_key, require
from riskengine.service.settings import Settings

LOGIN = {"user_id": "+8613800138000", "ip": "123.120.5.9", "event_id": "auth-1",
         "tenant": "default"}


def _served_directly(app: FastAPI) -> list[Route]:
    return [route for route in app.router.routes
            if type(route) is Route and route.name == "score"]


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "keys.json")


@pytest.fixture
def pair(tmp_path: Path, keys: KeyStore) -> Iterator[tuple[TestClient, TestClient]]:
    """Two apps alike, each with its own store: the first as served, the second with the
    direct route taken away, so that FastAPI's route answers."""
    apps = [create_app(Settings(env="test", auth="keys", store=f"sqlite:{tmp_path / name}",
                                api_keys=keys.path)) for name in ("a.db", "b.db")]
    direct_routes = _served_directly(apps[1])
    assert len(direct_routes) == 1
    apps[1].router.routes.remove(direct_routes[0])
    with TestClient(apps[0]) as served, TestClient(apps[1]) as declared:
        yield served, declared


def test_the_scoring_route_is_served_directly_and_documented_by_its_api_route() -> None:
    app = create_app(Settings(env="test", auth="open", store="memory"))

    first = app.router.routes[0]
    assert first in _served_directly(app) and not isinstance(first, APIRoute)
    assert first.path == "/v1/score" and first.methods == {"POST"}
    assert not first.include_in_schema
    assert "/v1/score" in app.openapi()["paths"]  # from the APIRoute


def _requests(keys: KeyStore) -> list[tuple[str, dict[str, str], Any]]:
    score = keys.create("score", [Scope.SCORE])[1]
    feedback = keys.create("feedback", [Scope.FEEDBACK])[1]
    admin = keys.create("admin", [Scope.ADMIN])[1]
    elsewhere = keys.create("elsewhere", [Scope.SCORE], tenants=["shop-b"])[1]
    revoked_record, revoked = keys.create("revoked", [Scope.SCORE])
    keys.revoke(revoked_record.id)
    login = [("valid", {"Authorization": f"Bearer {score}"}, LOGIN),
             ("x-api-key", {"X-API-Key": score}, {**LOGIN, "event_id": "auth-2"}),
             ("admin", {"Authorization": f"bearer {admin}"}, {**LOGIN, "event_id": "auth-3"})]
    refused = [
        ("no key", {}, LOGIN),
        ("empty bearer", {"Authorization": "Bearer "}, LOGIN),
        ("basic scheme", {"Authorization": f"Basic {score}"}, LOGIN),
        ("basic, then a header key", {"Authorization": f"Basic {feedback}",
                                      "X-API-Key": score}, {**LOGIN, "event_id": "auth-4"}),
        ("bearer wins", {"Authorization": f"Bearer {feedback}", "X-API-Key": score}, LOGIN),
        ("revoked", {"Authorization": f"Bearer {revoked}"}, LOGIN),
        ("unknown", {"X-API-Key": "rk_000000000000_" + "A" * 43}, LOGIN),
        ("lacks the scope", {"Authorization": f"Bearer {feedback}"}, LOGIN),
        ("another tenant", {"Authorization": f"Bearer {elsewhere}"}, LOGIN),
        ("no key, bad body", {}, {"ip": "not-an-ip"}),
        ("bad body", {"Authorization": f"Bearer {score}"}, {**LOGIN, "ip": "not-an-ip"}),
        ("missing field", {"Authorization": f"Bearer {score}"}, {"ip": "1.2.3.4"}),
        ("not an object", {"Authorization": f"Bearer {score}"}, [1, 2]),
        ("not json", {"Authorization": f"Bearer {score}",
                      "Content-Type": "application/json"}, b"{nope"),
        ("replayed id, other body", {"Authorization": f"Bearer {score}"},
         {**LOGIN, "ip": "8.8.8.8"}),
    ]
    return login + refused


def test_the_direct_route_answers_as_its_fastapi_route(pair: tuple[TestClient, TestClient],
                                                       keys: KeyStore) -> None:
    served, declared = pair
    statuses = set()
    for name, headers, body in _requests(keys):
        answers = []
        for client in (served, declared):
            if isinstance(body, bytes):
                response = client.post("/v1/score", content=body, headers=headers)
            else:
                response = client.post("/v1/score", json=body, headers=headers)
            payload = response.json()
            if isinstance(payload, dict):
                payload.pop("latency_ms", None)
            answers.append((response.status_code, payload,
                            response.headers.get("www-authenticate"),
                            response.headers.get("content-type")))
        assert answers[0] == answers[1], name
        statuses.add(answers[0][0])
    assert statuses == {200, 400, 401, 403, 409, 422}  # every kind of answer compared


def test_other_methods_are_refused_as_before(pair: tuple[TestClient, TestClient]) -> None:
    served, declared = pair
    for method in ("GET", "PUT", "DELETE"):
        a, b = (client.request(method, "/v1/score") for client in (served, declared))
        assert (a.status_code, a.json(), a.headers.get("allow")) == (
            b.status_code, b.json(), b.headers.get("allow")), method
        assert a.status_code == 405


_HEADER_VALUE = st.one_of(
    st.none(),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20),
    st.builds(lambda scheme, sep, cred: f"{scheme}{sep}{cred}",
              st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", "Token", ""]),
              st.sampled_from([" ", "  ", "", "\t"]),
              st.text(alphabet="abc_- ", max_size=8)),
)


@settings(max_examples=400, deadline=None)
@given(authorization=_HEADER_VALUE, api_key=_HEADER_VALUE)
def test_the_presented_key_is_what_the_documented_schemes_read(authorization: str | None,
                                                               api_key: str | None) -> None:
    """``presented_key`` against FastAPI's ``HTTPBearer`` and ``APIKeyHeader`` (the schemes
    the OpenAPI document names), as ``require`` used to combine them."""
    import asyncio

    raw = [(name.encode(), value.encode()) for name, value in
           (("authorization", authorization), ("x-api-key", api_key)) if value is not None]
    request = Request({"type": "http", "headers": raw, "method": "POST", "path": "/"})

    async def documented() -> str | None:
        bearer = await HTTPBearer(auto_error=False)(request)
        header = await APIKeyHeader(name="X-API-Key", auto_error=False)(request)
        return bearer.credentials if bearer is not None else header

    assert presented_key(Headers(raw=raw)) == asyncio.run(documented())


# -- what cannot be served directly ----------------------------------------------------


async def _needs_request(request: Request) -> Response:
    return Response(b"{}", media_type="application/json")


def _route(endpoint: Any, **kwargs: Any) -> APIRoute:
    router = APIRouter()
    router.post("/x", **kwargs)(endpoint)
    route = router.routes[0]
    assert isinstance(route, APIRoute)
    return route


def test_the_checks_are_read_from_the_declared_dependencies() -> None:
    route = _route(_needs_request, dependencies=[require(Scope.SCORE),
                                                 require(Scope.ADMIN, "feedback")])

    assert declared_scopes(route) == ((Scope.SCORE,), (Scope.ADMIN, Scope.FEEDBACK))


async def _other(request: Request) -> None:
    return None


async def _with_body(request: Request, body: dict[str, int]) -> Response:
    return Response(b"{}")


async def _with_query(request: Request, q: int) -> Response:
    return Response(b"{}")


async def _without_request() -> Response:
    return Response(b"{}")


def _sync(request: Request) -> Response:
    return Response(b"{}")


@pytest.mark.parametrize(("endpoint", "kwargs", "said"), [
    (_needs_request, {"dependencies": [require(Scope.SCORE), Depends(_other)]}, "_other"),
    (_with_body, {"dependencies": [require(Scope.SCORE)]}, "body"),
    (_with_query, {}, "query"),
    (_without_request, {"dependencies": [require(Scope.SCORE)]}, "no request"),
    (_sync, {"dependencies": [require(Scope.SCORE)]}, "not async"),
])
def test_a_route_that_needs_more_is_refused(endpoint: Any, kwargs: dict[str, Any],
                                            said: str) -> None:
    with pytest.raises(TypeError, match=said):
        direct(_route(endpoint, **kwargs))


def test_a_directly_served_route_keeps_its_check(tmp_path: Path, keys: KeyStore) -> None:
    app = create_app(Settings(env="test", auth="keys", store=f"sqlite:{tmp_path / 're.db'}",
                              api_keys=keys.path))
    app.router.routes.insert(0, direct(_route(_needs_request,
                                              dependencies=[require(Scope.ADMIN)])))
    score = keys.create("score", [Scope.SCORE])[1]
    admin = keys.create("admin", [Scope.ADMIN])[1]

    with TestClient(app) as client:
        assert client.post("/x").status_code == 401
        assert client.post("/x", headers={"X-API-Key": score}).status_code == 403
        assert client.post("/x", headers={"X-API-Key": admin}).status_code == 200


def test_find_route_names_what_it_could_not_find() -> None:
    assert find_route(routes.router.routes, routes.score).path == "/v1/score"
    with pytest.raises(LookupError, match="_needs_request"):
        find_route(routes.router.routes, _needs_request)


def test_a_dependency_of_the_router_is_seen_too() -> None:
    router = APIRouter(dependencies=[Depends(_other)])
    router.post("/x", dependencies=[require(Scope.SCORE)])(_needs_request)
    route = router.routes[0]
    assert isinstance(route, APIRoute)

    with pytest.raises(TypeError, match="_other"):
        direct(route)
