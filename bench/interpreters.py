"""The in-process hot path under two Python interpreters at the same time, one core each.

Which CPython build runs the engine matters as much as a pass over its code: a default
pyenv build (no profile-guided or link-time optimization, ``libpython`` as a shared
library) runs the same bytecode slower than a distribution's build (Debian compiles
``/usr/bin/python3`` with both, into one static executable). On a shared machine runs
minutes apart differ by more than that, so this script runs ``hotpath.py`` under both
interpreters at once, each pinned to its own core with ``taskset`` (both see the same
neighbours), swaps the cores every round, and prints each round's figures, the ratio of
each pair and the median of the ratios. It also checks both made the same decisions.

Each interpreter needs riskengine installed: pass the ``python`` of a virtualenv made from
it, e.g. for pyenv's build beside the default ``.venv``::

    ~/.pyenv/versions/3.11.7/bin/python3 -m venv /tmp/venv-pyenv
    /tmp/venv-pyenv/bin/pip install -e .
    .venv/bin/python bench/interpreters.py .venv/bin/python /tmp/venv-pyenv/bin/python
    .venv/bin/python bench/interpreters.py A B --stores sqlite --rounds 6

Without ``taskset`` (or with one core) the two run one after the other, alternating.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

HOTPATH = Path(__file__).resolve().parent / "hotpath.py"
ROOT = Path(__file__).resolve().parent.parent


def describe(python: str) -> dict[str, Any]:
    """What the interpreter behind ``python`` is: version, executable, whether its
    ``libpython`` is a shared library."""
    code = ("import json, sys, sysconfig; print(json.dumps({'version': sys.version.split()[0], "
            "'base': sys._base_executable, 'shared': bool(sysconfig.get_config_var("
            "'Py_ENABLE_SHARED'))}))")
    out = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True)
    info: dict[str, Any] = json.loads(out.stdout)
    # A distribution may build libpython shared and the executable static: ask the loader.
    ldd = shutil.which("ldd")
    if ldd:
        libs = subprocess.run([ldd, info["base"]], capture_output=True, text=True).stdout
        info["links_libpython"] = "libpython" in libs
    return info


# How the executable holds libpython, by what ``ldd`` said (None: no ``ldd`` to ask).
_LINKAGE = {True: "shared", False: "linked in", None: "not known (no ldd)"}


def command(python: str, store: str, args: argparse.Namespace, out: Path,
            core: int | None) -> list[str]:
    cmd = [python, str(HOTPATH), "--events", str(args.events), "--warmup", str(args.warmup),
           "--stores", store, "--model-events", "0", "--no-breakdown", "--out", str(out)]
    return cmd if core is None else ["taskset", "-c", str(core), *cmd]


def run_round(pythons: list[str], store: str, args: argparse.Namespace, folder: Path,
              round_no: int, pinned: bool) -> list[dict[str, Any]]:
    """One round: both interpreters at once on cores swapped by round (or one after the
    other, in an order swapped by round, when not pinned)."""
    env = {**os.environ, "RISKENGINE_TRUST_EVENT_TIME": "1"}
    outs = [folder / f"{round_no}-{i}.json" for i in range(len(pythons))]
    cores = [(i + round_no) % 2 for i in range(len(pythons))]
    if pinned:
        logs = [o.with_suffix(".log") for o in outs]
        procs = []
        for p, o, core, log in zip(pythons, outs, cores, logs, strict=True):
            with log.open("wb") as err:  # the child keeps its own handle
                procs.append(subprocess.Popen(command(p, store, args, o, core), cwd=ROOT,
                                              env=env, stdout=subprocess.DEVNULL, stderr=err))
        codes = [proc.wait() for proc in procs]
        for code, log in zip(codes, logs, strict=True):
            if code:
                raise SystemExit(f"hotpath.py failed:\n{log.read_text()[-2000:]}")
    else:
        order = range(len(pythons)) if round_no % 2 == 0 else reversed(range(len(pythons)))
        for i in order:
            subprocess.run(command(pythons[i], store, args, outs[i], None), cwd=ROOT, env=env,
                           check=True, stdout=subprocess.DEVNULL)
    return [json.loads(o.read_text())["summary"][0] for o in outs]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pythons", nargs=2, help="two virtualenvs' python executables")
    parser.add_argument("--stores", nargs="+", default=["memory"],
                        choices=["memory", "sqlite"])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=5_000)
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "interpreters.json"))
    args = parser.parse_args()
    pinned = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    about = [describe(p) for p in args.pythons]
    for i, (p, info) in enumerate(zip(args.pythons, about, strict=True)):
        print(f"{'AB'[i]}: {p} -> {info['base']} (Python {info['version']}, "
              f"libpython {_LINKAGE[info.get('links_libpython')]})")
    print("pinned, both at once" if pinned else "one after the other (no taskset or one core)")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="interpreters-") as tmp:
        for store in args.stores:
            rows = []
            print(f"\n{store} store: logins per CPU-second and p50 (ms), A | B, B / A")
            for r in range(args.rounds):
                a, b = run_round(args.pythons, store, args, Path(tmp), r, pinned)
                if a["decisions"] != b["decisions"]:
                    raise SystemExit(f"the interpreters decided differently: {a['decisions']} "
                                     f"against {b['decisions']}")
                rate = b["events_per_cpu_s"] / a["events_per_cpu_s"]
                p50 = b["latency_ms"]["p50"] / a["latency_ms"]["p50"]
                rows.append({"a": a, "b": b, "rate_ratio": rate, "p50_ratio": p50})
                print(f"  round {r + 1}: {a['events_per_cpu_s']:7,.0f} {a['latency_ms']['p50']:.3f}"
                      f" | {b['events_per_cpu_s']:7,.0f} {b['latency_ms']['p50']:.3f}"
                      f"   rate x {rate:.2f}, p50 x {p50:.2f}")
            summary = {
                "a_events_per_cpu_s": c.med(x["a"]["events_per_cpu_s"] for x in rows),
                "b_events_per_cpu_s": c.med(x["b"]["events_per_cpu_s"] for x in rows),
                "a_p50_ms": c.med(x["a"]["latency_ms"]["p50"] for x in rows),
                "b_p50_ms": c.med(x["b"]["latency_ms"]["p50"] for x in rows),
                "rate_ratio": c.med(x["rate_ratio"] for x in rows),
                "p50_ratio": c.med(x["p50_ratio"] for x in rows),
                "decisions": rows[0]["a"]["decisions"],
            }
            print(f"  medians: A {summary['a_events_per_cpu_s']:,.0f} / {summary['a_p50_ms']:.3f}"
                  f" ms, B {summary['b_events_per_cpu_s']:,.0f} / {summary['b_p50_ms']:.3f} ms;"
                  f" B / A rate x {summary['rate_ratio']:.2f} (median of rounds), p50 x "
                  f"{summary['p50_ratio']:.2f}; same decisions {summary['decisions']}")
            results[store] = {"summary": summary, "rounds": rows}
    c.write_json(args.out, {"pythons": args.pythons, "interpreters": about, "pinned": pinned,
                            "args": vars(args), "stores": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
