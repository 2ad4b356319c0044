"""Rules and model into one score, one decision, one step-up, and the reasons for it.

Score
    Each hit risk rule and the model contribute a risk ``r_i`` in [0, 1); they combine as
    independent evidence, ``R = 1 - prod(1 - r_i)``. Hit trust rules (negative scores)
    scale it down: ``score = R * prod(1 + t_j)``. Every reason's ``contribution`` is its
    share of that score (the risk shares split ``R`` in proportion to ``-log(1 - r_i)``,
    the trust shares split the reduction likewise), so the contributions add up to the
    score exactly.
Score learned from outcomes
    With a ready outcome model (``models.outcome.OutcomeModel``) and the ruleset's
    ``outcome`` section switched on, the score is instead the model's probability of an
    attack, over the same evidence as hazards (``outcome_inputs``: each hit rule's
    ``-log(1 - score)``, negative for trust, the anomaly model's ``-log(1 - weight *
    risk)``, and a few network features), compared with the ``outcome`` thresholds. The
    reasons carry each input's share of that probability and name the model
    (``outcome_model``). At its prior the model is the hand-set combination above.
Decision
    ``deny`` at or above the deny threshold, ``challenge`` at or above the challenge
    threshold, else ``allow``; a hit rule's ``action`` is a floor the decision cannot go
    below.
Step-up
    The preference of the strongest hit rule that names one; otherwise an OTP to the
    account's own channel (SMS for phone accounts or when a phone number came with the
    event, e-mail for e-mail accounts), captcha as the last resort. Rules can rule a
    channel out (``avoid``); SMS is always ruled out right after a SIM change or a number's
    recycling, and so is the channel the login itself used (an SMS-code login gets no SMS
    step-up: a swapped SIM would pass it again).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from features.event import LoginEvent
from models.boosted import BoostedTrees
from models.outcome import ANOMALY as ANOMALY_INPUT
from models.outcome import BASE, LEAK, OutcomeModel, inputs
from models.outcome import FEATURES as OUTCOME_FEATURES
from riskengine.core.rules import (
    Action,
    Challenge,
    Outcome,
    RuleResult,
    Ruleset,
    Thresholds,
    render_message,
)

MODEL_REASON = "anomaly_model"
OUTCOME_REASON = "outcome_model"


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    message: str
    contribution: float
    observed: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Decision:
    event_id: str
    action: Action
    score: float
    challenge: Challenge | None
    reasons: tuple[Reason, ...]
    rules_version: str
    model_version: str
    rule_results: tuple[RuleResult, ...] = ()
    model_score: float | None = None
    failover: bool = False


def outcome_inputs(results: list[RuleResult] | tuple[RuleResult, ...], *, anomaly_risk: float,
                   model_weight: float, values: Mapping[str, Any],
                   base: BoostedTrees | None = None,
                   base_proba: float | None = None) -> dict[str, float]:
    """What the outcome model reads of one login (``models.outcome.inputs``): the hazards
    of its hit rules, the anomaly model's, the network features that hold, and the trained
    ``base`` model's (the outcome model's own, if it has one; ``base_proba`` when walked)."""
    return inputs({r.rule.id: r.rule.score for r in results if r.outcome is Outcome.HIT},
                  anomaly_risk=anomaly_risk, anomaly_weight=model_weight, values=values,
                  base=base, base_proba=base_proba)


def _share(weights: list[float], total: float) -> list[float]:
    s = sum(weights)
    return [total * w / s if s > 0 else 0.0 for w in weights]


def decide(
    *,
    event: LoginEvent,
    values: Mapping[str, Any],
    results: list[RuleResult],
    ruleset: Ruleset,
    model_score: float | None,
    model_risk: float,
    model_version: str,
    outcome: OutcomeModel | None = None,
    outcome_version: str = "",
) -> Decision:
    """The decision for one event from its rule results and the model's view of it (and
    the outcome model's, when it is ready and the ruleset switches it on)."""
    hit_ = Outcome.HIT
    hits = [r for r in results if r.outcome is hit_]
    if outcome is not None and ruleset.outcome.enabled and outcome.ready and (
            outcome.base is None or not values.get("user_is_new")):
        # A trained base learned from accounts with a history; an account's first logins
        # (every account, the day a deployment starts) are the hand-set rules' to judge.
        return _decide_by_outcome(
            event=event, values=values, results=results, hits=hits, ruleset=ruleset,
            model_score=model_score, model_risk=model_risk, model_version=model_version,
            outcome=outcome, outcome_version=outcome_version)
    model_part = ruleset.model_weight * model_risk
    th = ruleset.thresholds
    if not hits and model_part <= 0:
        # Nothing fired and the model adds nothing (most logins): score 0 and the quiet
        # reason, as the general path below would give them, without its bookkeeping.
        quiet = _quiet_reason(values)
        score = 0.0
        action = Action.DENY if score >= th.deny else Action.CHALLENGE \
            if score >= th.challenge else Action.ALLOW
        return Decision(
            event_id=event.event_id,
            action=action,
            score=score,
            challenge=choose_challenge(event, values, hits)
            if action is Action.CHALLENGE else None,
            reasons=(Reason(quiet.code, quiet.message, 0.0, _rounded(quiet.observed)),),
            rules_version=ruleset.label,
            model_version=model_version,
            rule_results=tuple(results),
            model_score=model_score,
        )

    # Each hit's observed values, picked out once: its message and its reason both use them.
    risks: list[tuple[RuleResult, float, dict[str, Any]]] = []
    trusts: list[tuple[RuleResult, float, dict[str, Any]]] = []
    floor_only: list[tuple[RuleResult, float, dict[str, Any]]] = []
    for r in hits:
        weight = r.rule.score
        entry = (r, weight, r.observed)
        (risks if weight > 0 else trusts if weight < 0 else floor_only).append(entry)

    risk_values = [s for _, s, _ in risks] + ([model_part] if model_part > 0 else [])
    combined = 1.0 - math.prod(1.0 - s for s in risk_values)
    trust_factor = math.prod(1.0 + t for _, t, _ in trusts)
    score = min(1.0, max(0.0, combined * trust_factor))

    risk_shares = _share([-math.log1p(-s) for s in risk_values], combined)
    trust_shares = _share([-math.log1p(t) for _, t, _ in trusts], combined - score)
    # (code, message, contribution, observed) of every reason, final once sorted.
    reasons: list[tuple[str, str, float, dict[str, Any]]] = [
        (r.rule.id, render_message(r.rule, seen), share, seen)
        for (r, _, seen), share in zip(risks, risk_shares, strict=False)
    ]
    if model_part > 0:
        reasons.append((
            MODEL_REASON,
            f"Unusual for verified-good logins (anomaly score {model_score:.2f})",
            risk_shares[-1],
            {"anomaly_score": round(model_score or 0.0, 4)},
        ))
    reasons += [
        (r.rule.id, render_message(r.rule, seen), -share, seen)
        for (r, _, seen), share in zip(trusts, trust_shares, strict=True)
    ]
    # Floors hold even when rules themselves lack a score: a hard rule stays hard.
    reasons += [(r.rule.id, render_message(r.rule, seen), 0.0, seen)
                for r, _, seen in floor_only]
    reasons.sort(key=lambda x: -abs(x[2]))
    if not reasons:  # an allow is explained too: say what was (not) found
        quiet = _quiet_reason(values)
        reasons.append((quiet.code, quiet.message, quiet.contribution, quiet.observed))

    action = Action.DENY if score >= th.deny else Action.CHALLENGE if score >= th.challenge \
        else Action.ALLOW
    for r in hits:
        if r.rule.action is not None and r.rule.action.rank > action.rank:
            action = r.rule.action

    return Decision(
        event_id=event.event_id,
        action=action,
        score=round(score, 4),
        challenge=choose_challenge(event, values, hits) if action is Action.CHALLENGE else None,
        reasons=tuple(
            Reason(code, message, round(contribution, 4), _rounded(seen))
            for code, message, contribution, seen in reasons
        ),
        rules_version=ruleset.label,
        model_version=model_version,
        rule_results=tuple(results),
        model_score=model_score,
    )


def _decide_by_outcome(
    *, event: LoginEvent, values: Mapping[str, Any], results: list[RuleResult],
    hits: list[RuleResult], ruleset: Ruleset, model_score: float | None, model_risk: float,
    model_version: str, outcome: OutcomeModel, outcome_version: str,
) -> Decision:
    """``decide`` when the outcome model gives the score (see the module docstring)."""
    # The trees' probability is an input. Their path's breakdown (~10 us, as much as the
    # walk itself) is worked out for the logins a reader asks about: those the trees bring
    # to half the challenge threshold or more; a clearly quiet login's reason is its
    # probability.
    walked: tuple[float, dict[str, float]] | None = None
    if outcome.base is not None:
        walked = outcome.base.proba_explained_from(
            values, EXPLAIN_FROM * ruleset.outcome.thresholds.challenge)
    # The hit rules are all the inputs read of the results.
    x = outcome_inputs(hits, anomaly_risk=model_risk, model_weight=ruleset.model_weight,
                       values=values, base=outcome.base,
                       base_proba=None if walked is None else walked[0])
    explained = outcome.explain_one(x)
    parts = explained.contributions
    score = min(1.0, max(0.0, explained.proba))
    reasons: list[tuple[str, str, float, dict[str, Any]]] = []
    for r in hits:
        seen = r.observed
        reasons.append((r.rule.id, render_message(r.rule, seen),
                        parts.get(f"rule:{r.rule.id}", 0.0), seen))
    if ANOMALY_INPUT in parts:
        reasons.append((
            MODEL_REASON,
            f"Unusual for verified-good logins (anomaly score {model_score or 0.0:.2f})",
            parts[ANOMALY_INPUT], {"anomaly_score": round(model_score or 0.0, 4)}))
    for name, _ in OUTCOME_FEATURES:
        share = parts.get(f"feature:{name}")
        if share:
            reasons.append((f"feature_{name}", f"Learned from outcomes: {name} holds", share,
                            {name: values.get(name)}))
    if walked is not None and BASE in parts:
        reasons.append(_base_reason(walked, values, parts[BASE]))
    reasons.sort(key=lambda item: -abs(item[2]))
    # The model is named whatever else fired; its own share is the base rate (the leak).
    reasons.append((
        OUTCOME_REASON,
        f"Probability of an attack {score:.3f}, by the outcome model {outcome_version} "
        f"(learned from {outcome.n_learned_} outcomes)",
        parts.get(LEAK, 0.0),
        {"outcome_model": outcome_version, "outcomes_learned": outcome.n_learned_},
    ))
    # The advisory rules' evidence is what the trained base weighs; their floors stand down.
    waived = ruleset.outcome.advisory if outcome.base is not None else frozenset()
    action = _action(score, ruleset.outcome.thresholds,
                     [r for r in hits if r.rule.id not in waived] if waived else hits)
    return Decision(
        event_id=event.event_id,
        action=action,
        score=round(score, 4),
        challenge=choose_challenge(event, values, hits) if action is Action.CHALLENGE else None,
        reasons=tuple(Reason(code, message, round(contribution, 4), _rounded(seen))
                      for code, message, contribution, seen in reasons),
        rules_version=ruleset.label,
        model_version=model_version,
        rule_results=tuple(results),
        model_score=model_score,
    )


BASE_REASON = "trained_model"
# The trees' reason names their strongest features from this share of the challenge
# threshold up.
EXPLAIN_FROM = 0.5


def _base_reason(walked: tuple[float, dict[str, float]], values: Mapping[str, Any],
                 share: float) -> tuple[str, str, float, dict[str, Any]]:
    """The trained base model's reason: its probability, and the features that pushed it
    most (their contributions to its log-odds along the trees' paths, largest first)."""
    proba, parts = walked
    top = sorted(((n, c) for n, c in parts.items() if c != 0), key=lambda nc: -abs(nc[1]))[:4]
    said = ", ".join(f"{n} {'+' if c > 0 else '-'}{abs(c):.2f}" for n, c in top)
    return (BASE_REASON,
            f"Trained on labelled logins: attack probability {proba:.3f} "
            f"({said or 'well below the challenge threshold'})",
            share, {"probability": round(proba, 4),
                    "log_odds": {n: round(c, 3) for n, c in top},
                    "values": {n: values.get(n) for n, _ in top}})


def _action(score: float, th: Thresholds, hits: list[RuleResult]) -> Action:
    """The score against the thresholds, raised to the floor of any hit rule's action."""
    action = Action.DENY if score >= th.deny else Action.CHALLENGE if score >= th.challenge \
        else Action.ALLOW
    for r in hits:
        if r.rule.action is not None and r.rule.action.rank > action.rank:
            action = r.rule.action
    return action


def _quiet_reason(values: Mapping[str, Any]) -> Reason:
    if values.get("user_is_new"):
        return Reason("cold_start", "No history for this account yet: judged on network and "
                      "velocity signals only, none of which fired", 0.0, {"user_is_new": True})
    return Reason("no_risk_signals", "No rule fired and the login looks like the user's usual "
                  "ones", 0.0, {})


def _rounded(observed: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in observed.items()}


def choose_challenge(
    event: LoginEvent, values: Mapping[str, Any], hits: list[RuleResult]
) -> Challenge:
    """The step-up that fits the case (see the module docstring)."""
    avoid = {c for r in hits for c in r.rule.avoid}
    if values.get("sim_changed") or values.get("phone_recycled_since_last_login") is True:
        avoid.add(Challenge.SMS_OTP)
    # A code to the channel the login itself was made with proves nothing more: whoever
    # holds the (maybe swapped) SIM or the mailbox passes it again.
    if event.login_method.value == "sms_otp":
        avoid.add(Challenge.SMS_OTP)
    elif event.login_method.value == "email_otp":
        avoid.add(Challenge.EMAIL_OTP)
    preferred = [r.rule.challenge for r in sorted(hits, key=lambda r: -r.rule.score)
                 if r.rule.challenge is not None]
    own = Challenge.EMAIL_OTP if event.account_kind == "email" else (
        Challenge.SMS_OTP if event.account_kind == "phone" or event.phone_key else None
    )
    order = [*preferred, *([own] if own else []), Challenge.EMAIL_OTP, Challenge.CAPTCHA]
    for option in order:
        if option not in avoid:
            return option
    return Challenge.CAPTCHA


class FailoverReason(StrEnum):
    """Why an answer is the failover decision: the one reason code it carries."""

    STORE_UNAVAILABLE = "store_unavailable"  # the store failed, or its breaker is open
    USER_CONTENDED = "user_contended"  # too many logins of one account at once
    RULE_ERROR = "rule_error"
    INTERNAL_ERROR = "internal_error"


_FAILOVER_MESSAGES = {
    FailoverReason.STORE_UNAVAILABLE: "The profile store did not answer; failover decision",
    FailoverReason.USER_CONTENDED: "Too many logins of this account at once; failover "
                                   "decision",
    FailoverReason.RULE_ERROR: "A rule could not be evaluated; failover decision",
    FailoverReason.INTERNAL_ERROR: "Internal error while scoring; failover decision",
}
BREAKER_OPEN_MESSAGE = "The profile store is failing (circuit open); failover decision"


def failover_decision(
    event: LoginEvent, *, action: Action, ruleset: Ruleset, model_version: str,
    reason: FailoverReason, message: str | None = None,
) -> Decision:
    """The answer when a dependency failed: ``action`` at its threshold's score, marked as
    a failover, with ``reason`` as its one reason. It is never ``allow``."""
    if action is Action.ALLOW:
        raise ValueError("the failover decision may not be allow")
    thresholds = ruleset.for_tenant(event.tenant).thresholds
    return Decision(
        event_id=event.event_id,
        action=action,
        score=thresholds.deny if action is Action.DENY else thresholds.challenge,
        challenge=choose_challenge(event, {}, []) if action is Action.CHALLENGE else None,
        reasons=(Reason(reason.value, message or _FAILOVER_MESSAGES[reason], 0.0, {}),),
        rules_version=ruleset.label,
        model_version=model_version,
        failover=True,
    )
