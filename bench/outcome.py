"""Does the outcome model learn the shop? Replay the simulator's traffic through the engine
with and without it, and compare the first and the second half of the measured period.

For each seed: simulate ``--users`` customers over ``--days`` days, replay them in process
(``riskengine.tools.replay.Replayer``: challenges answered, the outcome fed back through
``Engine.confirm``), once with the shipped ruleset (the hand-set combination) and once with
the ruleset's ``outcome`` section switched on (the outcome model starts at its prior, learns
online from the feedback and a sample of verified-good logins, and scores once ready). The
period after the warm-up is cut in two halves; each reports the share of customers' logins
challenged or denied, customers challenged at least once, and the share of attacks caught
when 1 % of customers' logins are flagged (the threshold set on that half's customer
scores).

    .venv/bin/python bench/outcome.py [--users 500] [--days 40] [--seeds 11] \
        [--rules FILE] [--json out.json]

``--rules`` replays another ruleset file as the base of both arms; ``--soften ID ...`` takes
the ``action`` floor off those rules in both arms (the rules then count by their score only),
to see what a learned combination does where the floors leave it room;
``--outcome-challenge``/``--outcome-deny`` set the outcome section's thresholds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from riskengine.core.rules import shipped_ruleset_text
from riskengine.service.build import build_engine
from riskengine.service.settings import Settings
from riskengine.tools.replay import CUSTOMER, Replayer
from riskengine.tools.simulate import Simulator
from riskengine.tools.worlds import World


def softened(text: str, rule_ids: list[str]) -> str:
    """The ruleset without the ``action`` of the rules named (comments are lost)."""
    data = yaml.safe_load(text)
    missing = set(rule_ids) - {r["id"] for r in data["rules"]}
    if missing:
        raise SystemExit(f"no such rules: {sorted(missing)}")
    for rule in data["rules"]:
        if rule["id"] in rule_ids:
            rule.pop("action", None)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def outcome_on(challenge: float, deny: float) -> str:
    return (f"\noutcome:\n  enabled: true\n  thresholds: {{challenge: {challenge}, "
            f"deny: {deny}}}\n")


def _halves(records: list[tuple[float, str, str, float, str]], split: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, keep in (("first", lambda t: t < split), ("second", lambda t: t >= split)):
        part = [r for r in records if keep(r[0])]
        cust = [r for r in part if r[1] == CUSTOMER]
        att = [r for r in part if r[1] != CUSTOMER]
        blocked = [r for r in cust if r[2] != "allow"]
        users = {r[4] for r in cust}
        users_blocked = {r[4] for r in blocked}
        c_scores = np.sort(np.array([r[3] for r in cust]))
        a_scores = np.array([r[3] for r in att])
        t = float(c_scores[min(len(c_scores) - 1, int(np.ceil(0.99 * len(c_scores))) - 1)])
        out[name] = {
            "customer_logins": len(cust),
            "customers_challenged": len(blocked) / max(1, len(cust)),
            "customers_challenged_at_least_once": len(users_blocked) / max(1, len(users)),
            "attacks": len(att),
            "attacks_blocked": float(np.mean([r[2] != "allow" for r in att])) if att else None,
            "catch_at_1pct": float(np.mean(a_scores > t)) if len(a_scores) else None,
        }
    return out


def run(seed: int, users: int, days: int, rules_text: str, *, outcome: str,
        warmup_days: float, world: int | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.yaml"
        rules.write_text(rules_text + outcome, encoding="utf-8")
        built = build_engine(Settings(env="development", store="memory:", rules=rules,
                                      model_dir=None, _env_file=None))
        engine = built.engine
        drawn = None if world is None else World.draw(world)
        events = list(Simulator(users=users, days=days, seed=seed, world=drawn).events())
        records: list[tuple[float, str, str, float, str]] = []
        outcome_used: defaultdict[str, int] = defaultdict(int)

        def observe(scored: Any, scenario: str, user: str) -> None:
            codes = {r["code"] for r in scored.body["reasons"]}
            outcome_used["outcome" if "outcome_model" in codes else "hand_set"] += 1
            records.append((0.0, scenario, scored.body["decision"],
                            float(scored.body["score"]), user))

        # observe sees the measured events in time order, but not their times: the halves
        # are halves of the measured events.
        report = Replayer(engine, seed=seed, warmup_days=warmup_days).run(
            events, progress=False, observe=observe)
        measured = len(records)
        records = [(float(i), *r[1:]) for i, r in enumerate(records)]
        data = _halves(records, measured / 2)
        data["scored_by"] = dict(outcome_used)
        data["outcome_model"] = {
            "version": engine.outcome_version,
            "ready": bool(engine.outcome is not None and engine.outcome.ready),
            "outcomes_learned": engine.outcome.n_learned_ if engine.outcome else 0,
            "weights": {k: round(v, 3) for k, v in sorted(
                (engine.outcome.weights_ if engine.outcome else {}).items())},
            "leak": round(engine.outcome.leak_, 5) if engine.outcome else None,
        }
        data["whole"] = {"customers": report.customers.rates(),
                         "scenarios": {k: v.rates()["blocked"]
                                       for k, v in sorted(report.scenarios.items())}}
        return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--days", type=int, default=40)
    parser.add_argument("--seeds", type=int, nargs="+", default=[11])
    parser.add_argument("--warmup-days", type=float, default=14.0)
    parser.add_argument("--rules", type=Path, default=None)
    parser.add_argument("--soften", nargs="*", default=[])
    parser.add_argument("--world", type=int, default=None,
                        help="draw the simulator's world with this seed (default: the default "
                             "world)")
    parser.add_argument("--outcome-challenge", type=float, default=0.3)
    parser.add_argument("--outcome-deny", type=float, default=0.97)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    text = args.rules.read_text("utf-8") if args.rules else shipped_ruleset_text()
    if args.soften:
        text = softened(text, args.soften)
    on = outcome_on(args.outcome_challenge, args.outcome_deny)
    results = []
    for seed in args.seeds:
        for outcome in (False, True):
            data = run(seed, args.users, args.days, text, outcome=on if outcome else "",
                       warmup_days=args.warmup_days, world=args.world)
            data.update(seed=seed, world=args.world, outcome=outcome, softened=args.soften,
                        outcome_thresholds=[args.outcome_challenge, args.outcome_deny])
            results.append(data)
            for half in ("first", "second"):
                h = data[half]
                print(f"seed {seed} outcome {'on ' if outcome else 'off'} {half:<6} "
                      f"challenged {h['customers_challenged']:.3%}  at least once "
                      f"{h['customers_challenged_at_least_once']:.1%}  attacks blocked "
                      f"{h['attacks_blocked']:.1%}  caught@1% {h['catch_at_1pct']:.1%}",
                      flush=True)
            print(f"   whole period: customers {data['whole']['customers']}\n"
                  f"   scenarios blocked {data['whole']['scenarios']}", flush=True)
            print(f"   scored by {data['scored_by']}  model {data['outcome_model']}",
                  flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
