"""Who may call what: an API key per caller, and the scope each route needs.

Callers send their key as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` (when both
are sent, the Authorization header is the one checked). A route states what it needs with
``require``::

    @router.get("/v1/users/{user_id}", dependencies=[require(Scope.ADMIN)])

or, to know who called, ``caller: Annotated[KeyRecord | None, require(Scope.ADMIN)]`` (None
in open mode). No valid key: 401 with ``WWW-Authenticate: Bearer``; a valid key without the
scope: 403. ``admin`` implies every scope. Every path under ``/v1/users`` and ``/v1/admin``
needs ``admin``; the ``AdminPaths`` middleware enforces it even for a route that forgot to say.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import HTTPException, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as Scope_

from riskengine.adapters.auth import KeyRecord, KeyStore, Scope

ADMIN_PATHS = ("/v1/users", "/v1/admin")

# For a route's ``responses=``: what the OpenAPI schema says of 401 and 403.
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No API key, or an invalid, unknown or revoked one"},
    403: {"description": "The API key lacks the scope this route needs"},
}

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer rk_…`")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False,
                        description="An API key: `X-API-Key: rk_…`")

BearerDep = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
ApiKeyDep = Annotated[str | None, Security(_api_key)]


@dataclass(frozen=True, slots=True)
class Gate:
    """How an app checks callers: ``keys`` against a key store, or ``open`` (no check, for
    development and tests only; production settings refuse it)."""

    mode: Literal["keys", "open"]
    keys: KeyStore | None = None


class AuthFailure(HTTPException):
    """401 or 403, answered as ``{"error": ...}`` like the service's other errors."""


def _check_key(gate: Gate, presented: str | None, scope: Scope) -> KeyRecord | None:
    """The caller's key record (None in open mode), or ``AuthFailure``."""
    if gate.mode == "open":
        return None
    if not presented:
        raise AuthFailure(401, "an API key is required: send 'Authorization: Bearer <key>' "
                               "or 'X-API-Key: <key>'", headers={"WWW-Authenticate": "Bearer"})
    record = gate.keys.verify(presented) if gate.keys is not None else None
    if record is None:
        raise AuthFailure(401, "invalid, unknown or revoked API key",
                          headers={"WWW-Authenticate": "Bearer"})
    if not record.allows(scope):
        raise AuthFailure(403, f"this API key lacks the '{scope.value}' scope")
    return record


def _check_for(scope: Scope) -> Callable[..., Any]:
    # Async, though it does no awaiting: a sync dependency runs in the thread pool, and
    # the hop costs more than the check (a stat of the key file, one SHA-256).
    async def check(request: Request, bearer: BearerDep, api_key: ApiKeyDep
                    ) -> KeyRecord | None:
        presented = bearer.credentials if bearer is not None else api_key
        record = _check_key(request.app.state.auth, presented, scope)
        request.state.caller = record
        return record

    check.__name__ = check.__qualname__ = f"require_{scope.value}"
    return check


# One dependency callable per scope, so that FastAPI runs it once per request however many
# times a route and its dependencies ask for it.
_CHECKS = {scope: _check_for(scope) for scope in Scope}


def require(scope: Scope | str) -> Any:
    """The dependency a route declares to need a key with ``scope``."""
    wanted = Scope(scope)
    # Security(..., scopes=...) rather than Depends: the OpenAPI schema then names the scope.
    return Security(_CHECKS[wanted], scopes=[wanted.value])


def is_admin_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in ADMIN_PATHS)


class AdminPaths:
    """ASGI middleware: a request under ``/v1/users`` or ``/v1/admin`` needs an ``admin``
    key before any route sees it, whether or not that route declared
    ``require(Scope.ADMIN)`` (which it should, for the docs and to know its caller). A route
    added there without it is thus still closed, and unknown paths there answer 401, not
    404, to a caller without a key."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope_, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            root = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root):]
            if is_admin_path(path):
                conn = HTTPConnection(scope)
                scheme, credentials = get_authorization_scheme_param(
                    conn.headers.get("Authorization"))
                presented = (credentials if scheme.lower() == "bearer" and credentials
                             else conn.headers.get("X-API-Key"))
                try:
                    _check_key(conn.app.state.auth, presented, Scope.ADMIN)
                except AuthFailure as exc:
                    await _failure_response(exc)(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _failure_response(exc: AuthFailure) -> JSONResponse:
    return JSONResponse(status_code=exc.status_code, content={"error": exc.detail},
                        headers=exc.headers)


async def auth_failed(request: Request, exc: Exception) -> JSONResponse:
    """The exception handler of ``AuthFailure``."""
    assert isinstance(exc, AuthFailure)
    return _failure_response(exc)


__all__ = ["AUTH_RESPONSES", "AdminPaths", "AuthFailure", "Gate", "Scope", "auth_failed",
           "require"]
