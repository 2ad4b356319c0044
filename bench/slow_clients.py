"""Slow clients against ``riskengine serve``: how soon stalled connections are closed, and what
the deadlines cost a request.

1. ``--stalled`` connections (default 1,000) to a real ``riskengine serve`` with header and
   body deadlines of ``--deadline-s`` (default 2 s): a quarter send half a header, a quarter a
   header and half a body, a quarter nothing, a quarter dribble a header a byte every 0.2 s.
   Reported: how many were closed, and when after they opened (p50, max), by kind; and the
   latency of ``GET /healthz`` from another client meanwhile.
2. The same bare ASGI app (one POST answered with ``{}``) under uvicorn's own httptools
   protocol and under ``riskengine.api.server.DeadlineProtocol``, both on the event loop
   ``riskengine serve`` runs on, interleaved ``--repeat``
   times, ``--seconds`` each, ``--connections`` keep-alive clients: requests per second.

    .venv/bin/python bench/slow_clients.py
    .venv/bin/python bench/slow_clients.py --stalled 300 --repeat 1 --seconds 3   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from tests.servers import clean_env, free_port, serve  # noqa: E402

KINDS = ("partial header", "partial body", "nothing", "dribbled header")
HEADER = b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


async def _stalled_run(port: int, n: int, deadline_s: float) -> dict[str, object]:
    closed: dict[str, list[float]] = {kind: [] for kind in KINDS}
    started = time.monotonic()

    async def one(kind: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        opened = time.monotonic()
        if kind == "partial header":
            writer.write(HEADER)
        elif kind == "partial body":
            writer.write(HEADER + b"Content-Length: 1000\r\n\r\n{\"user_id\": ")
        dribble = HEADER + b"Content-Length: 2\r\n\r\n{}"
        sent = 0
        while True:
            if kind == "dribbled header" and sent < len(dribble):
                writer.write(dribble[sent:sent + 1])
                sent += 1
            try:
                data = await asyncio.wait_for(reader.read(4096), timeout=0.2)
            except TimeoutError:
                if time.monotonic() - opened > deadline_s * 2 + 30:
                    return  # never closed: counted as open
                continue
            except ConnectionError:
                data = b""
            if not data:
                closed[kind].append(time.monotonic() - opened)
                writer.close()
                return

    async def probe() -> list[float]:
        latencies = []
        while time.monotonic() - started < deadline_s * 2:
            t = time.monotonic()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            await reader.read()
            writer.close()
            latencies.append((time.monotonic() - t) * 1000)
            await asyncio.sleep(0.1)
        return latencies

    tasks = [asyncio.create_task(one(KINDS[i % 4])) for i in range(n)]
    health = await probe()
    await asyncio.gather(*tasks)
    return {
        "connections": n, "deadline_s": deadline_s,
        "closed": {kind: {"count": len(t), "p50_s": round(statistics.median(t), 2),
                          "max_s": round(max(t), 2)} for kind, t in closed.items() if t},
        "still_open": n - sum(len(t) for t in closed.values()),
        "healthz_ms_during": {"p50": round(statistics.median(health), 1),
                              "max": round(max(health), 1), "n": len(health)},
    }


BARE_APP = '''
import sys
from riskengine.api.server import EVENT_LOOP, with_deadlines
import uvicorn

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"{}"})

http = with_deadlines(header_timeout_s=10, body_timeout_s=10) if sys.argv[2] == "deadline" \\
    else "httptools"
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), http=http, log_level="warning",
            access_log=False, loop=EVENT_LOOP)
'''


async def _closed_loop(port: int, connections: int, seconds: float) -> float:
    body = b'{"user_id": "u", "ip": "1.2.3.4"}'
    request = (b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    done = 0
    stop = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.monotonic() < stop:
            writer.write(request)
            await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(2)
            done += 1
        writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return done / seconds


def _bare_rate(kind: str, connections: int, seconds: float) -> float:
    port = free_port()
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as script:
        script.write(BARE_APP)
    proc = subprocess.Popen([sys.executable, script.name, str(port), kind], env=clean_env(
        {"PYTHONPATH": str(ROOT)}), cwd=ROOT)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        return asyncio.run(_closed_loop(port, connections, seconds))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        os.unlink(script.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stalled", type=int, default=1000)
    parser.add_argument("--deadline-s", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        proc, base = serve("--store", f"sqlite:{tmp}/r.db", env={
            "RISKENGINE_ENV": "development", "RISKENGINE_AUTH": "open",
            "RISKENGINE_API_KEYS": f"{tmp}/keys.json", "RISKENGINE_MODEL_DIR": f"{tmp}/m",
            "RISKENGINE_HEADER_TIMEOUT_S": str(args.deadline_s),
            "RISKENGINE_BODY_TIMEOUT_S": str(args.deadline_s)})
        try:
            stalled = asyncio.run(_stalled_run(int(base.rsplit(":", 1)[1]), args.stalled,
                                               args.deadline_s))
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    print(json.dumps({"stalled": stalled}, indent=1))

    rates: dict[str, list[float]] = {"httptools": [], "deadline": []}
    for _ in range(args.repeat):
        for kind in rates:
            rates[kind].append(round(_bare_rate(kind, args.connections, args.seconds)))
    print(json.dumps({"bare_app_requests_per_s": rates,
                      "median": {k: statistics.median(v) for k, v in rates.items()}}, indent=1))


if __name__ == "__main__":
    main()
