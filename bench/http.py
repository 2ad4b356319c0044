"""The scoring endpoint over HTTP against the limit of the stack, on 127.0.0.1 only.

Three servers run side by side under the same uvicorn settings (``--workers N``, httptools,
the event loop ``riskengine serve`` runs on or ``--loop``, no access log; several workers
each on a listening socket of its own, as ``riskengine serve`` runs them), each from a
factory in ``bench/_common.py``:

    riskengine   the service as ``riskengine serve`` builds it (SQLite store warmed with
                 ``--warmup`` simulated logins, development keys, auth open, INFO logging
                 with its one line per decision)
    bare         the limit of the stack and the baseline of the ratio: an async route (as
                 the scoring route is) parsing the same body model
                 (``riskengine.core.wire.ScoreRequest``) and answering a constant, serialized
                 once with orjson, as the scoring route serializes its answer
    bare-sync    for comparison: a sync route (run in the thread pool), same body model,
                 answering a constant through the response model ``ScoreResponse``
    bare-bytes   for comparison: the async route with the body parsed as the scoring route
                 now parses it (``riskengine.api.body``: from the bytes, in pydantic's core)

The same client measures them in the same run, interleaved, ``--repeat`` times: ``wrk``
(closed loop, ``--connections`` keep-alive connections, a Lua script posting varied
simulated logins, each with a fresh event id) or, without wrk, an asyncio client of the
same shape. Then a rate-limited asyncio client (open loop, latency counted from each
request's scheduled time, as wrk2 does) sends ``--load`` (80 %) of riskengine's own median
peak rate to riskengine and, as a check on the client, to the bare endpoint. All of it for
1 and 2 worker processes. Every run is bounded by ``--seconds``.

    .venv/bin/python bench/http.py                        # 1 and 2 workers, 3 x 10 s each
    .venv/bin/python bench/http.py --workers 1 --repeat 1 --seconds 5     # a quick look
    .venv/bin/python bench/http.py --store redis --apps riskengine bare --load 0  # scaling

``riskengine`` runs on SQLite (``--store sqlite``, warmed with ``--warmup`` logins) or on
the Redis store (``--store redis``), which is what several workers want. wrk is the Debian
package: when it is missing the script runs ``apt-get install -y wrk`` if it is root (else
it says so and uses the asyncio client). The simulated logins carry past timestamps, so the
script sets ``RISKENGINE_TRUST_EVENT_TIME=1`` (as a replay of recorded traffic does).
"""

from __future__ import annotations

if __name__ == "http":
    # Every script run from bench/ has this folder first on sys.path, so its ``import http``
    # (urllib, river, uvicorn...) finds this file: load the standard library's package in
    # its place. The import system takes what sys.modules holds once this module has run.
    import importlib.machinery as _machinery
    import importlib.util as _util
    import os as _os
    import sys as _sys

    _here = _os.path.dirname(_os.path.abspath(__file__))
    _spec = _machinery.PathFinder.find_spec(
        "http", [p for p in _sys.path if _os.path.abspath(p or ".") != _here])
    assert _spec is not None and _spec.loader is not None
    _sys.modules["http"] = _stdlib_http = _util.module_from_spec(_spec)
    _spec.loader.exec_module(_stdlib_http)

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402
from _client import closed_loop, fixed_rate  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
APPS = {"bare": "bare_app", "riskengine": "riskengine_app", "bare-sync": "bare_sync_app",
        "bare-bytes": "bare_bytes_app"}
MARK = "@@EVENT_ID@@"
PATH = "/v1/score"
TARGET_RATIO, TARGET_WORKERS = c.TARGET_HTTP_RATIO, c.TARGET_WORKERS  # see _common
TARGET_P99_MS = 25.0  # at 80 % of riskengine's own peak rate

WRK_SCRIPT = r"""
-- Posts the prepared logins round robin, each with an event id of its own.
local prefixes, suffixes, n = {}, {}, 0
local counter, tid, salt = 0, 0, "x"
local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end

function init(args)
  local file = args[1]
  salt = args[2]
  for line in io.lines(file) do
    local tab = string.find(line, "\t", 1, true)
    n = n + 1
    prefixes[n] = string.sub(line, 1, tab - 1)
    suffixes[n] = string.sub(line, tab + 1)
  end
  tid = wrk.thread:get("tid") or 0
  counter = tid * 7919
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local k = counter % n + 1
  return wrk.format(nil, nil, nil,
    prefixes[k] .. salt .. "-" .. tid .. "-" .. counter .. suffixes[k])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHJSON {\"requests\": %d, \"duration_us\": %d, \"p50_us\": %d, \"p99_us\": %d, " ..
    "\"mean_us\": %f, \"max_us\": %d, \"connect\": %d, \"read\": %d, \"write\": %d, " ..
    "\"status\": %d, \"timeout\": %d}\n",
    summary.requests, summary.duration, latency:percentile(50.0), latency:percentile(99.0),
    latency.mean, latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


# -- traffic ------------------------------------------------------------------------------


def prepare(
    tmp: Path, *, store: str, warmup: int, bodies: int, seed: int
) -> tuple[Path, list[tuple[bytes, bytes]]]:
    """Warm the store with ``warmup`` logins in process, and write the next ``bodies``
    logins as ``prefix<TAB>suffix`` lines around the event id."""
    from riskengine.core.wire import ScoreRequest

    events = c.simulate(events=warmup + bodies, seed=seed)
    c.note(f"warming the store ({store}) with {warmup:,} logins ...")
    built = c.build(store, tmp)
    for body in events[:warmup]:
        built.engine.score(ScoreRequest.model_validate(body))
    built.engine.store.close()
    parts: list[tuple[bytes, bytes]] = []
    lines = []
    for body in events[warmup:]:
        text = json.dumps({**body, "event_id": MARK}, ensure_ascii=True,
                          separators=(",", ":"))
        prefix, suffix = text.split(MARK)
        parts.append((prefix.encode(), suffix.encode()))
        lines.append(f"{prefix}\t{suffix}")
    path = tmp / "bodies.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path, parts


def store_url(kind: str, tmp: Path) -> str:
    return f"sqlite:{tmp / 'http.db'}" if kind == "sqlite" else c.store_url(kind, tmp)


# -- servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    workers: int
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start(name: str, workers: int, tmp: Path, log_level: str, store: str,
          loop: str, cpu_affinity: bool = False) -> Server:
    port = free_port()
    log = tmp / f"{name}-{workers}w.log"
    env = {**os.environ, "BENCH_HTTP_STORE": store, "BENCH_HTTP_TMP": str(tmp),
           "BENCH_HTTP_LOG_LEVEL": log_level}
    cmd = [sys.executable, __file__, "--serve", name, str(workers), str(port), loop,
           str(int(cpu_affinity))]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=tmp, start_new_session=True)
    return Server(name, workers, port, proc, log)


def serve(name: str, workers: int, port: int, loop: str, cpu_affinity: bool) -> None:
    """The server process ``start`` runs: uvicorn with httptools, no access log, the app
    from its factory in ``_common``; several workers as ``riskengine serve`` runs them, each
    on a listening socket of its own (``riskengine.api.server.serve_workers``), each pinned
    to a CPU with ``cpu_affinity`` as ``riskengine serve --cpu-affinity`` pins them (the
    CPUs claimed per server, so that every server measured gets the same ones)."""
    import uvicorn

    from riskengine.api.server import pin_to_a_cpu, serve_workers

    config = uvicorn.Config(f"_common:{APPS[name]}", factory=True, host="127.0.0.1",
                            port=port, workers=workers, loop=loop, http="httptools",
                            access_log=False, log_level="warning")
    claims = f"riskengine-bench-{name}-{port}"
    if workers > 1:
        serve_workers(config, cpu_affinity=cpu_affinity, cpu_claims=claims)
    else:
        if cpu_affinity:
            pin_to_a_cpu(claims)
        uvicorn.Server(config).run()


def wait_ready(server: Server, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=1.0) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    stop(server)
    raise RuntimeError(f"{server.name} ({server.workers} workers) did not start:\n"
                       + server.log.read_text()[-3000:])


def stop(server: Server) -> None:
    """End the server this script started: its own process group, by id."""
    if server.proc.poll() is None:
        os.killpg(server.proc.pid, signal.SIGTERM)
        try:
            server.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.proc.pid, signal.SIGKILL)
            server.proc.wait(timeout=5)


# -- clients ------------------------------------------------------------------------------


def have_wrk() -> bool:
    if shutil.which("wrk"):
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        c.note("wrk is missing: installing the Debian package (apt-get install wrk) ...")
        done = subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"],
                              capture_output=True, text=True, check=False)
        if done.returncode == 0 and shutil.which("wrk"):
            return True
        c.note("could not install wrk; using the asyncio client instead")
    else:
        c.note("wrk not found (apt-get install wrk); using the asyncio client instead")
    return False


def run_wrk(server: Server, *, seconds: float, connections: int, bodies: Path,
            salt: str, tmp: Path) -> dict[str, Any]:
    script = tmp / "post.lua"
    script.write_text(WRK_SCRIPT)
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
           "-s", str(script), server.url + PATH, "--", str(bodies), salt]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60,
                          check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCHJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {done.stdout}\n{done.stderr}")
    raw = json.loads(line.removeprefix("BENCHJSON "))
    errors = sum(raw[k] for k in ("connect", "read", "write", "status", "timeout"))
    return {"requests": raw["requests"], "rps": raw["requests"] / (raw["duration_us"] / 1e6),
            "p50_ms": raw["p50_us"] / 1e3, "p99_ms": raw["p99_us"] / 1e3,
            "max_ms": raw["max_us"] / 1e3, "errors": errors, "non_2xx": raw["status"]}


class Bodies:
    def __init__(self, parts: list[tuple[bytes, bytes]], salt: str) -> None:
        self.parts, self.salt, self.i = parts, salt.encode(), 0

    def next(self) -> bytes:
        self.i += 1
        prefix, suffix = self.parts[self.i % len(self.parts)]
        return prefix + self.salt + b"-py-" + str(self.i).encode() + suffix


# -- where the machine's CPU went during a run ---------------------------------------------

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux ``/proc``)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo.extend(int(child) for child in (task / "children").read_text().split())
    return out


def _cpu_s(pids: list[int]) -> float:
    """CPU seconds (user and system) the processes have used so far."""
    total = 0.0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) * _TICK_S
    return total


def _machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (every process, every core)."""
    user, nice, system, idle, iowait, *rest = (
        int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:])
    return (user + nice + system + sum(rest[:3])) * _TICK_S


def _redis_pid() -> int | None:
    try:
        import redis

        return int(redis.Redis.from_url(c.REDIS_URL).info("server")["process_id"])
    except Exception:
        return None


class CpuUse:
    """Cores used during a run: the server's processes, the client, Redis, the machine."""

    def __init__(self, server: Server, redis_pid: int | None) -> None:
        self.server, self.redis_pid = server, redis_pid

    def __enter__(self) -> CpuUse:
        self.pids = _tree(self.server.proc.pid)
        self.t0 = time.monotonic()
        self.server0, self.machine0 = _cpu_s(self.pids), _machine_busy_s()
        self.client0 = _children_cpu_s()
        self.redis0 = _cpu_s([self.redis_pid]) if self.redis_pid else 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.monotonic() - self.t0
        self.cores = {
            "server": (_cpu_s(self.pids) - self.server0) / wall,
            "client": (_children_cpu_s() - self.client0) / wall,
            "redis": ((_cpu_s([self.redis_pid]) - self.redis0) / wall
                      if self.redis_pid else 0.0),
            "machine": (_machine_busy_s() - self.machine0) / wall,
        }


def _children_cpu_s() -> float:
    """CPU seconds of this process's finished children (wrk) and of itself (the asyncio
    client)."""
    import resource

    kids, own = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(
        resource.RUSAGE_SELF)
    return kids.ru_utime + kids.ru_stime + own.ru_utime + own.ru_stime


def worker_ceiling(cores: list[dict[str, float]], workers: int, machine_cores: int
                   ) -> dict[str, float]:
    """The most ``workers`` processes can give over one, on ``machine_cores`` cores, from
    one worker's closed-loop runs (``cores``: each run's cores used by the server, the client
    and Redis, medians taken): a request costs the same CPU with more workers at best, each
    worker uses at most one core, and all of them, the client and Redis share the machine's:
    ``min(workers / server, machine / busy)``, ``busy`` the cores the one worker's run kept
    busy (server + client + Redis). An upper bound as long as a request costs no less CPU
    with more workers (riskengine's did not in the runs of bench/README, "Two workers, one
    socket"; the bare route's did, and beat its bound); other processes' load is left out.
    ``cores_for_target`` is the machine ``TARGET_WORKERS`` needs by the same arithmetic."""
    server = c.med(run["server"] for run in cores)
    client, redis = (c.med(run[part] for run in cores) for part in ("client", "redis"))
    ours = server + client + redis
    if server <= 0:
        raise ValueError("the server used no CPU in its runs")
    # The runs' cores are their CPU a request times one worker's rate: the same proportions.
    ceiling = c.scaling_ceiling(server, client, redis, workers=workers,
                                machine_cores=machine_cores, one_worker_cores=server)
    return {"ceiling": ceiling, "busy": ours, "cores_for_target": TARGET_WORKERS * ours}


def _summary(latencies: list[float], seconds: float, errors: int, sent: int) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {"requests": len(ordered), "sent": sent, "rps": len(ordered) / seconds,
            "p50_ms": c.quantile(ordered, 0.50) * 1e3, "p99_ms": c.quantile(ordered, 0.99) * 1e3,
            "max_ms": (ordered[-1] if ordered else float("nan")) * 1e3, "errors": errors}


async def _closed_loop(port: int, bodies: Bodies, *, seconds: float,
                       connections: int) -> dict[str, Any]:
    latencies, errors, counted = await closed_loop(port, bodies.next, seconds=seconds,
                                                   connections=connections)
    return _summary(latencies, counted, errors, len(latencies) + errors)


async def _fixed_rate(port: int, bodies: Bodies, *, rate: float, seconds: float,
                      connections: int) -> dict[str, Any]:
    """Open loop at ``rate`` (``_client.fixed_rate``): latency from each request's due
    time, of the 200 answers; the others are errors."""
    latencies, statuses, elapsed = await fixed_rate(
        port, bodies.next, rate=rate, seconds=seconds, connections=connections, timeout_s=5.0)
    ok = [lat for lat, status in zip(latencies, statuses, strict=True) if status == 200]
    out = _summary(ok, elapsed, len(statuses) - len(ok), len(statuses))
    out["rate_asked"] = rate
    return out


# -- the run ------------------------------------------------------------------------------


def measure(args: argparse.Namespace) -> dict[str, Any]:
    use_wrk = not args.no_wrk and have_wrk()
    with tempfile.TemporaryDirectory(prefix="bench-http-") as folder:
        tmp = Path(folder)
        store = store_url(args.store, tmp)
        if args.store == "redis":
            if not c.redis_up():
                raise SystemExit(f"no Redis at {c.REDIS_URL} (make services)")
            c.redis_clean()
        bodies_file, parts = prepare(tmp, store=store, warmup=args.warmup, bodies=args.bodies,
                                     seed=args.seed)
        results: dict[str, Any] = {"client": "wrk" if use_wrk else "asyncio", "workers": {},
                                   "store": args.store, "apps": args.apps, "loop": args.loop}
        salt_n = 0
        redis_pid = _redis_pid() if args.store == "redis" else None
        apps = [name for name in APPS if name in args.apps]
        for workers in args.workers:
            pinned = ", each pinned to a CPU" if args.cpu_affinity else ""
            c.note(f"{workers} worker process(es){pinned}, {args.loop} loop: starting "
                   f"{', '.join(apps)} ...")
            servers = {name: start(name, workers, tmp, args.log_level, store, args.loop,
                                   args.cpu_affinity)
                       for name in apps}
            try:
                for server in servers.values():
                    wait_ready(server)
                per: dict[str, list[dict[str, Any]]] = {name: [] for name in apps}

                def closed(server: Server, seconds: float) -> dict[str, Any]:
                    nonlocal salt_n
                    salt_n += 1
                    salt = f"h{os.getpid()}x{salt_n}"
                    with CpuUse(server, redis_pid) as use:
                        if use_wrk:
                            got = run_wrk(server, seconds=seconds,
                                          connections=args.connections, bodies=bodies_file,
                                          salt=salt, tmp=tmp)
                        else:
                            got = asyncio.run(_closed_loop(server.port, Bodies(parts, salt),
                                                           seconds=seconds,
                                                           connections=args.connections))
                    return {**got, "cores": use.cores}

                for server in servers.values():  # warm-up: imports, caches, thread pools
                    closed(server, min(3.0, args.seconds))
                for r in range(args.repeat):
                    for name, server in servers.items():
                        got = closed(server, args.seconds)
                        per[name].append(got)
                        cores = got["cores"]
                        c.note(f"  run {r + 1}/{args.repeat} {name:<11} {got['rps']:8,.0f} req/s"
                               f"  p50 {got['p50_ms']:6.2f} ms  p99 {got['p99_ms']:6.2f} ms"
                               f"  max {got['max_ms']:7.1f} ms"
                               f"  errors {got['errors']}  cores: server "
                               f"{cores['server']:.2f} client {cores['client']:.2f} redis "
                               f"{cores['redis']:.2f} machine {cores['machine']:.2f}"
                               f"/{os.cpu_count()}")
                peak = {name: c.med(g["rps"] for g in runs) for name, runs in per.items()}
                rate = args.load * peak["riskengine"]
                fixed: dict[str, Any] = {}
                for name in ("riskengine", "bare") if args.load > 0 else ():
                    salt_n += 1
                    fixed[name] = asyncio.run(_fixed_rate(
                        servers[name].port, Bodies(parts, f"f{os.getpid()}x{salt_n}"),
                        rate=rate, seconds=args.seconds, connections=args.open_connections))
                    got = fixed[name]
                    c.note(f"  {args.load:.0%} of riskengine's peak ({rate:,.0f} req/s) to "
                           f"{name}: p50 {got['p50_ms']:.2f} ms, p99 {got['p99_ms']:.2f} ms,"
                           f" errors {got['errors']}")
                results["workers"][str(workers)] = {
                    "runs": per,
                    "peak_rps": peak,
                    "p50_ms": {n: c.med(g["p50_ms"] for g in runs) for n, runs in per.items()},
                    "p99_ms": {n: c.med(g["p99_ms"] for g in runs) for n, runs in per.items()},
                    "max_ms": {n: max(g["max_ms"] for g in runs) for n, runs in per.items()},
                    "errors": {n: sum(g["errors"] for g in runs) for n, runs in per.items()},
                    "ratio_to_bare": peak["riskengine"] / peak["bare"],
                    "ratio_to_bare_sync": peak["riskengine"] / peak["bare-sync"]
                    if "bare-sync" in peak else None,
                    "ratio_to_bare_bytes": peak["riskengine"] / peak["bare-bytes"]
                    if "bare-bytes" in peak else None,
                    "ratios_per_run": [r["rps"] / b["rps"] for r, b in
                                       zip(per["riskengine"], per["bare"], strict=True)],
                    "fixed_rate": fixed,
                }
            finally:
                for server in servers.values():
                    stop(server)
        if args.store == "redis":
            c.redis_clean()
    one, two = results["workers"].get("1"), results["workers"].get("2")
    if one:
        results["ceiling_2_over_1"] = {
            name: worker_ceiling([g["cores"] for g in runs], 2, os.cpu_count() or 1)
            for name, runs in one["runs"].items()}
    if one and two:
        results["riskengine_2_over_1_workers"] = (two["peak_rps"]["riskengine"]
                                                  / one["peak_rps"]["riskengine"])
        results["bare_2_over_1_workers"] = two["peak_rps"]["bare"] / one["peak_rps"]["bare"]
    return results


def table(results: dict[str, Any], load: float) -> str:
    rows = [f"{'':<44}" + "".join(f" {w + ' worker' + ('s' if w != '1' else ''):>19}"
                                  for w in results["workers"])]

    def row(name: str, get: Any, fmt: str) -> None:
        cells = []
        for v in results["workers"].values():
            try:
                cells.append(fmt.format(get(v)))
            except (KeyError, TypeError):
                cells.append("-")
        rows.append(f"{name:<44}" + "".join(f" {cell:>19}" for cell in cells))

    for app in results["apps"]:
        row(f"{app} req/s (closed loop, median)", lambda v, a=app: v["peak_rps"][a], "{:,.0f}")
        row(f"{app} p50 / p99 ms (closed loop)",
            lambda v, a=app: f"{v['p50_ms'][a]:.2f} / {v['p99_ms'][a]:.2f}", "{}")
        row(f"{app} max ms (closed loop, worst run)", lambda v, a=app: v["max_ms"][a],
            "{:,.1f}")
    for app in results["apps"]:
        row(f"{app} req/s per server core (median)", lambda v, a=app: c.med(
            g["rps"] / g["cores"]["server"] for g in v["runs"][a] if g["cores"]["server"]),
            "{:,.0f}")
    for app in results["apps"]:
        row(f"{app} cores: server / client / Redis / machine", lambda v, a=app: " / ".join(
            f"{c.med(g['cores'][k] for g in v['runs'][a]):.2f}"
            for k in ("server", "client", "redis", "machine")), "{}")
    row("riskengine / bare (median of req/s)", lambda v: v["ratio_to_bare"], "{:.2f}")
    row("riskengine / bare, each run", lambda v: " ".join(f"{x:.2f}" for x in
                                                           v["ratios_per_run"]), "{}")
    row("riskengine / bare-sync", lambda v: v["ratio_to_bare_sync"], "{:.2f}")
    row("riskengine / bare-bytes", lambda v: v["ratio_to_bare_bytes"], "{:.2f}")
    if load > 0:
        row(f"rate at {load:.0%} of riskengine's peak", lambda v: v["fixed_rate"]["riskengine"]
            ["rate_asked"], "{:,.0f}")
        for app in ("riskengine", "bare"):
            row(f"{app} p50 / p99 ms at that rate", lambda v, a=app:
                f"{v['fixed_rate'][a]['p50_ms']:.2f} / {v['fixed_rate'][a]['p99_ms']:.2f}",
                "{}")
            row(f"{app} errors at that rate", lambda v, a=app: v["fixed_rate"][a]["errors"],
                "{}")
    for app, got in results.get("ceiling_2_over_1", {}).items():
        rows.append(f"{app + ': at most 2 / 1 workers here':<44} {got['ceiling']:>19.2f}"
                    f"  (1 worker kept {got['busy']:.2f} cores busy of {os.cpu_count()})")
    if "riskengine_2_over_1_workers" in results:
        rows.append(f"{'riskengine 2 workers / 1 worker':<44} "
                    f"{results['riskengine_2_over_1_workers']:>19.2f}")
        rows.append(f"{'bare 2 workers / 1 worker':<44} "
                    f"{results['bare_2_over_1_workers']:>19.2f}")
    return "\n".join(rows)


def verdicts(results: dict[str, Any]) -> list[str]:
    out = []
    one = results["workers"].get("1")
    if one is None:
        out.append("(the ratio's target is for 1 worker: run with --workers 1)")
    else:
        ratio = one["ratio_to_bare"]
        out.append(f"riskengine >= {TARGET_RATIO} x bare throughput, 1 worker "
                   f"({results['store']} store): {ratio:.2f}  {c.verdict(ratio >= TARGET_RATIO)}")
        if one["fixed_rate"]:
            p99 = one["fixed_rate"]["riskengine"]["p99_ms"]
            out.append(f"p99 <= {TARGET_P99_MS:.0f} ms at 80 % of its own peak, 1 worker: "
                       f"{p99:.2f} ms  {c.verdict(p99 <= TARGET_P99_MS)}")
    scale = results.get("riskengine_2_over_1_workers")
    if scale is not None:
        out.append(f"2 workers >= {TARGET_WORKERS} x 1 worker ({results['store']} store; the "
                   f"target is for Redis): {scale:.2f}  {c.verdict(scale >= TARGET_WORKERS)}")
    bound = results.get("ceiling_2_over_1", {}).get("riskengine")
    if bound is not None:
        out.append(f"  the most 2 workers can give over 1 on these {os.cpu_count()} cores, "
                   f"from 1 worker's CPU: {bound['ceiling']:.2f}; {TARGET_WORKERS} x needs "
                   f"{bound['cores_for_target']:.1f} cores at least")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each run")
    parser.add_argument("--repeat", type=int, default=3, help="closed-loop runs per server")
    parser.add_argument("--connections", type=int, default=32,
                        help="keep-alive connections of the closed-loop client")
    parser.add_argument("--open-connections", type=int, default=64,
                        help="connections of the fixed-rate client")
    parser.add_argument("--load", type=float, default=0.8,
                        help="share of riskengine's peak for the fixed-rate run")
    parser.add_argument("--warmup", type=int, default=20_000,
                        help="logins scored into the SQLite store before the servers start")
    parser.add_argument("--bodies", type=int, default=40_000, help="distinct logins posted")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log-level", default="INFO",
                        help="riskengine's log level (INFO: one line per decision, as served)")
    parser.add_argument("--store", choices=["sqlite", "redis"], default="sqlite",
                        help="riskengine's store (redis: database 11 of the local Redis, "
                        "RISKENGINE_BENCH_REDIS; its keys removed before and after)")
    parser.add_argument("--apps", nargs="+", choices=list(APPS), default=list(APPS),
                        help="the servers to measure (riskengine and bare always)")
    parser.add_argument("--no-wrk", action="store_true", help="use the asyncio client")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default=None,
                        help="the servers' event loop (default: the one riskengine serve "
                             "runs on)")
    parser.add_argument("--cpu-affinity", action="store_true",
                        help="each server's worker processes pinned to a CPU each, as "
                        "riskengine serve --cpu-affinity pins them")
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "http.json"))
    parser.add_argument("--serve", nargs=5, help=argparse.SUPPRESS)  # start's server process
    args = parser.parse_args()
    if args.serve:
        name, workers, port, loop, cpu_affinity = args.serve
        serve(name, int(workers), int(port), loop, cpu_affinity == "1")
        return 0
    args.apps = sorted(set(args.apps) | {"riskengine", "bare"}, key=list(APPS).index)
    if args.loop is None:
        from riskengine.api.server import EVENT_LOOP  # here: this module stands in for http

        args.loop = EVENT_LOOP
    # The simulated logins carry their own (past) timestamps: the servers and the warm-up
    # take them as a replay of recorded traffic does (riskengine.core.edge.TimePolicy).
    os.environ["RISKENGINE_TRUST_EVENT_TIME"] = "1"
    results = measure(args)
    print(table(results, args.load))
    print("\nagainst the targets (issue #19):")
    for line in verdicts(results):
        print(f"  {line}")
    c.write_json(args.out, {"args": vars(args), **results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
