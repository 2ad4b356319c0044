"""Feedback and safe online learning: trust after step-up, late labels, fraud, poisoning."""

from __future__ import annotations

import copy
import random
from datetime import timedelta

from riskengine.adapters.stores import MemoryStore
from riskengine.core.feedback import Label, Source
from riskengine.core.learning import LearningGate
from riskengine.core.wire import ScoreRequest
from tests.engine.conftest import HOME, T0, at, home_history

NEW_PHONE = {"id": "356938035643809", "model": "iPhone 15", "os_name": "iOS",
             "os_version": "17.5"}


def score(engine, **fields):
    return engine.score(ScoreRequest(**fields)).body


def profile_of(engine, user_id=HOME["user_id"]):
    key = engine.to_event(ScoreRequest(**{**HOME, "user_id": user_id}), received_at=T0).user_key
    return engine.store.get_profile("default", key)


def codes(body):
    return {r["code"] for r in body["reasons"]}


class TestTrust:
    def test_a_device_first_seen_is_known_but_not_trusted(self, make_engine):
        engine = make_engine()
        last = home_history(engine, 5)
        body = score(engine, **{**HOME, "timestamp": at(last + timedelta(days=1))})
        assert "known_device_known_network" not in codes(body)
        assert profile_of(engine).trusted == {}

    def test_a_passed_step_up_makes_the_device_trusted(self, make_engine):
        engine = make_engine()
        last = home_history(engine, 5)
        # A new phone on the user's own provider, another address block, its SIM not
        # readable (with the account's own SIM it would not be asked): challenged, and the
        # code passed from the user's own operator earns the phone trust.
        first = score(engine, **{**HOME, "device": NEW_PHONE, "network": {"type": "cellular"},
                                 "ip": "123.120.77.9", "event_id": "p1", "sim": None,
                                 "timestamp": at(last + timedelta(days=1))})
        assert first["decision"] == "challenge" and first["challenge"] == "sms_otp"
        engine.feedback("default", "p1", label=Label.LEGIT, source=Source.CHALLENGE_PASSED)
        assert len(profile_of(engine).trusted) == 1
        home = score(engine, **{**HOME, "device": NEW_PHONE,
                                "timestamp": at(last + timedelta(days=2))})
        assert "known_device_known_network" in codes(home)

    def test_a_step_up_passed_on_a_strangers_network_verifies_the_login_not_the_device(
            self, make_engine):
        engine = make_engine()
        last = home_history(engine, 5)
        first = score(engine, **{**HOME, "device": NEW_PHONE, "network": {"type": "cellular"},
                                 "ip": "223.104.3.7", "event_id": "p1",
                                 "timestamp": at(last + timedelta(days=1))})
        assert first["decision"] == "challenge"
        engine.feedback("default", "p1", label=Label.LEGIT, source=Source.CHALLENGE_PASSED)
        profile = profile_of(engine)
        assert profile.trusted == {} and len(profile.devices) == 2

    def test_a_passed_captcha_verifies_nothing(self, make_engine):
        engine = make_engine()
        last = home_history(engine, 5)
        for i in range(6):  # five failures make the next login a captcha
            score(engine, **{**HOME, "auth_result": "failure", "ip": "223.104.3.7",
                             "timestamp": at(last + timedelta(days=1, seconds=i))})
        body = score(engine, **{**HOME, "device": NEW_PHONE, "ip": "223.104.3.7",
                                "event_id": "c1", "network": {"type": "cellular"},
                                "timestamp": at(last + timedelta(days=1, minutes=1))})
        assert body["decision"] == "challenge" and body["challenge"] == "captcha", body
        devices_before = len(profile_of(engine).devices)
        learned = engine.model.n_learned_
        engine.feedback("default", "c1", label=Label.LEGIT, source=Source.CHALLENGE_PASSED)
        profile = profile_of(engine)
        assert profile.trusted == {} and len(profile.devices) == devices_before
        # nor the anomaly model (it learned the captcha-passed login as verified-good before)
        assert engine.model.n_learned_ == learned

    def test_an_otp_login_is_a_step_up(self, make_engine):
        engine = make_engine()
        last = home_history(engine, 5)
        score(engine, **{**HOME, "login_method": "sms_otp",
                         "timestamp": at(last + timedelta(days=1))})
        assert len(profile_of(engine).trusted) == 1

    def test_an_sms_code_after_a_sim_change_earns_no_trust(self, make_engine):
        engine = make_engine()
        last = home_history(engine, 5)
        swapped = {"iccid": "89860099999999999999"}
        score(engine, **{**HOME, "login_method": "sms_otp", "sim": swapped,
                         "timestamp": at(last + timedelta(days=1))})
        assert profile_of(engine).trusted == {}


class TestFeedbackEndpointSemantics:
    def test_same_feedback_twice_changes_nothing(self, make_engine):
        engine = make_engine()
        last = home_history(engine, 5)
        score(engine, **{**HOME, "device": NEW_PHONE, "event_id": "n1",
                         "timestamp": at(last + timedelta(days=1))})
        first = engine.feedback("default", "n1", label=Label.LEGIT, source=Source.ANALYST)
        snapshot, learned = profile_of(engine), engine.model.n_learned_
        second = engine.feedback("default", "n1", label=Label.LEGIT, source=Source.ANALYST)
        assert (first.value, second.value) == ("applied", "duplicate")
        assert profile_of(engine) == snapshot and engine.model.n_learned_ == learned

    def test_a_late_legit_label_teaches_the_login(self, make_engine):
        engine = make_engine()
        last = home_history(engine, 5)
        # A new phone at home: allowed, but not verified, so not learned.
        body = score(engine, **{**HOME, "device": NEW_PHONE, "event_id": "late",
                                "timestamp": at(last + timedelta(days=1))})
        assert body["decision"] == "allow"
        assert len(profile_of(engine).devices) == 1
        # Nine days later an analyst confirms it.
        engine.feedback("default", "late", label=Label.LEGIT, source=Source.ANALYST)
        assert len(profile_of(engine).devices) == 2
        later = score(engine, **{**HOME, "device": NEW_PHONE,
                                 "timestamp": at(last + timedelta(days=10))})
        assert "new_device" not in codes(later)

    def test_a_fraud_report_takes_a_learned_login_back_out(self, make_engine):
        engine = make_engine()
        last = home_history(engine, 5)
        before = profile_of(engine)
        # The thief logs in on the victim's home Wi-Fi with the right password and a code
        # (a phished OTP): allowed and learned.
        body = score(engine, **{**HOME, "device": NEW_PHONE, "login_method": "sms_otp",
                                "event_id": "theft", "timestamp": at(last + timedelta(days=1))})
        assert body["decision"] == "allow"
        assert len(profile_of(engine).devices) == 2
        engine.feedback("default", "theft", label=Label.FRAUD, source=Source.USER_REPORT)
        after = profile_of(engine)
        assert after.devices.keys() == before.devices.keys()
        assert after.trusted == {}
        assert len(after.bad) == 1  # the thief's phone; the victim's Wi-Fi is not marked
        again = score(engine, **{**HOME, "device": NEW_PHONE,
                                 "timestamp": at(last + timedelta(days=3))})
        assert again["decision"] != "allow" and "marked_bad" in codes(again)


class TestPoisoning:
    def test_boiling_frog_is_still_challenged_after_weeks(self, make_engine):
        """An attacker with the password creeps toward the victim's normal for 5 weeks:
        from a far city at night to a proxy in the victim's city at the victim's hour,
        logging in more often each week. Failing every step-up, he never becomes normal."""
        engine = make_engine()
        last = home_history(engine, 20)
        path = ["182.148.3.3", "171.88.3.3", "114.88.3.3", "222.128.3.3", "123.120.77.9"]
        decisions = []
        for day in range(35):
            week = day // 7
            for attempt in range(1 + week):
                hour = 3 + (day * 6) / 35  # from 03:00 toward the victim's 09:00 (UTC+8)
                when = last + timedelta(days=1 + day, hours=hour - 9 + attempt)
                body = score(engine, **{**HOME, "device": {**NEW_PHONE, "os_version": "17.4"},
                                        "ip": path[week], "network": {"type": "cellular"},
                                        "event_id": f"frog-{day}-{attempt}",
                                        "timestamp": at(when)})
                decisions.append(body["decision"])
                if body["decision"] == "challenge":
                    engine.confirm("default", f"frog-{day}-{attempt}", passed=False)
        final_week = decisions[-5:]
        assert all(d != "allow" for d in final_week), final_week
        assert decisions.count("allow") == 0
        assert NEW_PHONE["id"] not in str(profile_of(engine).devices)

    def test_a_thousand_extreme_requests_barely_move_other_users_scores(self, make_engine):
        """Attacker accounts that pass as verified (their own devices and network, from
        their first login) send 1,000 logins with extreme values; the learning caps keep
        the model's view of everyone else within epsilon."""
        epsilon = 0.05  # on the anomaly score in [0, 1]
        engine = make_engine(store=MemoryStore())
        rng = random.Random(0)
        probes = []
        for i in range(20):
            user = {**HOME, "user_id": f"probe{i}@example.cn", "phone": None, "sim": None,
                    "device": {"id": f"{i:08x}-0000-4000-8000-000000000000"}}
            home_history(engine, 6, **user)
            event = engine.to_event(ScoreRequest(**{**user, "timestamp": at(T0 + timedelta(
                days=7))}), received_at=T0)
            loaded = engine.store.get_profile("default", event.user_key)
            from features.extract import extract
            from features.profile import Velocity
            probes.append(extract(event, engine.ipintel.lookup(event.ip), loaded, Velocity()))
        before_model = copy.deepcopy(engine.model)
        base = [engine.model.score_one(fv) for fv in probes]

        for n in range(1000):
            account = f"mule{n % 10}@example.cn"
            hour = rng.uniform(0, 24)
            score(engine, user_id=account, ip=f"45.83.64.{n % 10 + 1}",
                  device={"id": f"{n % 10:08x}-1111-4000-8000-000000000000"},
                  network={"type": "wifi", "ssid": f"mule{n % 10}"},
                  timestamp=at(T0 + timedelta(days=8, hours=hour, seconds=n)))
        after = [engine.model.score_one(fv) for fv in probes]
        learned = engine.model.n_learned_ - before_model.n_learned_
        assert learned <= engine.gate.per_block  # one address block: capped
        shift = max(abs(a - b) for a, b in zip(after, base, strict=True))
        print(f"learned {learned} of 1000; max anomaly-score shift of other users {shift:.4f}")
        assert shift < epsilon, shift


class TestReportedDevices:
    """A device the owner reported as not theirs: a code passed on it later is what a
    phished e-mail code or a swapped number produces, and verifies nothing."""

    STRANGER = {"device": NEW_PHONE, "network": {"type": "cellular"}, "ip": "223.104.3.7"}

    def attacker_reported(self, engine, *, source=Source.USER_REPORT):
        last = home_history(engine, 5)
        score(engine, **{**HOME, **self.STRANGER, "event_id": "a1",
                         "timestamp": at(last + timedelta(days=1))})
        engine.feedback("default", "a1", label=Label.FRAUD, source=source)
        return last

    def test_the_owners_report_keeps_the_device_as_reported(self, make_engine):
        engine = make_engine()
        self.attacker_reported(engine)
        profile = profile_of(engine)
        assert len(profile.reported) == 1 and set(profile.reported) <= set(profile.bad)

    def test_a_code_passed_on_it_later_teaches_nothing(self, make_engine):
        engine = make_engine()
        last = self.attacker_reported(engine)
        before = profile_of(engine)
        learned = engine.model.n_learned_
        again = score(engine, **{**HOME, **self.STRANGER, "event_id": "a2",
                                 "timestamp": at(last + timedelta(days=2))})
        assert again["decision"] == "challenge" and "marked_bad" in codes(again)
        engine.feedback("default", "a2", label=Label.LEGIT, source=Source.CHALLENGE_PASSED)
        after = profile_of(engine)
        assert after.devices == before.devices and after.trusted == before.trusted
        assert after.bad == before.bad and after.reported == before.reported
        assert engine.model.n_learned_ == learned
        third = score(engine, **{**HOME, **self.STRANGER, "event_id": "a3",
                                 "timestamp": at(last + timedelta(days=3))})
        assert third["decision"] == "challenge" and "marked_bad" in codes(third)

    def test_after_a_failed_step_up_the_customers_own_pass_still_counts(self, make_engine):
        # Customers fail codes too, on their own new phones: a failed step-up marks the
        # device, reports nothing, and the customer's next passed code verifies it.
        engine = make_engine()
        last = self.attacker_reported(engine, source=Source.CHALLENGE_FAILED)
        assert profile_of(engine).reported == {}
        score(engine, **{**HOME, **self.STRANGER, "event_id": "c2",
                         "timestamp": at(last + timedelta(days=2))})
        engine.feedback("default", "c2", label=Label.LEGIT, source=Source.CHALLENGE_PASSED)
        assert len(profile_of(engine).devices) == 2

    def test_an_analysts_reversal_lifts_the_report(self, make_engine):
        engine = make_engine()
        self.attacker_reported(engine)
        engine.feedback("default", "a1", label=Label.LEGIT, source=Source.ANALYST)
        profile = profile_of(engine)
        assert profile.reported == {} and profile.bad == {}


def test_the_gate_caps_users_blocks_and_asns():
    gate = LearningGate(per_user=3, per_block=5, asn_share=0.5, asn_floor=6)
    admitted = [gate.admit(user="u", block="b", asn=1, ts=float(t)) for t in range(5)]
    assert admitted == [True, True, True, False, False]
    assert sum(gate.admit(user=f"v{t}", block="b", asn=1, ts=10.0) for t in range(5)) == 2
    # a day later the window has moved on
    assert gate.admit(user="u", block="b", asn=1, ts=86_400.0 + 5)
