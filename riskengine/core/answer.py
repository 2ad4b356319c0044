"""The wire form of a decision: what ``POST /v1/score`` answers, and what is kept of the
shadow's decision beside it."""

from __future__ import annotations

from typing import Any

from riskengine.core.policy import Decision
from riskengine.core.rules import Action

# What the auth service can show a customer who was denied. It names no rule (that would
# coach an attacker) and gives the reference that the human review starts from.
DENY_MESSAGE = (
    "We could not confirm that this sign-in is yours, so we blocked it to protect your "
    "account. If it was you, contact customer service with reference {event_id} and we "
    "will review it."
)


def to_wire(decision: Decision) -> dict[str, Any]:
    """The response body of ``POST /v1/score`` (without ``latency_ms``)."""
    return {
        "event_id": decision.event_id,
        "decision": decision.action.value,
        "score": decision.score,
        "challenge": decision.challenge.value if decision.challenge else None,
        "reasons": [
            {"code": r.code, "message": r.message, "contribution": r.contribution,
             "observed": r.observed}
            for r in decision.reasons
        ],
        "rules_version": decision.rules_version,
        "model_version": decision.model_version,
        "failover": decision.failover,
        "user_message": DENY_MESSAGE.format(event_id=decision.event_id)
        if decision.action is Action.DENY else None,
    }


def shadow_summary(shadowed: Decision) -> dict[str, Any]:
    """What is stored of the candidate ruleset's decision beside the live one."""
    return {
        "decision": shadowed.action.value,
        "score": shadowed.score,
        "challenge": shadowed.challenge.value if shadowed.challenge else None,
        "rules_version": shadowed.rules_version,
        "reasons": [r.code for r in shadowed.reasons],
    }
