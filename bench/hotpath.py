"""In-process hot path: simulated logins through ``Engine.score`` with a warm store.

For each store (memory, SQLite, Redis) an engine is built as the service builds it
(``riskengine.service.build.build_engine``, development settings, open API, no snapshots; then
``gc.freeze()``, as ``riskengine serve`` does once it is built), warmed with the first
``--warmup`` simulated events (untimed: users get their history, the model its lessons),
then fed the next ``--events`` events one at a time: wire dict ->
``riskengine.core.wire.ScoreRequest`` -> ``Engine.score``. Prints events/s, per-event latency
percentiles and where the time goes, and writes everything as JSON.

Where the time goes is measured from outside, by wrapping in this process only the names
the engine calls (nothing in the package is changed):

    parse     ScoreRequest.model_validate (the wire validation the API does too)
    edge      Engine.to_event (pseudonymization, timestamp parsing)
    signals   engine.signals.start / collect when the engine has signals (phone-number
              facts, provider lookups)
    ip        engine.ipintel.lookup (cached DB-IP / iporigin / time zone lookups), wherever
              the engine calls it
    store     engine.store.load / record / get_profile (includes applying the profile update
              inside the store's transaction and the JSON of profile and decision)
    features  features.extract.extract and features.profile.sighting as the core imports them
    rules     Ruleset.evaluate and the allow / deny list lookup
    model     AnomalyModel.score_one / risk / learn_one and the learning gate
    policy    riskengine.core.policy.decide and engine.to_wire
    other     the rest of Engine.score (bookkeeping, logging check, dataclasses)

Each step's time is exclusive of the other steps it calls.

    .venv/bin/python bench/hotpath.py                       # 100,000 events x 3 stores
    .venv/bin/python bench/hotpath.py --events 10000 --stores memory sqlite   # a quick look
    .venv/bin/python bench/hotpath.py --repeat 3            # medians of three runs

The Redis store uses database 11 of 127.0.0.1:6379 (``RISKENGINE_BENCH_REDIS``) and removes
its keys before and after.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

STEPS = ("parse", "edge", "signals", "ip", "store", "features", "rules", "model", "policy",
         "other")
# The targets (#10), per event, in process.
TARGET_SQLITE_P50_MS = 0.3
TARGET_SQLITE_P99_MS = 1.5
TARGET_MEMORY_EVENTS_PER_CORE_S = 4000.0


class Probe:
    """Accumulates the time spent in each step by wrapping the engine's collaborators.

    Times are exclusive: a wrapped call made inside another (the IP lookup that the edge
    makes for the phone signals, say) is charged to its own step and not to its caller's."""

    def __init__(self) -> None:
        self.ns = dict.fromkeys(STEPS, 0)
        self._undo: list[Callable[[], None]] = []
        self._stack: list[list[Any]] = []  # [step, since] of the calls under way

    def _timed(self, fn: Callable[..., Any], step: str) -> Callable[..., Any]:
        ns, clock, stack = self.ns, time.perf_counter_ns, self._stack

        def timed(*args: Any, **kwargs: Any) -> Any:
            now = clock()
            if stack:  # pause the caller's step
                outer = stack[-1]
                ns[outer[0]] += now - outer[1]
            stack.append([step, now])
            try:
                return fn(*args, **kwargs)
            finally:
                end = clock()
                ns[step] += end - stack.pop()[1]
                if stack:
                    stack[-1][1] = end

        return timed

    def patch(self, owner: Any, name: str, step: str) -> None:
        """Wrap ``owner.name`` (a module, class or instance); skipped when it is absent."""
        if not hasattr(owner, name):
            return
        before = owner.__dict__.get(name, None) if hasattr(owner, "__dict__") else None
        setattr(owner, name, self._timed(getattr(owner, name), step))

        def undo() -> None:
            if before is None:
                delattr(owner, name)  # back to the class's attribute
            else:
                setattr(owner, name, before)

        self._undo.append(undo)

    def attach(self, engine: Any) -> None:
        import riskengine.service.scorer as shell
        from riskengine.core import decide as core
        from riskengine.core import rules

        for name, step in (("extract", "features"), ("sighting", "features"),
                           ("decide", "policy")):
            self.patch(core, name, step)
        self.patch(shell, "to_wire", "policy")
        self.patch(rules.Ruleset, "evaluate", "rules")
        if hasattr(rules, "Lists"):
            self.patch(rules.Lists, "lookup", "rules")
        for name in ("load", "record", "get_profile"):
            self.patch(engine.store, name, "store")
        for name in ("score_one", "risk", "learn_one"):
            self.patch(engine.model, name, "model")
        self.patch(engine.gate, "admit", "model")
        self.patch(engine.ipintel, "lookup", "ip")
        if getattr(engine, "signals", None) is not None:
            for name in ("start", "collect"):
                self.patch(engine.signals, name, "signals")
        self.patch(engine, "to_event", "edge")

    def detach(self) -> None:
        while self._undo:
            self._undo.pop()()

    def reset(self) -> None:
        for step in self.ns:
            self.ns[step] = 0


def run_store(kind: str, events: list[dict[str, Any]], *, warmup: int,
              breakdown: bool) -> dict[str, Any]:
    from riskengine.core.wire import ScoreRequest
    from riskengine.service.build import settle_heap

    with tempfile.TemporaryDirectory(prefix="hotpath-") as folder:
        tmp = Path(folder)
        if kind == "redis":
            c.redis_clean()
        built = c.build(c.store_url(kind, tmp), tmp)
        engine = built.engine
        settle_heap()  # as ``riskengine serve`` does once the engine is built
        probe = Probe()
        if breakdown:
            probe.attach(engine)
        validate = ScoreRequest.model_validate
        score = engine.score
        try:
            for body in events[:warmup]:
                score(validate(body))
            measured = events[warmup:]
            probe.reset()
            gc.collect()
            total_ns = array("q")
            engine_ns = array("q")
            decisions = {"allow": 0, "challenge": 0, "deny": 0}
            failovers = 0
            clock = time.perf_counter_ns
            with c.Stopwatch() as sw:
                for body in measured:
                    t0 = clock()
                    req = validate(body)
                    t1 = clock()
                    scored = score(req)
                    t2 = clock()
                    total_ns.append(t2 - t0)
                    engine_ns.append(t2 - t1)
                    probe.ns["parse"] += t1 - t0
                    decisions[scored.body["decision"]] += 1
                    failovers += bool(scored.body.get("failover"))
        finally:
            gc.unfreeze()
            probe.detach()
            engine.store.close()
            if engine.outbox is not None:
                engine.outbox.close()
            if kind == "redis":
                c.redis_clean()
    n = len(measured)
    total = sorted(total_ns)
    only = sorted(engine_ns)
    out: dict[str, Any] = {
        "store": kind,
        "events": n,
        "warmup_events": warmup,
        "wall_s": sw.wall,
        "cpu_s": sw.cpu,
        "events_per_s": n / sw.wall,
        "events_per_cpu_s": n / sw.cpu if sw.cpu > 0 else float("nan"),
        "latency_ms": {f"p{q}": c.quantile(total, q / 100) / 1e6 for q in (50, 90, 99, 99.9)}
        | {"max": total[-1] / 1e6, "mean": sum(total) / n / 1e6},
        "engine_latency_ms": {f"p{q}": c.quantile(only, q / 100) / 1e6 for q in (50, 99)},
        "decisions": decisions,
        "failovers": failovers,
    }
    if breakdown:
        measured_ns = sum(total_ns)
        parts = dict(probe.ns)
        parts["other"] = max(0, measured_ns - sum(v for k, v in parts.items() if k != "other"))
        out["share"] = {k: v / measured_ns for k, v in parts.items()}
        out["us_per_event"] = {k: v / n / 1e3 for k, v in parts.items()}
    return out


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over repeated runs of one store."""
    first = runs[0]
    out: dict[str, Any] = {"store": first["store"], "runs": len(runs), "events": first["events"]}
    for key in ("events_per_s", "events_per_cpu_s", "failovers"):
        out[key] = c.med(r[key] for r in runs)
    for group in ("latency_ms", "engine_latency_ms", "share", "us_per_event"):
        if group in first:
            out[group] = {k: c.med(r[group][k] for r in runs) for k in first[group]}
    out["decisions"] = first["decisions"]
    return out


def table(summaries: list[dict[str, Any]]) -> str:
    cols = [s["store"] for s in summaries]
    rows = [f"{'':<30}" + "".join(f"{col:>12}" for col in cols)]

    def row(name: str, get: Callable[[dict[str, Any]], float], fmt: str) -> None:
        rows.append(f"{name:<30}" + "".join(f"{fmt.format(get(s)):>12}" for s in summaries))

    row("events timed", lambda s: s["events"], "{:,}")
    row("runs (medians of)", lambda s: s["runs"], "{}")
    row("events/s (wall)", lambda s: s["events_per_s"], "{:,.0f}")
    row("events per CPU-second", lambda s: s["events_per_cpu_s"], "{:,.0f}")
    for q in ("p50", "p90", "p99", "p99.9", "max"):
        row(f"latency {q} (ms)", lambda s, q=q: s["latency_ms"][q], "{:.3f}")
    row("  of it Engine.score p50", lambda s: s["engine_latency_ms"]["p50"], "{:.3f}")
    row("  of it Engine.score p99", lambda s: s["engine_latency_ms"]["p99"], "{:.3f}")
    row("failover answers", lambda s: s["failovers"], "{:,.0f}")
    if all("share" in s for s in summaries):
        for step in STEPS:
            row(f"share {step}", lambda s, st=step: s["share"][st], "{:.1%}")
        for step in STEPS:
            row(f"us/event {step}", lambda s, st=step: s["us_per_event"][st], "{:.1f}")
    return "\n".join(rows)


def verdicts(summaries: list[dict[str, Any]]) -> list[str]:
    by = {s["store"]: s for s in summaries}
    out = []
    if "sqlite" in by:
        lat = by["sqlite"]["latency_ms"]
        out.append(f"SQLite p50 <= {TARGET_SQLITE_P50_MS} ms: {lat['p50']:.3f} ms  "
                   f"{c.verdict(lat['p50'] <= TARGET_SQLITE_P50_MS)}")
        out.append(f"SQLite p99 <= {TARGET_SQLITE_P99_MS} ms: {lat['p99']:.3f} ms  "
                   f"{c.verdict(lat['p99'] <= TARGET_SQLITE_P99_MS)}")
    if "memory" in by:
        rate = by["memory"]["events_per_cpu_s"]
        out.append(f"memory >= {TARGET_MEMORY_EVENTS_PER_CORE_S:,.0f} events/s per core: "
                   f"{rate:,.0f} per CPU-second ({by['memory']['events_per_s']:,.0f}/s wall)  "
                   f"{c.verdict(rate >= TARGET_MEMORY_EVENTS_PER_CORE_S)}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="events timed per store")
    parser.add_argument("--warmup", type=int, default=35_000,
                        help="events scored untimed first (about two weeks of 2,000 users)")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stores", nargs="+", default=["memory", "sqlite", "redis"],
                        choices=["memory", "sqlite", "redis"])
    parser.add_argument("--repeat", type=int, default=1, help="runs per store; medians shown")
    parser.add_argument("--no-breakdown", dest="breakdown", action="store_false",
                        help="time without wrapping the engine's steps")
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "hotpath.json"))
    args = parser.parse_args()
    stores = list(args.stores)
    if "redis" in stores and not c.redis_up():
        c.note(f"Redis is not answering at {c.REDIS_URL}: skipping the Redis store "
               "(make services starts it)")
        stores.remove("redis")
    c.note(f"simulating {args.warmup + args.events:,} events ...")
    events = c.simulate(events=args.warmup + args.events, users=args.users, seed=args.seed)
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in stores}
    for r in range(args.repeat):
        for kind in stores:  # interleaved, so slow spells of a noisy machine hit every store
            c.note(f"run {r + 1}/{args.repeat}: {kind} store ...")
            result = run_store(kind, events, warmup=args.warmup, breakdown=args.breakdown)
            lat = result["latency_ms"]
            c.note(f"  {result['events_per_s']:,.0f} events/s, p50 {lat['p50']:.3f} ms, "
                   f"p99 {lat['p99']:.3f} ms")
            runs[kind].append(result)
    summaries = [summarize(runs[k]) for k in stores]
    print(table(summaries))
    print("\nagainst the targets (issue #10):")
    for line in verdicts(summaries):
        print(f"  {line}")
    c.write_json(args.out, {"args": vars(args), "summary": summaries, "runs": runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
