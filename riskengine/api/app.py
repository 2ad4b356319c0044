"""The FastAPI application: ``create_app(settings)`` loads everything once at start-up."""

from __future__ import annotations

import logging
import threading
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
from riskengine.service.build import Built, ModelKeeper, build_engine, drain_outbox_forever
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


def create_app(settings: Settings | None = None, *, built: Built | None = None,
               settle_heap: bool = False) -> FastAPI:
    """The scoring service. Pass ``built`` to serve an engine assembled elsewhere (tests).

    ``settle_heap`` (what ``riskengine serve`` asks for): once the engine is built, call
    ``riskengine.service.build.settle_heap``. Not for tests: each app would freeze the whole test
    process's heap.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal built
        resolved_settings = settings if settings is not None or built is not None else Settings()
        # Callers first: an unreadable key file stops the start before anything is opened.
        app.state.auth = _gate(resolved_settings)
        if built is None:
            assert resolved_settings is not None
            resolved = resolved_settings
            if resolved.env == "development" and resolved.pseudonym_key is None:
                log.warning("development mode: identifiers are pseudonymized with a PUBLIC "
                            "key; set RISKENGINE_PSEUDONYM_KEY before real traffic")
            built = build_engine(resolved)
        app.state.built = built
        if settle_heap:
            service.settle_heap()
        app.state.settings_backtest_report = (
            resolved_settings.backtest_report if resolved_settings is not None else None)
        keeper = thread = None
        stop = threading.Event()
        drainer = watcher = None
        if built.rules is not None and resolved_settings is not None and \
                resolved_settings.rules_watch_s > 0:
            watcher = threading.Thread(target=built.rules.watch,
                                       args=(stop, resolved_settings.rules_watch_s),
                                       name="rules-watch", daemon=True)
            watcher.start()
        if built.engine.outbox is not None:
            drainer = threading.Thread(target=drain_outbox_forever, args=(built.engine, stop),
                                       name="outbox-drainer", daemon=True)
            drainer.start()
        if built.follower is not None:
            # A shared learner owns the model; this instance follows its snapshots.
            thread = threading.Thread(target=built.follower.run, args=(stop,),
                                      name="model-follower", daemon=True)
            thread.start()
        elif resolved_settings is not None and resolved_settings.model_dir is not None:
            keeper = ModelKeeper(built.engine, resolved_settings.model_dir,
                                 resolved_settings.signing_key())
            thread = threading.Thread(
                target=keeper.run, args=(stop, resolved_settings.snapshot_interval_s),
                name="model-keeper", daemon=True)
            thread.start()
        app.state.keeper = keeper
        try:
            yield
        finally:
            stop.set()
            for running in (thread, drainer, watcher):
                if running is not None:
                    running.join(timeout=5)
            if keeper is not None:
                try:
                    keeper.tick()  # the snapshot on shutdown
                except Exception:
                    log.exception("model snapshot at shutdown failed")
            built.engine.store.close()
            if built.engine.outbox is not None:
                built.engine.outbox.close()

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


def _gate(settings: Settings | None) -> Gate:
    """How callers are checked; in development, the first start makes a key and logs it."""
    if settings is None:  # an engine built elsewhere, no settings: keys, from the default file
        return Gate("keys", KeyStore(Settings.model_fields["api_keys"].default))
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

