"""The FastAPI application: ``create_app(settings)`` loads everything once at start-up."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from riskengine import __version__
from riskengine.adapters.auth import KeyStore, Scope
from riskengine.api import admin, routes, users
from riskengine.api.metrics import ServiceMetrics
from riskengine.api.security import AdminPaths, AuthFailure, Gate, auth_failed
from riskengine.service import build as service
from riskengine.service.settings import Settings

log = logging.getLogger("riskengine.api")


MAX_BODY_BYTES = 64 * 1024  # a login event is well under 4 KiB


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, before anything parses them, whether
    or not the client declared a length."""

    def __init__(self, app: Any, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(send)
            return
        # Read the whole body first (it is small, or refused): a framework that parses it
        # later would turn an error raised mid-stream into a generic 400.
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await _too_large(send)
                return
            if not message.get("more_body", False):
                break
        replay = iter(messages)

        async def buffered() -> Any:
            return next(replay, None) or await receive()

        await self.app(scope, buffered, send)


async def _too_large(send: Any) -> None:
    body = b'{"error": "request body too large", "limit_bytes": %d}' % MAX_BODY_BYTES
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings | None = None, *, settle_heap: bool = False) -> FastAPI:
    """The scoring service, with ``settings`` (else the environment's).

    ``settle_heap`` (what ``riskengine serve`` asks for): once the engine is built, call
    ``riskengine.service.build.settle_heap``. Not for tests: each app would freeze the whole test
    process's heap.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = service.service_settings(settings)
        app.state.settings = resolved
        # Callers first: an unreadable key file stops the start before anything is opened.
        app.state.auth = _gate(resolved)
        built = app.state.built = service.build_engine(resolved)
        if settle_heap:
            service.settle_heap()
        background = service.Background(built, resolved)
        background.start()
        try:
            yield
        finally:
            background.stop()
            service.close_engine(built.engine)

    app = FastAPI(
        title="riskengine",
        version=__version__,
        summary="Login risk scoring: allow, challenge or deny, with the reasons.",
        lifespan=lifespan,
    )
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(AuthFailure, auth_failed)
    app.add_middleware(AdminPaths)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.include_router(routes.router)
    app.include_router(users.router)
    app.include_router(admin.router)
    app.include_router(admin.page)
    app.state.metrics = ServiceMetrics()
    return app


def _gate(settings: Settings) -> Gate:
    """How callers are checked; in development, the first start makes a key and logs it."""
    if settings.auth == "open":
        log.warning("RISKENGINE_AUTH=open: the API answers ANY caller, without a key "
                    "(development and tests only)")
        return Gate("open")
    keys = KeyStore(settings.api_keys)
    existing = keys.list()
    if settings.env == "development" and not existing:
        _, key = keys.create("development", list(Scope))
        # The one place a key is ever logged: a local trial's first start, so that
        # `make run` prints a key to try the API with. It is not kept anywhere in clear.
        log.warning(
            "development mode: no API key existed, so one with every scope was made and its "
            "hash saved in %s. Call the API with\n\n    Authorization: Bearer %s\n\n"
            "This key is shown only this once. More: `riskengine keys create --name NAME "
            "--scope score`; revoke: `riskengine keys revoke ID`.", settings.api_keys, key)
    elif not any(not record.revoked for record in existing):
        log.warning("no active API key in %s: every call to /v1/ is refused with 401 until "
                    "one is made with `riskengine keys create`", settings.api_keys)
    elif settings.env == "development":
        log.info("API keys from %s: %d active. The development key was shown at the first "
                 "start only; `riskengine keys create --name NAME --scope admin` makes another",
                 settings.api_keys, sum(not record.revoked for record in existing))
    else:
        log.info("API keys from %s: %d active", settings.api_keys,
                 sum(not record.revoked for record in existing))
    return Gate("keys", keys)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    """422 naming each bad field; the offending values are not echoed (they may be ids)."""
    assert isinstance(exc, RequestValidationError)
    errors: list[dict[str, Any]] = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        errors.append({"field": ".".join(loc) or "body", "message": err.get("msg", ""),
                       "type": err.get("type", "")})
    fields = sorted({e["field"] for e in errors})
    return JSONResponse(
        status_code=422,
        content={"error": f"invalid request: {', '.join(fields)}", "fields": fields,
                 "detail": errors},
    )

