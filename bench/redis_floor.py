"""Redis's CPU a login at its floor, and what it leaves a second worker (issue #19).

An engine is built on the Redis store as the service builds it (database 11,
``RISKENGINE_BENCH_REDIS``) and scores ``--events`` simulated logins from an empty
database; the store's two calls a login (the load script and the record script, each one
round trip) are captured with their keys and arguments by wrapping, in this process only,
the store's ``_run``. Then the captured calls are sent again, one round trip each as the
store sends them, spread over ``--connections`` (4) connections, a thread each, each user's
calls on one connection and in order (a server's scoring threads each hold a connection, and
Redis spends less a call when several are in flight: over one connection these passes cost
it ~1.5-2 x as much; 4 gave the least of 1, 4 and 16), in turn for ``--repeat`` rounds:

    ping           PING instead of each call: Redis's CPU for two round trips a login
                   carrying nothing
    empty          a script that does nothing (``return 1``), given each call's own keys and
                   arguments: the round trips carrying the login's data, and no work
    scripts        the store's own scripts from an empty database, in order: what a login
                   costs Redis today (measured over the second half, the database warm)
    ... batch N    the same pipelined N calls a round trip (``--batch``): what Redis would
                   spend if several logins shared a round trip, which the store never does

Redis's CPU is its own ``used_cpu_user + used_cpu_sys`` (``INFO cpu``) around each pass,
per login (two calls); the client's, this process's. Medians of the rounds.

Each round starts with the bare route over HTTP (``bench/http.py``, one worker, one run of
``--http-seconds``; it runs riskengine beside it, on SQLite, as it always does), for the
baseline in the same run: at 0.5 x the bare route's throughput (the HTTP target) a request
may cost the server at most twice the bare route's CPU a request. With the client's CPU a
request (wrk's, same run) and Redis's at each floor, ``_common.scaling_ceiling`` gives the
most 2 workers can give over 1 on this machine's cores, round by round; medians printed.
That bound assumes a request costs no less CPU with two workers than with one, which a
request as cheap as the bare route's does not hold to (bench/README, "A second worker once
the HTTP target holds"): a bound, not a floor. ``--no-http`` leaves the HTTP part out.

    .venv/bin/python bench/redis_floor.py                       # 3,000 logins, 3 rounds
    .venv/bin/python bench/redis_floor.py --repeat 1 --no-http  # the floors alone
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

TARGET_WORKERS, TARGET_HTTP_RATIO = c.TARGET_WORKERS, c.TARGET_HTTP_RATIO  # see _common
# (script, keys, arguments) of one store call, as the store sent it.
Call = tuple[str, list[str], list[Any]]
Send = Callable[[Any, list[Call]], None]


def capture(events: int) -> list[Call]:
    """The store's script calls while an engine on the Redis store scores ``events``
    simulated logins from an empty database, in order."""
    from riskengine.core.wire import ScoreRequest

    bodies = c.simulate(events=events)
    c.redis_clean()
    calls: list[Call] = []
    with tempfile.TemporaryDirectory(prefix="redis-floor-") as folder:
        engine = c.build(c.store_url("redis", Path(folder)), Path(folder)).engine
        store = engine.store
        run = store._run
        names = {store._load_script.sha: "load", store._record.sha: "record"}

        def captured(script: Any, keys: list[str], args: list[object]) -> Any:
            calls.append((names[script.sha], list(keys), list(args)))
            return run(script, keys, args)

        store._run = captured  # this instance only: the package is not changed
        try:
            for body in bodies:
                engine.score(ScoreRequest.model_validate(body))
        finally:
            store.close()
    return calls


def redis_cpu(r: Any) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def timed(r: Any, send: Callable[[list[Call]], None], calls: list[Call],
          measured_from: int = 0) -> dict[str, float]:
    """Send ``calls`` (the ones before ``measured_from`` unmeasured); Redis's and this
    process's CPU, in us a login (two calls)."""
    send(calls[:measured_from])
    rest = calls[measured_from:]
    r0, t0 = redis_cpu(r), time.process_time()
    send(rest)
    r1, t1 = redis_cpu(r), time.process_time()
    logins = len(rest) / 2
    return {"redis_us": (r1 - r0) / logins * 1e6, "client_us": (t1 - t0) / logins * 1e6}


def spread(conns: list[Any], calls: list[Call], send: Callable[[Any, list[Call]], None]
           ) -> None:
    """``send`` the calls over all of ``conns`` at once, a thread each; a user's calls all
    on one connection, in order (the record script checks the profile its load read)."""
    lanes: list[list[Call]] = [[] for _ in conns]
    for call in calls:  # the profile's key is the first key of both scripts
        lanes[zlib.crc32(call[1][0].encode()) % len(conns)].append(call)
    failed: list[BaseException] = []

    def run(conn: Any, lane: list[Call]) -> None:
        try:
            send(conn, lane)
        except BaseException as exc:  # a thread's error would be lost: raised below
            failed.append(exc)

    threads = [threading.Thread(target=run, args=(conn, lane))
               for conn, lane in zip(conns, lanes, strict=True) if lane]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failed:
        raise failed[0]


def passes(r: Any, scripts: dict[str, str], batch: int) -> dict[str, Send]:
    """Each pass's way of sending the captured calls over connections ``conns``."""
    empty = r.script_load("return 1")

    def one_by_one(conn: Any, calls: list[Call], command: Callable[[Call], tuple[Any, ...]]
                   ) -> None:
        for call in calls:
            conn.send_command(*command(call))
            conn.read_response()

    def batched(conn: Any, calls: list[Call], command: Callable[[Call], tuple[Any, ...]]
                ) -> None:
        for i in range(0, len(calls), batch):
            group = calls[i:i + batch]
            conn.send_packed_command(conn.pack_commands([command(call) for call in group]))
            for _ in group:
                conn.read_response()

    def ping(call: Call) -> tuple[Any, ...]:
        return ("PING",)

    def nothing(call: Call) -> tuple[Any, ...]:
        return ("EVALSHA", empty, len(call[1]), *call[1], *call[2])

    def own(call: Call) -> tuple[Any, ...]:
        return ("EVALSHA", scripts[call[0]], len(call[1]), *call[1], *call[2])

    def way(send: Callable[..., None], command: Callable[[Call], tuple[Any, ...]]) -> Send:
        return lambda conns, calls: spread(conns, calls, lambda conn, lane: send(conn, lane,
                                                                                   command))

    return {
        "ping": way(one_by_one, ping),
        "empty": way(one_by_one, nothing),
        "scripts": way(one_by_one, own),
        f"empty, batch {batch}": way(batched, nothing),
        f"scripts, batch {batch}": way(batched, own),
    }


def replay(calls: list[Call], *, repeat: int, batch: int, connections: int,
           http_seconds: float | None) -> dict[str, list[dict[str, float]]]:
    """Each round: the bare route over HTTP (unless ``http_seconds`` is None), then each
    pass over the captured calls."""
    import redis

    from riskengine.adapters.stores import redis as store_module

    r = redis.Redis.from_url(c.REDIS_URL)
    scripts = {"load": r.script_load(store_module._LOAD),
               "record": r.script_load(store_module._RECORD)}
    conns = [r.connection_pool.make_connection() for _ in range(connections)]
    for conn in conns:
        conn.connect()
    ways = passes(r, scripts, batch)
    out: dict[str, list[dict[str, float]]] = {name: [] for name in ways}
    out["http"] = []
    try:
        for round_ in range(repeat):
            if http_seconds is not None:
                out["http"].append(bare_route(http_seconds))
                c.note(f"  round {round_ + 1}/{repeat} the bare route: "
                       f"{out['http'][-1]['bare_server_us']:.1f} us a request")
            for name, way in ways.items():
                c.redis_clean()
                # The scripts build the windows as they go: the first half fills them.
                warm = len(calls) // 2 if "scripts" in name else 0
                out[name].append(timed(r, lambda part, way=way: way(conns, part), calls, warm))
                c.note(f"  round {round_ + 1}/{repeat} {name:<18} Redis "
                       f"{out[name][-1]['redis_us']:6.1f} us a login")
    finally:
        c.redis_clean()
        for conn in conns:
            conn.disconnect()
        r.close()
    return out


def bare_route(seconds: float) -> dict[str, float]:
    """The bare route's server CPU a request and the client's, in us: one run of
    ``bench/http.py`` with one worker (its JSON's one-worker runs, medians)."""
    import json
    import subprocess

    with tempfile.TemporaryDirectory(prefix="redis-floor-http-") as folder:
        out = Path(folder) / "http.json"
        subprocess.run(
            [sys.executable, str(Path(__file__).with_name("http.py")), "--workers", "1",
             "--apps", "bare", "--repeat", "1", "--seconds", str(seconds), "--load", "0",
             "--warmup", "1000", "--bodies", "5000", "--out", str(out)],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        runs = json.loads(out.read_text())["workers"]["1"]["runs"]["bare"]
    return {"bare_server_us": c.med(run["cores"]["server"] / run["rps"] * 1e6 for run in runs),
            "client_us": c.med(run["cores"]["client"] / run["rps"] * 1e6 for run in runs)}


def joint_ceiling(bare_server_us: float, client_us: float, redis_us: float,
                  machine_cores: int) -> dict[str, float]:
    """What 2 workers can give over 1 once the HTTP target holds: a request costing the
    server at most ``bare_server_us / TARGET_HTTP_RATIO``, the client ``client_us`` and
    Redis ``redis_us``."""
    server = bare_server_us / TARGET_HTTP_RATIO
    return {"server_us": server,
            "ceiling": c.scaling_ceiling(server, client_us, redis_us, workers=2,
                                         machine_cores=machine_cores)}


def ceilings(rounds: dict[str, list[dict[str, float]]], machine_cores: int
             ) -> dict[str, dict[str, list[float]]]:
    """Round by round, for each pass: what 2 workers can give over 1 with the HTTP target
    met, the client as measured in that round and a client costing nothing."""
    out: dict[str, dict[str, list[float]]] = {}
    for name, runs in rounds.items():
        if name == "http":
            continue
        got = out[name] = {"measured_client": [], "free_client": []}
        for http, run in zip(rounds["http"], runs, strict=False):
            for key, client in (("measured_client", http["client_us"]), ("free_client", 0.0)):
                got[key].append(joint_ceiling(http["bare_server_us"], client, run["redis_us"],
                                              machine_cores)["ceiling"])
    return out


def report(rounds: dict[str, list[dict[str, float]]], machine_cores: int) -> list[str]:
    passes_ = [name for name in rounds if name != "http"]
    lines = [f"{'CPU a login (two calls), medians':<36}{'Redis us':>10}{'client us':>11}"]
    lines += [f"  {name:<34}{c.med(r['redis_us'] for r in rounds[name]):>10.1f}"
              f"{c.med(r['client_us'] for r in rounds[name]):>11.1f}" for name in passes_]
    http = rounds["http"]
    if not http:
        return lines
    bare = c.med(h["bare_server_us"] for h in http)
    lines += [
        "",
        f"the bare route, 1 worker: {bare:.1f} us of server CPU a request, the client "
        f"{c.med(h['client_us'] for h in http):.1f} (wrk; medians of {len(http)} rounds)",
        f"riskengine at {TARGET_HTTP_RATIO} x its throughput may cost the server "
        f"{bare / TARGET_HTTP_RATIO:.1f} us a request at most; then, on {machine_cores} cores,",
        f"2 workers / 1 at most, if a request costs no less with two (medians of the rounds' "
        f"own; target {TARGET_WORKERS}):",
        f"  {'Redis as':<28}{'client as measured':>20}{'client free':>13}",
    ]
    for name, got in ceilings(rounds, machine_cores).items():
        measured, free = c.med(got["measured_client"]), c.med(got["free_client"])
        lines.append(f"  {name:<28}{measured:>20.2f}{free:>13.2f}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000, help="logins captured")
    parser.add_argument("--repeat", type=int, default=3, help="rounds")
    parser.add_argument("--batch", type=int, default=16,
                        help="calls a round trip in the batched passes")
    parser.add_argument("--connections", type=int, default=4,
                        help="connections the calls are spread over, a thread each")
    parser.add_argument("--http-seconds", type=float, default=6.0,
                        help="the bare route's run in each round")
    parser.add_argument("--no-http", action="store_true", help="the floors alone")
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "redis_floor.json"))
    args = parser.parse_args()
    if not c.redis_up():
        c.note(f"Redis is not answering at {c.REDIS_URL}")
        return 2
    os.environ["RISKENGINE_TRUST_EVENT_TIME"] = "1"  # the simulated logins' own times
    c.note(f"capturing the store's calls over {args.events} logins ...")
    calls = capture(args.events)
    rounds = replay(calls, repeat=args.repeat, batch=args.batch, connections=args.connections,
                    http_seconds=None if args.no_http else args.http_seconds)
    cores = os.cpu_count() or 1
    print("\n".join(report(rounds, cores)))
    c.write_json(args.out, {"args": vars(args), "calls": len(calls), "rounds": rounds,
                            "ceilings": ceilings(rounds, cores) if rounds["http"] else {}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
