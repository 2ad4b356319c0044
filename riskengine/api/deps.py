"""What a route may ask for, each defined once: what the lifespan put in ``app.state``
(``def readyz(engine: EngineDep)``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from riskengine.api.metrics import ServiceMetrics
from riskengine.service.build import Built
from riskengine.service.scorer import Engine
from riskengine.service.settings import Settings


def engine_of(request: Request) -> Engine:
    """The app's engine (for a route served without dependencies, ``riskengine.api.direct``)."""
    return request.app.state.built.engine  # type: ignore[no-any-return]


def metrics_of(request: Request) -> ServiceMetrics:
    """The app's service metrics."""
    return request.app.state.metrics  # type: ignore[no-any-return]


# Async, though they do no I/O: FastAPI runs a sync dependency in the thread pool, and that
# hop costs more than what they do.
async def _built(request: Request) -> Built:
    return request.app.state.built  # type: ignore[no-any-return]


async def _engine(request: Request) -> Engine:
    return engine_of(request)


async def _metrics(request: Request) -> ServiceMetrics:
    return metrics_of(request)


async def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


BuiltDep = Annotated[Built, Depends(_built)]
EngineDep = Annotated[Engine, Depends(_engine)]
MetricsDep = Annotated[ServiceMetrics, Depends(_metrics)]
SettingsDep = Annotated[Settings, Depends(_settings)]

__all__ = ["BuiltDep", "EngineDep", "MetricsDep", "SettingsDep", "engine_of", "metrics_of"]
