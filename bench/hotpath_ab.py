"""Two trees' engines, side by side on a busy machine: which is faster, and by how much.

On a shared machine a benchmark run against another minutes later measures the machine as
much as the code. Here both trees' engines (memory store, as ``hotpath.py`` builds them) run
in two processes at once, each warmed with the same ``--warmup`` simulated logins, then
given the same slices of the next logins in turn (``--slice`` each, the order alternating):
each slice of one tree is timed beside the same slice of the other within a second or so.
What is compared is each process's CPU time per login, slice by slice; the median of the
ratios after / before, and its quartiles, is the figure to read.

    git worktree add /tmp/before <commit>; git worktree add /tmp/after <commit>
    .venv/bin/python bench/hotpath_ab.py /tmp/before /tmp/after            # parse + score
    .venv/bin/python bench/hotpath_ab.py /tmp/before /tmp/after --no-parse # Engine.score

Each tree runs with its own code (``PYTHONPATH=<tree>``), this script's ``_common`` and the
same virtualenv, with ``RISKENGINE_TRUST_EVENT_TIME=1`` (the simulated logins are dated in
the past).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common as c  # noqa: E402


def worker(warmup: int, events: int, parse: bool) -> None:
    """Build and warm an engine, say ``ready``, then time each slice asked for on stdin."""
    from riskengine.core.wire import ScoreRequest
    from riskengine.service.build import settle_heap

    bodies = c.simulate(events=warmup + events)
    with tempfile.TemporaryDirectory(prefix="hotpath-ab-") as folder:
        engine = c.build(c.store_url("memory", Path(folder)), Path(folder)).engine
        engine.model.warm()
        settle_heap()
        validate = ScoreRequest.model_validate
        for body in bodies[:warmup]:
            engine.score(validate(body))
        rest: list[Any] = bodies[warmup:] if parse else [validate(b) for b in bodies[warmup:]]
        gc.collect()
        print("ready", flush=True)
        at = 0
        for line in sys.stdin:
            n = int(line)
            part, at = rest[at:at + n], at + n
            cpu = time.process_time()
            if parse:
                for body in part:
                    engine.score(validate(body))
            else:
                for req in part:
                    engine.score(req)
            print((time.process_time() - cpu) / len(part) * 1e6, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path, help="the tree to compare against")
    parser.add_argument("after", type=Path)
    parser.add_argument("--warmup", type=int, default=5000)
    parser.add_argument("--events", type=int, default=30000, help="logins timed per tree")
    parser.add_argument("--slice", type=int, default=500, help="logins per timed slice")
    parser.add_argument("--no-parse", dest="parse", action="store_false",
                        help="time Engine.score alone (requests validated beforehand)")
    parser.add_argument("--worker", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        warmup, events, parse = args.worker
        worker(warmup, events, bool(parse))
        return 0
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    procs = {}
    for name, tree in trees.items():
        env = dict(os.environ, PYTHONPATH=str(tree), RISKENGINE_TRUST_EVENT_TIME="1")
        procs[name] = subprocess.Popen(
            [sys.executable, __file__, str(tree), str(tree), "--worker", str(args.warmup),
             str(args.events), str(int(args.parse))],
            cwd=tree, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    for name, proc in procs.items():
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", name
    c.note(f"both engines warm; {args.events // args.slice} slices of {args.slice} each ...")
    us: dict[str, list[float]] = {name: [] for name in procs}
    for i in range(args.events // args.slice):
        for name in (("before", "after") if i % 2 == 0 else ("after", "before")):
            proc = procs[name]
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(f"{args.slice}\n")
            proc.stdin.flush()
            us[name].append(float(proc.stdout.readline()))
    for proc in procs.values():
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait()
    ratios = [a / b for a, b in zip(us["after"], us["before"], strict=True)]
    q1, median, q3 = statistics.quantiles(ratios, n=4)
    what = "parse + Engine.score" if args.parse else "Engine.score"
    print(f"{what}, CPU us a login, median of {len(ratios)} slices of {args.slice}:")
    for name in procs:
        med = statistics.median(us[name])
        print(f"  {name:<7} {med:8.1f} us  ({1e6 / med:,.0f} logins per CPU-second)  "
              f"{trees[name]}")
    print(f"  after / before, slice by slice: median {median:.3f} (quartiles {q1:.3f}-{q3:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
