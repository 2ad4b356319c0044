"""The shell around the decision core: load, decide, record, teach, log.

``Engine`` serves the HTTP API, replays and notebooks. The judging is the core's
(``riskengine.core.decide.evaluate``); here is what surrounds it: the store, the model's
lock, the breaker and the failover answer, the outbox, the external signals and the log.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from features.event import LoginEvent
from features.extract import FeatureVector
from features.ipintel import IpInfo, IpIntel
from features.profile import note_failure
from models.base import RiskModel
from models.calibration import DeploymentCalibration
from models.outcome import OutcomeModel
from models.persistence import Frozen, freeze
from riskengine.adapters.breaker import CircuitBreaker
from riskengine.adapters.outbox import Outbox
from riskengine.adapters.signals import Signals
from riskengine.adapters.stores.base import (
    Attempt,
    FeedbackOutcome,
    LoadQuery,
    Store,
    StoreContended,
    StoredDecision,
    StoreError,
    UserData,
    carry_over,
)
from riskengine.core import edge
from riskengine.core import feedback as fb
from riskengine.core.answer import shadow_summary, to_wire
from riskengine.core.decide import Context, Lesson, RuleFault, evaluate
from riskengine.core.edge import DEFAULT_TIME_POLICY, EventIdConflict, Refused, TimePolicy
from riskengine.core.feedback import Label, Source
from riskengine.core.learning import LearningGate, OutcomeLesson, OutcomeTeacher, sampled
from riskengine.core.policy import (
    BREAKER_OPEN_MESSAGE,
    Decision,
    FailoverReason,
    failover_decision,
    outcome_inputs,
)
from riskengine.core.privacy import Kind, Pseudonymizer
from riskengine.core.rules import Action, Ruleset
from riskengine.core.wire import ScoreRequest
from riskengine.service.queued import FeedbackItem, LessonItem, Queued, RecordItem, decode
from riskengine.service.shadow import ShadowStats

log = logging.getLogger("riskengine.decision")


class LessonSink(Protocol):
    def publish(self, lesson: Mapping[str, Any]) -> None: ...

    def carried_by(self, store: Store) -> bool:
        """Whether ``store.record(..., lesson=...)`` writes a login's lesson where this sink's
        learner reads it (in place of ``publish``)."""
        ...

    def of_users(self, user_keys: Collection[str]) -> list[tuple[str, dict[str, Any]]]:
        """(id, lesson) of the lessons these user pseudonyms taught that are still kept."""
        ...

    def forget(self, user_keys: Collection[str]) -> int:
        """Delete those lessons; returns how many went."""
        ...


@dataclass(frozen=True, slots=True)
class Scored:
    """A decision as answered: the wire body (without latency) and how long it took."""

    body: dict[str, Any]
    latency_ms: float
    decision: Decision | None = None
    features: FeatureVector | None = None
    replayed: bool = False


class Engine:
    """Scores login events.

    Parameters
    ----------
    store
        Profiles, velocity windows and decisions (``riskengine.adapters.stores``).
    ruleset, model, model_version, model_card
        The live rules and anomaly model, and the model's card (training window, lineage).
    ipintel
        Offline IP databases.
    pseudonymizer
        Keyed hashing of identifiers, applied before anything else sees them.
    failover
        Decision when a dependency fails: ``challenge`` (default) or ``deny``, never allow.
    gate
        Caps on how much one user, IP or ASN may teach the model (``core.learning``).
    lessons
        Where lessons go when a shared learner teaches the model for all instances
        (``riskengine.adapters.learner.RedisLessons``); None to learn in this process.
    breaker, outbox
        For a shared store: stop calling it while it fails (answering the failover
        decision at once), and keep what it must still receive (failover attempts,
        feedback, lessons) to replay, idempotently, once it is back.
    signals
        External signals (``riskengine.adapters.signals``): started at the edge, collected
        within their budget and handed to the core; None for none.
    time_policy
        How far a caller's timestamp may stray from the receive time, and whether the
        windows run on it (``riskengine.core.edge.TimePolicy``).
    outcome, outcome_version, outcome_card
        The model learned from outcomes (``models.outcome``), if any; it scores when it is
        ready and the ruleset's ``outcome`` section switches it on, and it learns from
        feedback and from a ``negative_rate`` sample of allowed logins either way.
    outcome_teacher, outcome_lessons
        Its caps and undo memory (``core.learning.OutcomeTeacher``), and where its lessons
        go when a shared learner teaches it for all instances (None: in this process).
    """

    def __init__(
        self,
        *,
        store: Store,
        ruleset: Ruleset,
        model: RiskModel,
        model_version: str,
        model_card: Mapping[str, Any] | None = None,
        ipintel: IpIntel,
        pseudonymizer: Pseudonymizer,
        failover: Action = Action.CHALLENGE,
        gate: LearningGate | None = None,
        lessons: LessonSink | None = None,
        breaker: CircuitBreaker | None = None,
        outbox: Outbox | None = None,
        clock: Callable[[], float] = time.perf_counter,
        signals: Signals | None = None,
        time_policy: TimePolicy = DEFAULT_TIME_POLICY,
        outcome: OutcomeModel | None = None,
        outcome_version: str = "",
        outcome_card: Mapping[str, Any] | None = None,
        outcome_teacher: OutcomeTeacher | None = None,
        outcome_lessons: LessonSink | None = None,
        negative_rate: float = 0.05,
    ) -> None:
        if failover is Action.ALLOW:
            raise ValueError("the failover decision may not be allow")
        self.store = store
        self.ruleset = ruleset
        self.shadow: Ruleset | None = None
        self.shadow_stats = ShadowStats()
        self.model = model
        self.model_version = model_version
        self.model_card: dict[str, Any] = dict(model_card or {})
        self.ipintel = ipintel
        self.pseudonymize = pseudonymizer
        self.failover = failover
        self.gate = gate or LearningGate()
        # The served model's scale, refitted on this deployment's verified-good logins.
        self.calibration = DeploymentCalibration()
        self.lessons = lessons
        self.breaker = breaker
        self.outbox = outbox
        self.signals = signals
        self.time_policy = time_policy
        self._clock = clock
        self._model_lock = threading.Lock()
        self.outcome = outcome
        self.outcome_version = outcome_version
        self.outcome_card: dict[str, Any] = dict(outcome_card or {})
        self.outcome_teacher = outcome_teacher or OutcomeTeacher()
        self.outcome_lessons = outcome_lessons
        self.negative_rate = negative_rate
        # Whether scoring may wait on another machine: a shared store, or a signal provider
        # that is not answered from memory. The API scores inline only when it may not.
        self.waits_on_network = not getattr(store, "embedded", False) or (
            signals is not None
            and any(not getattr(g.provider, "inline", False) for g in signals.guards))

    # -- what is served: model and rules -----------------------------------------------

    def swap_model(self, model: RiskModel, version: str,
                   card: Mapping[str, Any] | None = None) -> None:
        """Serve another model from the next request on (a rollback or a promotion)."""
        with self._model_lock:
            self.model, self.model_version, self.model_card = model, version, dict(card or {})
            self.calibration = DeploymentCalibration()

    def name_model(self, version: str, card: Mapping[str, Any]) -> None:
        """Give the serving model the version and card of the snapshot just taken of it."""
        with self._model_lock:
            self.model_version, self.model_card = version, dict(card)

    def swap_outcome(self, model: OutcomeModel | None, version: str,
                     card: Mapping[str, Any] | None = None) -> None:
        """Serve another outcome model (or none) from the next request on."""
        with self._model_lock:
            self.outcome, self.outcome_version = model, version
            self.outcome_card = dict(card or {})

    def name_outcome(self, version: str, card: Mapping[str, Any]) -> None:
        """Give the serving outcome model the version and card of its snapshot."""
        with self._model_lock:
            self.outcome_version, self.outcome_card = version, dict(card)

    def outcome_frozen(self) -> Frozen | None:
        """The live outcome model as it is now, pickled (see ``model_frozen``)."""
        with self._model_lock:
            return None if self.outcome is None else freeze(self.outcome)

    def model_frozen(self) -> Frozen:
        """The live model as it is now, pickled, to snapshot while scoring goes on. Scoring
        waits for the lock meanwhile: the C pickler holds it ~35 ms for the default model,
        where a deep copy held it ~400 ms (a stall of every login on the event loop)."""
        with self._model_lock:
            return freeze(self.model)

    def swap_rules(self, live: Ruleset | None = None, *, shadow: Ruleset | None | bool = False
                   ) -> None:
        """Serve ``live`` from the next request on, and/or run ``shadow`` beside it (None
        stops the shadow; False leaves it as it is). Validated rulesets only: they are."""
        if live is not None:
            self.ruleset = live
        if shadow is not False:
            self.shadow = shadow if isinstance(shadow, Ruleset) else None
            self.shadow_stats = ShadowStats()

    # -- the edge ----------------------------------------------------------------------

    def to_event(self, req: ScoreRequest, *, received_at: datetime) -> LoginEvent:
        """The request as a pseudonymous event on the engine's clock: ``received_at``, the
        server's receive time (a replay hands in the event's own time), unless the time
        policy trusts callers' timestamps. Raises ``edge.TimestampOutOfRange`` for a
        timestamp out of bounds. Its signal lookups start now and run while the store
        loads."""
        event = edge.to_event(req, self.pseudonymize, received_at=received_at,
                              event_id=req.event_id or str(uuid.uuid4()),
                              time_policy=self.time_policy)
        if self.signals is not None:  # the raw number's last stop
            self.signals.start(event, phone=req.phone, asn=self.ipintel.lookup(event.ip).asn)
        return event

    # -- scoring -------------------------------------------------------------------------

    def event_key(self, tenant: str, event_id: str) -> str:
        """The pseudonym under which a caller's ``event_id`` is stored and logged."""
        return edge.event_key(self.pseudonymize, tenant, event_id)

    def score(self, req: ScoreRequest, *, received_at: datetime | None = None) -> Scored:
        """Score one request end to end; never raises for a dependency failure. Raises
        ``edge.Refused`` for what the caller must fix: a timestamp out of bounds (422), an
        event id already used for another login (409)."""
        started = self._clock()
        event = self.to_event(req, received_at=received_at or datetime.now(UTC))
        return self.score_event(event, aliases=edge.aliases(req, self.pseudonymize),
                                started=started)

    def score_event(
        self, event: LoginEvent, *, ip: IpInfo | None = None,
        aliases: Mapping[str, tuple[str, ...]] | None = None, started: float | None = None,
    ) -> Scored:
        """Score an event; ``ip`` replaces the IP databases' answer (datasets with their
        own), ``aliases`` are its pseudonyms under retired keys (``edge.aliases``). Raises
        ``edge.EventIdConflict`` when its event id was used for another login: nothing is
        counted. The answer carries the caller's own event id."""
        started = self._clock() if started is None else started
        ip = ip or self.ipintel.lookup(event.ip)
        if self.breaker is not None and not self.breaker.allow():
            scored = self._failover(event, started, FailoverReason.STORE_UNAVAILABLE,
                                    BREAKER_OPEN_MESSAGE)
            self._queue_attempt(event, ip, scored)
            self._log(event, scored)
            return _answer(scored, event)
        try:
            scored = self._score(event, ip, aliases or {}, started)
            self._tell_breaker(None)
        except Refused:
            self._tell_breaker(None)  # the store answered
            raise
        except StoreError as exc:
            self._tell_breaker(exc)
            contended = isinstance(exc, StoreContended)
            # The store's messages name no identifier (its keys are hashed, passwords masked).
            log.warning(json.dumps({"event": "store_contended" if contended else "store_error",
                                    "error": type(exc).__name__, "cause": str(exc)}))
            scored = self._failover(event, started, FailoverReason.USER_CONTENDED if contended
                                    else FailoverReason.STORE_UNAVAILABLE)
            self._queue_attempt(event, ip, scored)  # counted once the store takes it
        except RuleFault as exc:
            log.error(json.dumps({"event": "rule_error", "event_id": event.event_id,
                                  "error": str(exc)}))
            scored = self._failover(event, started, FailoverReason.RULE_ERROR)
        except Exception:  # an internal fault must give the failover answer, not a 5xx
            log.exception(json.dumps({"event": "internal_error", "event_id": event.event_id}))
            scored = self._failover(event, started, FailoverReason.INTERNAL_ERROR)
        self._log(event, scored)
        return _answer(scored, event)

    def _score(self, event: LoginEvent, ip: IpInfo, aliases: Mapping[str, tuple[str, ...]],
               started: float) -> Scored:
        loaded = self.store.load(LoadQuery(
            tenant=event.tenant, user_key=event.user_key, ip_key=event.ip_key, asn=ip.asn,
            device_key=event.device_key, event_id=event.event_id, now=event.ts,
            aliases=aliases, ip_prefix_key=event.ip_prefix_key))
        if loaded.previous is not None:
            return self._replayed(event, loaded.previous, started)
        # A user's time only moves forward: a login stamped before the user's latest one
        # (a trusted replay's) runs at that latest time, never rewinding the windows.
        event = edge.not_before(event, edge.latest_seen(loaded.profile))
        signalled = self.signals.collect(event, ip, loaded.profile) if self.signals else {}
        with self._model_lock:  # the model must not learn while it scores
            verdict = evaluate(event, ip, loaded, Context(
                ruleset=self.ruleset, model=self.model, model_version=self.model_version,
                shadow=self.shadow, signals=signalled, outcome=self.outcome,
                outcome_version=self.outcome_version), now=event.ts)
        body = to_wire(verdict.decision)
        stored_body = _with_digest(body, event)
        if verdict.shadow is not None:
            self.shadow_stats.add(event.tenant, verdict.decision, verdict.shadow)
            stored_body = {**stored_body, "shadow": shadow_summary(verdict.shadow)}
        # A Redis store writes the lesson for the shared learner in the record's own round
        # trip (to the tenant's stream), when the learner reads that store's streams.
        carried = verdict.lesson is not None and self.lessons is not None \
            and self.lessons.carried_by(self.store)
        stored = self.store.record(
            StoredDecision(event_id=event.event_id, tenant=event.tenant,
                           user_key=event.user_key, ts=event.ts, decision=stored_body,
                           features=verdict.features.to_dict(),
                           sighting=verdict.sighting.to_dict(), learned=verdict.learned),
            _attempt(event, ip),
            carry_over(loaded.inherited, verdict.update),
            **({"lesson": verdict.lesson.to_dict()} if carried and verdict.lesson else {}),
        )
        if stored.decision != stored_body:  # a concurrent twin of this event_id won the race
            return self._replayed(event, stored, started)
        if verdict.lesson is not None and not carried:
            self._teach(verdict.lesson)
        if self.outcome is not None and self._sampled_negative(stored):
            # Allowed logins are the bulk of the negatives: a sample of them, each standing
            # for the ones left out. Not only verified ones: a login is labelled fraud when
            # its victim reports it, legit never, so without these the allowed logins'
            # patterns would be learned from their frauds alone; a report undoes one.
            self._teach_outcome(OutcomeLesson(
                event_id=event.event_id, weight=1.0 / self.negative_rate, attack=False,
                inputs=outcome_inputs(
                    verdict.decision.rule_results, anomaly_risk=verdict.anomaly_risk,
                    model_weight=self.ruleset.for_tenant(event.tenant).model_weight,
                    values=verdict.features, base=self.outcome.base),
                user=event.user_key, block=event.ip_prefix_key, asn=ip.asn, ts=event.ts))
        return Scored(body, self._elapsed(started), verdict.decision, verdict.features)

    def _teach(self, lesson: Lesson) -> None:
        if self.lessons is not None:
            try:
                self.lessons.publish(lesson.to_dict())
            except StoreError:
                self._queue(LessonItem(lesson))
            return
        with self._model_lock:
            if self.gate.admit(user=lesson.user, block=lesson.block, asn=lesson.asn,
                               ts=lesson.ts):
                self.calibration.observe(self.model, lesson.score)
                self.model.learn_one(lesson.values)

    def _sampled_negative(self, stored: StoredDecision) -> bool:
        """Whether this decision teaches the outcome model as a negative: an allowed,
        successful login in the ``negative_rate`` sample (by its event id alone, so the
        feedback path knows it later)."""
        return (self.negative_rate > 0 and stored.decision.get("decision") == "allow"
                and not stored.features.get("auth_failed")
                and sampled(stored.event_id, self.negative_rate))

    def _teach_outcome(self, lesson: OutcomeLesson) -> None:
        if self.outcome_lessons is not None:
            try:
                self.outcome_lessons.publish(lesson.to_dict())
            except StoreError:  # an outcome lost teaches less; it is no decision
                log.warning(json.dumps({"event": "outcome_lesson_lost",
                                        "event_id": lesson.event_id}))
            return
        with self._model_lock:
            if self.outcome is not None:
                self.outcome_teacher.teach(self.outcome, lesson)

    def learn_outcome(self, before: StoredDecision, label: Label, source: Source) -> bool:
        """Teach the outcome model what a feedback applied to ``before`` (the decision as
        it was) says, inside its poisoning guards (``core.feedback.outcome_lesson``, the
        teacher's caps); True when a lesson was sent. The one place feedback teaches it."""
        if self.outcome is None:
            return False
        ruleset = self.ruleset.for_tenant(before.tenant)
        with self._model_lock:
            anomaly = self.model.score_one(before.features)
            risk = self.model.risk(anomaly) if math.isfinite(anomaly) else 0.0
        inputs = outcome_inputs(ruleset.evaluate(before.features), anomaly_risk=risk,
                                model_weight=ruleset.model_weight, values=before.features,
                                base=self.outcome.base)
        lesson = fb.outcome_lesson(
            before, label, source, inputs=inputs,
            negative_weight=1.0 / self.negative_rate if self._sampled_negative(before) else 0.0)
        if lesson is None:
            return False
        self._teach_outcome(lesson)
        return True

    def _replayed(self, event: LoginEvent, stored: StoredDecision, started: float) -> Scored:
        """The answer kept under the event's id, when the request is the same one sent
        again; ``EventIdConflict`` when it is another login reusing the id."""
        kept = stored.decision.get(DIGEST)
        if kept is not None and event.digest is not None and kept != event.digest:
            raise EventIdConflict("event_id was already used for another login; nothing "
                                  "was counted (send each login under an id of its own)")
        body = {k: v for k, v in stored.decision.items() if k not in _KEPT_ONLY}
        return Scored(body, self._elapsed(started), replayed=True)

    def _failover(self, event: LoginEvent, started: float, reason: FailoverReason,
                  message: str | None = None) -> Scored:
        decision = failover_decision(event, action=self.failover, ruleset=self.ruleset,
                                     model_version=self.model_version, reason=reason,
                                     message=message)
        return Scored(to_wire(decision), self._elapsed(started), decision)

    def _tell_breaker(self, error: Exception | None) -> None:
        """Report a store call's outcome. A contended user is the store answering: one
        account's burst must not open the breaker for everyone."""
        if self.breaker is None:
            return
        if error is None or isinstance(error, StoreContended):
            self.breaker.success()
        else:
            self.breaker.failure()

    # -- the outbox: what a failing shared store must still receive -----------------------

    def _queue_attempt(self, event: LoginEvent, ip: IpInfo, scored: Scored) -> None:
        """Keep a failover decision's attempt (and a failure's count) for after recovery."""
        if self.outbox is not None:
            self._queue(RecordItem(
                StoredDecision(event_id=event.event_id, tenant=event.tenant,
                               user_key=event.user_key, ts=event.ts,
                               decision=_with_digest(scored.body, event), features={}),
                _attempt(event, ip)))

    def _queue(self, item: Queued) -> None:
        try:
            assert self.outbox is not None
            self.outbox.put(item.kind, item.key, item.payload(), item.owner)
        except Exception:  # a full or broken outbox must not break the answer
            log.exception(json.dumps({"event": "outbox_error", "kind": item.kind}))

    def drain_outbox(self, limit: int = 500) -> int:
        """Replay what the outbox holds into the store, in order; returns how many applied.

        Every replay is idempotent by event id: ``record`` of an event already stored and a
        feedback already applied change nothing, so a crash between applying and forgetting
        an item costs nothing.
        """
        if self.outbox is None or not len(self.outbox):
            return 0
        if self.breaker is not None and not self.breaker.allow():
            return 0

        def apply(row: Any) -> None:
            item = decode(row)
            if isinstance(item, RecordItem):
                failed, ts = item.attempt.failed, item.attempt.ts
                self.store.record(item.decision, item.attempt,
                                  (lambda p: note_failure(p, ts)) if failed else None)
            elif isinstance(item, FeedbackItem):  # queued under the event id's pseudonym
                try:
                    outcome = self.feedback_by_key(item.tenant, item.event_id,
                                                   label=item.label, source=item.source)
                except fb.FeedbackConflict as conflict:
                    # It contradicts the stored decision: it would have been a 409 had the
                    # store answered; dropped, as the caller was told it was queued.
                    log.warning(json.dumps({"event": "queued_feedback_refused",
                                            "event_id": item.event_id,
                                            "reason": str(conflict)}))
                    return
                if outcome is FeedbackOutcome.QUEUED:
                    raise StoreError("store still unavailable")
            elif self.lessons is not None:
                self.lessons.publish(item.lesson.to_dict())

        result = self.outbox.drain(apply, limit=limit)
        self._tell_breaker(result.error)
        return result.applied

    # -- outcomes fed back ---------------------------------------------------------------

    def feedback(
        self, tenant: str, event_id: str, *, label: Label, source: Source,
        challenge: str | None = None,
    ) -> FeedbackOutcome:
        """``feedback_by_key`` of the event the caller knows as ``event_id`` (its own id, as
        the score answer echoed it; the store keeps the id's pseudonym, ``event_key``). Raises
        ``core.feedback.FeedbackConflict`` when it contradicts the decision (a step-up result
        for a login that was not challenged, or not with ``challenge``)."""
        return self.feedback_by_key(tenant, self.event_key(tenant, event_id), label=label,
                                    source=source, challenge=challenge)

    def feedback_by_key(
        self, tenant: str, event_id: str, *, label: Label, source: Source,
        challenge: str | None = None,
    ) -> FeedbackOutcome:
        """An outcome learned after the decision: a step-up result, a user's report, an
        analyst's verdict (``core.feedback.plan`` says what each does). Idempotent; labels
        may arrive days later. The model cannot unlearn a lesson; the learning caps bound
        what one could have taught, and a snapshot from before it can be restored."""
        try:
            outcome, before = self.store.apply_feedback(
                tenant, event_id, f"{label.value}:{source.value}",
                fb.plan(label, source, challenge))
        except StoreError:
            if self.outbox is None:
                raise
            self._queue(FeedbackItem(tenant, event_id, label, source))
            return FeedbackOutcome.QUEUED
        if outcome is FeedbackOutcome.APPLIED and before is not None:
            lesson = fb.lesson_of(before, label, source)
            if lesson is not None:
                self._teach(lesson)
            self.learn_outcome(before, label, source)
        return outcome

    def confirm(self, tenant: str, event_id: str, *, passed: bool) -> FeedbackOutcome:
        """The auth service's step-up result for a challenged login (see ``feedback``)."""
        if passed:
            return self.feedback(tenant, event_id, label=Label.LEGIT,
                                 source=Source.CHALLENGE_PASSED)
        return self.feedback(tenant, event_id, label=Label.FRAUD,
                             source=Source.CHALLENGE_FAILED)

    # -- the user's rights -----------------------------------------------------------------

    def user_keys(self, tenant: str, user_id: str) -> tuple[str, ...]:
        """The user's pseudonyms: under the current key and every retired one."""
        p = self.pseudonymize
        return (p(Kind.USER, user_id, scope=tenant),
                *p.previous(Kind.USER, user_id, scope=tenant))

    def export_user(self, tenant: str, user_id: str) -> list[UserData]:
        """Everything held about the user, under each of the user's pseudonyms: the store's
        profile and decisions, the outbox's items and the shared learner's lessons."""
        out = []
        for key in self.user_keys(tenant, user_id):
            data = self.store.export_user(tenant, key)
            queued: tuple[dict[str, Any], ...] = ()
            if self.outbox is not None:
                queued = tuple({"kind": item.kind, "queued_at": item.queued_at,
                                "payload": item.payload}
                               for item in self.outbox.of_user(
                                   user_keys=[key], tenant=tenant,
                                   event_ids=[d.event_id for d in data.decisions]))
            lessons = tuple(lesson for sink in self._lesson_sinks()
                            for _, lesson in sink.of_users({key}))
            out.append(replace(data, queued=queued, lessons=lessons))
        return out

    def erase_user(self, tenant: str, user_id: str) -> int:
        """Erase the user everywhere the user's pseudonyms reach: the store (under every
        pseudonym; the SQLite store also scrubs its file and log), the outbox (the items
        queued under the user's pseudonyms, and the feedback on the user's events) and the
        shared learners' streams of lessons."""
        keys = self.user_keys(tenant, user_id)
        events = [d.event_id for key in keys
                  for d in self.store.export_user(tenant, key).decisions] \
            if self.outbox is not None else []
        gone = sum(self.store.erase_user(tenant, key) for key in keys)
        if self.outbox is not None:
            gone += self.outbox.forget(user_keys=keys, tenant=tenant, event_ids=events)
        for sink in self._lesson_sinks():
            gone += sink.forget(set(keys))
        return gone

    def _lesson_sinks(self) -> list[LessonSink]:
        """Where this engine's lessons go for a shared learner: the anomaly model's and the
        outcome model's streams (each lesson names its user's pseudonym)."""
        sinks = [self.lessons, self.outcome_lessons]
        return [sink for sink in sinks if sink is not None]

    # -- logging -------------------------------------------------------------------------

    def _elapsed(self, started: float) -> float:
        return round((self._clock() - started) * 1000.0, 3)

    def _log(self, event: LoginEvent, scored: Scored) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        body = scored.body
        log.info(json.dumps({
            "event": "decision",
            "event_id": event.event_id,
            "tenant": event.tenant,
            "user": event.user_key,
            "decision": body["decision"],
            "score": body["score"],
            "challenge": body["challenge"],
            "reasons": [r["code"] for r in body["reasons"]],
            "rules_version": body["rules_version"],
            "model_version": body["model_version"],
            "latency_ms": scored.latency_ms,
            "failover": body.get("failover", False),
            "replayed": scored.replayed,
        }, ensure_ascii=True))


# Kept with a decision beside its answer, never answered: the request's keyed digest (an
# event id sent again with another body is a conflict), the time the caller said the login
# happened (the engine's clock is the decision's ``ts``) and the shadow ruleset's decision.
DIGEST = "request_digest"
OBSERVED = "observed_at"
_KEPT_ONLY = (DIGEST, OBSERVED, "shadow")


def _with_digest(body: dict[str, Any], event: LoginEvent) -> dict[str, Any]:
    kept = dict(body)
    if event.digest is not None:
        kept[DIGEST] = event.digest
    if event.observed_at is not None:
        kept[OBSERVED] = event.observed_at.isoformat()
    return kept


def _answer(scored: Scored, event: LoginEvent) -> Scored:
    """``scored`` in the caller's terms: its own event id where the engine's answer (and a
    deny's message) carries the id's pseudonym."""
    own, body = event.caller_event_id, scored.body
    kept = body.get("event_id")
    if own is None or kept == own:
        return scored
    answer = {**body, "event_id": own}
    if isinstance(kept, str) and isinstance(body.get("user_message"), str):
        answer["user_message"] = body["user_message"].replace(kept, own)
    # Built directly: ``dataclasses.replace`` goes through the fields one by one.
    return Scored(answer, scored.latency_ms, scored.decision, scored.features,
                  scored.replayed)


def _attempt(event: LoginEvent, ip: IpInfo) -> Attempt:
    return Attempt(tenant=event.tenant, user_key=event.user_key, ip_key=event.ip_key,
                   asn=ip.asn, device_key=event.device_key, ts=event.ts, failed=event.failed,
                   ip_prefix_key=event.ip_prefix_key)


__all__ = ["Engine", "Scored"]
