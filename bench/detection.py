"""Detection benchmark over many worlds: riskengine's default configuration against Freeman.

The simulator's default world is the one the rules were tuned on. This benchmark draws
worlds nobody tuned on (``riskengine.tools.worlds.World.draw``: other shares of IPv6, carrier
NAT, web logins, households, borrowed phones, ad tracking off, typos, travel, new SIMs,
which signals the clients can read, how often customers pass a step-up, the attack mix and
the attacks a device-and-network engine is weakest against). For each world (and traffic
seed) it simulates the traffic, replays it through the default engine in process (each
challenge answered as the label says the actor would, victims' late reports sent at their
time) and scores the same events with the Freeman et al. model, which learns from every
successful login as in the paper's setting. It prints every figure per world, the median
and the worst world, the worst world's parameters, and issue #17's acceptance checks as
met/MISSED lines; all figures go to a JSON file.

    .venv/bin/python bench/detection.py --worlds 5            # held-out worlds 1001-1005
    .venv/bin/python bench/detection.py --quick               # 3 worlds, 300 users x 30 days
    .venv/bin/python bench/detection.py --world-seeds 0 --seeds 1 2 3   # the tuned world
    .venv/bin/python bench/detection.py --tuning --worlds 4 --jobs 2    # tuning worlds 1-4

World seed 0 is the default world (the old benchmark's traffic). Seeds 1-20 are the tuning
worlds: look at them while changing rules. Reports quote held-out worlds (1001 and up),
which nobody looks at before the run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

TUNING_WORLD_SEEDS = tuple(range(1, 21))
HELD_OUT_FIRST = 1001
DEFAULT_WORLD = 0
WARMUP_DAYS = 14
CATCH_AT = "1%"
# Scenarios whose attacker holds the victim's number: an SMS challenge does not stop them,
# so they count as stopped only when prevented (denied, or a step-up they cannot pass).
HOLDS_THE_NUMBER = ("sim_swap", "number_port", "recycled_number_takeover")


def run_world(world_seed: int, seed: int, users: int, days: int,
              signals: bool = True) -> dict[str, Any]:
    """One world and traffic seed: simulate, replay through the default engine and Freeman.

    With ``signals`` the engine reads the lists a deployment would configure (the carrier's
    ported and recycled numbers, a phone-number risk list, an IP reputation feed), as the
    world's simulator writes them, and the traffic has the attacks only those reveal."""
    from models.freeman import FreemanModel
    from riskengine.service.build import build_engine, close_engine
    from riskengine.service.settings import Settings
    from riskengine.tools.replay import Replayer, period
    from riskengine.tools.simulate import Simulator
    from riskengine.tools.worlds import World

    world = World.default() if world_seed == DEFAULT_WORLD else World.draw(world_seed)
    started = time.perf_counter()
    sim = Simulator(users=users, days=days, seed=seed, world=world, signals=signals)
    events = list(sim.events())
    simulated_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="riskengine-signals-") as folder:
        paths = sim.write_signal_files(folder) if signals else {}
        built = build_engine(Settings(env="development", store="memory:", _env_file=None,
                                      **paths))
        report = Replayer(built.engine, baseline=FreemanModel(), seed=seed,
                          warmup_days=WARMUP_DAYS).run(events, progress=False)
        close_engine(built.engine)
    data = report.to_dict()
    first, second = periods(days)
    data["periods"] = {"early": period(data, *first), "late": period(data, *second)}
    data["simulate_seconds"] = simulated_s
    data["world"] = world.to_dict()
    data["config"] = {"rules_version": built.engine.ruleset.label,
                      "model_version": built.engine.model_version,
                      "world_seed": world_seed, "seed": seed, "users": users, "days": days,
                      "signals": signals}
    return data


def periods(days: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The measured days cut in two with a day between: 15-37 and 39-60 for 60 days."""
    start = WARMUP_DAYS + 1
    middle = (start + days + 1) // 2
    return (start, middle - 1), (middle + 1, days)


def figures(data: dict[str, Any]) -> dict[str, float | None]:
    """One run's figures by name (higher-is-better names are listed in HIGHER)."""
    out: dict[str, float | None] = {
        "customers challenged": data["customers"]["challenge"],
        "customers denied": data["customers"]["deny"],
        "customers challenged once": data["customers_challenged_once"]["share"],
        "refused": float(data["refused"]["events"]),
        f"riskengine catch @{CATCH_AT}": data["riskengine"]["catch_rate_at"].get(
            CATCH_AT, {}).get("attacks_caught"),
        f"freeman catch @{CATCH_AT}": data["freeman"]["catch_rate_at"].get(
            CATCH_AT, {}).get("attacks_caught"),
    }
    for scenario, t in data["scenarios"].items():
        out[f"{scenario} blocked"] = t["blocked"]
        out[f"{scenario} prevented"] = t["prevented"]
    out["slow_poisoning blocked >3 weeks"] = data["slow_poisoning_after_3_weeks"]["blocked"] \
        if data["slow_poisoning_after_3_weeks"]["events"] else None
    for p in data["periods"].values():
        days = f"days {p['days'][0]}-{p['days'][1]}"
        out[f"{days} customers challenged"] = p["customers_challenged"]
        out[f"{days} attacks blocked"] = p["attacks_blocked"]
    return out


def _higher_is_better(name: str) -> bool:
    return any(w in name for w in ("catch", "blocked", "prevented"))


def stopped(data: dict[str, Any], scenario: str) -> float:
    """A scenario's stopped share: blocked, or prevented where the attacker holds the number."""
    t = data["scenarios"][scenario]
    return t["prevented"] if scenario in HOLDS_THE_NUMBER else t["blocked"]


def world_checks(data: dict[str, Any]) -> list[tuple[str, bool]]:
    """The checks one world must pass on its own (the worst-world bounds)."""
    c, once = data["customers"], data["customers_challenged_once"]["share"]
    ours = figures(data)[f"riskengine catch @{CATCH_AT}"] or 0.0
    theirs = figures(data)[f"freeman catch @{CATCH_AT}"] or 0.0
    early, late = data["periods"]["early"], data["periods"]["late"]
    out = [("customers challenged <= 1.2%", c["challenge"] <= 0.012),
           ("customers denied <= 0.02%", c["deny"] <= 0.0002),
           ("challenged at least once <= 20%", once <= 0.20),
           (f"catch @{CATCH_AT} >= 93%", ours >= 0.93),
           (f"catch @{CATCH_AT} above Freeman", ours > theirs),
           ("0 refused", data["refused"]["events"] == 0),
           ("late period: fewer customers challenged, catch as good", _improves(early, late))]
    for scenario in sorted(data["scenarios"]):
        out.append((f"{scenario} stopped >= 97%", stopped(data, scenario) >= 0.97))
    return out


def _improves(early: dict[str, Any], late: dict[str, Any]) -> bool:
    if late["customers_challenged"] is None or early["customers_challenged"] is None:
        return False
    better_customers = late["customers_challenged"] < early["customers_challenged"]
    catch_early, catch_late = early["attacks_blocked"], late["attacks_blocked"]
    same_catch = catch_late is None or catch_early is None or catch_late >= catch_early
    return better_customers and same_catch


def acceptance(results: dict[str, dict[str, Any]]) -> list[tuple[str, float | str, bool]]:
    """Issue #17's acceptance checks over all runs: (check, measured, met)."""
    runs = list(results.values())

    def med(get: Callable[[dict[str, Any]], float]) -> float:
        return statistics.median(get(d) for d in runs)

    def worst(get: Callable[[dict[str, Any]], float], higher: bool) -> float:
        values = [get(d) for d in runs]
        return min(values) if higher else max(values)

    def challenged(d: dict[str, Any]) -> float:
        return float(d["customers"]["challenge"])

    def catch(d: dict[str, Any]) -> float:
        return float(d["riskengine"]["catch_rate_at"].get(CATCH_AT, {}).get(
            "attacks_caught", 0.0))

    out: list[tuple[str, float | str, bool]] = []
    m, w = med(challenged), worst(challenged, False)
    out.append(("customers challenged <= 0.8% median", m, m <= 0.008))
    out.append(("customers challenged <= 1.2% worst", w, w <= 0.012))
    w = worst(lambda d: float(d["customers"]["deny"]), False)
    out.append(("customers denied <= 0.02% (worst)", w, w <= 0.0002))
    m = med(lambda d: float(d["customers_challenged_once"]["share"]))
    out.append(("challenged at least once <= 20% median", m, m <= 0.20))
    m, w = med(catch), worst(catch, True)
    out.append((f"catch rate @{CATCH_AT} >= 97% median", m, m >= 0.97))
    out.append((f"catch rate @{CATCH_AT} >= 93% worst", w, w >= 0.93))
    beaten = sum(1 for d in runs if catch(d) > float(
        d["freeman"]["catch_rate_at"].get(CATCH_AT, {}).get("attacks_caught", 0.0)))
    out.append((f"catch rate @{CATCH_AT} above Freeman in every world",
                f"{beaten}/{len(runs)}", beaten == len(runs)))
    scenarios = sorted({s for d in runs for s in d["scenarios"]})
    for scenario in scenarios:
        having = [d for d in runs if scenario in d["scenarios"]]
        m = statistics.median(stopped(d, scenario) for d in having)
        how = "prevented" if scenario in HOLDS_THE_NUMBER else "blocked"
        out.append((f"{scenario} {how} >= 97% median", m, m >= 0.97))
    refused = sum(d["refused"]["events"] for d in runs)
    out.append(("0 refused (all worlds)", f"{refused:,}", refused == 0))
    improving = sum(1 for d in runs if _improves(d["periods"]["early"], d["periods"]["late"]))
    out.append(("late period challenges fewer at equal catch, every world",
                f"{improving}/{len(runs)}", improving == len(runs)))
    return out


def table(results: dict[str, dict[str, Any]]) -> str:
    """Every figure per run, then the median and the worst."""
    names = list(results)
    per = {k: figures(d) for k, d in results.items()}
    rows = sorted({f for fs in per.values() for f in fs}, key=_row_order)
    width = max(12, *(len(n) + 2 for n in names))
    head = f"{'':<44}" + "".join(f"{n:>{width}}" for n in names) + f"{'median':>10}{'worst':>10}"
    lines = [head]
    events = [results[n]["events"] for n in names]
    lines.append(f"{'events':<44}" + "".join(f"{e:>{width},}" for e in events))
    eps = [results[n]["events_per_second"] or 0 for n in names]
    lines.append(f"{'events/s (replay)':<44}" + "".join(f"{e:>{width},.0f}" for e in eps))
    for row in rows:
        values = [per[n].get(row) for n in names]
        present = [v for v in values if v is not None]
        fmt = (lambda v: f"{v:,.0f}") if row == "refused" else (lambda v: f"{v:.2%}")
        cells = "".join(f"{(fmt(v) if v is not None else '-'):>{width}}" for v in values)
        if present:
            worst = min(present) if _higher_is_better(row) else max(present)
            cells += f"{fmt(statistics.median(present)):>10}{fmt(worst):>10}"
        lines.append(f"{row:<44}{cells}")
    return "\n".join(lines)


def _row_order(name: str) -> tuple[int, str]:
    if name.startswith("customers") or name == "refused":
        return (0, name)
    if name.startswith("days"):
        return (3, name)
    if "catch" in name:
        return (2, name)
    return (1, name)


def worst_world(results: dict[str, dict[str, Any]]) -> str:
    """The run that misses most of its own checks (then: most customers challenged)."""
    return max(results, key=lambda k: (
        sum(not ok for _, ok in world_checks(results[k])),
        results[k]["customers"]["challenge"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worlds", type=int,
                        help="how many worlds (held-out seeds from 1001, or tuning seeds "
                             "from 1 with --tuning)")
    parser.add_argument("--world-seeds", type=int, nargs="+",
                        help="explicit world seeds (0 is the default, tuned-on world)")
    parser.add_argument("--tuning", action="store_true",
                        help="use the tuning worlds (1-20) instead of held-out ones")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1],
                        help="traffic seeds run in every world")
    parser.add_argument("--users", type=int, help="customers per world (2,000; quick: 300)")
    parser.add_argument("--days", type=int, help="days per world (60; quick: 30)")
    parser.add_argument("--jobs", type=int, default=1, help="worlds run in parallel processes")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 3 worlds, 300 users x 30 days (unless given)")
    parser.add_argument("--no-signals", dest="signals", action="store_false",
                        help="without the carrier's port / recycled-number list, the phone "
                             "risk list and the IP reputation feed (and their attacks)")
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "detection.json"))
    args = parser.parse_args()
    quick = {"worlds": 3, "users": 300, "days": 30}
    full = {"worlds": 5, "users": 2000, "days": 60}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.world_seeds:
        world_seeds = list(args.world_seeds)
    elif args.tuning:
        world_seeds = list(TUNING_WORLD_SEEDS[:args.worlds])
    else:
        world_seeds = list(range(HELD_OUT_FIRST, HELD_OUT_FIRST + args.worlds))
    runs = [(w, s) for w in world_seeds for s in args.seeds]
    print(f"{len(runs)} runs ({args.users:,} users x {args.days} days), {args.jobs} at a time",
          file=sys.stderr, flush=True)
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}

    def name(w: int, s: int) -> str:
        return f"w{w}" if len(args.seeds) == 1 else f"w{w}/s{s}"

    if args.jobs > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = {name(w, s): pool.submit(run_world, w, s, args.users, args.days,
                                                    args.signals)
                       for w, s in runs}
            for key, future in futures.items():
                results[key] = future.result()
                print(f"  {key} done", file=sys.stderr, flush=True)
    else:
        for w, s in runs:
            results[name(w, s)] = run_world(w, s, args.users, args.days, args.signals)
            print(f"  {name(w, s)} done", file=sys.stderr, flush=True)
    wall_s = time.perf_counter() - started
    print(table(results))
    worst = worst_world(results)
    print(f"\nworst world: {worst}; its parameters:")
    params = results[worst]["world"]
    print("\n".join(f"  {k:<24}{v:.4g}" if isinstance(v, float) else f"  {k:<24}{v}"
                    for k, v in params.items()))
    print("\nits own checks: " + ", ".join(
        f"{n} {'met' if ok else 'MISSED'}" for n, ok in world_checks(results[worst])))
    print("\nacceptance (issue #17):")
    checks = acceptance(results)
    for check, value, ok in checks:
        shown = value if isinstance(value, str) else f"{value:.2%}"
        print(f"  {check:<58}{shown:>10}  {'met' if ok else 'MISSED'}")
    print(f"\n{len(runs)} runs in {wall_s:,.0f} s", file=sys.stderr)
    Path(args.out).write_text(json.dumps({
        "users": args.users, "days": args.days, "seeds": args.seeds,
        "world_seeds": world_seeds, "wall_seconds": wall_s, "worst_world": worst,
        "acceptance": [{"check": c, "value": v, "met": ok} for c, v, ok in checks],
        "results": results}, indent=2) + "\n")
    print(f"figures written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
