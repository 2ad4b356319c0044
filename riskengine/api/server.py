"""Serving the app with uvicorn, with deadlines on slow clients.

uvicorn closes a kept-alive connection that stays idle (``timeout_keep_alive``), but it has no
deadline on receiving a request: a client that connects and sends its header one byte every
few seconds, or a header and then part of a body, holds a connection for as long as it likes
(uvicorn issue #157, "--timeout-request-start", open since 2018; ASGI middleware cannot help,
since it runs only once the header is parsed). Enough such clients exhaust the process's
sockets and memory (slowloris).

``DeadlineProtocol`` is uvicorn's own httptools protocol (the one ``uvicorn[standard]`` picks),
passed to uvicorn as its ``http`` class, with two absolute deadlines added:

- the whole header within ``header_timeout_s`` of the connection being made, or of the first
  byte of a later request on a kept-alive connection;
- the whole body within ``body_timeout_s`` of the header's end.

Past either, the connection is closed. The deadlines are absolute: sending a byte now and
then does not extend them. Time the application takes to answer is not counted.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import sys
from dataclasses import dataclass
from typing import Any, cast

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import Multiprocess

log = logging.getLogger("riskengine.api")
# uvicorn's own, which its Config sets up: the parent's lines beside uvicorn's.
_server_log = logging.getLogger("uvicorn.error")


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline and a body deadline.

    The deadlines are class attributes, set by ``with_deadlines`` on a subclass, because
    uvicorn builds the protocol itself from its ``Config``."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout_s, "header")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:
            # The first byte of a later request on a kept-alive connection.
            self._arm(self.header_timeout_s, "header")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.body_timeout_s, "body")

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float, part: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired, part)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, part: str) -> None:
        self._deadline = None
        if self.transport is None or self.transport.is_closing():
            return
        # The client's address is not logged: it is an identifier like any other.
        log.info("closed a connection whose request %s was not received in time", part)
        if self.cycle is not None and not self.cycle.response_complete:
            # The route waiting on this body sees a disconnect, not a hang.
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.close()


# The event loop the service runs on: asyncio's own, not uvloop (which uvicorn would pick when
# installed). The engine scores on the loop (CPU-bound, no I/O to wait for on the embedded
# store), so under load one turn of the loop runs every request in flight. The libuv inside
# uvloop accepts one new connection per turn (libuv 1.45, "unix: don't accept() connections
# in a loop"), so N connections opened at once waited up to N turns for their first answer:
# 32 against a saturated server, the last first answer after 0.8-1.4 s (bench/http.py
# --loop uvloop, max latency), where asyncio's loop, which accepts the whole backlog at each
# wake-up, kept every answer under ~0.15 s, with no fewer requests a second (bench/README,
# "New connections and the event loop").
EVENT_LOOP = "asyncio"


@functools.cache
def with_deadlines(*, header_timeout_s: float, body_timeout_s: float) -> type[DeadlineProtocol]:
    """A ``DeadlineProtocol`` class with these deadlines, for ``uvicorn.Config(http=...)``."""
    return type("DeadlineProtocol", (DeadlineProtocol,),
                {"header_timeout_s": header_timeout_s, "body_timeout_s": body_timeout_s})


@dataclass(frozen=True)
class Deadlines:
    """``with_deadlines``'s protocol, as a factory that pickles: worker processes are
    spawned, with uvicorn's ``Config`` (and the protocol in it) pickled for them, and a class
    made at run time does not pickle."""

    header_timeout_s: float
    body_timeout_s: float

    def __call__(self, *args: Any, **kwargs: Any) -> DeadlineProtocol:
        return with_deadlines(header_timeout_s=self.header_timeout_s,
                              body_timeout_s=self.body_timeout_s)(*args, **kwargs)


def run(app: Any, *, host: str, port: int, header_timeout_s: float, body_timeout_s: float,
        log_level: str, workers: int = 1, cpu_affinity: bool = False) -> None:
    """Serve ``app`` on ``host:port`` until a signal stops it. With ``workers`` > 1, ``app``
    is an import string of an app factory (``module:function``), which each worker process
    calls, each on a listening socket of its own (``serve_workers``); uvicorn's parent
    process restarts a worker that dies. ``cpu_affinity``: each worker process pinned to a
    CPU of its own (``pin_to_a_cpu``)."""
    settings: dict[str, Any] = {
        "host": host, "port": port, "loop": EVENT_LOOP, "log_level": log_level,
        "http": Deadlines(header_timeout_s, body_timeout_s),
        "access_log": False,  # one structured line per decision is logged instead
    }
    if workers == 1:
        if cpu_affinity:
            pin_to_a_cpu()
        uvicorn.run(app, **settings)
    else:
        serve_workers(uvicorn.Config(app, workers=workers, factory=True, **settings),
                      cpu_affinity=cpu_affinity)


# A process of the service can use one core of Python at a time (the interpreter's lock), but
# its threads (the event loop, the thread pool the engine runs in when it waits on a network
# store, the log writer) are free to run on any core, and the kernel moves them: each hand-over
# of the lock can then wake the next thread on the other core, away from the data the last one
# left in its core's caches. Pinned to one core each, workers on the Redis store served
# a third or more requests a second, one worker or two (bench/README, "Workers pinned to a
# core"); on SQLite, where the engine runs on the loop thread alone, nothing measurable. Off
# by default: on a host whose other work (or another container's) lands on the same cores a
# pinned worker cannot move away from it.
CPU_CLAIMS = "riskengine-cpu"
_claims: list[socket.socket] = []  # this process's claim, held until it ends


def cpu_affinity_supported() -> bool:
    """Whether ``pin_to_a_cpu`` can work here (Linux: affinity and abstract sockets)."""
    return sys.platform.startswith("linux") and hasattr(os, "sched_setaffinity")


def claim_cpu(namespace: str = CPU_CLAIMS) -> tuple[int, socket.socket] | None:
    """The lowest CPU this process may run on that no other process holds a claim on under
    ``namespace``, and the claim: an abstract Unix socket named after it, which the kernel
    releases when the process holding it ends (a worker restarted after a crash takes the CPU
    again). None when every CPU is claimed."""
    for cpu in sorted(os.sched_getaffinity(0)):
        claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            claim.bind(f"\0{namespace}:{cpu}")
        except OSError:
            claim.close()
            continue
        return cpu, claim
    return None


def pin_process(cpu: int) -> None:
    """Every thread of this process on ``cpu`` only (a thread started later inherits its
    starter's affinity). Passes over the threads until none is left unpinned, since one may
    start while they are pinned; a thread that ends meanwhile is passed over."""
    while True:
        unpinned = 0
        for tid in (int(task) for task in os.listdir("/proc/self/task")):
            try:
                if os.sched_getaffinity(tid) != {cpu}:
                    unpinned += 1
                    os.sched_setaffinity(tid, {cpu})
            except ProcessLookupError:
                continue
        if not unpinned:
            return


def pin_to_a_cpu(namespace: str = CPU_CLAIMS) -> int | None:
    """Pin this process to a CPU no other process claimed under ``namespace`` and keep the
    claim while it runs; the CPU, or None (logged) when none is left, and the process runs
    unpinned."""
    claimed = claim_cpu(namespace)
    if claimed is None:
        log.warning("every CPU this process may use is taken by another pinned process: "
                    "this one runs unpinned")
        return None
    cpu, claim = claimed
    _claims.append(claim)
    pin_process(cpu)
    log.info("pinned to CPU %d", cpu)
    return cpu


# Several workers on one shared listening socket do not share its connections: asyncio's
# loop (EVENT_LOOP) accepts every connection waiting at each wake-up, so the worker that
# wakes first takes a whole burst of them (32 keep-alive connections opened at once all went
# to one of two workers, which served them on one core while the other idled: bench/README,
# "Two workers, one socket"). Each worker gets a socket of its own instead, all bound to the
# one address with SO_REUSEPORT: the kernel spreads new connections over the listening
# sockets by a hash of their addresses, and each worker accepts only its own share.


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` with SO_REUSEPORT (and SO_REUSEADDR), not yet
    listening: it takes no connection until it listens."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _worker_socket(host: str, port: int, cpu_claims: str | None = None) -> socket.socket:
    """The worker's own socket, made as the worker unpickles its arguments; a bind that
    fails ends the worker with uvicorn's start-up failure code, which stops the parent
    (a restart would fail the same way). With ``cpu_claims``, the worker is first pinned to
    a CPU claimed under that namespace (``pin_to_a_cpu``)."""
    if cpu_claims is not None:
        pin_to_a_cpu(cpu_claims)
    try:
        return reuseport_socket(host, port)
    except OSError as exc:
        log.error("worker cannot bind %s:%d: %s", host, port, exc)
        sys.exit(STARTUP_FAILURE)


@dataclass(frozen=True)
class WorkerListener:
    """Stands in uvicorn's list of sockets for its worker processes: uvicorn pickles that
    list into each spawned worker, and this unpickles there as a socket of the worker's own
    (``_worker_socket``), which the worker's server then listens on. A worker restarted by
    the parent makes a new one the same way."""

    host: str
    port: int
    cpu_claims: str | None = None

    def __reduce__(self) -> tuple[Any, tuple[str, int, str | None]]:
        return _worker_socket, (self.host, self.port, self.cpu_claims)


def serve_workers(config: uvicorn.Config, *, cpu_affinity: bool = False,
                  cpu_claims: str = CPU_CLAIMS) -> None:
    """Run ``config.workers`` worker processes under uvicorn's supervisor, each listening on
    its own SO_REUSEPORT socket bound to ``config.host:config.port``.

    The parent holds one more such socket, bound and never listening, for as long as it
    runs: a port already taken fails here, once, before any worker is spawned (exit 3, as
    uvicorn's own bind), and the address stays the server's while a worker restarts. A
    worker that cannot start stops them all (uvicorn's supervisor) and exits 3 here too. What
    SO_REUSEPORT trades: a worker that dies drops the connections waiting in its own
    queue (clients see a reset and retry), and any process of the same user can bind the
    port alongside. ``cpu_affinity``: each worker pinned to a CPU claimed under
    ``cpu_claims`` (``pin_to_a_cpu``)."""
    try:
        held = reuseport_socket(config.host, config.port)
    except OSError as exc:
        _server_log.error("cannot bind %s:%d: %s", config.host, config.port, exc)
        sys.exit(STARTUP_FAILURE)
    port = held.getsockname()[1]
    _server_log.info("serving on http://%s:%d with %d worker processes, one listening "
                     "socket each", config.host, port, config.workers)
    listener = WorkerListener(config.host, port, cpu_claims if cpu_affinity else None)
    supervisor = Multiprocess(config, sockets=[cast(socket.socket, listener)])
    try:
        supervisor.run()
    finally:
        held.close()
    if any(worker.exitcode == STARTUP_FAILURE for worker in supervisor.processes):
        sys.exit(STARTUP_FAILURE)  # uvicorn's supervisor stopped: a worker could not start


__all__ = ["CPU_CLAIMS", "EVENT_LOOP", "DeadlineProtocol", "Deadlines", "WorkerListener",
           "claim_cpu", "cpu_affinity_supported", "pin_process", "pin_to_a_cpu",
           "reuseport_socket", "run", "serve_workers", "with_deadlines"]
