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
from riskengine.api import routes
from riskengine.service import Built, ModelKeeper, build_engine, drain_outbox_forever
from riskengine.settings import Settings

log = logging.getLogger("riskengine.api")


def create_app(settings: Settings | None = None, *, built: Built | None = None) -> FastAPI:
    """The scoring service. Pass ``built`` to serve an engine assembled elsewhere (tests)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal built
        resolved_settings = settings
        if built is None:
            resolved = resolved_settings = settings or Settings()
            if resolved.env == "development" and resolved.pseudonym_key is None:
                log.warning("development mode: identifiers are pseudonymized with a PUBLIC "
                            "key; set RISKENGINE_PSEUDONYM_KEY before real traffic")
            built = build_engine(resolved)
        app.state.built = built
        keeper = thread = None
        stop = threading.Event()
        drainer = None
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
            for running in (thread, drainer):
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
    app.include_router(routes.router)
    return app


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

