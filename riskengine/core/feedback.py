"""Outcomes learned after a decision (a step-up's result, a user's report, an analyst's
verdict) and what each does to the user's profile, the anomaly model and the outcome
model. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from features.profile import (
    Sighting,
    UserProfile,
    learn,
    mark_bad,
    trust_device,
    unlearn,
    unmark,
)
from riskengine.core.decide import Lesson
from riskengine.core.edge import Refused as RequestRefused
from riskengine.core.learning import OutcomeLesson, trust_network
from riskengine.core.records import FeedbackPlan, ProfileUpdate, StoredDecision
from riskengine.core.rules import Challenge


class Label(StrEnum):
    LEGIT = "legit"
    FRAUD = "fraud"


class Source(StrEnum):
    CHALLENGE_PASSED = "challenge_passed"
    CHALLENGE_FAILED = "challenge_failed"
    USER_REPORT = "user_report"
    ANALYST = "analyst"


class FeedbackConflict(RequestRefused):
    """A feedback that contradicts what happened (a step-up result for a login that was not
    challenged with that step-up): refused with 409, nothing changes."""

    status = 409
    field = "source"


STEP_UP_SOURCES = (Source.CHALLENGE_PASSED, Source.CHALLENGE_FAILED)


def check(stored: StoredDecision, source: Source, challenge: str | None = None) -> None:
    """Raise ``FeedbackConflict`` when ``source`` cannot describe ``stored``: a step-up
    result needs a login that was challenged, with ``challenge`` when the caller names it."""
    if source not in STEP_UP_SOURCES:
        return
    asked = stored.decision.get("challenge")
    if stored.decision.get("decision") != "challenge" or asked is None:
        raise FeedbackConflict(f"{source.value}: this login was not challenged "
                               f"(it was answered {stored.decision.get('decision')})")
    if challenge is not None and challenge != asked:
        raise FeedbackConflict(f"{source.value}: this login was challenged with {asked}, "
                               f"not {challenge}")


def grants_trust(stored: StoredDecision, source: Source) -> bool:
    """Whether a ``legit`` with ``source`` makes the login's device trusted: a one-time code
    passed on a challenge, from a network the user is known on, not by SMS right after the
    phone may have changed hands; or an analyst's verdict. A captcha proves a human, not the
    customer; a user's report or a legit on a denied login proves no device."""
    if source is Source.ANALYST:
        return True
    if source is not Source.CHALLENGE_PASSED:
        return False
    decision = stored.decision
    asked = decision.get("challenge")
    if decision.get("decision") != "challenge" or asked not in (Challenge.SMS_OTP.value,
                                                                 Challenge.EMAIL_OTP.value):
        return False
    features = stored.features
    if asked == Challenge.SMS_OTP.value and any(features.get(f) for f in PHONE_TAKEN_OVER):
        return False
    return trust_network(features)


def plan(label: Label, source: Source, challenge: str | None = None) -> FeedbackPlan:
    """What the feedback does to the stored decision's user: ``legit`` verifies the login
    (the profile learns it if it had not; ``grants_trust`` says when its device becomes
    trusted; an analyst's ``legit`` after a ``fraud`` also lifts that label's bad marks);
    ``fraud`` takes a learned login back out of the profile and marks its device, address
    block and Wi-Fi as bad for that user. A passed captcha verifies nothing (a solving
    service passes it too), and a failed attempt teaches nothing either way."""

    def apply(stored: StoredDecision) -> tuple[ProfileUpdate | None, bool]:
        # Raises FeedbackConflict inside the store's transaction: nothing is written.
        check(stored, source, challenge)
        if stored.sighting is None or stored.features.get("auth_failed"):
            return None, stored.learned
        seen = Sighting.from_dict(stored.sighting)
        if label is Label.FRAUD:
            at, reported = stored.ts, source in VERDICT_SOURCES
            if stored.learned:
                return (lambda p: mark_bad(unlearn(p, seen), seen, at=at,
                                           reported=reported)), False
            return (lambda p: mark_bad(p, seen, at=at, reported=reported)), False
        if passed_proves_nothing(stored, source):
            return None, stored.learned
        trust = grants_trust(stored, source)
        reversal = source is Source.ANALYST and (stored.feedback or "").startswith("fraud")
        if stored.learned:
            if not (trust or reversal):
                return None, True
            return (lambda p: _lift(p, seen, trust=trust, reversal=reversal)), True
        return (lambda p: learn(_lift(p, seen, trust=False, reversal=reversal), seen,
                                trust=trust)), True

    return apply


# Fraud verdicts that name a device as not the owner's: the owner's own report, an analyst's.
# A failed step-up is not one: customers fail codes too, on their own new phones.
VERDICT_SOURCES = (Source.USER_REPORT, Source.ANALYST)


def passed_proves_nothing(stored: StoredDecision, source: Source) -> bool:
    """Whether a passed step-up on ``stored`` verifies nothing: a captcha (a solving service
    passes it too), or any code passed on a device the owner or an analyst reported as
    fraud (the attacker who phished the e-mail code, or holds the number, passes it)."""
    return source is Source.CHALLENGE_PASSED and (
        stored.decision.get("challenge") == Challenge.CAPTCHA.value
        or bool(stored.features.get("device_reported")))


def _lift(profile: UserProfile, seen: Sighting, *, trust: bool, reversal: bool) -> UserProfile:
    out = unmark(profile, seen) if reversal else profile
    return trust_device(out, seen) if trust else out


def lesson_of(before: StoredDecision, label: Label, source: Source) -> Lesson | None:
    """What the model learns from an applied feedback on ``before`` (the decision as it
    was): a ``legit`` login the profile had not learned, unless the attempt failed or the
    pass verifies nothing (``passed_proves_nothing``: a captcha, a code on a reported
    device), as the profile does. The model cannot unlearn: a ``fraud`` teaches it nothing."""
    if label is not Label.LEGIT or before.learned or before.features.get("auth_failed"):
        return None
    if passed_proves_nothing(before, source):
        return None
    seen = before.sighting or {}
    return Lesson(values=before.features, user=before.user_key,
                  block=str(seen.get("ip_prefix_key")), asn=seen.get("asn"), ts=before.ts)


class Refused(StrEnum):
    """Why an outcome teaches the outcome model nothing."""

    FAILED_ATTEMPT = "failed_attempt"  # a wrong password: no login to label
    SMS_AFTER_SIM_CHANGE = "sms_after_sim_change"  # the code may have reached a swapped SIM
    NO_DECISION = "no_decision"  # a failover answer: no features were kept
    REPORTED_DEVICE = "reported_device"  # a code passed on a device reported as fraud
    CAPTCHA = "captcha"  # a captcha passed: a bot with a solving service passes it too


# Features that say the account's phone may no longer be the customer's: an SMS code
# passed then proves nothing (the attacker who swapped or was given the number gets it).
PHONE_TAKEN_OVER = ("sim_changed", "phone_recycled_since_last_login")


def outcome_refusal(before: StoredDecision, label: Label, source: Source) -> Refused | None:
    """Why this outcome on ``before`` must not teach the outcome model, or None if it may.

    An outcome an attacker could have produced teaches nothing: a step-up passed by SMS
    code right after a SIM change or the number's reassignment is what a SIM-swap attacker
    produces; a pass that verifies nothing (``passed_proves_nothing``, as the profile and
    the anomaly model read it: a captcha, which a bot campaign paying a solving service
    passes, or a code on a device reported as fraud) teaches nothing either."""
    features = before.features
    if not features:
        return Refused.NO_DECISION
    if features.get("auth_failed"):
        return Refused.FAILED_ATTEMPT
    sms = before.decision.get("challenge") == Challenge.SMS_OTP.value
    if (label is Label.LEGIT and source is Source.CHALLENGE_PASSED and sms
            and any(features.get(name) for name in PHONE_TAKEN_OVER)):
        return Refused.SMS_AFTER_SIM_CHANGE
    if label is Label.LEGIT and passed_proves_nothing(before, source):
        return Refused.REPORTED_DEVICE if features.get("device_reported") else Refused.CAPTCHA
    return None


def outcome_lesson(before: StoredDecision, label: Label, source: Source, *,
                   inputs: Mapping[str, float], negative_weight: float = 0.0
                   ) -> OutcomeLesson | None:
    """What the outcome model learns from a feedback applied to ``before`` (the decision as
    it was, with the latest earlier feedback), given the login's ``inputs`` as the model
    reads them; None when ``outcome_refusal`` refuses it. A label contradicting an earlier
    one on the same event (a passed step-up later reported as fraud) undoes what that one
    taught (``undo``), and so does a fraud label on a login that taught the model as a
    sampled negative (``negative_weight``: its weight, 0 when it was not sampled); one
    repeating a label (the same label from another source) adds nothing."""
    earlier = (before.feedback or "").split(":", 1)[0]
    if earlier == label.value or outcome_refusal(before, label, source) is not None:
        return None
    seen = before.sighting or {}
    contradicts = earlier in (Label.LEGIT.value, Label.FRAUD.value) and earlier != label.value
    negative_weight = negative_weight if label is Label.FRAUD else 0.0
    return OutcomeLesson(
        event_id=before.event_id, inputs=dict(inputs), attack=label is Label.FRAUD,
        weight=1.0, user=before.user_key, block=str(seen.get("ip_prefix_key")),
        asn=seen.get("asn"), ts=before.ts,
        undo=contradicts or negative_weight > 0,
        undo_weight=1.0 if contradicts else negative_weight)
