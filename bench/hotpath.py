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
    model     AnomalyModel.score_one / risk / learn_one: the model's step, per login (score
              every login, learn the ones the engine teaches)
    gate      the learning gate's caps (LearningGate.admit; part of ``model`` before #19)
    policy    riskengine.core.policy.decide and engine.to_wire
    other     the rest of Engine.score (bookkeeping, logging check, dataclasses)

Each step's time is exclusive of the other steps it calls; ``--cpu-steps`` counts it in the
scoring thread's CPU time rather than wall time (on a busy machine, wall time inside a step
includes the time other processes held the core). ``--fine`` splits some out of
the steps above (issue #19's breakdown of the engine's own work), and says whose code each is:

    pseudonyms  Pseudonymizer calls (riskengine/core/privacy.py), out of ``edge`` and ``digest``
    digest      the request's keyed digest (edge.request_digest), out of ``edge``
    timestamp   the caller's timestamp parsed (wire.parse_timestamp), out of ``edge``
    profile     features.profile's learn / note_failure (run inside the store's record) and
                Sighting.to_dict, out of ``store`` and ``other``
    learning    core.learning's verified_good / earns_trust / sampled and the deployment's
                calibration (models.calibration), out of ``other``
    answer      the wire answer and what is kept of it (answer.to_wire, the shell's
                _with_digest and _answer), out of ``policy`` and ``other``

The anomaly model runs on its compiled trees (``models.hst``, the default) or on river's
(``--backends river``, the reference; ``--backends compiled river`` runs each store with
both). Either way, the model's step is also compared head to head in the same run: the
feature vectors of the first ``--model-events`` timed logins, and whether the engine taught
each, are replayed through the model as it stood before the timed run, once on each backend
(score, risk, and learn where the engine learned), with their scores checked equal.

    .venv/bin/python bench/hotpath.py                       # 100,000 events x 3 stores
    .venv/bin/python bench/hotpath.py --events 10000 --stores memory sqlite   # a quick look
    .venv/bin/python bench/hotpath.py --repeat 3            # medians of three runs
    .venv/bin/python bench/hotpath.py --events 10000 --stores memory --backends compiled river

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

STEPS = ("parse", "edge", "signals", "ip", "store", "features", "rules", "model", "gate",
         "policy", "other")
FINE_STEPS = ("pseudonyms", "digest", "timestamp", "profile", "learning", "answer")
# The issues' targets, per event, in process: #10's, with SQLite's p50 and the memory
# store's rate as #19 restated them (#10: 0.3 ms, 4,000), and #19's for the Redis store.
TARGET_SQLITE_P50_MS = 0.4
TARGET_SQLITE_P99_MS = 1.5
TARGET_MEMORY_EVENTS_PER_CORE_S = 5000.0
TARGET_REDIS_EVENTS_PER_CORE_S = 1500.0
TARGET_REDIS_P50_MS = 1.0
# The target (#19) for the model's step: score and learn, per login.
TARGET_MODEL_US = 10.0
BACKENDS = ("compiled", "river")


class Probe:
    """Accumulates the time spent in each step by wrapping the engine's collaborators.

    Times are exclusive: a wrapped call made inside another (the IP lookup that the edge
    makes for the phone signals, say) is charged to its own step and not to its caller's."""

    def __init__(self, *, fine: bool = False, cpu: bool = False) -> None:
        self.fine = fine
        # The steps' clock: wall time, or the scoring thread's CPU time (a busy machine's
        # other processes then do not count; each reading costs ~0.3-0.5 us more).
        self.cpu = cpu
        self.clock = time.thread_time_ns if cpu else time.perf_counter_ns
        self.ns = dict.fromkeys(STEPS + FINE_STEPS if fine else STEPS, 0)
        self._undo: list[Callable[[], None]] = []
        self._stack: list[list[Any]] = []  # [step, since] of the calls under way

    def _timed(self, fn: Callable[..., Any], step: str) -> Callable[..., Any]:
        ns, clock, stack = self.ns, self.clock, self._stack

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
        if not self.fine:  # else the answer's step (_attach_fine)
            self.patch(shell, "to_wire", "policy")
        self.patch(rules.Ruleset, "evaluate", "rules")
        if hasattr(rules, "Lists"):
            self.patch(rules.Lists, "lookup", "rules")
        for name in ("load", "record", "get_profile"):
            self.patch(engine.store, name, "store")
        for name in ("score_one", "risk", "learn_one"):
            self.patch(engine.model, name, "model")
        self.patch(engine.gate, "admit", "gate")
        self.patch(engine.ipintel, "lookup", "ip")
        if getattr(engine, "signals", None) is not None:
            for name in ("start", "collect"):
                self.patch(engine.signals, name, "signals")
        self.patch(engine, "to_event", "edge")
        if self.fine:
            self._attach_fine(engine, shell, core)

    def _attach_fine(self, engine: Any, shell: Any, core: Any) -> None:
        from features.profile import Sighting
        from riskengine.core import edge, privacy

        for name in ("__call__", "under_every_key", "of_utf8"):
            self.patch(privacy.Pseudonymizer, name, "pseudonyms")
        self.patch(edge, "request_digest", "digest")
        self.patch(edge, "parse_timestamp", "timestamp")
        for name in ("learn", "note_failure"):
            self.patch(core, name, "profile")
        self.patch(Sighting, "to_dict", "profile")
        for name in ("verified_good", "earns_trust"):
            self.patch(core, name, "learning")
        self.patch(shell, "sampled", "learning")
        self.patch(engine.calibration, "observe", "learning")
        for name in ("to_wire", "_with_digest", "_answer"):
            self.patch(shell, name, "answer")

    def detach(self) -> None:
        while self._undo:
            self._undo.pop()()

    def reset(self) -> None:
        for step in self.ns:
            self.ns[step] = 0


def use_backend(engine: Any, backend: str) -> None:
    """Serve ``engine``'s anomaly model on ``backend`` (the same model, walked by other code),
    its kernels compiled or loaded from numba's cache now, as the service's start-up does."""
    model = engine.model
    if getattr(model, "backend", None) != backend:
        engine.swap_model(model.with_backend(backend), engine.model_version, engine.model_card)
    if hasattr(engine.model, "warm"):
        engine.model.warm()


def model_step(frozen: bytes, logins: list[tuple[Any, bool]]) -> dict[str, Any]:
    """The model's step on each backend over the same logins: score and risk every one,
    learn the ones the engine taught, from the model as it stood before the timed run."""
    import pickle

    start = pickle.loads(frozen)
    out: dict[str, Any] = {"logins": len(logins), "learned": sum(t for _, t in logins)}
    scores: dict[str, list[float]] = {}
    for backend in BACKENDS:
        model = start.with_backend(backend)
        model.warm()
        got = scores[backend] = []
        clock, cpu = time.perf_counter_ns, time.process_time_ns
        w0, c0 = clock(), cpu()
        for x, taught in logins:
            s = model.score_one(x)
            model.risk(s)
            if taught:
                model.learn_one(x)
            got.append(s)
        out[backend] = {"us_per_login": (clock() - w0) / len(logins) / 1e3,
                        "cpu_us_per_login": (cpu() - c0) / len(logins) / 1e3}
    a, b = (scores[k] for k in BACKENDS)
    out["max_score_difference"] = max(abs(x - y) for x, y in zip(a, b, strict=True))
    return out


def run_store(kind: str, events: list[dict[str, Any]], *, warmup: int, breakdown: bool,
              backend: str = "compiled", model_events: int = 0,
              fine: bool = False, cpu_steps: bool = False) -> dict[str, Any]:
    import pickle

    from riskengine.core.wire import ScoreRequest
    from riskengine.service.build import settle_heap

    with tempfile.TemporaryDirectory(prefix="hotpath-") as folder:
        tmp = Path(folder)
        if kind == "redis":
            c.redis_clean()
        built = c.build(c.store_url(kind, tmp), tmp)
        engine = built.engine
        use_backend(engine, backend)
        settle_heap()  # as ``riskengine serve`` does once the engine is built
        probe = Probe(fine=fine, cpu=cpu_steps and breakdown)
        cpu_steps = probe.cpu
        if breakdown:
            probe.attach(engine)
        validate = ScoreRequest.model_validate
        score = engine.score
        try:
            for body in events[:warmup]:
                score(validate(body))
            measured = events[warmup:]
            frozen = b""
            if model_events:  # the model as it stands now, without the probe's wrappers
                probe.detach()
                frozen = pickle.dumps(engine.model)
                if breakdown:
                    probe.attach(engine)
            logins: list[tuple[Any, bool]] = []
            probe.reset()
            gc.collect()
            total_ns = array("q")
            engine_ns = array("q")
            decisions = {"allow": 0, "challenge": 0, "deny": 0}
            failovers = 0
            clock, tick = time.perf_counter_ns, time.thread_time_ns
            c0 = c1 = c2 = cpu_ns = 0
            learned_before = engine.model.n_learned_
            with c.Stopwatch() as sw:
                for body in measured:
                    if cpu_steps:
                        c0 = tick()
                    t0 = clock()
                    req = validate(body)
                    t1 = clock()
                    if cpu_steps:
                        c1 = tick()
                    scored = score(req)
                    if cpu_steps:
                        c2 = tick()
                    t2 = clock()
                    total_ns.append(t2 - t0)
                    engine_ns.append(t2 - t1)
                    if cpu_steps:
                        probe.ns["parse"] += c1 - c0
                        cpu_ns += c2 - c0
                    else:
                        probe.ns["parse"] += t1 - t0
                    if len(logins) < model_events and scored.features is not None:
                        taught = engine.model.n_learned_ != learned_before
                        logins.append((scored.features, taught))
                    learned_before = engine.model.n_learned_
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
        "store": kind if backend == "compiled" else f"{kind}/{backend}",
        "backend": backend,
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
        out["step_clock"] = "thread CPU" if cpu_steps else "wall"
        measured_ns = cpu_ns if cpu_steps else sum(total_ns)
        parts = dict(probe.ns)
        parts["other"] = max(0, measured_ns - sum(v for k, v in parts.items() if k != "other"))
        out["share"] = {k: v / measured_ns for k, v in parts.items()}
        out["us_per_event"] = {k: v / n / 1e3 for k, v in parts.items()}
    if logins:
        out["model_step"] = model_step(frozen, logins)
    return out


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over repeated runs of one store."""
    first = runs[0]
    out: dict[str, Any] = {"store": first["store"], "backend": first["backend"],
                           "runs": len(runs), "events": first["events"]}
    for key in ("events_per_s", "events_per_cpu_s", "failovers"):
        out[key] = c.med(r[key] for r in runs)
    steps = [r["model_step"] for r in runs if "model_step" in r]
    if steps:
        out["model_step"] = {
            "logins": steps[0]["logins"], "learned": steps[0]["learned"],
            "max_score_difference": max(m["max_score_difference"] for m in steps),
            **{b: {k: c.med(m[b][k] for m in steps) for k in steps[0][b]} for b in BACKENDS}}
    for group in ("latency_ms", "engine_latency_ms", "share", "us_per_event"):
        if group in first:
            out[group] = {k: c.med(r[group][k] for r in runs) for k in first[group]}
    out["decisions"] = first["decisions"]
    return out


def table(summaries: list[dict[str, Any]]) -> str:
    cols = [s["store"] for s in summaries]
    width = max(12, *(len(col) + 2 for col in cols))
    rows = [f"{'':<30}" + "".join(f"{col:>{width}}" for col in cols)]

    def row(name: str, get: Callable[[dict[str, Any]], float], fmt: str) -> None:
        rows.append(f"{name:<30}" + "".join(f"{fmt.format(get(s)):>{width}}" for s in summaries))

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
        steps = [st for st in STEPS + FINE_STEPS if all(st in s["share"] for s in summaries)]
        for step in steps:
            row(f"share {step}", lambda s, st=step: s["share"][st], "{:.1%}")
        for step in steps:
            row(f"us/event {step}", lambda s, st=step: s["us_per_event"][st], "{:.1f}")
    return "\n".join(rows)


def model_table(summaries: list[dict[str, Any]]) -> str:
    """The model's step on each backend over the same logins (see ``model_step``)."""
    rows = []
    for s in summaries:
        m = s.get("model_step")
        if m is None:
            continue
        rows.append(f"{s['store']}: {m['logins']:,} timed logins replayed ({m['learned']:,} "
                    f"learned), score + risk + learn per login:")
        for b in BACKENDS:
            rows.append(f"  {b:<10} {m[b]['us_per_login']:8.1f} us wall "
                        f"{m[b]['cpu_us_per_login']:8.1f} us CPU")
        ratio = m["river"]["cpu_us_per_login"] / m["compiled"]["cpu_us_per_login"]
        rows.append(f"  river / compiled: {ratio:.1f}x; largest score difference "
                    f"{m['max_score_difference']:.1e}")
    return "\n".join(rows)


def verdicts(summaries: list[dict[str, Any]]) -> list[str]:
    by = {s["store"]: s for s in summaries}
    out = []
    for s in summaries:
        if "us_per_event" in s and s.get("backend", "compiled") == "compiled":
            us = s["us_per_event"]["model"]
            out.append(f"model step <= {TARGET_MODEL_US:.0f} us a login ({s['store']}, in the "
                       f"engine): {us:.1f} us  {c.verdict(us <= TARGET_MODEL_US)}")
        if "model_step" in s:
            us = s["model_step"]["compiled"]["cpu_us_per_login"]
            out.append(f"model step <= {TARGET_MODEL_US:.0f} us a login ({s['store']}, "
                       f"replayed): {us:.1f} us CPU  {c.verdict(us <= TARGET_MODEL_US)}")
    if "sqlite" in by:
        lat = by["sqlite"]["latency_ms"]
        out.append(f"SQLite p50 <= {TARGET_SQLITE_P50_MS} ms: {lat['p50']:.3f} ms  "
                   f"{c.verdict(lat['p50'] <= TARGET_SQLITE_P50_MS)}")
        out.append(f"SQLite p99 <= {TARGET_SQLITE_P99_MS} ms: {lat['p99']:.3f} ms  "
                   f"{c.verdict(lat['p99'] <= TARGET_SQLITE_P99_MS)}")
    if "redis" in by:
        rate, p50 = by["redis"]["events_per_cpu_s"], by["redis"]["latency_ms"]["p50"]
        out.append(f"Redis >= {TARGET_REDIS_EVENTS_PER_CORE_S:,.0f} events per CPU-second: "
                   f"{rate:,.0f}  {c.verdict(rate >= TARGET_REDIS_EVENTS_PER_CORE_S)}")
        out.append(f"Redis p50 <= {TARGET_REDIS_P50_MS} ms: {p50:.3f} ms  "
                   f"{c.verdict(p50 <= TARGET_REDIS_P50_MS)}")
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
    parser.add_argument("--backends", nargs="+", default=["compiled"], choices=BACKENDS,
                        help="the anomaly model's backends, each run on every store")
    parser.add_argument("--model-events", type=int, default=10_000,
                        help="timed logins replayed through both backends (0: none)")
    parser.add_argument("--no-breakdown", dest="breakdown", action="store_false",
                        help="time without wrapping the engine's steps")
    parser.add_argument("--cpu-steps", action="store_true",
                        help="time the breakdown's steps in the scoring thread's CPU time "
                             "instead of wall time (for a busy machine)")
    parser.add_argument("--fine", action="store_true",
                        help="split pseudonyms, digest, timestamp, profile, learning and "
                             "answer out of the steps (more wrappers: more overhead)")
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "hotpath.json"))
    args = parser.parse_args()
    stores = list(args.stores)
    if "redis" in stores and not c.redis_up():
        c.note(f"Redis is not answering at {c.REDIS_URL}: skipping the Redis store "
               "(make services starts it)")
        stores.remove("redis")
    c.note(f"simulating {args.warmup + args.events:,} events ...")
    events = c.simulate(events=args.warmup + args.events, users=args.users, seed=args.seed)
    plan = [(kind, backend) for kind in stores for backend in args.backends]
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {p: [] for p in plan}
    for r in range(args.repeat):
        # interleaved, so slow spells of a noisy machine hit every store and backend
        for i, (kind, backend) in enumerate(plan):
            c.note(f"run {r + 1}/{args.repeat}: {kind} store, {backend} model ...")
            result = run_store(kind, events, warmup=args.warmup, breakdown=args.breakdown,
                               backend=backend, fine=args.fine and args.breakdown,
                               cpu_steps=args.cpu_steps,
                               model_events=args.model_events if i == 0 else 0)
            lat = result["latency_ms"]
            c.note(f"  {result['events_per_s']:,.0f} events/s, p50 {lat['p50']:.3f} ms, "
                   f"p99 {lat['p99']:.3f} ms")
            runs[kind, backend].append(result)
    summaries = [summarize(runs[p]) for p in plan]
    print(table(summaries))
    step = model_table(summaries)
    if step:
        print("\nthe model's step, same logins on each backend:")
        print(step)
    print("\nagainst the targets (issues #10, #19):")
    for line in verdicts(summaries):
        print(f"  {line}")
    c.write_json(args.out, {"args": vars(args), "summary": summaries,
                            "runs": {f"{k}/{b}": v for (k, b), v in runs.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
