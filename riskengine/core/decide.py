"""One login through the decision core: features, rules, model, policy, shadow, and what
the login teaches. Pure: given the same inputs, the same outcome; no store, lock, clock,
thread or log.

>>> from riskengine.core.decide import Context, evaluate  # doctest: +SKIP
>>> outcome = evaluate(event, ip, loaded, context, now=event.ts)  # doctest: +SKIP
>>> outcome.decision.action, [r.code for r in outcome.decision.reasons]  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from features.event import LoginEvent
from features.extract import NOT_LISTED, FeatureVector, Listed, Value, extract
from features.ipintel import IpInfo
from features.profile import Sighting, learn, note_failure, sighting
from models.base import RiskModel
from models.outcome import OutcomeModel
from riskengine.core.learning import earns_trust, verified_good
from riskengine.core.policy import Decision, decide
from riskengine.core.records import Loaded, ProfileUpdate
from riskengine.core.rules import Action, Outcome, Ruleset


class RuleFault(RuntimeError):
    """A rule raised while being evaluated: no decision is made without it."""


@dataclass(frozen=True, slots=True)
class Context:
    """What a login is judged with, besides itself and its history.

    ``signals`` holds the external signals' values collected for this login (by feature
    name; what did not answer is left out or ``"unknown"``). ``outcome`` is the model
    learned from outcomes, if any: it gives the score once it is ready and the ruleset's
    ``outcome`` section switches it on (``core.policy``).
    """

    ruleset: Ruleset
    model: RiskModel
    model_version: str
    shadow: Ruleset | None = None
    signals: Mapping[str, Value] = field(default_factory=dict)
    outcome: OutcomeModel | None = None
    outcome_version: str = ""


@dataclass(frozen=True, slots=True)
class Lesson:
    """A verified-good login's features, for the model to learn, with who taught it (for
    the learning caps: user, address block, ASN) and when. ``score`` is the anomaly score
    the model gave the login before learning it (a held-out score: the deployment's
    calibration is made of them), None when it was not scored."""

    values: Mapping[str, Any]
    user: str
    block: str
    asn: int | None
    ts: float
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"values": dict(self.values), "user": self.user, "block": self.block,
                "asn": self.asn, "ts": self.ts, "score": self.score}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Lesson:
        score = data.get("score")
        return cls(values=data["values"], user=data["user"], block=data["block"],
                   asn=data.get("asn"), ts=float(data["ts"]),
                   score=float(score) if score is not None else None)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the core made of one login.

    ``update`` is what the store applies to the user's profile with the decision (None:
    nothing to learn); ``lesson`` what the model may learn (None unless the login was
    allowed and verified good); ``learned`` whether the profile learns it now;
    ``anomaly_risk`` the anomaly model's risk share the decision saw.
    """

    features: FeatureVector
    decision: Decision
    shadow: Decision | None
    sighting: Sighting
    update: ProfileUpdate | None
    lesson: Lesson | None
    anomaly_risk: float = 0.0

    @property
    def learned(self) -> bool:
        return self.lesson is not None


def evaluate(event: LoginEvent, ip: IpInfo, loaded: Loaded, context: Context, *,
             now: float) -> Verdict:
    """Judge ``event`` (from ``ip``) against what the store ``loaded`` for it.

    Raises ``RuleFault`` when a rule cannot be evaluated and ``ValueError`` when the model's
    score is not a number: the caller answers those with its failover decision.
    """
    rules = context.ruleset.for_tenant(event.tenant)
    allow, deny = rules.lists.lookup(ip.ip, ip.asn, now)
    listed = NOT_LISTED if allow is None and deny is None else Listed(allow, deny)
    fv = extract(event, ip, loaded.profile, loaded.velocity, listed=listed,
                 signals=context.signals)
    anomaly = context.model.score_one(fv)
    if not math.isfinite(anomaly):
        raise ValueError("the anomaly model returned a non-finite score")
    risk = context.model.risk(anomaly)
    decision = _decide(event, fv, rules, anomaly, risk, context)
    shadowed = None
    if context.shadow is not None:
        # The candidate sees the very same login and model score; only its own lists may
        # make its features differ.
        candidate = context.shadow.for_tenant(event.tenant)
        c_listed = candidate.lists.lookup(ip.ip, ip.asn, now)
        shadow_fv = fv if c_listed == (allow, deny) else extract(
            event, ip, loaded.profile, loaded.velocity, listed=Listed(*c_listed),
            signals=context.signals)
        shadowed = _decide(event, shadow_fv, candidate, anomaly, risk, context)
    # A detector must not learn from what it flags: only allowed, verified logins.
    verified = decision.action is Action.ALLOW and verified_good(event, fv)
    seen = sighting(event, ip, fv)
    lesson = Lesson(values=fv, user=event.user_key, block=event.ip_prefix_key, score=anomaly,
                    asn=ip.asn, ts=event.ts) if verified else None
    return Verdict(features=fv, decision=decision, shadow=shadowed, sighting=seen,
                   update=_profile_update(event, seen, learn_it=verified,
                                          trust=verified and earns_trust(event, fv)),
                   lesson=lesson, anomaly_risk=risk)


def _decide(event: LoginEvent, fv: FeatureVector, rules: Ruleset, anomaly: float,
            risk: float, context: Context) -> Decision:
    results = rules.evaluate(fv)
    # Looked for in C (``in`` over the outcomes); a rule's error is the rare case.
    if Outcome.ERROR in map(_OUTCOME, results):
        broken = next(r for r in results if r.outcome is Outcome.ERROR)
        # A rule that cannot be evaluated may be the one that should have stopped this
        # login: never decide without it.
        raise RuleFault(f"rule {broken.rule.id} failed: {broken.error}")
    return decide(event=event, values=fv, results=results, ruleset=rules,
                  model_score=anomaly, model_risk=risk, model_version=context.model_version,
                  outcome=context.outcome, outcome_version=context.outcome_version)


_OUTCOME = attrgetter("outcome")


def _profile_update(
    event: LoginEvent, seen: Sighting, *, learn_it: bool, trust: bool
) -> ProfileUpdate | None:
    """What the store applies to the user's current profile, inside its transaction."""
    if event.failed:
        return lambda profile: note_failure(profile, event.ts)
    if learn_it:
        return lambda profile: learn(profile, seen, trust=trust)
    return None
