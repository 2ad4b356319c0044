"""Backtest: the live and a candidate ruleset on the same events, before the candidate ships.

Both sides run through ``riskengine.tools.replay.Replayer`` (so their figures are exactly what
``riskengine replay`` reports for either ruleset), each with a fresh store and the same model,
and the comparison adds what security staff ask before a change: the decision mix, each
rule's hit rate (share of events and of users it fires on), customers challenged (per login
and at least once per account), attacks blocked and prevented where labels exist, the requests
refused, day-by-day tallies, a sample of the logins whose decision changes with their reasons,
and the challenge threshold that meets a target customer challenge rate.
"""

from __future__ import annotations

import copy
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from riskengine.core.rules import Outcome, Ruleset
from riskengine.service.scorer import Engine, Scored
from riskengine.tools.replay import CUSTOMER, Replayer

SAMPLE = 25


class _Side:
    """What one ruleset did, event by event."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.hit_users: defaultdict[str, set[str]] = defaultdict(set)
        self.users: set[str] = set()
        self.events = 0
        self.decisions: dict[str, tuple[str, list[str]]] = {}
        self.customer_scores: list[tuple[float, bool]] = []  # (score, a floor forced it)
        self.attack_scores: list[tuple[float, bool]] = []

    def observe(self, scored: Scored, scenario: str, user: str) -> None:
        if scored.decision is None:  # a replayed event id: counted when first seen
            return
        self.events += 1
        self.users.add(user)
        hits = [r for r in scored.decision.rule_results if r.outcome is Outcome.HIT]
        for r in hits:
            self.hits[r.rule.id] += 1
            self.hit_users[r.rule.id].add(user)
        codes = [x["code"] for x in scored.body["reasons"]]
        self.decisions[scored.body["event_id"]] = (scored.body["decision"], codes)
        floored = any(r.rule.action is not None and r.rule.action.rank > 0 for r in hits)
        target = self.customer_scores if scenario == CUSTOMER else self.attack_scores
        target.append((float(scored.body["score"]), floored))

    def rule_rates(self, rules: Ruleset) -> dict[str, dict[str, float | int]]:
        return {
            r.id: {"hits": self.hits[r.id],
                   "share_of_events": self.hits[r.id] / max(self.events, 1),
                   "share_of_users": len(self.hit_users[r.id]) / max(len(self.users), 1)}
            for r in rules.rules
        }


def recommend_threshold(
    customers: list[tuple[float, bool]], attacks: list[tuple[float, bool]], target: float
) -> dict[str, Any]:
    """The lowest challenge threshold at which at most ``target`` of customers' logins are
    challenged (by score or by a rule's floor), with the catch rate it gives."""
    if not customers:
        return {"target_challenge_rate": target, "challenge_threshold": None}
    floored = sum(1 for _, f in customers if f)
    budget = target * len(customers) - floored
    free = sorted((s for s, f in customers if not f), reverse=True)
    # Scores strictly above the threshold are challenged; ties are resolved upwards.
    k = max(0, int(budget))
    threshold = free[k] if k < len(free) else 0.0
    threshold = min(0.999, max(0.001, round(threshold + 1e-4, 4)))
    rate = (floored + sum(1 for s in free if s >= threshold)) / len(customers)
    caught = sum(1 for s, f in attacks if f or s >= threshold) / max(len(attacks), 1)
    return {"target_challenge_rate": target, "challenge_threshold": threshold,
            "customers_challenged": rate, "attacks_caught": caught if attacks else None,
            "challenged_by_rule_floors_alone": floored / len(customers)}


def backtest(
    events: Iterable[dict[str, Any]],
    *,
    make_engine: Callable[[Ruleset], Engine],
    live: Ruleset,
    candidate: Ruleset,
    target_challenge_rate: float = 0.02,
    warmup_days: float = 14.0,
) -> dict[str, Any]:
    """Compare ``live`` and ``candidate`` on ``events`` (a list: it is read twice)."""
    lines = list(events)
    out: dict[str, Any] = {"events": len(lines)}
    sides = {}
    for name, rules in (("live", live), ("candidate", candidate)):
        side = _Side()
        report = Replayer(make_engine(rules), warmup_days=warmup_days).run(
            copy.deepcopy(lines), progress=False, observe=side.observe)
        data = report.to_dict()
        mix = Counter(d for d, _ in side.decisions.values())
        out[name] = {
            "rules_version": rules.label,
            "thresholds": {"challenge": rules.thresholds.challenge,
                           "deny": rules.thresholds.deny},
            "decision_mix": {a: mix[a] / max(side.events, 1)
                             for a in ("allow", "challenge", "deny")},
            "customers": data["customers"],
            "customers_challenged_once": data["customers_challenged_once"],
            "scenarios": data["scenarios"],
            "refused": data["refused"],
            "user_reports": data["user_reports"],
            "per_day": data["per_day"],
            "roc_auc": data["riskengine"]["roc_auc"],
            "catch_rate_at": data["riskengine"]["catch_rate_at"],
            "rule_hit_rates": side.rule_rates(rules),
            "threshold_for_target": recommend_threshold(
                side.customer_scores, side.attack_scores, target_challenge_rate),
            "score_histogram": _histograms(side),
        }
        sides[name] = side
    changed = [
        {"event_id": eid, "live": sides["live"].decisions[eid][0],
         "candidate": decision, "candidate_reasons": reasons[:5],
         "live_reasons": sides["live"].decisions[eid][1][:5]}
        for eid, (decision, reasons) in sides["candidate"].decisions.items()
        if eid in sides["live"].decisions and sides["live"].decisions[eid][0] != decision
    ]
    out["changed"] = {"count": len(changed),
                      "share": len(changed) / max(sides["live"].events, 1),
                      "sample": changed[:SAMPLE]}
    return out


def _histograms(side: _Side, bins: int = 50) -> dict[str, Any]:
    """Score histograms of customers and attacks (floored decisions counted apart), which the
    tuning page turns into rates as its slider moves."""
    def hist(scores: list[tuple[float, bool]]) -> dict[str, Any]:
        counts = [0] * bins
        floored = 0
        for score, forced in scores:
            if forced:
                floored += 1
            else:
                counts[min(bins - 1, int(score * bins))] += 1
        return {"counts": counts, "floored": floored, "total": len(scores)}

    return {"bins": bins, "customers": hist(side.customer_scores),
            "attacks": hist(side.attack_scores)}


def format_backtest(data: dict[str, Any]) -> str:
    lines = [f"events {data['events']:,}"]
    for name in ("live", "candidate"):
        d = data[name]
        mix = "  ".join(f"{k} {v:.2%}" for k, v in d["decision_mix"].items())
        lines.append(f"{name:<10} {d['rules_version']}  challenge>={d['thresholds']['challenge']}"
                     f" deny>={d['thresholds']['deny']}")
        lines.append(f"  decisions: {mix}")
        c = d["customers"]
        once = d["customers_challenged_once"]
        lines.append(f"  customers challenged {c['challenge']:.2%}  denied {c['deny']:.3%}  "
                     f"challenged or denied at least once {once['share']:.2%} of "
                     f"{once['accounts']:,} accounts")
        lines.append(f"  refused by the wire model: {d['refused']['events']:,}")
        for scenario, t in d["scenarios"].items():
            lines.append(f"  {scenario:<22} caught {t['blocked']:.1%}  prevented "
                         f"{t['prevented']:.1%}")
        rec = d["threshold_for_target"]
        if rec.get("challenge_threshold") is not None:
            lines.append(f"  challenge threshold for {rec['target_challenge_rate']:.1%} of "
                         f"customers: {rec['challenge_threshold']} (customers "
                         f"{rec['customers_challenged']:.2%}, attacks caught "
                         f"{(rec['attacks_caught'] or 0):.1%})")
    lines.append("rule hit rates (events / users), live -> candidate:")
    live_rates, cand_rates = data["live"]["rule_hit_rates"], data["candidate"]["rule_hit_rates"]
    for rid in sorted(set(live_rates) | set(cand_rates)):
        a, b = live_rates.get(rid), cand_rates.get(rid)
        fmt = lambda r: "-" if r is None else (  # noqa: E731
            f"{r['share_of_events']:.2%}/{r['share_of_users']:.1%}")
        lines.append(f"  {rid:<32} {fmt(a):>16} -> {fmt(b)}")
    ch = data["changed"]
    lines.append(f"decisions that change: {ch['count']:,} ({ch['share']:.2%}); a sample:")
    for row in ch["sample"][:10]:
        lines.append(f"  {row['event_id']}: {row['live']} -> {row['candidate']} "
                     f"({', '.join(row['candidate_reasons'][:3])})")
    return "\n".join(lines)
