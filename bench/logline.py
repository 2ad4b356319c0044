"""What the decision's log line costs the process, on the engine as the service runs it.

The service writes one INFO line a decision through ``riskengine.adapters.logsetup`` (a
bounded buffer and a writer thread, so that a stalled stderr never holds up an answer). A
warm engine (SQLite store, as ``hotpath.py`` builds it; logging configured as ``riskengine
serve`` does, to a file) scores simulated logins in slices of ``--slice``, the root logger
at INFO and at WARNING by turns, and the process's CPU time (``time.process_time``: every
thread, the writer's too) and its context switches are taken around each slice. It prints
the medians a login at both levels and their difference: the line's cost, formatting,
handing over and writing included. Compare trees by running it in each:

    RISKENGINE_TRUST_EVENT_TIME=1 .venv/bin/python bench/logline.py
    PYTHONPATH=<other tree> RISKENGINE_TRUST_EVENT_TIME=1 .venv/bin/python bench/logline.py
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402


def switches() -> int:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_nvcsw + use.ru_nivcsw


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warmup", type=int, default=5000)
    parser.add_argument("--slices", type=int, default=40, help="slices, half at each level")
    parser.add_argument("--slice", type=int, default=250, help="logins a slice")
    parser.add_argument("--store", choices=["memory", "sqlite"], default="sqlite")
    args = parser.parse_args()

    from riskengine.adapters import logsetup
    from riskengine.core.wire import ScoreRequest
    from riskengine.service.build import close_engine, settle_heap

    bodies = c.simulate(events=args.warmup + args.slices * args.slice)
    requests = [ScoreRequest.model_validate(b) for b in bodies]
    with tempfile.TemporaryDirectory(prefix="bench-logline-") as folder:
        tmp = Path(folder)
        engine = c.build(c.store_url(args.store, tmp), tmp).engine
        with (tmp / "service.log").open("w") as stream:
            handle = logsetup.configure("WARNING", stream=stream)
            engine.model.warm()
            settle_heap()
            for request in requests[:args.warmup]:
                engine.score(request)
            root = logging.getLogger()
            per: dict[str, list[tuple[float, float]]] = {"INFO": [], "WARNING": []}
            rest = requests[args.warmup:]
            for k in range(args.slices):
                level = "INFO" if k % 2 == 0 else "WARNING"
                root.setLevel(level)
                chunk = rest[k * args.slice:(k + 1) * args.slice]
                before, ctx = time.process_time(), switches()
                for request in chunk:
                    engine.score(request)
                cpu = time.process_time() - before
                per[level].append((cpu / len(chunk) * 1e6, (switches() - ctx) / len(chunk)))
            root.setLevel("WARNING")
            handle.stop()  # writes what is still buffered
            lines = sum(1 for _ in (tmp / "service.log").open())
        close_engine(engine)  # its store and, if it has one, its outbox

    info_us = c.med(u for u, _ in per["INFO"])
    warn_us = c.med(u for u, _ in per["WARNING"])
    print(f"store {args.store}; {args.slices} slices of {args.slice} logins after "
          f"{args.warmup:,}; {lines:,} lines written")
    print(f"{'':28}{'CPU us a login':>16}{'switches a login':>18}")
    for level in ("INFO", "WARNING"):
        print(f"{'logging at ' + level:<28}{c.med(u for u, _ in per[level]):>16.1f}"
              f"{c.med(s for _, s in per[level]):>18.2f}")
    print(f"{'the line (INFO - WARNING)':<28}{info_us - warn_us:>16.1f}"
          f"    ratio {info_us / warn_us:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
