"""The outcome model in the engine: the hand-set decisions when it is absent, unready or at
its prior; its score and reasons when it is on; what feedback teaches it and what the
poisoning guards refuse; its snapshots, and its lessons across instances."""

from __future__ import annotations

import copy
import inspect
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from models.outcome import OutcomeModel
from riskengine.adapters.stores import MemoryStore
from riskengine.core.feedback import Label, Refused, Source, outcome_lesson, outcome_refusal
from riskengine.core.learning import LearningGate, OutcomeLesson, OutcomeTeacher
from riskengine.core.policy import OUTCOME_REASON
from riskengine.core.records import StoredDecision
from riskengine.core.rules import parse_ruleset, shipped_ruleset_text
from riskengine.core.wire import ScoreRequest
from tests.engine.conftest import HOME, at, home_history

NEW_PHONE = {"id": "356938035643809", "model": "iPhone 15", "os_name": "iOS",
             "os_version": "17.5"}
KEY = b"outcome-engine-test-key"
REDIS_URL = "redis://127.0.0.1:6379/9"  # a database this module empties before and after


@pytest.fixture()
def make_engine(make_engine):
    """The shared engine fixture, replaying these recorded journeys on their own time
    where the engine has a time policy (callers' timestamps are otherwise bounded by the
    server's clock)."""
    from riskengine.service.scorer import Engine

    def make(**kw: Any) -> Any:
        if "time_policy" in inspect.signature(Engine).parameters:
            from riskengine.core.edge import TimePolicy

            kw.setdefault("time_policy", TimePolicy(trust_event_time=True))
        return make_engine(**kw)

    return make




def ruleset(*, enabled: bool, challenge: float | None = None, deny: float | None = None):
    text = shipped_ruleset_text()
    base = parse_ruleset(text)
    challenge = base.thresholds.challenge if challenge is None else challenge
    deny = base.thresholds.deny if deny is None else deny
    return parse_ruleset(text + f"\noutcome:\n  enabled: {str(enabled).lower()}\n"
                         f"  thresholds: {{challenge: {challenge}, deny: {deny}}}\n")


def loose_teacher() -> OutcomeTeacher:
    return OutcomeTeacher(gate=LearningGate(per_user=10_000, per_block=10_000,
                                            asn_floor=10_000))


def journey(engine: Any, prefix: str = "e") -> list[dict[str, Any]]:
    """A customer's history at home, then logins that fire rules: a new phone on the
    carrier's network, a trip abroad, a new phone abroad, back home."""
    last = home_history(engine, 6)
    bodies = []
    steps = [
        {"device": NEW_PHONE, "network": {"type": "cellular"}, "ip": "223.104.3.7"},
        {"ip": "81.2.69.142", "network": {"type": "wifi", "ssid": "Hotel"}},
        {"device": NEW_PHONE, "ip": "81.2.69.142", "network": {"type": "cellular"}},
        {},
        {"auth_result": "failure"},
        {"device": {**NEW_PHONE, "id": "356938035643817"}},
    ]
    for i, change in enumerate(steps):
        req = {**HOME, **change, "event_id": f"{prefix}{i}",
               "timestamp": at(last + timedelta(hours=6 * (i + 1)))}
        bodies.append(engine.score(ScoreRequest(**req)).body)
    return bodies


def imei(body: str) -> str:
    """``body`` (14 digits) with its Luhn check digit."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("decision", "score", "challenge", "reasons")
    return all(a[k] == b[k] for k in keys)


class TestHandSetWhenOff:
    def test_absent_unready_or_switched_off_it_changes_nothing(self, make_engine) -> None:
        reference = journey(make_engine(store=MemoryStore()))
        unready = journey(make_engine(store=MemoryStore(), ruleset=ruleset(enabled=True),
                                      outcome=OutcomeModel(), outcome_version="o1"))
        ready = OutcomeModel(min_outcomes=0, min_attacks=0)
        switched_off = journey(make_engine(store=MemoryStore(), ruleset=ruleset(enabled=False),
                                           outcome=ready, outcome_version="o1"))
        assert any(b["decision"] != "allow" for b in reference)
        for ref, a, b in zip(reference, unready, switched_off, strict=True):
            assert same(ref, a) and same(ref, b)

    def test_at_its_prior_it_reproduces_the_hand_set_decisions(self, make_engine) -> None:
        reference = journey(make_engine(store=MemoryStore()))
        at_prior = journey(make_engine(
            store=MemoryStore(), ruleset=ruleset(enabled=True),
            outcome=OutcomeModel(min_outcomes=0, min_attacks=0), outcome_version="prior",
            negative_rate=0.0))
        for ref, got in zip(reference, at_prior, strict=True):
            assert got["decision"] == ref["decision"]
            assert got["challenge"] == ref["challenge"]
            assert got["score"] == pytest.approx(ref["score"], abs=2e-3)
            assert {r["code"] for r in ref["reasons"]} - {"no_risk_signals", "cold_start"} \
                <= {r["code"] for r in got["reasons"]}


class TestScoringWithIt:
    def test_reasons_name_the_model_and_carry_each_contribution(self, make_engine) -> None:
        engine = make_engine(store=MemoryStore(), ruleset=ruleset(enabled=True),
                             outcome=OutcomeModel(min_outcomes=0, min_attacks=0),
                             outcome_version="outcome-test-1", negative_rate=0.0)
        bodies = journey(engine)
        for body in bodies:
            named = [r for r in body["reasons"] if r["code"] == OUTCOME_REASON]
            assert len(named) == 1
            assert named[0]["observed"]["outcome_model"] == "outcome-test-1"
            total = sum(r["contribution"] for r in body["reasons"])
            assert total == pytest.approx(body["score"], abs=2e-3)
        risky = next(b for b in bodies if b["decision"] != "allow")
        assert any(r["contribution"] > 0 and r["code"] != OUTCOME_REASON
                   for r in risky["reasons"])

    def test_rule_actions_stay_floors(self, make_engine) -> None:
        """A model that learned every rule away still cannot allow what a rule's action
        challenges or denies."""
        engine_ref = make_engine(store=MemoryStore())
        reference = journey(engine_ref)
        with_action = {r.id for r in engine_ref.ruleset.rules if r.action is not None}
        floors = [b for b in reference if {r["code"] for r in b["reasons"]} & with_action]
        assert floors, "the journey should hit a rule with an action"
        numb = OutcomeModel(min_outcomes=0, min_attacks=0, priors={}, default_prior=0.0)
        bodies = journey(make_engine(store=MemoryStore(), ruleset=ruleset(enabled=True),
                                     outcome=numb, outcome_version="numb", negative_rate=0.0))
        for ref, got in zip(reference, bodies, strict=True):
            assert got["score"] < 0.01
            if ref in floors:
                assert got["decision"] != "allow"


def stored(features: dict[str, Any], *, challenge: str | None = "sms_otp",
           feedback: str | None = None, user: str = "u1") -> StoredDecision:
    return StoredDecision(
        event_id="ev1", tenant="default", user_key=user, ts=1_000.0,
        decision={"decision": "challenge", "challenge": challenge, "score": 0.5,
                  "reasons": []},
        features=features, sighting={"ip_prefix_key": "blk", "asn": 4134},
        feedback=feedback)


class TestPoisoningGuards:
    @pytest.mark.parametrize("feature", ["sim_changed", "phone_recycled_since_last_login"])
    def test_an_sms_code_passed_after_the_phone_changed_hands_teaches_nothing(
            self, feature: str) -> None:
        before = stored({"auth_failed": False, feature: True})
        assert outcome_refusal(before, Label.LEGIT, Source.CHALLENGE_PASSED) \
            is Refused.SMS_AFTER_SIM_CHANGE
        assert outcome_lesson(before, Label.LEGIT, Source.CHALLENGE_PASSED, inputs={}) is None
        # the same code failed is still evidence, and an e-mail code passed is too
        assert outcome_lesson(before, Label.FRAUD, Source.CHALLENGE_FAILED, inputs={})
        email = stored({"auth_failed": False, feature: True}, challenge="email_otp")
        assert outcome_lesson(email, Label.LEGIT, Source.CHALLENGE_PASSED, inputs={})

    def test_a_code_passed_on_a_reported_device_teaches_nothing(self) -> None:
        before = stored({"auth_failed": False, "device_reported": True},
                        challenge="email_otp")
        assert outcome_refusal(before, Label.LEGIT, Source.CHALLENGE_PASSED) \
            is Refused.REPORTED_DEVICE
        assert outcome_lesson(before, Label.LEGIT, Source.CHALLENGE_PASSED, inputs={}) is None
        # an analyst's verdict on it still teaches, and so does the same code failed
        assert outcome_lesson(before, Label.LEGIT, Source.ANALYST, inputs={})
        assert outcome_lesson(before, Label.FRAUD, Source.CHALLENGE_FAILED, inputs={})

    def test_a_passed_captcha_teaches_nothing(self) -> None:
        """A bot campaign that pays a solving service passes every captcha: were its passes
        lessons, its own pattern would be taught as customers' (the profile and the anomaly
        model refuse them already)."""
        before = stored({"auth_failed": False}, challenge="captcha")
        assert outcome_refusal(before, Label.LEGIT, Source.CHALLENGE_PASSED) is Refused.CAPTCHA
        assert outcome_lesson(before, Label.LEGIT, Source.CHALLENGE_PASSED, inputs={}) is None
        # a failed captcha, a user's report and an analyst's verdict still teach
        assert outcome_lesson(before, Label.FRAUD, Source.CHALLENGE_FAILED, inputs={})
        assert outcome_lesson(before, Label.FRAUD, Source.USER_REPORT, inputs={})
        assert outcome_lesson(before, Label.LEGIT, Source.ANALYST, inputs={})

    def test_failed_attempts_and_failover_answers_teach_nothing(self) -> None:
        assert outcome_refusal(stored({"auth_failed": True}), Label.FRAUD,
                               Source.USER_REPORT) is Refused.FAILED_ATTEMPT
        assert outcome_refusal(stored({}), Label.FRAUD, Source.USER_REPORT) \
            is Refused.NO_DECISION
        assert outcome_refusal(stored({"auth_failed": False}), Label.LEGIT,
                               Source.CHALLENGE_PASSED) is None

    def test_the_engine_refuses_the_swapped_sim_pass(self, make_engine) -> None:
        model = OutcomeModel()
        engine = make_engine(store=MemoryStore(), outcome=model, outcome_version="o")
        before = stored({"auth_failed": False, "sim_changed": True, "new_device": True})
        assert not engine.learn_outcome(before, Label.LEGIT, Source.CHALLENGE_PASSED)
        assert model.n_learned_ == 0
        ok = stored({"auth_failed": False, "sim_changed": False, "new_device": True})
        assert engine.learn_outcome(ok, Label.LEGIT, Source.CHALLENGE_PASSED)
        assert model.n_learned_ == 1

    def test_the_caps_bound_one_users_and_one_networks_share(self) -> None:
        teacher = OutcomeTeacher(gate=LearningGate(per_user=3, per_block=5, asn_floor=100))
        model = OutcomeModel()

        def lesson(i: int, user: str, block: str) -> OutcomeLesson:
            return OutcomeLesson(event_id=f"e{i}", inputs={"rule:a": 0.5}, attack=False,
                                 weight=1.0, user=user, block=block, asn=1, ts=float(i))

        assert sum(teacher.teach(model, lesson(i, "u", "b1")) for i in range(10)) == 3
        assert sum(teacher.teach(model, lesson(10 + i, f"v{i}", "b2")) for i in range(10)) == 5
        assert model.n_learned_ == 8

    def test_a_passed_step_up_later_reported_as_fraud_is_undone(self, make_engine) -> None:
        model = OutcomeModel()
        engine = make_engine(store=MemoryStore(), outcome=model, outcome_version="o",
                             outcome_teacher=loose_teacher(), negative_rate=0.0)
        bodies = journey(engine)
        challenged = next(b for b in bodies if b["decision"] == "challenge")
        untaught = copy.deepcopy(model)
        engine.confirm("default", challenged["event_id"], passed=True)
        assert model.n_learned_ == untaught.n_learned_ + 1
        engine.feedback("default", challenged["event_id"], label=Label.FRAUD,
                        source=Source.USER_REPORT)
        assert engine.outcome_teacher.undone_ == 1
        # the legit lesson is gone and the fraud learned: risk inputs weigh more than
        # before either lesson
        inputs = engine.outcome_teacher.taught_[next(iter(engine.outcome_teacher.taught_))][0]
        risky = [k for k, v in inputs.items() if v > 0]
        assert risky and all(model.weight(k) > untaught.weight(k) for k in risky)


def test_an_allowed_login_taught_as_a_negative_is_undone_by_a_fraud_report(make_engine) -> None:
    """Victims report frauds, nobody reports a legit login: an allowed login taught as a
    sampled negative is taken back when it is reported, and the fraud learned."""
    model = OutcomeModel()
    engine = make_engine(store=MemoryStore(), outcome=model, outcome_version="o",
                         outcome_teacher=loose_teacher(), negative_rate=1.0)
    last = home_history(engine, 5)
    body = engine.score(ScoreRequest(**{**HOME, "event_id": "quiet",
                                       "timestamp": at(last + timedelta(hours=3))})).body
    assert body["decision"] == "allow"
    learned = model.n_learned_
    engine.feedback("default", "quiet", label=Label.FRAUD, source=Source.USER_REPORT)
    assert engine.outcome_teacher.undone_ == 1
    assert model.n_learned_ == learned  # one step back, one step forward
    assert model.n_attacks_ == 1.0


class TestOnlineAdaptation:
    def test_passed_step_ups_lower_the_rules_weight_and_customers_scores(
            self, make_engine) -> None:
        """Many customers get a new phone and pass the step-up: the rules that fire on it
        lose weight, and the next such customer scores lower than the first."""
        model = OutcomeModel(min_outcomes=0, min_attacks=0)
        engine = make_engine(store=MemoryStore(), ruleset=ruleset(enabled=True),
                             outcome=model, outcome_version="o",
                             outcome_teacher=loose_teacher(), negative_rate=0.0)
        scores, fired = [], set()
        for n in range(40):
            user = f"+86138001{n:05d}"
            own = {"user_id": user, "phone": user, "ip": f"123.120.{n + 10}.9",
                   "device": {**HOME["device"], "id": imei(f"86123450{n:06d}")},
                   "network": {"type": "wifi", "ssid": f"Home-{n}"}}
            last = home_history(engine, 3, **own)
            body = engine.score(ScoreRequest(**{
                **HOME, **own, "device": {**NEW_PHONE, "id": imei(f"35693800{n:06d}")},
                "network": {"type": "cellular"}, "ip": "223.104.3.7", "event_id": f"np{n}",
                "timestamp": at(last + timedelta(days=1))})).body
            scores.append(body["score"])
            fired |= {r["code"] for r in body["reasons"] if r["contribution"] > 0}
            if body["decision"] == "challenge":
                engine.confirm("default", f"np{n}", passed=True)
        learned_rules = [k for k in model.weights_ if k.startswith("rule:")
                         and k[5:] in fired]
        assert learned_rules
        assert all(model.weight(k) < 1.0 for k in learned_rules)
        assert scores[-1] < scores[0] * 0.8

    def test_verified_good_logins_teach_it_as_a_weighted_sample(self, make_engine) -> None:
        model = OutcomeModel()
        engine = make_engine(store=MemoryStore(), outcome=model, outcome_version="o",
                             outcome_teacher=loose_teacher(), negative_rate=0.5)
        home_history(engine, 30)
        assert 5 <= model.n_learned_ <= 25  # about half of 30 verified-good logins
        assert model.n_attacks_ == 0 and model.n_outcomes_ == pytest.approx(
            2.0 * model.n_learned_)


class TestKeepingIt:
    def test_the_keeper_snapshots_it_and_the_service_loads_it(self, make_engine,
                                                               tmp_path: Path) -> None:
        from riskengine.adapters.learner import OUTCOME_SLOT
        from riskengine.service.build import ModelKeeper, load_outcome_model
        from riskengine.service.settings import Settings

        model = OutcomeModel()
        engine = make_engine(store=MemoryStore(), outcome=model, outcome_version="outcome-prior",
                             outcome_teacher=loose_teacher(), negative_rate=1.0)
        settings = Settings(env="test", store="memory:", model_dir=tmp_path,
                            model_signing_key=KEY.decode(), _env_file=None)
        keeper = ModelKeeper(engine, tmp_path / "outcome", settings.signing_key(),
                             slot=OUTCOME_SLOT)
        assert keeper.tick() is None  # nothing learned yet
        home_history(engine, 5)
        version = keeper.tick()
        assert version == "outcome-prior+s1" and engine.outcome_version == version
        loaded, card = load_outcome_model(settings)
        assert card["model_version"] == version and card["kind"] == "OutcomeModel"
        assert loaded.weights_ == model.weights_
        assert math.isclose(loaded.leak_, model.leak_)


@pytest.fixture()
def redis_db():
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    except redis.ConnectionError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    yield client
    client.flushdb()


def test_outcomes_travel_to_the_learner_and_back_to_every_instance(
        make_engine, redis_db, tmp_path: Path) -> None:
    """Instance A's feedback goes on the outcome stream; the learner teaches the model and
    publishes a signed snapshot; instance B swaps it in."""
    from riskengine.adapters.learner import (
        OUTCOME_PREFIX,
        OUTCOME_SLOT,
        ModelFollower,
        RedisLessons,
        outcome_learner,
    )

    a = make_engine(store=MemoryStore(), outcome=OutcomeModel(), outcome_version="outcome-prior",
                    outcome_lessons=RedisLessons(REDIS_URL, prefix=OUTCOME_PREFIX,
                                                 timeout_s=1.0), negative_rate=1.0)
    b = make_engine(store=MemoryStore(), outcome=OutcomeModel(), outcome_version="outcome-prior")
    home_history(a, 5)
    assert a.outcome.n_learned_ == 0  # A publishes; it does not learn in process
    learner = outcome_learner(REDIS_URL.rsplit("/", 1)[0] + "/9", key=KEY,
                              folder=tmp_path / "outcome", snapshot_every_s=0.0)
    assert learner.step(block_ms=None) >= 1
    learner.publish()
    follower = ModelFollower(REDIS_URL, b, key=KEY, prefix=OUTCOME_PREFIX, slot=OUTCOME_SLOT)
    assert follower.tick()
    assert b.outcome_version == learner.version != "outcome-prior"
    assert b.outcome.n_learned_ == learner.model.n_learned_ >= 1
    assert b.model_version == a.model_version  # the anomaly model is left alone
