"""Client-reported identifiers are claims, not proof; trust is earned and scoped; customers'
wider normals cost them less friction; a SIM swap is not stepped up by SMS (issue #17)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from riskengine.core.wire import ScoreRequest
from tests.engine.conftest import HOME, at, home_history

US_CLOUD = "13.52.1.1"  # hosting, San Jose
CN_CLOUD = "1.116.1.1"  # hosting, Shanghai
SAME_PROVIDER_OTHER_BLOCK = "221.218.1.9"  # China Unicom Beijing, another /24
LONDON = "81.2.69.1"  # residential


def score(engine, **fields: Any) -> dict[str, Any]:
    return engine.score(ScoreRequest(**fields)).body


def codes(body: dict[str, Any]) -> set[str]:
    return {r["code"] for r in body["reasons"]}


def trusted_home(engine) -> Any:
    """Twenty logins from home, then an SMS-code login that makes the phone trusted."""
    last = home_history(engine, 20)
    when = last + timedelta(hours=1)
    assert score(engine, **{**HOME, "login_method": "sms_otp",
                            "timestamp": at(when)})["decision"] == "allow"
    return when


class TestReplayedDeviceRecord:
    def test_the_whole_record_from_a_server_abroad_is_questioned(self, make_engine):
        engine = make_engine()
        last = trusted_home(engine)
        body = score(engine, **{**HOME, "ip": US_CLOUD, "timestamp": at(last + timedelta(days=1))})
        assert body["decision"] != "allow", body
        assert "hosting_ip_known_device" in codes(body)
        assert "known_device_known_network" not in codes(body)

    def test_the_record_from_a_server_at_home_is_questioned(self, make_engine):
        engine = make_engine()
        last = trusted_home(engine)
        body = score(engine, **{**HOME, "ip": CN_CLOUD, "timestamp": at(last + timedelta(days=1))})
        assert body["decision"] != "allow", body

    def test_one_device_cannot_be_in_two_places(self, make_engine):
        engine = make_engine()
        last = trusted_home(engine)
        body = score(engine, **{**HOME, "ip": LONDON,
                                "timestamp": at(last + timedelta(minutes=30))})
        assert body["decision"] != "allow"
        assert {"impossible_travel", "device_in_two_places"} <= codes(body)

    def test_an_older_app_build_on_a_known_device_is_a_replay_sign(self, make_engine):
        engine = make_engine()
        ua = "MallApp/8.6.2 (HarmonyOS 4.2; HUAWEI Mate 60) okhttp/4.12.0"
        last = home_history(engine, 10, user_agent=ua)
        body = score(engine, **{**HOME, "user_agent": ua.replace("8.6.2", "8.1.0"),
                                "timestamp": at(last + timedelta(days=1))})
        assert "client_downgrade" in codes(body)
        downgrade = next(r for r in body["reasons"] if r["code"] == "client_downgrade")
        assert "8.1.0" in downgrade["message"]

    def test_a_trusted_device_on_its_usual_provider_keeps_some_trust(self, make_engine):
        engine = make_engine()
        last = trusted_home(engine)
        body = score(engine, **{**HOME, "ip": SAME_PROVIDER_OTHER_BLOCK,
                                "timestamp": at(last + timedelta(days=1))})
        assert body["decision"] == "allow"
        assert "trusted_device_usual_provider" in codes(body)
        assert "known_device_known_network" not in codes(body)


class TestSimSwap:
    def test_an_sms_login_is_never_stepped_up_by_sms(self, make_engine):
        engine = make_engine()
        last = home_history(engine, 5)
        # A new device (no SIM ids: iOS and Android 10+ apps cannot read them) logging in
        # with an SMS code: another SMS code would go to whoever holds the number.
        body = score(engine, **{**HOME, "device": {"id": "a1b2c3d4-e5f6-4789-abcd-ef1234567890"},
                                "sim": None, "ip": "81.167.144.58", "login_method": "sms_otp",
                                "timestamp": at(last + timedelta(days=1))})
        assert body["decision"] == "challenge"
        assert body["challenge"] == "email_otp"

    def test_a_new_sim_then_sms_login_is_stepped_up_by_email(self, make_engine):
        engine = make_engine()
        last = home_history(engine, 5)
        body = score(engine, **{**HOME, "sim": {"iccid": "89860099999999999999"},
                                "device": {"id": "356938035643809"}, "login_method": "password",
                                "timestamp": at(last + timedelta(hours=3))})
        assert body["decision"] in ("challenge", "deny")
        assert body["challenge"] in ("email_otp", None)


    def test_a_new_phone_with_a_new_sim_signing_in_by_sms_is_denied(self, make_engine):
        # The number moved to a new SIM in a new phone and the only proof is an SMS code:
        # a step-up by SMS reaches the new holder, and the e-mail code may be phished too.
        engine = make_engine()
        last = home_history(engine, 5)
        swapped = {**HOME, "sim": {"iccid": "89860099999999999999"},
                   "device": {"id": "356938035643809"}, "login_method": "sms_otp",
                   "network": {"type": "cellular"}, "ip": "223.104.3.7",
                   "timestamp": at(last + timedelta(hours=3))}
        body = score(engine, **swapped)
        assert body["decision"] == "deny" and body["challenge"] is None
        assert "sim_swap_new_device_sms_login" in codes(body)
        # The customer's new phone and SIM at home, on the account's own address block: this
        # rule stands aside (the other SIM rules still weigh it, never with an SMS code).
        home = score(engine, **{**swapped, "ip": HOME["ip"], "network": HOME["network"]})
        assert "sim_swap_new_device_sms_login" not in codes(home)
        assert {"sim_swap_sms_login", "new_device_new_sim"} <= codes(home)
        assert home["challenge"] != "sms_otp"

    def test_the_customers_own_phone_with_a_new_sim_gets_an_email_code(self, make_engine):
        engine = make_engine()
        last = home_history(engine, 5)
        body = score(engine, **{**HOME, "sim": {"iccid": "89860099999999999999"},
                                "login_method": "sms_otp",
                                "timestamp": at(last + timedelta(hours=3))})
        assert body["decision"] == "challenge" and body["challenge"] == "email_otp"
        assert "sim_swap_new_device_sms_login" not in codes(body)


class TestLessFriction:
    def test_a_vpn_users_trusted_phone_is_not_asked_at_each_new_exit_provider(
            self, make_engine):
        from riskengine.core.feedback import Label, Source

        engine = make_engine()
        last = trusted_home(engine)
        # The VPN's first exit provider is new: asked once, passed, learned with the rest.
        first = score(engine, **{**HOME, "ip": "8.210.3.4", "event_id": "v0",
                                 "timestamp": at(last + timedelta(days=1))})
        assert "hosting_ip_known_device" in codes(first)
        engine.feedback("default", "v0", label=Label.LEGIT, source=Source.CHALLENGE_PASSED)
        for n in range(1, 4):
            body = score(engine, **{**HOME, "ip": f"47.88.9.{n}",
                                    "timestamp": at(last + timedelta(days=1 + n))})
            assert body["decision"] == "allow", body
        # Another provider's exit: a VPN user's normal, not a replayed record's tell.
        vpn = score(engine, **{**HOME, "ip": "43.129.5.6",
                               "timestamp": at(last + timedelta(days=6))})
        assert "hosting_ip_known_device" not in codes(vpn)

    def test_the_same_exit_is_asked_of_a_user_who_never_used_a_vpn(self, make_engine):
        engine = make_engine()
        last = trusted_home(engine)
        body = score(engine, **{**HOME, "ip": "43.129.5.6",
                                "timestamp": at(last + timedelta(days=6))})
        assert "hosting_ip_known_device" in codes(body) and body["decision"] != "allow"

    def test_a_new_phone_with_the_accounts_own_sim_on_the_own_provider_is_not_asked(
            self, make_engine):
        # The customer moved the SIM into a new phone and signs in on the provider's other
        # address block in the same city: not a stranger's device on a stranger's network.
        engine = make_engine()
        last = home_history(engine, 10)
        new_phone = {**HOME, "device": {"id": "356938035643809", "model": "Xiaomi 14"},
                     "ip": SAME_PROVIDER_OTHER_BLOCK, "network": {"type": "wifi"},
                     "timestamp": at(last + timedelta(hours=5))}
        body = score(engine, **new_phone)
        assert "new_device_unfamiliar_network" not in codes(body)
        assert body["decision"] == "allow", body

    def test_a_new_phone_with_another_sim_or_none_readable_is_still_asked(self, make_engine):
        engine = make_engine()
        last = home_history(engine, 10)
        new_phone = {**HOME, "device": {"id": "356938035643809", "model": "Xiaomi 14"},
                     "ip": SAME_PROVIDER_OTHER_BLOCK, "network": {"type": "wifi"},
                     "timestamp": at(last + timedelta(hours=5))}
        for sim in ({"iccid": "89860099999999999999", "imsi": "460019999999999"}, None):
            body = score(engine, **{**new_phone, "sim": sim})
            assert "new_device_unfamiliar_network" in codes(body), sim
            assert body["decision"] != "allow", body

    @staticmethod
    def _phone_then_office(make_engine, phone_ip: str, network: dict[str, Any]) -> set[str]:
        """The trusted phone's login at ``phone_ip``, then half an hour later the customer's
        computer on China Telecom in Shanghai, a provider the account never used (the
        office): the office login's reason codes."""
        engine = make_engine()
        last = trusted_home(engine)
        phone = score(engine, **{**HOME, "ip": phone_ip, "network": network,
                                 "timestamp": at(last + timedelta(days=1))})
        assert phone["decision"] == "allow", phone
        return codes(score(engine, **{
            "user_id": HOME["user_id"], "ip": "114.88.3.4",
            "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                          "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
            "timestamp": at(last + timedelta(days=1, minutes=30))}))

    def test_mobile_data_then_a_computer_elsewhere_is_no_impossible_travel(self, make_engine):
        # The phone went out through China Mobile's exit in Guangzhou: the distance from
        # Guangzhou is the carrier's, not the customer's.
        office = self._phone_then_office(make_engine, "120.229.1.1", {"type": "cellular"})
        assert "impossible_travel" not in office

    def test_wifi_far_away_then_a_computer_elsewhere_is_still_impossible_travel(
            self, make_engine):
        # Control: the phone on Wi-Fi in Guangzhou locates the customer.
        office = self._phone_then_office(make_engine, "112.96.1.1", {"type": "wifi"})
        assert "impossible_travel" in office

    def test_a_family_members_phone_at_home_is_not_challenged(self, make_engine):
        engine = make_engine()
        last = home_history(engine, 10, network={"type": "cellular"})
        family = {**HOME, "user_id": "+8613900139000", "phone": "+8613900139000",
                  "device": {"id": "356938035643809", "model": "Xiaomi 14"},
                  "network": {"type": "cellular"}, "sim": None}
        home_history(engine, 3, **family)
        body = score(engine, **{**HOME, "device": family["device"], "network": {"type": "cellular"},
                                "sim": None, "timestamp": at(last + timedelta(days=1))})
        assert "household_device" in codes(body)
        assert body["decision"] == "allow", body

    def test_a_stable_browser_on_a_known_network_is_like_the_app(self, make_engine):
        engine = make_engine()
        web = {"user_id": "li.wei@example.cn", "ip": HOME["ip"],
               "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                             "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"}
        last = home_history(engine, 10, **{**web, "device": None, "network": None, "sim": None,
                                           "phone": None})
        body = score(engine, **{**web, "timestamp": at(last + timedelta(days=1))})
        assert "known_browser_known_network" in codes(body)
        assert body["decision"] == "allow"

    def test_strangers_failures_do_not_lock_out_the_owners_trusted_phone(self, make_engine):
        engine = make_engine()
        last = trusted_home(engine)
        for i in range(30):
            score(engine, user_id=HOME["user_id"], ip=f"45.83.{64 + i}.10",
                  auth_result="failure", timestamp=at(last + timedelta(hours=1, seconds=20 * i)))
        owner = score(engine, **{**HOME, "timestamp": at(last + timedelta(hours=1, minutes=11))})
        assert owner["decision"] == "allow", owner


def test_a_trusted_phone_teaches_its_new_carrier_when_nothing_contradicts_it(make_engine):
    # The customer's own trusted phone on mobile data, a carrier the profile has not seen:
    # allowed and learned, so the carrier is the customer's from then on.
    engine = make_engine()
    last = trusted_home(engine)
    mobile = {**HOME, "ip": "223.104.3.7", "network": {"type": "cellular"}}
    first = score(engine, **{**mobile, "timestamp": at(last + timedelta(hours=3))})
    second = score(engine, **{**mobile, "ip": "223.104.9.7",
                              "timestamp": at(last + timedelta(hours=5))})
    assert first["decision"] == "allow" and second["decision"] == "allow"
    key = engine.user_keys("default", HOME["user_id"])[0]
    # Home broadband plus the two China Mobile networks these addresses belong to.
    assert len(engine.store.get_profile("default", key).asns) == 3


def test_a_replayed_record_from_a_server_teaches_nothing(make_engine):
    engine = make_engine()
    last = trusted_home(engine)
    score(engine, **{**HOME, "ip": CN_CLOUD, "timestamp": at(last + timedelta(days=1))})
    key = engine.user_keys("default", HOME["user_id"])[0]
    assert len(engine.store.get_profile("default", key).asns) == 1
