"""HTTP routes: thin views over the engine."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from riskengine.adapters.auth import Scope
from riskengine.adapters.stores.base import FeedbackOutcome
from riskengine.api.body import parse, request_body
from riskengine.api.deps import EngineDep, MetricsDep, engine_of, metrics_of
from riskengine.api.errors import COMMON_ERRORS, RETRY_AFTER_S, documented, error_response
from riskengine.api.security import (
    AUTH_RESPONSES,
    for_tenant,
    needs_scope,
    require,
    require_all_tenants,
)
from riskengine.core.feedback import Label, Source
from riskengine.core.wire import (
    FeedbackRequest,
    FeedbackResponse,
    ScoreRequest,
    ScoreResponse,
)

router = APIRouter(responses=COMMON_ERRORS)

# OpenAPI links: what a client (and the schemathesis tests' state machine) can do next with
# a scored login's answer, the values taken from the score request and its answer.
_THE_USER = {"user_id": "$request.body#/user_id", "tenant": "$request.body#/tenant"}
SCORE_LINKS = {
    "FeedbackOnTheLogin": {
        "operationId": "feedback",
        "requestBody": {"event_id": "$response.body#/event_id",
                        "tenant": "$request.body#/tenant"},
        "description": "Report what became of this login",
    },
    "ExportTheUser": {"operationId": "export_user", "requestBody": _THE_USER,
                      "description": "Everything stored about this login's user"},
    "EraseTheUser": {"operationId": "erase_user", "requestBody": _THE_USER,
                     "description": "Erase this login's user"},
}


@router.post("/v1/score", response_model=ScoreResponse, tags=["scoring"], operation_id="score",
             dependencies=[require(Scope.SCORE)], openapi_extra=request_body(ScoreRequest),
             responses={**AUTH_RESPONSES, **documented(409), 200: {"links": SCORE_LINKS}})
async def score(request: Request) -> Response:
    """Score one login or registration: ``allow``, ``challenge`` (which step-up) or ``deny``."""
    # Served by ``riskengine.api.direct`` (the key check, then this), not through FastAPI's
    # per-request dependency solving: hence the request alone, the engine and the metrics
    # taken from the app's state. The body is validated once, from its bytes
    # (``riskengine.api.body``: pydantic's core, no intermediate dict), with the errors
    # FastAPI gives for a declared body parameter; ``openapi_extra`` documents it as FastAPI
    # documents one.
    body = parse(ScoreRequest, await request.body())
    for_tenant(request, body.tenant)
    engine = engine_of(request)
    received_at = datetime.now(UTC)
    if engine.waits_on_network:
        scored = await run_in_threadpool(engine.score, body, received_at=received_at)
    else:
        # An embedded store and local signals answer in microseconds and the engine is
        # CPU-bound (one core, the GIL): scoring on the event loop spares the thread pool
        # hop, which costs about as much as the work.
        scored = engine.score(body, received_at=received_at)
    metrics_of(request).record(scored, tenant=body.tenant)
    # The body is ScoreResponse by construction (``engine.to_wire``); serialized directly
    # rather than validated again on the way out.
    return Response(orjson.dumps({**scored.body, "latency_ms": scored.latency_ms}),
                    media_type="application/json")


@router.post(
    "/v1/feedback",
    response_model=FeedbackResponse,
    tags=["scoring"],
    operation_id="feedback",
    dependencies=[require(Scope.FEEDBACK, Scope.ANALYST)],
    responses={**AUTH_RESPONSES, **documented(409),
               202: {"model": FeedbackResponse, "description": "The store is unavailable: "
                     "the feedback is kept in the outbox and applied when it is back"},
               404: {**documented(404)[404], "description": "No decision is kept under this "
                     "event_id"}},
)
def feedback(request: Request, body: FeedbackRequest, engine: EngineDep) -> Any:
    """Report what became of a scored login: a step-up result, a user's report (a
    ``feedback`` key), an analyst's verdict (``source: analyst``, an ``analyst`` key). The
    same feedback twice changes nothing."""
    for_tenant(request, body.tenant)
    if body.source == Source.ANALYST:
        needs_scope(request, Scope.ANALYST, field="source")
    outcome = engine.feedback(body.tenant, body.event_id, label=Label(body.label),
                              source=Source(body.source), challenge=body.challenge)
    if outcome is FeedbackOutcome.QUEUED:
        return JSONResponse(status_code=202, content={"event_id": body.event_id,
                                                      "status": outcome.value})
    if outcome is FeedbackOutcome.UNKNOWN_EVENT:
        return error_response(
            404, "unknown event_id (never scored here, or older than the retention)",
            ["event_id"])
    return {"event_id": body.event_id, "status": outcome.value}


@router.get("/healthz", tags=["operations"])
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", tags=["operations"], responses={503: {
    "description": "Not ready (the store is unreachable): the error shape, with the checks"}})
def readyz(engine: EngineDep) -> JSONResponse:
    """Ready to score: store reachable, rules and model loaded; IP data and its build dates."""
    checks: dict[str, Any] = {}
    ok = True
    try:
        engine.store.ping()
        checks["store"] = "ok"
    except Exception as exc:  # any failure means not ready; say which
        ok = False
        checks["store"] = f"unreachable: {type(exc).__name__}"
    card = engine.model_card  # the serving model's, after any rollback or snapshot
    checks["rules"] = {"version": engine.ruleset.label, "rules": len(engine.ruleset.rules)}
    checks["model"] = {"version": engine.model_version, "ready": engine.model.ready,
                       "trained_on": card.get("training", {}), "parent": card.get("parent"),
                       "lessons": engine.model.n_learned_}
    checks["ip_data"] = engine.ipintel.describe()
    if ok:
        return JSONResponse(status_code=200, content={"status": "ready", "checks": checks})
    # Not ready is a 503 like any other: in the one error shape, with what failed beside it.
    return error_response(503, "not ready: the store is unreachable", [], status="not ready",
                          checks=checks, headers={"Retry-After": str(RETRY_AFTER_S)})


@router.get("/metrics", tags=["operations"],
            dependencies=[require(Scope.METRICS), require_all_tenants()],
            response_class=Response, responses=AUTH_RESPONSES)
def prometheus_metrics(metrics: MetricsDep) -> Response:
    """Prometheus metrics (text format): decisions, latency, failovers, store errors. Needs
    a ``metrics`` key (read-only; ``admin`` too) for all tenants, or none in open mode."""
    content, content_type = metrics.exposition()
    return Response(content=content, media_type=content_type)
