"""Outcomes learned after a decision (a step-up's result, a user's report, an analyst's
verdict) and what each does to the user's profile and the model. Pure."""

from __future__ import annotations

from enum import StrEnum

from features.profile import Sighting, learn, mark_bad, trust_device, unlearn
from riskengine.core.decide import Lesson
from riskengine.core.records import FeedbackPlan, ProfileUpdate, StoredDecision


class Label(StrEnum):
    LEGIT = "legit"
    FRAUD = "fraud"


class Source(StrEnum):
    CHALLENGE_PASSED = "challenge_passed"
    CHALLENGE_FAILED = "challenge_failed"
    USER_REPORT = "user_report"
    ANALYST = "analyst"


def plan(label: Label, source: Source) -> FeedbackPlan:
    """What the feedback does to the stored decision's user: ``legit`` verifies the login
    (the profile learns it if it had not; a passed step-up also makes its device trusted);
    ``fraud`` takes a learned login back out of the profile and marks its device, address
    block and Wi-Fi as bad for that user. A failed attempt teaches nothing either way."""
    passed = source is Source.CHALLENGE_PASSED

    def apply(stored: StoredDecision) -> tuple[ProfileUpdate | None, bool]:
        if stored.sighting is None or stored.features.get("auth_failed"):
            return None, stored.learned
        seen = Sighting.from_dict(stored.sighting)
        if label is Label.FRAUD:
            at = stored.ts
            if stored.learned:
                return (lambda p: mark_bad(unlearn(p, seen), seen, at=at)), False
            return (lambda p: mark_bad(p, seen, at=at)), False
        if stored.learned:
            return ((lambda p: trust_device(p, seen)) if passed else None), True
        return (lambda p: learn(p, seen, trust=passed)), True

    return apply


def lesson_of(before: StoredDecision, label: Label) -> Lesson | None:
    """What the model learns from an applied feedback on ``before`` (the decision as it
    was): a ``legit`` login the profile had not learned, unless the attempt failed. The
    model cannot unlearn: a ``fraud`` teaches it nothing."""
    if label is not Label.LEGIT or before.learned or before.features.get("auth_failed"):
        return None
    seen = before.sighting or {}
    return Lesson(values=before.features, user=before.user_key,
                  block=str(seen.get("ip_prefix_key")), asn=seen.get("asn"), ts=before.ts)
