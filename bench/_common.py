"""What the hot-path benchmarks share: traffic, engines built as the service builds them,
percentiles, the Redis database they may use, and where the figures go.

Not a module of the package: the scripts in ``bench/`` import it from their own folder.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Benchmarks use their own Redis database and clean it up afterwards; the test suite uses 13.
REDIS_URL = os.environ.get("RISKENGINE_BENCH_REDIS", "redis://127.0.0.1:6379/11")
# Keys the RedisStore and the lesson stream write (``re:`` prefix, the service's default).
REDIS_PREFIX = "re:"
# Issue #19's targets that more than one script weighs: riskengine / bare route throughput,
# 1 worker (0.6 in issue #10), and 2 workers / 1 worker on the Redis store.
TARGET_HTTP_RATIO = 0.5
TARGET_WORKERS = 1.7
# One simulated day of 2,000 customers is about 2,450 events.
EVENTS_PER_USER_DAY = 1.2


def simulate(*, events: int, users: int = 2000, seed: int = 1) -> list[dict[str, Any]]:
    """At least ``events`` simulated wire bodies (labels removed), in time order."""
    from riskengine.tools.simulate import Simulator

    days = max(3, math.ceil(events / (users * EVENTS_PER_USER_DAY)) + 2)
    while True:
        out = [{k: v for k, v in e.items() if k != "label"}
               for e in Simulator(users=users, days=days, seed=seed).events()]
        if len(out) >= events:
            return out[:events]
        days = math.ceil(days * 1.3) + 1


def settings(store: str, tmp: Path, **overrides: Any) -> Any:
    """The service's settings for a local benchmark: development keys, open API, no
    snapshots, and every file it may write kept in ``tmp``."""
    from riskengine.service.settings import Settings

    fields: dict[str, Any] = {
        "env": "development", "auth": "open", "store": store, "model_dir": None,
        "outbox": tmp / "outbox.db", "api_keys": tmp / "keys.json", "log_level": "WARNING",
    }
    fields.update(overrides)
    return Settings(_env_file=None, **fields)


def build(store: str, tmp: Path) -> Any:
    """An engine assembled exactly as ``riskengine.service.build.build_engine`` does."""
    from riskengine.service.build import build_engine

    return build_engine(settings(store, tmp))


def store_url(kind: str, tmp: Path) -> str:
    if kind == "memory":
        return "memory:"
    if kind == "sqlite":
        return f"sqlite:{tmp / 'bench.db'}"
    if kind == "redis":
        return REDIS_URL
    raise ValueError(f"unknown store {kind!r}")


def redis_clean(url: str = REDIS_URL) -> int:
    """Delete every key the store and the lesson stream wrote in the benchmark database."""
    import redis

    r = redis.Redis.from_url(url)
    gone = 0
    batch: list[bytes] = []
    for key in r.scan_iter(match=REDIS_PREFIX + "*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            gone += r.unlink(*batch)
            batch.clear()
    if batch:
        gone += r.unlink(*batch)
    r.close()
    return gone


def redis_up(url: str = REDIS_URL) -> bool:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
        return True
    except (redis.RedisError, OSError):
        return False


def quantile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile of sorted values (nearest rank)."""
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def med(values: Iterable[float]) -> float:
    got = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(got) if got else math.nan


def machine() -> dict[str, Any]:
    """Where and when the figures were taken."""
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0],
    }


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps({"machine": machine(), **data}, indent=2,
                                     default=str) + "\n")
    print(f"\nfigures written to {path}", file=sys.stderr)


def scaling_ceiling(server: float, client: float, redis: float, *, workers: int,
                    machine_cores: int, one_worker_cores: float = 1.0) -> float:
    """The most ``workers`` worker processes can give over one on ``machine_cores`` cores, a
    request costing the server, the client and Redis ``server``, ``client`` and ``redis`` of
    CPU (one unit, any): each worker uses at most one core, all of them, the client and
    Redis share the machine's, and a request costs no less with more workers. One worker
    keeps ``one_worker_cores`` busy (at most 1), or less when the machine runs out first."""
    if server <= 0:
        raise ValueError("a request that costs the server no CPU has no bound")
    # The server's cores the whole machine allows, the client and Redis served alongside.
    allowed = machine_cores * server / (server + client + redis)
    return min(float(workers), allowed) / min(one_worker_cores, allowed)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Stopwatch:
    """Wall time and this process's CPU time of a block."""

    def __enter__(self) -> Stopwatch:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0


# -- apps for bench/http.py: uvicorn imports these by name (``--factory _common:...``) -------

# A constant answer shaped like riskengine's, for the bare endpoints.
CONSTANT_ANSWER: dict[str, Any] = {
    "event_id": "bench", "decision": "allow", "score": 0.0, "challenge": None,
    "reasons": [{"code": "no_risk_signals", "message": "constant", "contribution": 0.0,
                 "observed": {}}],
    "rules_version": "bench", "model_version": "bench", "latency_ms": 0.0,
    "failover": False, "user_message": None,
}


def riskengine_app() -> Any:
    """The scoring service as ``riskengine serve`` builds it: ``create_app(settings)``,
    logging configured the same way (``riskengine.adapters.logsetup``), with the store and files the
    benchmark names in ``BENCH_HTTP_STORE`` and ``BENCH_HTTP_TMP``."""
    from riskengine.adapters import logsetup
    from riskengine.api import create_app

    tmp = Path(os.environ["BENCH_HTTP_TMP"])
    configured = settings(os.environ["BENCH_HTTP_STORE"], tmp,
                          log_level=os.environ.get("BENCH_HTTP_LOG_LEVEL", "INFO"))
    logsetup.configure(configured.log_level)
    return create_app(configured, settle_heap=True)


def bare_app() -> Any:
    """The limit of the stack, the baseline of the ratio: an ``async`` route (as the scoring
    route is) that parses the same body model (``riskengine.core.wire.ScoreRequest``) and answers
    a constant, serialized once, in the same way (``orjson``, a plain ``Response``)."""
    import orjson
    from fastapi import FastAPI
    from fastapi.responses import Response

    from riskengine.core.wire import ScoreRequest

    app = FastAPI()
    constant = orjson.dumps(CONSTANT_ANSWER)

    async def score(body):  # type: ignore[no-untyped-def]
        return Response(constant, media_type="application/json")

    # Set here, not written as annotations: this module postpones them to strings, which
    # FastAPI could not resolve to the locally imported model.
    score.__annotations__ = {"body": ScoreRequest, "return": Response}
    app.post("/v1/score")(score)
    app.get("/healthz")(_healthz)
    return app


def bare_bytes_app() -> Any:
    """For comparison: the async bare route with the body parsed as the scoring route parses
    it (``riskengine.api.body.json_body``: from the bytes, in pydantic's core)."""
    from typing import Annotated

    import orjson
    from fastapi import FastAPI
    from fastapi.responses import Response

    from riskengine.api.body import json_body
    from riskengine.core.wire import ScoreRequest

    app = FastAPI()
    constant = orjson.dumps(CONSTANT_ANSWER)

    async def score(body):  # type: ignore[no-untyped-def]
        return Response(constant, media_type="application/json")

    score.__annotations__ = {"body": Annotated[ScoreRequest, json_body(ScoreRequest)],
                             "return": Response}
    app.post("/v1/score")(score)
    app.get("/healthz")(_healthz)
    return app


def bare_sync_app() -> Any:
    """For comparison: a sync route (FastAPI runs it in its thread pool) that parses the
    same body and answers a constant through the response model ``ScoreResponse``."""
    from fastapi import FastAPI

    from riskengine.core.wire import ScoreRequest, ScoreResponse

    app = FastAPI()

    def score(body):  # type: ignore[no-untyped-def]
        return CONSTANT_ANSWER

    score.__annotations__ = {"body": ScoreRequest, "return": dict[str, Any]}
    app.post("/v1/score", response_model=ScoreResponse)(score)
    app.get("/healthz")(_healthz)
    return app


def _healthz() -> dict[str, str]:
    return {"status": "ok"}
