"""The FastAPI application: ``create_app(settings)`` loads everything once at start-up."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from riskengine import __version__
from riskengine.adapters.auth import KeyStore, Scope
from riskengine.api import admin, errors, routes, users
from riskengine.api.body import add_schemas
from riskengine.api.direct import direct, find_route
from riskengine.api.guards import MAX_BODY_BYTES, BodyGuard, InFlightLimit
from riskengine.api.metrics import ServiceMetrics
from riskengine.api.security import AdminPaths, AuthFailure, Gate, auth_failed
from riskengine.core.wire import ScoreRequest
from riskengine.service import build as service
from riskengine.service.settings import Settings

log = logging.getLogger("riskengine.api")


@dataclass(frozen=True, slots=True)
class Prepared:
    """What the service needs before it answers: its settings, its callers' keys, its
    engine. Whatever stops a start (a key too short, an unreadable key file, a model without
    its card, a store that cannot be opened) is raised while preparing it."""

    settings: Settings
    auth: Gate
    built: service.Built


def prepare(settings: Settings | None = None) -> Prepared:
    """The service's parts, with ``settings`` (else the environment's)."""
    resolved = service.service_settings(settings)
    # Callers first: an unreadable key file stops the start before anything is opened.
    auth = _gate(resolved)
    return Prepared(resolved, auth, service.build_engine(resolved))


def create_app(settings: Settings | None = None, *, settle_heap: bool = False,
               prepared: Prepared | None = None) -> FastAPI:
    """The scoring service, with ``settings`` (else the environment's).

    ``settle_heap`` (what ``riskengine serve`` asks for): once the engine is built, call
    ``riskengine.service.build.settle_heap``. Not for tests: each app would freeze the whole test
    process's heap. ``prepared``: parts ``prepare`` made already (``riskengine serve`` makes
    them before it binds the port, so that a failed start is one line, not a server's
    traceback); else the app prepares them as it starts.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ready = prepared or prepare(settings)
        app.state.settings = ready.settings
        app.state.auth = ready.auth
        built = app.state.built = ready.built
        if settle_heap:
            service.settle_heap()
        background = service.Background(built, ready.settings)
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
    errors.install(app)
    app.add_exception_handler(AuthFailure, auth_failed)
    # Outermost first: the concurrency limit, then the body's size and type, then the admin
    # paths' key check (add_middleware puts each new one outside the ones before it).
    app.add_middleware(AdminPaths)
    app.add_middleware(BodyGuard, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(InFlightLimit)
    # The scoring route first, served directly (``riskengine.api.direct``); its APIRoute,
    # in ``routes.router``, documents it.
    app.router.routes.insert(0, direct(find_route(routes.router.routes, routes.score)))
    app.include_router(routes.router)
    app.include_router(users.router)
    app.include_router(admin.router)
    app.include_router(admin.page)
    app.state.metrics = ServiceMetrics()
    _document_parsed_bodies(app)
    return app


def _document_parsed_bodies(app: FastAPI) -> None:
    """The request models of the routes that parse their body themselves
    (``riskengine.api.body``) among the OpenAPI document's components, where FastAPI would
    have put them for a declared body."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_schemas(generate(), ScoreRequest)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


def served_app() -> FastAPI:
    """The app as each worker process of ``riskengine serve --workers N`` builds it (uvicorn
    imports ``riskengine.api.app:served_app`` in every worker): settings from the
    environment, which the command has filled from its options; logging off the event loop
    (``riskengine.adapters.logsetup``); the heap settled after start-up."""
    from riskengine.adapters import logsetup

    settings = Settings()
    logsetup.configure(settings.log_level)
    return create_app(settings, settle_heap=True)


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
            "--scope score --tenant TENANT`; revoke: `riskengine keys revoke ID`.",
            settings.api_keys, key)
    elif not any(not record.revoked for record in existing):
        log.warning("no active API key in %s: every call to /v1/ is refused with 401 until "
                    "one is made with `riskengine keys create`", settings.api_keys)
    elif settings.env == "development":
        log.info("API keys from %s: %d active. The development key was shown at the first "
                 "start only; `riskengine keys create --name NAME --scope admin --tenant '*'` "
                 "makes another",
                 settings.api_keys, sum(not record.revoked for record in existing))
    else:
        log.info("API keys from %s: %d active", settings.api_keys,
                 sum(not record.revoked for record in existing))
    return Gate("keys", keys)
