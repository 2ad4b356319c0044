"""Replay labelled logins through the engine, answer its challenges, and measure detection.

``replay`` runs the very engine the service runs, in process and in time order, over a file
of the simulator's (or the RBA loader's) labelled wire events. It answers each challenge as
the label says the actor would (``passes``: the step-ups this customer or attacker gets
through; labels without it: customers pass at ``customer_pass_rate``, attackers fail, except
a SIM-swap attacker asked for an SMS code), feeds that outcome back through
``Engine.confirm``, sends each victim's late report (``reported_after_hours``) of an attack
that got in through ``Engine.feedback`` at its simulated time, and reports how customers and
each attack scenario fared after a warm-up period, in all and day by day. Requests the wire
model refuses are counted and shown, never silently dropped.

Input is streamed, so the file may hold tens of millions of logins; per event only two floats
and two small codes are kept for the figures, plus one pseudonym per customer account and
the reports still due.
"""

from __future__ import annotations

import gzip
import heapq
import io
import json
import random
import sys
import time
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from features.ipintel import IpInfo
from riskengine.core.feedback import Label, Source
from riskengine.core.wire import ScoreRequest, parse_timestamp
from riskengine.service.scorer import Engine, Scored

CUSTOMER = "customer"
SLOW_POISONING = "slow_poisoning"
CHALLENGE_RATES = (0.01, 0.02, 0.05)
DAY_S = 86_400.0


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Stream JSON objects, one per line, from a file (``.gz`` too) or ``-`` for stdin."""
    if str(path) == "-":
        stream: TextIO = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8")
    elif str(path).endswith(".gz"):
        stream = gzip.open(path, "rt", encoding="utf-8")  # noqa: SIM115 - closed below
    else:
        stream = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    with stream:
        for line in stream:
            if line.strip():
                yield json.loads(line)


@dataclass
class Tally:
    """Decisions of one population (customers, or one attack scenario)."""

    events: int = 0
    allow: int = 0
    challenge: int = 0
    deny: int = 0
    prevented: int = 0  # denied, or challenged with a step-up the actor cannot pass

    def add(self, decision: str, *, prevented: bool = False) -> None:
        self.events += 1
        setattr(self, decision, getattr(self, decision) + 1)
        self.prevented += prevented

    def rates(self) -> dict[str, float | int]:
        n = max(self.events, 1)
        return {"events": self.events, "allow": self.allow / n, "challenge": self.challenge / n,
                "deny": self.deny / n, "blocked": (self.challenge + self.deny) / n,
                "prevented": self.prevented / n}


@dataclass
class Day:
    """One day's tallies (customers, and all attacks together), so that a period can be cut
    out of a report afterwards (``period``)."""

    customer_events: int = 0
    customers_challenged: int = 0
    customers_denied: int = 0
    attack_events: int = 0
    attacks_blocked: int = 0
    attacks_prevented: int = 0

    def add(self, decision: str, *, attack: bool, prevented: bool) -> None:
        if attack:
            self.attack_events += 1
            self.attacks_blocked += decision != "allow"
            self.attacks_prevented += prevented
        else:
            self.customer_events += 1
            self.customers_challenged += decision == "challenge"
            self.customers_denied += decision == "deny"


@dataclass
class Scores:
    """Scores of customers and attacks, for ROC AUC and catch rates."""

    customers: array = field(default_factory=lambda: array("f"))
    attacks: array = field(default_factory=lambda: array("f"))
    attack_scenarios: list[str] = field(default_factory=list)

    def add(self, score: float, scenario: str) -> None:
        if scenario == CUSTOMER:
            self.customers.append(score)
        else:
            self.attacks.append(score)
            self.attack_scenarios.append(scenario)

    def summary(self) -> dict[str, Any]:
        import numpy as np
        from sklearn.metrics import roc_auc_score

        cust = np.frombuffer(self.customers, dtype=np.float32)
        att = np.frombuffer(self.attacks, dtype=np.float32)
        if not len(cust) or not len(att):
            return {"roc_auc": None, "catch_rate_at": {}}
        y = np.concatenate([np.zeros(len(cust)), np.ones(len(att))])
        s = np.concatenate([cust, att])
        out: dict[str, Any] = {"roc_auc": float(roc_auc_score(y, s)), "catch_rate_at": {}}
        ordered = np.sort(cust)
        for rate in CHALLENGE_RATES:
            # The threshold is the customer score at the (1 - rate) quantile; only scores
            # strictly above it are flagged, so ties never push customers past the rate.
            t = float(ordered[min(len(ordered) - 1, int(np.ceil((1 - rate) * len(ordered))) - 1)])
            out["catch_rate_at"][f"{rate:.0%}"] = {
                "threshold": t,
                "customers_flagged": float(np.mean(cust > t)),
                "attacks_caught": float(np.mean(att > t)),
            }
        return out


@dataclass
class Report:
    """What a replay measured (after the warm-up)."""

    events: int = 0
    warmup: int = 0
    seconds: float = 0.0
    customers: Tally = field(default_factory=Tally)
    scenarios: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    slow_poisoning_after_3_weeks: Tally = field(default_factory=Tally)
    engine_scores: Scores = field(default_factory=Scores)
    baseline_scores: Scores | None = None
    challenges: Counter[str] = field(default_factory=Counter)
    # Requests the wire model refuses (a 422 in the service), by first bad field and by
    # scenario: none of a real client's requests should be.
    refused: int = 0
    refused_fields: Counter[str] = field(default_factory=Counter)
    refused_scenarios: Counter[str] = field(default_factory=Counter)
    # Customer accounts (pseudonyms) with a measured login, and those challenged or denied
    # at least once.
    customer_accounts: set[str] = field(default_factory=set)
    customer_accounts_stopped: set[str] = field(default_factory=set)
    days: dict[int, Day] = field(default_factory=lambda: defaultdict(Day))
    user_reports: Counter[str] = field(default_factory=Counter)  # by outcome

    def to_dict(self) -> dict[str, Any]:
        accounts = len(self.customer_accounts)
        out: dict[str, Any] = {
            "events": self.events,
            "refused": {"events": self.refused, "by_field": dict(self.refused_fields),
                        "by_scenario": dict(self.refused_scenarios)},
            "warmup_events": self.warmup,
            "events_per_second": self.events / self.seconds if self.seconds else None,
            "customers": self.customers.rates(),
            "customers_challenged_once": {
                "accounts": accounts,
                "share": len(self.customer_accounts_stopped) / accounts if accounts else 0.0},
            "scenarios": {k: v.rates() for k, v in sorted(self.scenarios.items())},
            "slow_poisoning_after_3_weeks": self.slow_poisoning_after_3_weeks.rates(),
            "challenge_types": dict(self.challenges),
            "user_reports": dict(self.user_reports),
            "per_day": {str(d): vars(t).copy() for d, t in sorted(self.days.items())},
            "riskengine": self.engine_scores.summary(),
        }
        if self.baseline_scores is not None:
            out["freeman"] = self.baseline_scores.summary()
        return out


class Replayer:
    """Feeds labelled events to an engine and answers its challenges.

    Parameters
    ----------
    engine
        The engine to replay through (its store is written to).
    warmup_days
        Events in the first days of the file teach the engine but are left out of the
        figures.
    customer_pass_rate
        Share of challenged customers who pass their step-up.
    baseline
        A ``models.freeman.FreemanModel`` scored on the same events (it learns from every
        successful login, as in the paper's setting), or None.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        warmup_days: float = 14.0,
        customer_pass_rate: float = 0.97,
        baseline: Any = None,
        seed: int = 0,
    ) -> None:
        self.engine = engine
        self.warmup = timedelta(days=warmup_days)
        self.pass_rate = customer_pass_rate
        self.baseline = baseline
        self.rng = random.Random(seed)

    def run(
        self,
        lines: Iterable[dict[str, Any]],
        *,
        progress: bool | None = None,
        observe: Callable[[Scored, str, str], None] | None = None,
    ) -> Report:
        """Replay ``lines``; ``observe(scored, scenario, user_id)`` sees every decision made
        after the warm-up (the backtest counts rule hits with it)."""
        from tqdm import tqdm

        report = Report(baseline_scores=Scores() if self.baseline is not None else None)
        first_seen: datetime | None = None
        poisoning_start: dict[str, datetime] = {}
        # Victims' reports still to come: (due, order, tenant, event id).
        due: list[tuple[datetime, int, str, str]] = []
        started = time.perf_counter()
        # disable=None: a bar on a terminal, nothing when stderr is piped.
        bar = tqdm(lines, unit=" events", disable=None if progress is None else not progress,
                   mininterval=0.5)
        for line in bar:
            label = line.get("label") or {}
            scenario = str(label.get("scenario") or (
                "attack" if label.get("attack") else CUSTOMER))
            wire = {k: v for k, v in line.items() if k not in ("label", "ip_facts")}
            try:
                req = ScoreRequest(**wire)
            except ValidationError as exc:
                report.refused += 1
                report.refused_fields[_first_field(exc)] += 1
                report.refused_scenarios[scenario] += 1
                continue
            when = parse_timestamp(req.timestamp) if req.timestamp else datetime.now(UTC)
            while due and due[0][0] <= when:
                self._report(heapq.heappop(due), report)
            event = self.engine.to_event(req, received_at=when)
            ip = _ip_from_facts(event.ip, line.get("ip_facts"), self.engine) \
                if line.get("ip_facts") else None
            scored = self.engine.score_event(event, ip=ip)
            decision = scored.body["decision"]
            challenge = scored.body["challenge"]
            passed = False
            if decision == "challenge" and not event.failed:
                passed = self._passes(scenario, challenge, label)
                # Feedback names the login by the caller's own id, as the answer echoes it
                # (the event carries the id's pseudonym).
                self.engine.confirm(event.tenant, scored.body["event_id"], passed=passed)
            elif decision == "challenge":  # a failed password: nothing to step up
                passed = self._could_pass(scenario, challenge, label)
            attack = scenario != CUSTOMER
            got_in = not event.failed and (decision == "allow" or passed)
            hours = label.get("reported_after_hours")
            if attack and got_in and hours is not None and scored.decision is not None:
                heapq.heappush(due, (when + timedelta(hours=float(hours)), report.events,
                                     event.tenant, scored.body["event_id"]))
            baseline_score = self._baseline(event, ip) if self.baseline is not None else None
            report.events += 1
            first_seen = first_seen or when
            if scenario == SLOW_POISONING:
                poisoning_start.setdefault(req.user_id, when)
            if when < first_seen + self.warmup:
                report.warmup += 1
                continue
            prevented = decision == "deny" or (decision == "challenge" and not passed)
            tally = report.customers if scenario == CUSTOMER else report.scenarios[scenario]
            tally.add(decision, prevented=prevented)
            day = int((when - first_seen).total_seconds() // DAY_S) + 1
            report.days[day].add(decision, attack=attack, prevented=prevented)
            if not attack:
                report.customer_accounts.add(event.user_key)
                if decision != "allow":
                    report.customer_accounts_stopped.add(event.user_key)
            if observe is not None:
                observe(scored, scenario, req.user_id)
            if scenario == SLOW_POISONING and when >= poisoning_start[req.user_id] + timedelta(
                    days=21):
                report.slow_poisoning_after_3_weeks.add(decision, prevented=prevented)
            if challenge:
                report.challenges[challenge] += 1
            report.engine_scores.add(float(scored.body["score"]), scenario)
            if report.baseline_scores is not None and baseline_score is not None:
                report.baseline_scores.add(baseline_score, scenario)
        # Reports due after the last login still reach the engine (they change nothing
        # measured here, but the store ends as the service's would).
        while due:
            self._report(heapq.heappop(due), report)
        report.seconds = time.perf_counter() - started
        return report

    def _report(self, item: tuple[datetime, int, str, str], report: Report) -> None:
        """The victim reports the login as theirs-not: fraud, from the user."""
        _, _, tenant, event_id = item
        outcome = self.engine.feedback(tenant, event_id, label=Label.FRAUD,
                                       source=Source.USER_REPORT)
        report.user_reports[str(outcome)] += 1

    def _passes(self, scenario: str, challenge: str | None, label: dict[str, Any]) -> bool:
        """Whether the actor passes this step-up: as the label says, or (labels without
        ``passes``) customers at the pass rate and only a SIM-swapper an SMS code."""
        if "passes" in label:
            return challenge in (label["passes"] or ())
        if scenario == CUSTOMER:
            return self.rng.random() < self.pass_rate
        # The SIM-swap attacker receives the victim's SMS codes; nobody else passes.
        return scenario == "sim_swap" and challenge == "sms_otp"

    def _could_pass(self, scenario: str, challenge: str | None, label: dict[str, Any]) -> bool:
        """``_passes`` for a login that is never stepped up (its password failed), without
        drawing: a customer is taken to pass."""
        if "passes" in label or scenario != CUSTOMER:
            return self._passes(scenario, challenge, label)
        return True

    def _baseline(self, event: Any, ip: IpInfo | None) -> float:
        from features.catalog import identity_features
        from models.freeman import USER_KEY, freeman_attributes

        info = ip or self.engine.ipintel.lookup(event.ip)
        # The login's features the baseline reads: the extractor's ip_asn and ip_country
        # (the IpInfo's, as they are) and the event's identity features.
        features = {"ip_asn": info.asn, "ip_country": info.country, **identity_features(event)}
        x = {**freeman_attributes(features), USER_KEY: event.user_key}
        score = float(self.baseline.score_one(x))
        if not event.failed:
            self.baseline.learn_one(x)
        return score


def _first_field(exc: ValidationError) -> str:
    """The first refused field's dotted name (``device.id``), never its value."""
    errors = exc.errors()
    return ".".join(str(part) for part in errors[0]["loc"]) if errors else "?"


def _ip_from_facts(ip: str, facts: dict[str, Any], engine: Engine) -> IpInfo:
    """A dataset's own geolocation for an address (the RBA dataset's IPs are synthesized)."""
    looked = engine.ipintel.lookup(ip)
    return IpInfo(
        ip=looked.ip,
        version=looked.version,
        is_private=False,
        country=facts.get("country"),
        region=facts.get("region"),
        city=facts.get("city"),
        asn=facts.get("asn"),
        origin_kind=looked.origin_kind if not looked.is_private else "unknown",
        origin_provider=looked.origin_provider,
    )


def period(data: dict[str, Any], first_day: int, last_day: int) -> dict[str, Any]:
    """The figures of days ``first_day`` to ``last_day`` (1 is the replay's first day, both
    included) from a report's ``per_day`` tallies.

    >>> period({"per_day": {"15": {"customer_events": 200, "customers_challenged": 2,
    ...         "customers_denied": 0, "attack_events": 10, "attacks_blocked": 9,
    ...         "attacks_prevented": 8}}}, 15, 37)["customers_challenged"]
    0.01
    """
    total: Counter[str] = Counter()
    for day, tallies in data["per_day"].items():
        if first_day <= int(day) <= last_day:
            total.update(tallies)
    customers, attacks = total["customer_events"], total["attack_events"]
    return {"days": [first_day, last_day], "customer_events": customers,
            "customers_challenged": total["customers_challenged"] / customers
            if customers else None,
            "customers_denied": total["customers_denied"] / customers if customers else None,
            "attack_events": attacks,
            "attacks_blocked": total["attacks_blocked"] / attacks if attacks else None,
            "attacks_prevented": total["attacks_prevented"] / attacks if attacks else None}


def format_report(data: dict[str, Any]) -> str:
    """The report as a plain-text table."""
    lines = []
    eps = data.get("events_per_second")
    refused = data["refused"]
    lines.append(f"events {data['events']:,} (warm-up {data['warmup_events']:,}), "
                 f"{eps:,.0f} events/s" if eps else "")
    lines.append(f"refused by the wire model: {refused['events']:,}" + (
        " (" + ", ".join(f"{k} {v:,}" for k, v in sorted(refused["by_field"].items())) + ")"
        if refused["events"] else ""))
    c = data["customers"]
    once = data["customers_challenged_once"]
    lines.append(f"customers: {c['events']:,} logins  allow {c['allow']:.2%}  challenge "
                 f"{c['challenge']:.2%}  deny {c['deny']:.2%}")
    lines.append(f"customers challenged or denied at least once: {once['share']:.2%} of "
                 f"{once['accounts']:,} accounts")
    lines.append(f"{'scenario':<24}{'events':>8}{'blocked':>10}{'prevented':>11}{'denied':>10}")
    rows = dict(data["scenarios"])
    rows["slow_poisoning >3 weeks"] = data["slow_poisoning_after_3_weeks"]
    for name, t in rows.items():
        lines.append(f"{name:<24}{t['events']:>8,}{t['blocked']:>10.1%}"
                     f"{t['prevented']:>11.1%}{t['deny']:>10.1%}")
    if data.get("user_reports"):
        lines.append("victims' reports sent: " + ", ".join(
            f"{k} {v:,}" for k, v in sorted(data["user_reports"].items())))
    for who in ("riskengine", "freeman"):
        if who not in data:
            continue
        s = data[who]
        auc = f"{s['roc_auc']:.4f}" if s["roc_auc"] is not None else "n/a"
        catches = "  ".join(f"@{k} {v['attacks_caught']:.1%}"
                            for k, v in s["catch_rate_at"].items())
        lines.append(f"{who:<11} ROC AUC {auc}  catch rate {catches}")
    return "\n".join(line for line in lines if line)
