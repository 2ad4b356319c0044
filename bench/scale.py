"""How the stores behave as users pile up: bytes per user and lookup time at 10k to 1M users.

Realistic profiles come first: ``--sample-users`` simulated customers over ``--sample-days``
days are scored through an engine built as the service builds it (SQLite store), and their
profiles are read back. Each store is then filled with those profiles under fresh random
pseudonymous user keys, in bulk (SQLite: ``executemany`` into the store's own ``profiles``
table, in the store's own JSON; Redis: pipelined ``SET`` at the store's own profile key with
its TTL), up to each size in ``--sizes``. At every size the script measures the bytes the
store takes per user (SQLite: database pages; Redis: ``used_memory``) and the time of
``store.load`` (everything one scoring pass reads) and ``store.get_profile`` for randomly
chosen users among all of them, through the store's own API.

It also states the bound on one user's profile that ``features.profile`` enforces
(``MAX_ITEMS`` per map, ``MAX_FAILURES`` failures) by building the largest profile ``learn``
and ``note_failure`` let grow, with identifiers as long as the wire contract allows.

    .venv/bin/python bench/scale.py                          # 10k, 100k, 1M users (~5 min)
    .venv/bin/python bench/scale.py --sizes 10000 100000 --stores sqlite   # a quick look

Redis: database 11 of 127.0.0.1:6379 (``RISKENGINE_BENCH_REDIS``), cleaned before and after
(1M users take about 2 GB of Redis memory while the run lasts).
"""

from __future__ import annotations

import argparse
import base64
import math
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

TENANT = "default"
TARGET_RATIO = 1.5  # lookup at 1M within 1.5 x of 10k (issue #10)
CHUNK = 20_000


def user_key(rng: random.Random) -> str:
    """A key shaped like a pseudonym: key id, dot, 22 url-safe characters (128 bits)."""
    return "k1." + base64.urlsafe_b64encode(rng.randbytes(16)).rstrip(b"=").decode()


# -- realistic profiles -------------------------------------------------------------------


def sample(users: int, days: int, seed: int, tmp: Path) -> dict[str, Any]:
    """Profiles, load queries and decision sizes from simulated traffic through the engine."""
    from riskengine.core.wire import ScoreRequest

    events = c.simulate(events=int(users * days * c.EVENTS_PER_USER_DAY * 0.9), users=users,
                        seed=seed)
    built = c.build(f"sqlite:{tmp / 'sample.db'}", tmp)
    engine = built.engine
    queries: list[Any] = []
    load = engine.store.load

    def keep(query: Any) -> Any:
        queries.append(query)
        return load(query)

    engine.store.load = keep  # this process only: remember what scoring asks the store
    keys = set()
    with c.Stopwatch() as sw:
        for body in events:
            scored = engine.score(ScoreRequest.model_validate(body))
            assert not scored.body.get("failover"), scored.body
    engine.store.load = load
    for q in queries:
        keys.add(q.user_key)
    profiles = [p.to_dict() for k in sorted(keys)
                if (p := engine.store.get_profile(TENANT, k)) is not None]
    conn = engine.store._conn  # read-only look at the file's own figures
    decision_json, n_decisions = conn.execute(
        "SELECT AVG(LENGTH(decision) + LENGTH(features) + COALESCE(LENGTH(sighting), 0)),"
        " COUNT(*) FROM decisions").fetchone()
    engine.store.close()
    db_bytes = sum(f.stat().st_size for f in tmp.glob("sample.db*"))
    logins = [p["logins"] for p in profiles]
    return {
        "events": len(events), "seconds": sw.wall, "profiles": profiles,
        "queries": queries[-5000:],
        "decision_json_bytes": decision_json, "decisions": n_decisions,
        "file_bytes_per_event": db_bytes / len(events),
        "logins_per_user_median": sorted(logins)[len(logins) // 2] if logins else 0,
    }


def worst_case() -> dict[str, Any]:
    """The largest profile that learning can build: every map full, identifiers as long as
    the wire contract lets them be."""
    import orjson

    from features.profile import (
        MAX_FAILURES,
        MAX_ITEMS,
        Sighting,
        UserProfile,
        learn,
        mark_bad,
        note_failure,
    )

    rng = random.Random(0)
    profile = UserProfile()
    ts = 1_790_000_000.123456
    n = MAX_ITEMS + 4
    for i in range(n):
        for j in range(n):  # every phone number with more SIMs than are kept
            ts += 61.0
            profile = learn(profile, Sighting(
                ts=ts, device_key=user_key(rng), device_model=f"{i:03d}" + "M" * 125,
                os_family=f"{i:03d}" + "O" * 61, os_version=f"{i}.{j}." + "9" * 58,
                bluetooth_key=user_key(rng), ip_prefix_key=user_key(rng), asn=4_200_000_000 + i,
                country=f"{i:02d}"[:2], city=f"{i:03d}" + "C" * 61,
                latitude=-33.123456789, longitude=151.123456789, ssid_key=user_key(rng),
                phone_key=f"k1.phone{i:019d}", sim_key=user_key(rng), local_hour=(i + j) % 24,
            ), trust=True)
    for i in range(n):
        profile = mark_bad(profile, Sighting(ts=ts, device_key=user_key(rng)), at=ts + i)
    for i in range(MAX_FAILURES + 8):
        profile = note_failure(profile, ts + i)
    data = profile.to_dict()
    sizes = {name: len(value) for name, value in data.items() if isinstance(value, dict | list)}
    sizes["sims (entries, all phones)"] = sum(len(v) for v in profile.sims.values())
    return {"max_items": MAX_ITEMS, "max_failures": MAX_FAILURES,
            "json_bytes": len(orjson.dumps(data)), "entries": sizes}


# -- filling and measuring ----------------------------------------------------------------


class SqliteFill:
    kind = "sqlite"

    def __init__(self, tmp: Path) -> None:
        from riskengine.adapters.stores import SqliteStore

        self.path = tmp / "scale.db"
        SqliteStore(self.path).close()  # the store makes its schema
        self._store_type = SqliteStore

    def add(self, rows: list[tuple[str, str]], ts: float) -> None:
        with sqlite3.connect(self.path, isolation_level=None) as conn:
            for start in range(0, len(rows), CHUNK):
                conn.execute("BEGIN")
                conn.executemany(
                    "INSERT INTO profiles (tenant, user_key, profile, updated_ts)"
                    " VALUES (?, ?, ?, ?)",
                    [(TENANT, key, text, ts) for key, text in rows[start:start + CHUNK]])
                conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def size_bytes(self) -> int:
        with sqlite3.connect(self.path) as conn:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            size = conn.execute("PRAGMA page_size").fetchone()[0]
        return int(pages * size)

    def open(self) -> Any:
        return self._store_type(self.path)

    def close(self) -> None:
        pass


class RedisFill:
    kind = "redis"

    def __init__(self, tmp: Path) -> None:
        import redis

        from riskengine.adapters.stores import RedisStore

        c.redis_clean()
        self.client = redis.Redis.from_url(c.REDIS_URL)
        self._store_type = RedisStore
        self._keyer = RedisStore(c.REDIS_URL)
        self.base = int(self.client.info("memory")["used_memory"])

    def add(self, rows: list[tuple[str, str]], ts: float) -> None:
        keyer = self._keyer
        retention = keyer._retention
        for start in range(0, len(rows), CHUNK):
            with self.client.pipeline(transaction=False) as pipe:
                for key, text in rows[start:start + CHUNK]:
                    # The store's own value: the profile plus the event time of its update.
                    pipe.set(keyer._profile_key(TENANT, key),
                             text[:-1] + f',"_updated":{ts!r}}}', ex=retention)
                pipe.execute()

    def size_bytes(self) -> int:
        return int(self.client.info("memory")["used_memory"]) - self.base

    def open(self) -> Any:
        # A deadline wider than the service's 50 ms: this measures lookups, not failovers.
        return self._store_type(c.REDIS_URL, timeout_s=2.0)

    def close(self) -> None:
        self._keyer.close()
        self.client.close()
        c.redis_clean()


def measure(store: Any, keys: list[str], templates: list[Any], *, lookups: int,
            rng: random.Random) -> dict[str, Any]:
    from dataclasses import replace

    load_ns, get_ns = [], []
    clock = time.perf_counter_ns
    for i in range(lookups):
        key = keys[rng.randrange(len(keys))]
        query = replace(templates[i % len(templates)], user_key=key, event_id=f"scale-{i}")
        t0 = clock()
        loaded = store.load(query)
        t1 = clock()
        profile = store.get_profile(TENANT, keys[rng.randrange(len(keys))])
        t2 = clock()
        assert loaded.profile is not None and profile is not None
        load_ns.append(t1 - t0)
        get_ns.append(t2 - t1)
    load_ns.sort()
    get_ns.sort()
    return {
        "load_ms": {f"p{q}": c.quantile(load_ns, q / 100) / 1e6 for q in (50, 99)},
        "get_profile_ms": {f"p{q}": c.quantile(get_ns, q / 100) / 1e6 for q in (50, 99)},
    }


def run_store(fill: Any, profiles: list[str], templates: list[Any], *, sizes: list[int],
              lookups: int, repeat: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    keys: list[str] = []
    out = []
    ts = templates[-1].now
    try:
        for size in sizes:
            rows = []
            while len(keys) < size:
                key = user_key(rng)
                keys.append(key)
                rows.append((key, profiles[len(keys) % len(profiles)]))
            before = fill.size_bytes()
            with c.Stopwatch() as sw:
                fill.add(rows, ts)
            after = fill.size_bytes()
            store = fill.open()
            try:
                measure(store, keys, templates, lookups=min(1000, lookups), rng=rng)  # warm
                runs = [measure(store, keys, templates, lookups=lookups, rng=rng)
                        for _ in range(repeat)]
            finally:
                store.close()
            result = {
                "users": size, "fill_seconds": sw.wall,
                "bytes_per_user": after / size,
                "bytes_per_user_added": (after - before) / max(1, len(rows)),
                "load_ms": {k: c.med(r["load_ms"][k] for r in runs) for k in ("p50", "p99")},
                "get_profile_ms": {k: c.med(r["get_profile_ms"][k] for r in runs)
                                   for k in ("p50", "p99")},
            }
            c.note(f"  {fill.kind} {size:>9,} users: {result['bytes_per_user']:,.0f} B/user, "
                   f"load p50 {result['load_ms']['p50']:.3f} ms p99 "
                   f"{result['load_ms']['p99']:.3f} ms (filled in {sw.wall:.0f} s)")
            out.append(result)
    finally:
        fill.close()
    return out


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    rows = [f"{'':<12}{'users':>11}{'B/user':>10}{'load p50':>11}{'load p99':>11}"
            f"{'get p50':>10}{'get p99':>10}   (ms)"]
    for kind, steps in results.items():
        for s in steps:
            rows.append(f"{kind:<12}{s['users']:>11,}{s['bytes_per_user']:>10,.0f}"
                        f"{s['load_ms']['p50']:>11.3f}{s['load_ms']['p99']:>11.3f}"
                        f"{s['get_profile_ms']['p50']:>10.3f}{s['get_profile_ms']['p99']:>10.3f}")
    return "\n".join(rows)


def verdicts(results: dict[str, list[dict[str, Any]]]) -> list[str]:
    out = []
    for kind, steps in results.items():
        if len(steps) < 2:
            continue
        first, last = steps[0], steps[-1]
        ratio = last["load_ms"]["p50"] / first["load_ms"]["p50"]
        out.append(f"{kind}: load p50 at {last['users']:,} users / at {first['users']:,} = "
                   f"{ratio:.2f} (target <= {TARGET_RATIO})  {c.verdict(ratio <= TARGET_RATIO)}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--stores", nargs="+", default=["sqlite", "redis"],
                        choices=["sqlite", "redis"])
    parser.add_argument("--lookups", type=int, default=5000, help="per size and run")
    parser.add_argument("--repeat", type=int, default=3, help="lookup runs per size; medians")
    parser.add_argument("--sample-users", type=int, default=2000)
    parser.add_argument("--sample-days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "scale.json"))
    args = parser.parse_args()
    sizes = sorted(args.sizes)
    stores = list(args.stores)
    if "redis" in stores and not c.redis_up():
        c.note(f"Redis is not answering at {c.REDIS_URL}: skipping it")
        stores.remove("redis")
    import orjson

    bound = worst_case()
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as folder:
        tmp = Path(folder)
        c.note(f"scoring {args.sample_users:,} simulated customers over {args.sample_days} "
               "days for realistic profiles ...")
        got = sample(args.sample_users, args.sample_days, args.seed, tmp)
        profiles = [orjson.dumps(p).decode() for p in got["profiles"]]
        lengths = sorted(len(p) for p in profiles)
        results: dict[str, list[dict[str, Any]]] = {}
        for kind in stores:
            fill = SqliteFill(tmp) if kind == "sqlite" else RedisFill(tmp)
            results[kind] = run_store(fill, profiles, got["queries"], sizes=sizes,
                                      lookups=args.lookups, repeat=args.repeat, seed=args.seed)
    per_login = got["decision_json_bytes"]
    print(f"profile JSON of {len(profiles):,} simulated customers after {args.sample_days} days "
          f"(median {got['logins_per_user_median']} verified logins): median "
          f"{c.quantile(lengths, 0.5):,.0f} B, p99 {c.quantile(lengths, 0.99):,.0f} B, "
          f"max {lengths[-1]:,} B")
    print(f"bound on one profile (MAX_ITEMS={bound['max_items']}, MAX_FAILURES="
          f"{bound['max_failures']}): {bound['json_bytes']:,} B of JSON, every map full "
          f"({bound['entries']['sims (entries, all phones)']:,} of it SIM entries: "
          f"{bound['max_items']} phone numbers x {bound['max_items']} SIMs)")
    print(f"beside the profile, each login keeps a decision for the retention (30 days): "
          f"{per_login:,.0f} B of JSON; the SQLite file grew "
          f"{got['file_bytes_per_event']:,.0f} B per login scored\n")
    print(table(results))
    print("\nagainst the targets (issue #10):")
    print(f"  per-user store size bounded: profile <= {bound['json_bytes']:,} B (worst case; "
          f"median {c.quantile(lengths, 0.5):,.0f} B)  met")
    for line in verdicts(results):
        print(f"  {line}")
    c.write_json(args.out, {"args": vars(args), "worst_case_profile": bound,
                            "sample": {k: v for k, v in got.items()
                                       if k not in ("profiles", "queries")}
                            | {"profile_json_bytes": {"median": c.quantile(lengths, 0.5),
                                                      "p99": c.quantile(lengths, 0.99),
                                                      "max": lengths[-1]}},
                            "stores": results})
    return 0 if all(math.isfinite(s["load_ms"]["p50"]) for v in results.values() for s in v) \
        else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
