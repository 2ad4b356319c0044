"""Who may call what: an API key per caller, and the scope each route needs.

Callers send their key as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` (when both
are sent, the Authorization header is the one checked). A route states what it needs with
``require``::

    @router.post("/v1/users/data", dependencies=[require(Scope.ADMIN)])

or, to know who called, ``caller: Annotated[KeyRecord | None, require(Scope.ADMIN)]`` (None
in open mode). ``require(a, b)`` takes a key with either scope. No valid key: 401 with
``WWW-Authenticate: Bearer``; a valid key without the scope: 403. ``admin`` implies every
scope. Every path under ``/v1/users`` and ``/v1/admin`` needs ``admin``; the ``AdminPaths``
middleware enforces it even for a route that forgot to say.

A key acts for the tenants it names. A route that takes a tenant (in its body) calls
``for_tenant(request, tenant)``: another tenant is a 403 naming ``tenant``. A route that acts
on every tenant at once (``/v1/admin``, ``/metrics``) needs a key for all tenants
(``require_all_tenants``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as Scope_

from riskengine.adapters.auth import KeyRecord, KeyStore, Scope
from riskengine.api.errors import ErrorBody

ADMIN_PATHS = ("/v1/users", "/v1/admin")

# For a route's ``responses=``: what the OpenAPI schema says of 401 and 403.
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No API key, or an invalid, unknown or revoked one"},
    403: {"model": ErrorBody, "description": "The API key lacks the scope this route needs, or "
          "does not act for the tenant named"},
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
    """401 or 403, answered as ``{"error": ..., "fields": [...]}`` like the service's other
    errors."""

    def __init__(self, status_code: int, detail: str, *, fields: tuple[str, ...] = (),
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code, detail, headers=headers)
        self.fields = fields


def _check_key(gate: Gate, presented: str | None, *scopes: Scope) -> KeyRecord | None:
    """The caller's key record (None in open mode), or ``AuthFailure``: the key must allow
    one of ``scopes``."""
    if gate.mode == "open":
        return None
    if not presented:
        raise AuthFailure(401, "an API key is required: send 'Authorization: Bearer <key>' "
                               "or 'X-API-Key: <key>'", headers={"WWW-Authenticate": "Bearer"})
    record = gate.keys.verify(presented) if gate.keys is not None else None
    if record is None:
        raise AuthFailure(401, "invalid, unknown or revoked API key",
                          headers={"WWW-Authenticate": "Bearer"})
    if not any(record.allows(scope) for scope in scopes):
        names = " or ".join(f"'{scope.value}'" for scope in scopes)
        raise AuthFailure(403, f"this API key lacks the {names} scope")
    return record


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request presents: an ``Authorization: Bearer`` credential, else the
    ``X-API-Key`` header (what ``HTTPBearer`` and ``APIKeyHeader``, which document the two
    schemes, each read)."""
    scheme, credentials = get_authorization_scheme_param(headers.get("Authorization"))
    if scheme.lower() == "bearer" and credentials:
        return credentials
    return headers.get("X-API-Key") or None


def authorize(request: Request, scopes: tuple[Scope, ...]) -> KeyRecord | None:
    """``require``'s check: the caller's key record for a key allowing one of ``scopes``
    (None in open mode), kept for ``caller_of``; else ``AuthFailure``."""
    record = _check_key(request.app.state.auth, presented_key(request.headers), *scopes)
    request.state.caller = record
    return record


def _check_for(scopes: tuple[Scope, ...]) -> Callable[..., Any]:
    # Async, though it does no awaiting: a sync dependency runs in the thread pool, and
    # the hop costs more than the check (a stat of the key file, one SHA-256). The two
    # scheme parameters put the schemes in the OpenAPI document; the key itself is read
    # by ``presented_key``, the same way.
    async def check(request: Request, bearer: BearerDep, api_key: ApiKeyDep
                    ) -> KeyRecord | None:
        return authorize(request, scopes)

    check.__name__ = check.__qualname__ = "require_" + "_or_".join(s.value for s in scopes)
    return check


# One dependency callable per set of scopes, so that FastAPI runs it once per request however
# many times a route and its dependencies ask for it.
_CHECKS: dict[tuple[Scope, ...], Callable[..., Any]] = {}


def require(*scopes: Scope | str) -> Any:
    """The dependency a route declares to need a key with one of ``scopes``."""
    wanted = tuple(Scope(scope) for scope in scopes)
    if not wanted:
        raise ValueError("require() needs a scope")
    if wanted not in _CHECKS:
        _CHECKS[wanted] = _check_for(wanted)
    # Security(..., scopes=...) rather than Depends: the OpenAPI schema then names the scope.
    return Security(_CHECKS[wanted], scopes=[scope.value for scope in wanted])


def checked_scopes(call: Callable[..., Any] | None) -> tuple[Scope, ...] | None:
    """The scopes ``call`` checks when it is one of ``require``'s dependency callables, else
    None (``riskengine.api.direct`` reads a route's checks from its dependencies)."""
    return next((scopes for scopes, check in _CHECKS.items() if check is call), None)


def caller_of(request: Request) -> KeyRecord | None:
    """The key record ``require`` found for this request (None in open mode)."""
    return getattr(request.state, "caller", None)


def for_tenant(request: Request, tenant: str) -> None:
    """403 naming ``tenant`` unless the caller's key acts for ``tenant``."""
    caller = caller_of(request)
    if caller is not None and not caller.serves(tenant):
        raise AuthFailure(403, "this API key does not act for this tenant", fields=("tenant",))


def needs_scope(request: Request, scope: Scope, *, field: str) -> None:
    """403 naming ``field`` unless the caller's key has ``scope`` (for a scope that one value
    of a field needs, e.g. ``source: analyst``)."""
    caller = caller_of(request)
    if caller is not None and not caller.allows(scope):
        raise AuthFailure(403, f"this API key lacks the '{scope.value}' scope this "
                               f"{field} needs", fields=(field,))


async def _all_tenants(request: Request) -> None:
    caller = caller_of(request)
    if caller is not None and not caller.all_tenants:
        raise AuthFailure(403, "this route acts on every tenant: it needs a key for all "
                               "tenants ('*')")


def require_all_tenants() -> Any:
    """The dependency (after ``require``) of a route that acts on every tenant at once."""
    return Depends(_all_tenants)


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
                try:
                    record = _check_key(conn.app.state.auth, presented_key(conn.headers),
                                        Scope.ADMIN)
                    if (record is not None and not record.all_tenants
                            and path.startswith("/v1/admin")):
                        raise AuthFailure(403, "the /v1/admin routes act on every tenant: "
                                               "they need a key for all tenants ('*')")
                except AuthFailure as exc:
                    await _failure_response(exc)(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _failure_response(exc: AuthFailure) -> JSONResponse:
    return JSONResponse(status_code=exc.status_code,
                        content={"error": exc.detail, "fields": list(exc.fields)},
                        headers=exc.headers)


async def auth_failed(request: Request, exc: Exception) -> JSONResponse:
    """The exception handler of ``AuthFailure``."""
    assert isinstance(exc, AuthFailure)
    return _failure_response(exc)


__all__ = ["AUTH_RESPONSES", "AdminPaths", "AuthFailure", "Gate", "Scope", "auth_failed",
           "authorize", "caller_of", "checked_scopes", "for_tenant", "needs_scope",
           "presented_key", "require", "require_all_tenants"]
