"""Where a scoring request's time goes inside the process, step by step: the app driven
through its ASGI interface (no sockets, no server), so the steps add up to what the
application costs a request; what the server (uvicorn, httptools) adds on top is the
difference between ``http.py``'s rates and these.

Steps, each measured by wrapping (in this process only) what the route calls, in CPU
microseconds a request:

    parse       the body into ``ScoreRequest``: ``riskengine.api.body.parse`` where the
                route parses its own body, else FastAPI's ``Request.json`` and
                ``request_body_to_args`` (a declared body parameter)
    engine      ``Engine.score`` (edge, store, features, rules, model, policy, record)
    metrics     ``ServiceMetrics.record``
    serialize   the answer to JSON (``orjson.dumps`` in the route)
    dependencies  FastAPI solving the route's dependencies (the parse taken out); none
                since the scoring route is served directly (``riskengine.api.direct``),
                which checks the key itself
    framework   the rest: middleware (in-flight limit, body guard, admin paths), routing,
                the key check, the response sent
    other threads  the process's other threads meanwhile: the log line's writer (one line
                a decision, at INFO as served; written to ``--log-file``), the store's

The steps are timed on the thread that runs the requests (``time.thread_time``).

and, for the floor, the same requests through the ``bare`` and ``bare-bytes`` apps of
``bench/_common.py`` (an async route parsing the body, answering a constant).

    .venv/bin/python bench/http_steps.py                         # SQLite, 5,000 timed
    .venv/bin/python bench/http_steps.py --store memory --requests 3000

Compare two trees by running it with each on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

SPENT: dict[str, float] = defaultdict(float)


def timed(step: str, fn: Callable[..., Any], *also: str) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent = time.thread_time() - t0
            for name in (step, *also):
                SPENT[name] += spent

    return wrapper


def timed_async(step: str, fn: Callable[..., Any], *also: str) -> Callable[..., Any]:
    # Only for coroutines that do not wait (the body is already in memory here).
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.thread_time()
        try:
            return await fn(*args, **kwargs)
        finally:
            spent = time.thread_time() - t0
            for name in (step, *also):
                SPENT[name] += spent

    return wrapper


def instrument() -> str:
    """Wrap the steps; say how the route parses its body."""
    import fastapi.dependencies.utils as fastapi_deps
    import fastapi.routing
    import orjson
    from starlette.requests import Request

    from riskengine.api import routes
    from riskengine.api.metrics import ServiceMetrics
    from riskengine.service.scorer import Engine

    # The top-level call only (nested ones go through the dependencies module's own name);
    # the body's parse, when it is a dependency, is inside it and taken out below.
    fastapi.routing.solve_dependencies = timed_async(  # type: ignore[assignment]
        "dependencies", fastapi.routing.solve_dependencies)
    Engine.score = timed("engine", Engine.score)  # type: ignore[method-assign]
    ServiceMetrics.record = timed("metrics", ServiceMetrics.record)  # type: ignore[method-assign]

    class Orjson:
        dumps = staticmethod(timed("serialize", orjson.dumps))
        loads = staticmethod(orjson.loads)

    routes.orjson = Orjson  # type: ignore[assignment]
    try:
        from riskengine.api import body
    except ImportError:
        body = None
    if body is not None and hasattr(routes, "parse"):
        routes.parse = timed("parse", routes.parse)  # type: ignore[assignment]
        return "from bytes (riskengine.api.body)"
    Request.json = timed_async("parse", Request.json)  # type: ignore[method-assign]
    fastapi_deps.request_body_to_args = timed_async(  # type: ignore[assignment]
        "parse", fastapi_deps.request_body_to_args, "parse_inside")
    return "FastAPI's declared body (json.loads, then validation)"


async def drive(app: Any, bodies: list[bytes], *, warmup: int) -> tuple[float, float]:
    """Post each body through ``app``'s ASGI interface; CPU seconds a request after
    ``warmup`` requests, with the step counters reset at that point: of the thread that
    runs the requests, and of the process's other threads (the log writer, the store's)."""
    answers: list[int] = []

    async def one(raw: bytes) -> None:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": "/v1/score", "raw_path": b"/v1/score",
            "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                        (b"content-length", str(len(raw)).encode())],
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answers.append(message["status"])

        await app(scope, receive, send)

    for raw in bodies[:warmup]:
        await one(raw)
    SPENT.clear()
    t0, p0 = time.thread_time(), time.process_time()
    for raw in bodies[warmup:]:
        await one(raw)
    cpu, process = time.thread_time() - t0, time.process_time() - p0
    bad = [status for status in answers if status != 200]
    if bad:
        raise SystemExit(f"{len(bad)} answers were not 200 (first: {bad[0]})")
    n = len(bodies) - warmup
    return cpu / n, (process - cpu) / n


async def with_lifespan(app: Any, bodies: list[bytes], warmup: int) -> tuple[float, float]:
    async with app.router.lifespan_context(app):
        return await drive(app, bodies, warmup=warmup)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=["sqlite", "memory"], default="sqlite")
    parser.add_argument("--warmup", type=int, default=5000,
                        help="logins scored before timing (through the app itself)")
    parser.add_argument("--requests", type=int, default=5000, help="timed requests")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the bare apps")
    parser.add_argument("--log-file", default=os.devnull,
                        help="where the decision log lines go (stderr is the terminal)")
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "http_steps.json"))
    args = parser.parse_args()
    os.environ["RISKENGINE_TRUST_EVENT_TIME"] = "1"  # simulated logins carry past times
    # The log writer writes to stderr, as the server's does (to its log file in http.py).
    log = open(args.log_file, "w")  # noqa: SIM115 - for the whole run
    os.dup2(log.fileno(), 2)

    events = c.simulate(events=args.warmup + args.requests)
    bodies = [json.dumps(e, separators=(",", ":")).encode() for e in events]
    out: dict[str, Any] = {"store": args.store}
    with tempfile.TemporaryDirectory(prefix="bench-steps-") as folder:
        tmp = Path(folder)
        os.environ.update({"BENCH_HTTP_STORE": c.store_url(args.store, tmp),
                           "BENCH_HTTP_TMP": str(tmp), "BENCH_HTTP_LOG_LEVEL": "INFO"})
        bare = {}
        for name in ("bare_app", "bare_bytes_app"):
            factory = getattr(c, name, None)
            if factory is None:
                continue
            app = factory()
            runs = [sum(asyncio.run(drive(app, bodies[:args.requests], warmup=500)))
                    for _ in range(args.repeat)]
            bare[name] = statistics.median(runs) * 1e6
        out["parsing"] = instrument()
        app = c.riskengine_app()
        main_s, others_s = asyncio.run(with_lifespan(app, bodies, args.warmup))
    n = args.requests
    main, others = main_s * 1e6, others_s * 1e6
    steps = {step: SPENT[step] / n * 1e6
             for step in ("parse", "dependencies", "engine", "metrics", "serialize")}
    # Both ways of parsing run inside the dependencies' solving (the declared body is
    # validated there, the parsed one is a dependency; Request.json is before it).
    steps["dependencies"] -= SPENT["parse_inside"] / n * 1e6
    steps["framework"] = main - sum(steps.values())
    steps["other threads"] = others
    total = main + others
    out.update({"us_per_request": total, "steps_us": steps, "bare_us": bare})
    print(f"body parsing: {out['parsing']}; {args.store} store, {n:,} requests timed after "
          f"{args.warmup:,}")
    print(f"{'riskengine, CPU us a request':<32}{total:10.1f}")
    for step, us in steps.items():
        print(f"  {step:<30}{us:10.1f}")
    for name, us in bare.items():
        print(f"{name.removesuffix('_app').replace('_', '-') + ' (floor)':<32}{us:10.1f}")
    c.write_json(args.out, {"args": vars(args), **out})
    return 0


if __name__ == "__main__":
    sys.exit(main())
