"""One pass through the engine: event -> features -> rules + model -> policy -> store.

The same ``Engine`` serves the HTTP API, replays and notebooks. It owns no I/O of its own:
the store, the IP databases, the ruleset and the model are handed to it.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from features import identifiers as ids
from features.event import AuthResult, EventType, LoginEvent, LoginMethod, NetworkType
from features.extract import FeatureVector, extract, ip_prefix
from features.ipintel import IpInfo, IpIntel
from features.profile import (
    Sighting,
    learn,
    mark_bad,
    note_failure,
    sighting,
    trust_device,
    unlearn,
)
from models.anomaly import AnomalyModel
from models.persistence import Frozen, freeze
from riskengine.adapters.breaker import CircuitBreaker
from riskengine.adapters.outbox import Outbox
from riskengine.adapters.signals import Signals
from riskengine.adapters.stores.base import (
    Attempt,
    FeedbackOutcome,
    LoadQuery,
    ProfileUpdate,
    Store,
    StoreContended,
    StoredDecision,
    StoreError,
    UserData,
)
from riskengine.core.learning import LearningGate, otp_verified, verified_good
from riskengine.core.policy import Decision, Reason, choose_challenge, decide
from riskengine.core.privacy import Kind, Pseudonymizer
from riskengine.core.rules import Action, Challenge, Outcome, Ruleset
from riskengine.core.wire import ScoreRequest, parse_timestamp
from riskengine.service.shadow import ShadowStats

log = logging.getLogger("riskengine.decision")


class RuleFault(RuntimeError):
    """A rule raised while being evaluated."""


class FailoverReason(StrEnum):
    """Why an answer is the failover decision: the one reason code it carries."""

    STORE_UNAVAILABLE = "store_unavailable"  # the store failed, or its breaker is open
    USER_CONTENDED = "user_contended"  # too many logins of one account at once
    RULE_ERROR = "rule_error"
    INTERNAL_ERROR = "internal_error"


class LessonSink(Protocol):
    def publish(self, lesson: Mapping[str, Any]) -> None: ...


class Label(StrEnum):
    LEGIT = "legit"
    FRAUD = "fraud"


class Source(StrEnum):
    CHALLENGE_PASSED = "challenge_passed"
    CHALLENGE_FAILED = "challenge_failed"
    USER_REPORT = "user_report"
    ANALYST = "analyst"


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
        Caps on how much one user, IP or ASN may teach the model (``riskengine.core.learning``).
    lessons
        Where lessons go when a shared learner teaches the model for all instances
        (``riskengine.adapters.learner.RedisLessons``); None to learn in this process.
    breaker, outbox
        For a shared store: stop calling it while it fails (answering the failover
        decision at once), and keep what it must still receive (failover attempts,
        feedback, lessons) to replay, idempotently, once it is back.
    signals
        External signals (``riskengine.adapters.signals``): the phone number's facts and the
        providers' lookups, started at the edge and merged into the features within their
        budget; None for none.
    """

    def __init__(
        self,
        *,
        store: Store,
        ruleset: Ruleset,
        model: AnomalyModel,
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
        self.lessons = lessons
        self.breaker = breaker
        self.outbox = outbox
        self.signals = signals
        self._clock = clock
        self._model_lock = threading.Lock()
        # Whether scoring may wait on another machine: a shared store, or a signal provider
        # that is not answered from memory. The API scores inline only when it may not.
        self.waits_on_network = not getattr(store, "embedded", False) or (
            signals is not None
            and any(not getattr(g.provider, "inline", False) for g in signals.guards))

    # -- the edge: wire request -> pseudonymous event ---------------------------------

    def swap_model(self, model: AnomalyModel, version: str,
                   card: Mapping[str, Any] | None = None) -> None:
        """Serve another model from the next request on (a rollback or a promotion)."""
        with self._model_lock:
            self.model, self.model_version, self.model_card = model, version, dict(card or {})

    def name_model(self, version: str, card: Mapping[str, Any]) -> None:
        """Give the serving model the version and card of the snapshot just taken of it."""
        with self._model_lock:
            self.model_version, self.model_card = version, dict(card)

    def model_frozen(self) -> Frozen:
        """The live model as it is now, pickled, to snapshot while scoring goes on. Scoring
        waits for the lock meanwhile: the C pickler holds it ~35 ms for the default model,
        where a deep copy held it ~400 ms (a stall of every login on the event loop)."""
        with self._model_lock:
            return freeze(self.model)

    def to_event(self, req: ScoreRequest, *, received_at: datetime) -> LoginEvent:
        """Validate-time facts into a ``LoginEvent``; raw identifiers stop here."""
        p, scope = self.pseudonymize, req.tenant

        def key(kind: Kind, value: str | None) -> str | None:
            return p(kind, value, scope=scope) if value else None

        device, network, sim = req.device, req.network, req.sim
        ssid = network.ssid.strip() if network and network.ssid else None
        aliases: dict[str, tuple[str, ...]] = {}
        if p.rotating:  # the same identifiers under retired keys, to read older history
            for kind, value in (
                (Kind.USER, req.user_id), (Kind.IP_PREFIX, ip_prefix(req.ip)),
                (Kind.DEVICE, device.id if device else None),
                (Kind.BLUETOOTH, device.bluetooth_mac if device else None),
                (Kind.SSID, ssid), (Kind.IMSI, sim.imsi if sim else None),
                (Kind.ICCID, sim.iccid if sim else None), (Kind.PHONE, req.phone),
            ):
                if value:
                    aliases[p(kind, value, scope=scope)] = p.previous(kind, value, scope=scope)
        event = LoginEvent(
            aliases=aliases,
            event_id=req.event_id or str(uuid.uuid4()),
            tenant=req.tenant,
            user_key=p(Kind.USER, req.user_id, scope=scope),
            timestamp=parse_timestamp(req.timestamp) if req.timestamp else received_at,
            ip=req.ip,
            ip_key=p(Kind.IP, req.ip, scope=scope),
            ip_prefix_key=p(Kind.IP_PREFIX, ip_prefix(req.ip), scope=scope),
            event_type=EventType(req.event_type),
            auth_result=AuthResult(req.auth_result),
            login_method=LoginMethod(req.login_method),
            account_kind=ids.account_kind(req.user_id),
            user_agent=req.user_agent,
            device_key=key(Kind.DEVICE, device.id if device else None),
            device_model=device.model if device else None,
            os_name=device.os_name if device else None,
            os_version=device.os_version if device else None,
            bluetooth_key=key(Kind.BLUETOOTH, device.bluetooth_mac if device else None),
            network_type=NetworkType(network.type) if network else NetworkType.UNKNOWN,
            ssid_key=key(Kind.SSID, ssid),
            imsi_key=key(Kind.IMSI, sim.imsi if sim else None),
            iccid_key=key(Kind.ICCID, sim.iccid if sim else None),
            phone_key=key(Kind.PHONE, req.phone),
        )
        if self.signals is not None:
            # The raw number's last stop: the lookups start now and run while the store loads.
            self.signals.start(event, phone=req.phone, asn=self.ipintel.lookup(event.ip).asn)
        return event

    # -- scoring -------------------------------------------------------------------------

    def score(self, req: ScoreRequest, *, received_at: datetime | None = None) -> Scored:
        """Score one request end to end; never raises for a dependency failure."""
        started = self._clock()
        event = self.to_event(req, received_at=received_at or datetime.now(UTC))
        return self.score_event(event, started=started)

    def score_event(
        self, event: LoginEvent, *, ip: IpInfo | None = None, started: float | None = None
    ) -> Scored:
        """Score an event; ``ip`` replaces the IP databases' answer (datasets with their own)."""
        started = self._clock() if started is None else started
        ip = ip or self.ipintel.lookup(event.ip)
        if self.breaker is not None and not self.breaker.allow():
            scored = self._failover(event, started, FailoverReason.STORE_UNAVAILABLE,
                                    "The profile store is failing (circuit open); failover "
                                    "decision")
            self._queue_attempt(event, ip, scored)
            self._log(event, scored)
            return scored
        try:
            scored = self._score(event, ip, started)
            self._tell_breaker(None)
        except StoreError as exc:
            self._tell_breaker(exc)
            contended = isinstance(exc, StoreContended)
            # The store's messages name no identifier (its keys are hashed, passwords masked).
            log.warning(json.dumps({"event": "store_contended" if contended else "store_error",
                                    "error": type(exc).__name__, "cause": str(exc)}))
            if contended:
                scored = self._failover(event, started, FailoverReason.USER_CONTENDED,
                                        "Too many logins of this account at once; failover "
                                        "decision")
            else:
                scored = self._failover(event, started, FailoverReason.STORE_UNAVAILABLE,
                                        "The profile store did not answer; failover decision")
            self._queue_attempt(event, ip, scored)  # counted once the store takes it
        except RuleFault as exc:
            log.error(json.dumps({"event": "rule_error", "event_id": event.event_id,
                                  "error": str(exc)}))
            scored = self._failover(event, started, FailoverReason.RULE_ERROR,
                                    "A rule could not be evaluated; failover decision")
        except Exception:  # an internal fault must give the failover answer, not a 5xx
            log.exception(json.dumps({"event": "internal_error", "event_id": event.event_id}))
            scored = self._failover(event, started, FailoverReason.INTERNAL_ERROR,
                                    "Internal error while scoring; failover decision")
        self._log(event, scored)
        return scored

    # -- the outbox: what a failing shared store must still receive -----------------------

    def _queue_attempt(self, event: LoginEvent, ip: IpInfo, scored: Scored) -> None:
        """Keep a failover decision's attempt (and a failure's count) for after recovery."""
        if self.outbox is None:
            return
        self._queue("record", event.event_id, {
            "decision": {"event_id": event.event_id, "tenant": event.tenant,
                         "user_key": event.user_key, "ts": event.ts,
                         "decision": scored.body, "features": {}},
            "attempt": {"tenant": event.tenant, "user_key": event.user_key,
                        "ip_key": event.ip_key, "asn": ip.asn, "device_key": event.device_key,
                        "ts": event.ts, "failed": event.failed},
        })

    def _queue(self, kind: str, key: str, payload: dict[str, Any]) -> None:
        try:
            assert self.outbox is not None
            self.outbox.put(kind, key, payload)
        except Exception:  # a full or broken outbox must not break the answer
            log.exception(json.dumps({"event": "outbox_error", "kind": kind}))

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

        def apply(item: Any) -> None:
            data = item.payload
            if item.kind == "record":
                attempt = Attempt(**data["attempt"])
                self.store.record(
                    StoredDecision(**data["decision"]), attempt,
                    (lambda p: note_failure(p, attempt.ts)) if attempt.failed else None)
            elif item.kind == "feedback":
                outcome = self.feedback(data["tenant"], data["event_id"],
                                        label=Label(data["label"]), source=Source(data["source"]))
                if outcome is FeedbackOutcome.QUEUED:
                    raise StoreError("store still unavailable")
            elif item.kind == "lesson" and self.lessons is not None:
                self.lessons.publish(data)

        result = self.outbox.drain(apply, limit=limit)
        self._tell_breaker(result.error)
        return result.applied

    def _tell_breaker(self, error: Exception | None) -> None:
        """Report a store call's outcome. A contended user is the store answering: one
        account's burst must not open the breaker for everyone."""
        if self.breaker is None:
            return
        if error is None or isinstance(error, StoreContended):
            self.breaker.success()
        else:
            self.breaker.failure()

    def _score(self, event: LoginEvent, ip: IpInfo, started: float) -> Scored:
        loaded = self.store.load(
            LoadQuery(
                tenant=event.tenant,
                user_key=event.user_key,
                ip_key=event.ip_key,
                asn=ip.asn,
                device_key=event.device_key,
                event_id=event.event_id,
                now=event.ts,
            )
        )
        if loaded.previous is not None:
            return self._replayed(loaded.previous, started)
        inherited = None
        if loaded.profile is None and event.aliases.get(event.user_key):
            # After a key rotation the history sits under the user's former pseudonym:
            # read it, and let the next write carry it over to the current one.
            for old in event.aliases[event.user_key]:
                inherited = self.store.get_profile(event.tenant, old)
                if inherited is not None:
                    loaded = replace(loaded, profile=inherited)
                    break

        rules, shadow = self.ruleset.for_tenant(event.tenant), self.shadow
        allowed, denied = rules.lists.lookup(ip.ip, ip.asn, event.ts)
        fv = extract(event, ip, loaded.profile, loaded.velocity)
        if allowed or denied:
            fv = FeatureVector({**fv.values, "ip_allowlisted": allowed, "ip_denylisted": denied})
        if self.signals is not None:
            signalled = self.signals.collect(event, ip, loaded.profile)
            if signalled:
                fv = FeatureVector({**fv.values, **signalled})
        with self._model_lock:
            anomaly = self.model.score_one(fv)
        if not math.isfinite(anomaly):
            raise ValueError("the anomaly model returned a non-finite score")
        risk = self.model.risk(anomaly)
        decision = self._decide(event, fv, rules, anomaly, risk)
        shadow_body = None
        if shadow is not None:
            # The candidate sees the very same features and model score; its decision is
            # recorded with the live one and compared, never enforced.
            candidate = shadow.for_tenant(event.tenant)
            shadow_fv = fv
            c_allowed, c_denied = candidate.lists.lookup(ip.ip, ip.asn, event.ts)
            if (c_allowed, c_denied) != (allowed, denied):
                shadow_fv = FeatureVector({**fv.values, "ip_allowlisted": c_allowed,
                                           "ip_denylisted": c_denied})
            shadowed = self._decide(event, shadow_fv, candidate, anomaly, risk)
            self.shadow_stats.add(event.tenant, decision, shadowed)
            shadow_body = {k: v for k, v in to_wire(shadowed).items()
                           if k in ("decision", "score", "challenge", "rules_version")}
            shadow_body["reasons"] = [r.code for r in shadowed.reasons]
        # A detector must not learn from what it flags: only allowed, verified logins.
        verified = decision.action is Action.ALLOW and verified_good(event, fv)
        trust = verified and otp_verified(event, fv)
        body = to_wire(decision)
        stored_body = body if shadow_body is None else {**body, "shadow": shadow_body}
        seen = sighting(event, ip, fv)
        stored = self.store.record(
            StoredDecision(
                event_id=event.event_id,
                tenant=event.tenant,
                user_key=event.user_key,
                ts=event.ts,
                decision=stored_body,
                features=dict(fv),
                sighting=seen.to_dict(),
                learned=verified,
            ),
            Attempt(
                tenant=event.tenant,
                user_key=event.user_key,
                ip_key=event.ip_key,
                asn=ip.asn,
                device_key=event.device_key,
                ts=event.ts,
                failed=event.failed,
            ),
            _carry_over(inherited, _profile_update(event, seen, learn_it=verified, trust=trust)),
        )
        if stored.decision != stored_body:  # a concurrent twin of this event_id won the race
            return self._replayed(stored, started)
        if verified:
            self._teach_model(fv, user=event.user_key, block=event.ip_prefix_key, asn=ip.asn,
                              ts=event.ts)
        return Scored(body, self._elapsed(started), decision, fv)

    def _teach_model(
        self, values: Mapping[str, Any], *, user: str, block: str, asn: int | None, ts: float
    ) -> bool:
        if self.lessons is not None:
            lesson = {"values": dict(values), "user": user, "block": block, "asn": asn,
                      "ts": ts}
            try:
                self.lessons.publish(lesson)
            except StoreError:
                self._queue("lesson", f"{user}:{ts}", lesson)
            return True
        with self._model_lock:
            if not self.gate.admit(user=user, block=block, asn=asn, ts=ts):
                return False
            self.model.learn_one(values)
            return True

    def feedback(
        self, tenant: str, event_id: str, *, label: Label, source: Source
    ) -> FeedbackOutcome:
        """An outcome learned after the decision: a step-up result, a user's report, an
        analyst's verdict. Idempotent; labels may arrive days later.

        ``legit`` verifies the login: the profile learns it if it had not (a passed step-up
        also makes its device trusted) and so does the model. ``fraud`` takes a learned
        login back out of the profile and marks its device, address block and Wi-Fi as bad
        for that user. The model cannot unlearn a lesson; the learning caps bound what one
        could have taught, and a snapshot from before it can be restored.
        """
        passed = source is Source.CHALLENGE_PASSED

        def plan(stored: StoredDecision) -> tuple[ProfileUpdate | None, bool]:
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

        try:
            outcome, before = self.store.apply_feedback(
                tenant, event_id, f"{label.value}:{source.value}", plan)
        except StoreError:
            if self.outbox is None:
                raise
            self._queue("feedback", f"{tenant}:{event_id}:{label.value}:{source.value}",
                        {"tenant": tenant, "event_id": event_id, "label": label.value,
                         "source": source.value})
            return FeedbackOutcome.QUEUED
        if (outcome is FeedbackOutcome.APPLIED and before is not None and not before.learned
                and label is Label.LEGIT and not before.features.get("auth_failed")):
            seen = before.sighting or {}
            self._teach_model(before.features, user=before.user_key,
                              block=str(seen.get("ip_prefix_key")), asn=seen.get("asn"),
                              ts=before.ts)
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
        """What the store holds about the user, under each of the user's pseudonyms."""
        return [self.store.export_user(tenant, key) for key in self.user_keys(tenant, user_id)]

    def erase_user(self, tenant: str, user_id: str) -> int:
        """Erase the user from the store (under every pseudonym) and from the outbox."""
        keys = self.user_keys(tenant, user_id)
        gone = sum(self.store.erase_user(tenant, key) for key in keys)
        if self.outbox is not None:
            gone += self.outbox.forget(lambda item: any(k in json.dumps(item.payload)
                                                        for k in keys))
        return gone

    def _replayed(self, stored: StoredDecision, started: float) -> Scored:
        body = {k: v for k, v in stored.decision.items() if k != "shadow"}
        return Scored(body, self._elapsed(started), replayed=True)

    def _decide(self, event: LoginEvent, fv: FeatureVector, rules: Ruleset, anomaly: float,
                risk: float) -> Decision:
        results = rules.evaluate(fv)
        broken = next((r for r in results if r.outcome is Outcome.ERROR), None)
        if broken is not None:
            # A rule that cannot be evaluated may be the one that should have stopped this
            # login: never decide without it.
            raise RuleFault(f"rule {broken.rule.id} failed: {broken.error}")
        return decide(event=event, values=fv, results=results, ruleset=rules,
                      model_score=anomaly, model_risk=risk, model_version=self.model_version)

    def swap_rules(self, live: Ruleset | None = None, *, shadow: Ruleset | None | bool = False
                   ) -> None:
        """Serve ``live`` from the next request on, and/or run ``shadow`` beside it (None
        stops the shadow; False leaves it as it is). Validated rulesets only: they are."""
        if live is not None:
            self.ruleset = live
        if shadow is not False:
            self.shadow = shadow if isinstance(shadow, Ruleset) else None
            self.shadow_stats = ShadowStats()

    def _failover(
        self, event: LoginEvent, started: float, code: FailoverReason, message: str
    ) -> Scored:
        action = self.failover
        thresholds = self.ruleset.for_tenant(event.tenant).thresholds
        decision = Decision(
            event_id=event.event_id,
            action=action,
            score=thresholds.deny if action is Action.DENY else thresholds.challenge,
            challenge=choose_challenge(event, {}, []) if action is Action.CHALLENGE else None,
            reasons=(Reason(code.value, message, 0.0, {}),),
            rules_version=self.ruleset.label,
            model_version=self.model_version,
            failover=True,
        )
        return Scored(to_wire(decision), self._elapsed(started), decision)

    def _elapsed(self, started: float) -> float:
        return round((self._clock() - started) * 1000.0, 3)

    def _log(self, event: LoginEvent, scored: Scored) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        body = scored.body
        log.info(
            json.dumps(
                {
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
                },
                ensure_ascii=True,
            )
        )


def _profile_update(
    event: LoginEvent, seen: Sighting, *, learn_it: bool, trust: bool
) -> ProfileUpdate | None:
    """What the store applies to the user's current profile, inside its transaction."""
    if event.failed:
        return lambda profile: note_failure(profile, event.ts)
    if learn_it:
        return lambda profile: learn(profile, seen, trust=trust)
    return None


def _carry_over(inherited: Any, update: ProfileUpdate | None) -> ProfileUpdate | None:
    """Start from the profile found under a retired pseudonym when the current one is empty."""
    if inherited is None:
        return update

    def start(profile: Any) -> Any:
        base = inherited.copy() if profile.logins == 0 and not profile.failures else profile
        return update(base) if update is not None else base

    return start


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


__all__ = ["Challenge", "Engine", "Scored", "to_wire"]
