"""The engine's steps one at a time, in a loop, on the inputs an engine run handed them.

A warm engine (memory store, as ``hotpath.py`` builds it) scores ``--warmup`` simulated logins,
then ``--events`` more while the calls of a few steps are recorded (the functions
``riskengine.core.decide`` and the shell call, wrapped in this process only); each step is
then called again on its recorded inputs in a tight loop, ``--repeat`` times, and the best
CPU us a call is printed. Between two logins the rest of the engine pushes a step's code and
data out of the caches, so in the engine a step costs ~1.5-2 x its loop figure: this is for
comparing two trees on one step (run it in each, interleaved), not for adding up.

    PYTHONPATH=<tree> RISKENGINE_TRUST_EVENT_TIME=1 .venv/bin/python bench/hotpath_loop.py

Steps: ``validate`` (``ScoreRequest.model_validate``), ``to_event`` (``Engine.to_event``, the
addresses' lookups cached), ``extract``, ``rules`` (``Ruleset.evaluate``), ``decide``
(``policy.decide``), ``to_wire``, ``sighting``, ``model.score``, and ``ip cold`` (each login's
address looked up once with the IP cache emptied, per login).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

Call = tuple[tuple[Any, ...], dict[str, Any]]


def best_us(fn: Callable[..., Any], calls: list[Call], repeat: int) -> float:
    """The best of ``repeat`` loops over ``calls``, CPU us a call."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        for args, kwargs in calls:
            fn(*args, **kwargs)
        best = min(best, (time.process_time() - started) / len(calls) * 1e6)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warmup", type=int, default=5000)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import riskengine.core.decide as decide_module
    import riskengine.service.scorer as scorer_module
    from riskengine.core.wire import ScoreRequest
    from riskengine.service.build import settle_heap

    recorded: dict[str, list[Call]] = {"decide": [], "extract": [], "sighting": [],
                                       "to_wire": []}
    originals: dict[str, Callable[..., Any]] = {}
    recording = False

    def wrap(module: Any, name: str) -> None:
        original = getattr(module, name)
        originals[name] = original

        def recorder(*a: Any, **k: Any) -> Any:
            if recording:
                recorded[name].append((a, k))
            return original(*a, **k)

        setattr(module, name, recorder)

    for name in ("decide", "extract", "sighting"):
        wrap(decide_module, name)
    wrap(scorer_module, "to_wire")

    bodies = c.simulate(events=args.warmup + args.events)
    with tempfile.TemporaryDirectory(prefix="hotpath-loop-") as folder:
        engine = c.build(c.store_url("memory", Path(folder)), Path(folder)).engine
        engine.model.warm()
        settle_heap()
        validate = ScoreRequest.model_validate
        for body in bodies[:args.warmup]:
            engine.score(validate(body))
        rest = bodies[args.warmup:]
        recording = True
        for body in rest:
            engine.score(validate(body))
        recording = False

        requests = [validate(body) for body in rest]
        now = datetime.now(UTC)
        vectors = [originals["extract"](*a, **k) for a, k in recorded["extract"]]
        rows = [
            ("validate", validate, [((b,), {}) for b in rest]),
            ("to_event", lambda r: engine.to_event(r, received_at=now),
             [((r,), {}) for r in requests]),
            ("extract", originals["extract"], recorded["extract"]),
            ("rules", engine.ruleset.evaluate, [((v,), {}) for v in vectors]),
            ("decide", originals["decide"], recorded["decide"]),
            ("to_wire", originals["to_wire"], recorded["to_wire"]),
            ("sighting", originals["sighting"], recorded["sighting"]),
            ("model.score", engine.model.score_one, [((v,), {}) for v in vectors]),
        ]
        for name, fn, calls in rows:
            print(f"{name:<12} {best_us(fn, calls, args.repeat):8.2f} us")
        lookup = engine.ipintel.lookup
        cold = float("inf")
        for _ in range(args.repeat):
            engine.ipintel._cached.cache_clear()  # noqa: SLF001 - a cold cache is the point
            started = time.process_time()
            for r in requests:
                lookup(r.ip)
            cold = min(cold, (time.process_time() - started) / len(requests) * 1e6)
        print(f"{'ip cold':<12} {cold:8.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
