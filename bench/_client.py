"""The least a Python client can do to post JSON over keep-alive HTTP/1.1 on 127.0.0.1,
shared by ``bench/http.py`` and ``bench/load.py``: a client that costs the server's cores
little, so that a load test measures the server rather than the client."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

SCORE_PATH = "/v1/score"


@contextmanager
def settled_client() -> Iterator[None]:
    """What the benchmark built before a run (tens of thousands of prepared bodies and
    simulated events) frozen out of the client's garbage collector while the run is timed.
    Left in view, a full collection of it takes the client 100-235 ms (``gc.callbacks``),
    and an open-loop client that stalls counts the requests it sends late as the server's
    latency."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class Connection:
    """One keep-alive HTTP/1.1 connection posting JSON: the least a Python client can do,
    so that the client costs the server's core as little as possible."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def post(self, body: bytes, path: str = SCORE_PATH) -> int:
        self.writer.write(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Content-Type: application/json\r\nContent-Length: "
                          + str(len(body)).encode() + b"\r\n\r\n" + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def closed_loop(port: int, next_body: Callable[[], bytes], *, seconds: float,
                      connections: int, warmup_s: float = 0.0) -> tuple[list[float], int, float]:
    """``connections`` callers posting back to back for ``warmup_s`` + ``seconds``; returns
    the latencies (s) of the 200 answers and the count of the others, both after the
    warm-up, and the seconds they were counted over."""
    conns = [await Connection.open(port) for _ in range(connections)]
    latencies: list[float] = []
    errors = 0
    clock = time.perf_counter

    async def caller(conn: Connection) -> None:
        nonlocal errors
        while (started := clock()) < deadline:
            status = await conn.post(next_body())
            if started < counting:
                continue
            if status == 200:
                latencies.append(clock() - started)
            else:
                errors += 1

    with settled_client():
        counting = clock() + warmup_s
        deadline = counting + seconds
        await asyncio.gather(*(caller(conn) for conn in conns))
        counted = clock() - counting
    for conn in conns:
        conn.close()
    return latencies, errors, counted


async def fixed_rate(port: int, next_body: Callable[[], bytes], *, rate: float,
                     seconds: float, connections: int, timeout_s: float,
                     on_send: Callable[[int], None] | None = None,
                     ) -> tuple[list[float], list[int], float]:
    """Open loop: request i is due at start + i / rate whatever happened before, and its
    latency runs from that moment (a request waiting for a free connection is late, and
    the wait counts, as wrk2 counts it). Returns each request's latency (s) and status (0:
    no answer within ``timeout_s`` of its due time), and the seconds the run took.
    ``on_send(i)`` is called as request i goes out."""
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await Connection.open(port))
    latencies: list[float] = []
    statuses: list[int] = []
    clock = time.perf_counter

    async def one(due: float, body: bytes) -> None:
        conn = await idle.get()
        try:
            status = await asyncio.wait_for(conn.post(body),
                                            timeout=max(0.0, due + timeout_s - clock()))
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            conn.close()  # its answer may still come: never reuse it
            idle.put_nowait(await Connection.open(port))
            status = 0
        else:
            idle.put_nowait(conn)
        latencies.append(clock() - due)
        statuses.append(status)

    tasks = []
    with settled_client():
        start = clock() + 0.05
        for i in range(int(rate * seconds)):
            due = start + i / rate
            # Always yield: a client that falls behind must not starve its own requests.
            await asyncio.sleep(max(0.0, due - clock()))
            tasks.append(asyncio.create_task(one(due, next_body())))
            if on_send is not None:
                on_send(i)
        await asyncio.gather(*tasks)
        elapsed = clock() - start
    while not idle.empty():
        idle.get_nowait().close()
    return latencies, statuses, elapsed
