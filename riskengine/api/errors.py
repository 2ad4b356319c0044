"""One error shape for every 4xx and 5xx the service answers: ``{"error": ..., "fields": [...]}``.

``error`` is a sentence for the person reading the log; ``fields`` names the request fields at
fault (dotted paths, ``body`` for the body as a whole), empty when none is. A 422 also carries
``detail`` (each field's message and type); a 413 its ``limit_bytes``. Values the caller sent
are never echoed: they may be identifiers.

A route refuses a request by raising ``ApiError`` (or one of the helpers below); the handlers
installed by ``install`` turn FastAPI's and Starlette's own refusals (validation, unknown path,
wrong method, unparsable body) and a failing store into the same shape. A 503 says when to try
again (``Retry-After``).

>>> conflict("event_id", "this event_id was already used for another login").status
409
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from riskengine.adapters.stores.base import StoreError
from riskengine.core.wire import ERROR_RESPONSES

log = logging.getLogger("riskengine.api")

# What a 503 tells a client to wait, in seconds, before it tries again.
RETRY_AFTER_S = 1


class ErrorBody(BaseModel):
    """Every 4xx and 5xx body (a 422 adds ``detail``, a 413 ``limit_bytes``)."""

    error: str
    fields: list[str]


class ApiError(Exception):
    """A refusal in the service's error shape: raise it from a route or a dependency."""

    def __init__(self, status: int, error: str, fields: Iterable[str] = (), *,
                 headers: Mapping[str, str] | None = None, **extra: Any) -> None:
        super().__init__(error)
        self.status, self.error, self.fields = status, error, list(fields)
        self.headers, self.extra = dict(headers or {}), extra

    def response(self) -> JSONResponse:
        return error_response(self.status, self.error, self.fields, headers=self.headers,
                              **self.extra)


def error_response(code: int, error: str, fields: Iterable[str] = (), *,
                   headers: Mapping[str, str] | None = None, **extra: Any) -> JSONResponse:
    """The one error body, as a response with status ``code``."""
    return JSONResponse(status_code=code,
                        content={"error": error, "fields": list(fields), **extra},
                        headers=dict(headers) if headers else None)


def error_bytes(code: int, error: str, fields: Iterable[str] = (), **extra: Any) -> bytes:
    """The body of ``error_response``, for ASGI middleware that answers before any route."""
    return bytes(error_response(code, error, fields, **extra).body)


def conflict(field: str, error: str) -> ApiError:
    """409: the request contradicts what the service already holds under ``field`` (an
    event_id sent again with another body). ``raise conflict("event_id", "...")``."""
    return ApiError(409, error, [field])


def as_conflict(field: str) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    """An exception handler answering 409 naming ``field``, with the exception's message,
    for an exception raised below the API (the service cannot import this module)::

        app.add_exception_handler(EventIdConflict, as_conflict("event_id"))
    """

    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return conflict(field, str(exc) or f"{field} conflicts with what is stored").response()

    return handler


def unavailable(error: str = "the store is unavailable; nothing was changed",
                *, retry_after_s: int = RETRY_AFTER_S) -> ApiError:
    """503 with ``Retry-After``: a dependency is down or the service is at its limit."""
    return ApiError(503, error, headers={"Retry-After": str(retry_after_s)})


# Starlette's and FastAPI's own refusals, by status, in this service's words.
_MESSAGES = {
    400: "the body is not valid JSON (or not UTF-8, or nested too deeply)",
    404: "no such route",
    405: "this route does not take this method",
    415: "the body must be JSON (Content-Type: application/json)",
}


async def _validation_failed(request: Request, exc: Exception) -> JSONResponse:
    """422 naming each bad field; 400 when the body was not JSON at all."""
    assert isinstance(exc, RequestValidationError)
    errors: list[dict[str, Any]] = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            # FastAPI names the byte offset of the syntax error as the field: the body is
            # at fault, not a field.
            return error_response(400, _MESSAGES[400], ["body"])
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        errors.append({"field": ".".join(loc) or "body", "message": err.get("msg", ""),
                       "type": err.get("type", "")})
    fields = sorted({e["field"] for e in errors})
    return error_response(422, f"invalid request: {', '.join(fields)}", fields, detail=errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    detail = exc.detail if isinstance(exc.detail, str) else None
    # FastAPI's own 400 ("There was an error parsing the body") and Starlette's 404/405
    # say the same thing in their words; this service says it in one shape.
    message = _MESSAGES.get(status) or detail or "request refused"
    fields = ["body"] if status in (400, 415) else []
    return error_response(status, message, fields, headers=exc.headers)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _store_failed(request: Request, exc: Exception) -> JSONResponse:
    """A store error that reached the edge (an export or erasure while the store is down)."""
    log.warning("store error on %s %s: %s", request.method, request.url.path,
                type(exc).__name__)
    return unavailable().response()


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """Anything else: 500 in the same shape (Starlette still logs the traceback)."""
    return error_response(500, "internal error", [])


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    """The engine refused the request because of one field (``riskengine.core.edge.Refused``:
    a timestamp out of range is 422, an event_id reused for another login 409)."""
    field = str(getattr(exc, "field", "body"))
    return error_response(int(getattr(exc, "status", 422)), str(exc) or f"{field} refused",
                          [field])


def install(app: FastAPI) -> None:
    """Answer every refusal of ``app`` in the one shape."""
    from riskengine.core import edge

    # The engine's refusals carry their status and field (409 for a reused event_id).
    refused = getattr(edge, "Refused", None)
    if refused is not None:
        app.add_exception_handler(refused, _refused)
    app.add_exception_handler(RequestValidationError, _validation_failed)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StoreError, _store_failed)
    app.add_exception_handler(Exception, _unexpected)


# For a route's ``responses=``: what the OpenAPI schema says of the errors every route may
# answer (the 422's own model, with ``detail``, comes from ``riskengine.core.wire``).
def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "The body is not valid JSON (or not UTF-8, or nested too deeply)",
        401: "No API key, or an invalid, unknown or revoked one",
        403: "The API key lacks the scope this route needs, or acts for another tenant",
        404: "Not found",
        409: "The request contradicts what the service holds (e.g. an event_id reused)",
        413: "The body is over the size limit (64 KiB)",
        415: "The body is not JSON",
        503: "The store is unavailable or the service is at its limit; see Retry-After",
    }
    return {s: {"model": ErrorBody, "description": descriptions[s]} for s in statuses}


__all__ = ["COMMON_ERRORS", "RETRY_AFTER_S", "ApiError", "ErrorBody", "as_conflict",
           "conflict", "documented",
           "error_bytes", "error_response", "install", "unavailable"]


# What any route may answer besides its own: the body refusals, the service at its limit.
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {**ERROR_RESPONSES,
                                                  **documented(400, 413, 415, 503)}
