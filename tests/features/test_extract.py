"""The feature extractor, one class per feature family, against the real bundled IP data."""

from __future__ import annotations

import dataclasses
import itertools
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from features.catalog import BY_NAME
from features.event import AuthResult, LoginEvent
from features.extract import FeatureVector, extract, ip_prefix
from features.ipintel import IpInfo, IpIntel
from features.profile import UserProfile, Velocity, learn, note_failure, sighting

BEIJING = "123.120.5.9"  # China Unicom Beijing, AS4808
BEIJING_SAME_24 = "123.120.5.200"
BEIJING_OTHER_24 = "123.120.6.9"
SHANGHAI = "114.88.3.4"  # China Telecom Shanghai, AS4812
GUANGZHOU = "183.14.5.6"  # Chinanet Guangdong, AS4134
TOR_BERLIN = "185.220.101.1"
AWS_NEW_YORK = "52.95.110.1"
GOOGLE = "8.8.8.8"
APPLE_RELAY = "172.225.28.230"  # Apple Private Relay egress
BEIJING_V6 = "2408:8207:1::1"
PRIVATE = "10.1.1.1"

# 01:30 UTC is 09:30 in Beijing (Asia/Shanghai, UTC+8, no DST).
T0 = datetime(2026, 11, 2, 1, 30, tzinfo=UTC)

_ids = itertools.count()


@pytest.fixture(scope="session")
def intel() -> IpIntel:
    return IpIntel.bundled()


def login(ip: str = BEIJING, *, at: datetime = T0, **fields: Any) -> LoginEvent:
    """A login of user-1; keys are opaque strings, the prefix key is the /24 or /48 itself."""
    return LoginEvent(
        event_id=f"ev-{next(_ids)}",
        tenant="t1",
        user_key="user-1",
        timestamp=at,
        ip=ip,
        ip_key=ip,
        ip_prefix_key=ip_prefix(ip),
        **fields,
    )


def features(
    intel: IpIntel,
    event: LoginEvent,
    profile: UserProfile | None = None,
    velocity: Velocity | None = None,
    *,
    ip: IpInfo | None = None,
) -> FeatureVector:
    return extract(event, ip or intel.lookup(event.ip), profile, velocity or Velocity())


def learned(intel: IpIntel, *events: LoginEvent, profile: UserProfile | None = None) -> UserProfile:
    """The profile after these events were learned as verified-good, as the engine does it."""
    p = profile or UserProfile()
    for ev in events:
        info = intel.lookup(ev.ip)
        fv = extract(ev, info, p, Velocity())
        p = learn(p, sighting(ev, info, fv))
    return p


def history(intel: IpIntel, days: int = 1, **fields: Any) -> UserProfile:
    """``days`` daily logins from Beijing at 09:30 local, the last one a day before T0."""
    return learned(intel, *(login(at=T0 - timedelta(days=d), **fields) for d in range(days, 0, -1)))


class TestDevice:
    def test_a_device_seen_before_is_known(self, intel: IpIntel) -> None:
        profile = history(intel, device_key="dev-1")

        fv = features(intel, login(device_key="dev-1"), profile)

        assert fv["device_id_present"] is True
        assert fv["device_known"] is True
        assert fv["new_device"] is False

    def test_another_device_is_new(self, intel: IpIntel) -> None:
        profile = history(intel, device_key="dev-1")

        fv = features(intel, login(device_key="dev-2"), profile)

        assert fv["device_known"] is False
        assert fv["new_device"] is True

    def test_new_device_is_unknown_without_a_device_id(self, intel: IpIntel) -> None:
        profile = history(intel, device_key="dev-1")

        fv = features(intel, login(), profile)

        assert fv["device_id_present"] is False
        assert fv["device_known"] is False
        assert fv["new_device"] is None

    @pytest.mark.parametrize("profile", [None, UserProfile()])
    def test_new_device_is_unknown_for_a_new_user(self, intel: IpIntel, profile: Any) -> None:
        fv = features(intel, login(device_key="dev-1"), profile)

        assert fv["user_is_new"] is True
        assert fv["device_id_present"] is True
        assert fv["new_device"] is None
        assert fv["device_model_known"] is None
        assert fv["os_family_known"] is None
        assert fv["bluetooth_known"] is None

    def test_model_is_matched_ignoring_case_and_spacing(self, intel: IpIntel) -> None:
        profile = history(intel, device_model="Xiaomi 14", os_name="Android")

        same = features(intel, login(device_model="  xiaomi   14 ", os_name="Android"), profile)
        other = features(intel, login(device_model="HUAWEI Mate 60", os_name="HarmonyOS"), profile)

        assert same["device_model"] == "xiaomi 14"
        assert same["device_model_known"] is True
        assert same["os_family"] == "Android"
        assert same["os_family_known"] is True
        assert other["device_model_known"] is False
        assert other["os_family_known"] is False

    def test_model_and_os_come_from_the_user_agent_when_the_device_fields_are_missing(
        self, intel: IpIntel
    ) -> None:
        ua = (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
        )

        fv = features(intel, login(user_agent=ua))
        explicit = features(intel, login(user_agent=ua, os_name="Android", device_model="X"))

        assert fv["os_family"] == "iOS"
        assert fv["device_model"] == "iphone"
        assert explicit["os_family"] == "Android"
        assert explicit["device_model"] == "x"

    def test_bluetooth_seen_before_is_known(self, intel: IpIntel) -> None:
        profile = history(intel, bluetooth_key="bt-1")

        assert features(intel, login(bluetooth_key="bt-1"), profile)["bluetooth_known"] is True
        assert features(intel, login(bluetooth_key="bt-2"), profile)["bluetooth_known"] is False
        assert features(intel, login(), profile)["bluetooth_known"] is None

    @pytest.mark.parametrize(
        ("os_name", "os_version", "downgrade"),
        [
            ("Android", "13", True),
            ("Android", "14.0.9", True),
            ("Android", "14.1", False),
            ("Android", "14.1.0", False),
            ("Android", "15", False),
            ("iOS", "17.1", False),  # another OS family is a mismatch, not a downgrade
            ("Android", None, None),  # no version
            ("Android", "beta", None),  # not a version number
            (None, "13", None),  # no OS family
        ],
    )
    def test_os_downgrade(
        self, intel: IpIntel, os_name: str | None, os_version: str | None, downgrade: bool | None
    ) -> None:
        profile = history(intel, device_key="dev-1", os_name="Android", os_version="14.1")

        fv = features(
            intel, login(device_key="dev-1", os_name=os_name, os_version=os_version), profile
        )

        assert fv["os_downgrade"] is downgrade

    def test_os_downgrade_is_about_one_known_device(self, intel: IpIntel) -> None:
        """A second, older phone or a browser is not a downgrade of the first phone."""
        profile = history(intel, device_key="dev-1", os_name="Android", os_version="15")

        other = features(intel, login(device_key="dev-2", os_name="Android", os_version="13"),
                         profile)
        browser = features(intel, login(os_name="Android", os_version="13"), profile)

        assert other["os_downgrade"] is None
        assert browser["os_downgrade"] is None

    def test_os_downgrade_compares_with_the_highest_version_learned(self, intel: IpIntel) -> None:
        profile = learned(
            intel,
            login(at=T0 - timedelta(days=3), device_key="dev-1", os_name="Android",
                  os_version="15"),
            login(at=T0 - timedelta(days=2), device_key="dev-1", os_name="Android",
                  os_version="14"),
        )

        fv = features(intel, login(device_key="dev-1", os_name="Android", os_version="14"),
                      profile)

        assert fv["os_downgrade"] is True


class TestIp:
    @pytest.mark.parametrize(("ip", "version"), [(BEIJING, 4), (BEIJING_V6, 6), (PRIVATE, 4)])
    def test_ip_version(self, intel: IpIntel, ip: str, version: int) -> None:
        assert features(intel, login(ip))["ip_version"] == version

    def test_private_address_has_no_location_or_network(self, intel: IpIntel) -> None:
        fv = features(intel, login(PRIVATE))

        assert fv["ip_is_private"] is True
        for name in ("ip_country", "ip_city", "ip_asn", "ip_latitude_deg", "ip_longitude_deg"):
            assert fv[name] is None, name
        assert fv["asn_users_10m"] is None
        assert fv["asn_failures_10m"] is None
        assert not (fv["ip_is_hosting"] or fv["ip_is_vpn"] or fv["ip_is_tor"])

    @pytest.mark.parametrize(
        ("ip", "country", "asn", "lat", "lon"),
        [
            (BEIJING, "CN", 4808, 39.9, 116.4),
            (BEIJING_V6, "CN", 4808, 39.9, 116.4),
            (SHANGHAI, "CN", 4812, 31.2, 121.5),
            (GUANGZHOU, "CN", 4134, 23.1, 113.3),
            (TOR_BERLIN, "DE", None, 52.5, 13.4),
            (AWS_NEW_YORK, "US", 16509, 40.7, -74.0),
            (GOOGLE, "US", 15169, None, None),
        ],
    )
    def test_location_and_network_from_the_bundled_databases(
        self,
        intel: IpIntel,
        ip: str,
        country: str,
        asn: int | None,
        lat: float | None,
        lon: float | None,
    ) -> None:
        fv = features(intel, login(ip))

        assert fv["ip_is_private"] is False
        assert fv["ip_country"] == country
        assert isinstance(fv["ip_asn"], int)
        if asn is not None:
            assert fv["ip_asn"] == asn
        assert isinstance(fv["ip_city"], str) and fv["ip_city"]
        assert isinstance(fv["ip_latitude_deg"], float)
        assert isinstance(fv["ip_longitude_deg"], float)
        if lat is not None and lon is not None:
            assert fv["ip_latitude_deg"] == pytest.approx(lat, abs=0.5)
            assert fv["ip_longitude_deg"] == pytest.approx(lon, abs=0.5)

    @pytest.mark.parametrize(
        ("ip", "city"), [(SHANGHAI, "Shanghai"), (GUANGZHOU, "Guangzhou"), (TOR_BERLIN, "Berlin")]
    )
    def test_city_name(self, intel: IpIntel, ip: str, city: str) -> None:
        assert features(intel, login(ip))["ip_city"] == city

    @pytest.mark.parametrize(
        ("ip", "hosting", "vpn", "tor"),
        [
            (BEIJING, False, False, False),
            (SHANGHAI, False, False, False),
            (TOR_BERLIN, False, False, True),
            (AWS_NEW_YORK, True, False, False),
            (GOOGLE, True, False, False),
            (APPLE_RELAY, False, True, False),
        ],
    )
    def test_hosting_vpn_and_tor_flags(
        self, intel: IpIntel, ip: str, hosting: bool, vpn: bool, tor: bool
    ) -> None:
        fv = features(intel, login(ip))

        assert (fv["ip_is_hosting"], fv["ip_is_vpn"], fv["ip_is_tor"]) == (hosting, vpn, tor)

    def test_ipv4_mapped_ipv6_is_the_ipv4_host(self, intel: IpIntel) -> None:
        mapped = features(intel, login(f"::ffff:{BEIJING}"))
        plain = features(intel, login(BEIJING))

        assert mapped["ip_version"] == 4
        assert mapped["ip_country"] == plain["ip_country"]
        assert mapped["ip_asn"] == plain["ip_asn"]


class TestNovelty:
    @pytest.mark.parametrize(
        ("ip", "prefix"),
        [
            ("123.120.5.9", "123.120.5.0/24"),
            ("123.120.5.255", "123.120.5.0/24"),
            (f"::ffff:{BEIJING}", "123.120.5.0/24"),
            ("2408:8207:1::1", "2408:8207:1::/48"),
            ("2408:8207:1:ffff:1:2:3:4", "2408:8207:1::/48"),
        ],
    )
    def test_ip_prefix_is_the_24_or_the_48(self, ip: str, prefix: str) -> None:
        assert ip_prefix(ip) == prefix

    def test_everything_is_unknown_for_a_new_user(self, intel: IpIntel) -> None:
        fv = features(intel, login(device_key="d", ssid_key="s", phone_key="p", iccid_key="c"))

        for name in ("new_device", "new_ip_prefix", "new_asn", "new_country", "new_city",
                     "new_ssid", "sim_changed", "hour_rarity"):
            assert fv[name] is None, name
        assert fv["ip_prefix_known"] is False
        assert fv["asn_known"] is False
        assert fv["ssid_known"] is False

    def test_same_network_is_not_new(self, intel: IpIntel) -> None:
        profile = history(intel)

        fv = features(intel, login(BEIJING_SAME_24), profile)

        assert fv["new_ip_prefix"] is False
        assert fv["ip_prefix_known"] is True
        assert fv["new_asn"] is False
        assert fv["asn_known"] is True
        assert fv["new_country"] is False
        assert fv["new_city"] is False

    def test_another_24_of_the_same_operator_is_a_new_prefix_only(self, intel: IpIntel) -> None:
        profile = history(intel)

        fv = features(intel, login(BEIJING_OTHER_24), profile)

        assert fv["new_ip_prefix"] is True
        assert fv["ip_prefix_known"] is False
        assert fv["new_asn"] is False
        assert fv["new_country"] is False

    def test_another_operator_in_another_city(self, intel: IpIntel) -> None:
        profile = history(intel)

        fv = features(intel, login(SHANGHAI), profile)

        assert fv["new_ip_prefix"] is True
        assert fv["new_asn"] is True
        assert fv["asn_known"] is False
        assert fv["new_city"] is True
        assert fv["new_country"] is False

    def test_another_country(self, intel: IpIntel) -> None:
        profile = history(intel)

        fv = features(intel, login(TOR_BERLIN), profile)

        assert fv["new_country"] is True
        assert fv["new_asn"] is True

    def test_ipv6_novelty_is_per_48(self, intel: IpIntel) -> None:
        profile = learned(intel, login(BEIJING_V6, at=T0 - timedelta(days=1)))

        same = features(intel, login("2408:8207:1:abcd::5"), profile)
        other = features(intel, login("2408:8207:2::1"), profile)

        assert same["new_ip_prefix"] is False
        assert other["new_ip_prefix"] is True

    def test_novelty_against_a_private_address_has_no_country(self, intel: IpIntel) -> None:
        profile = history(intel)

        fv = features(intel, login(PRIVATE), profile)

        assert fv["new_country"] is None
        assert fv["new_asn"] is None
        assert fv["new_city"] is None
        assert fv["new_ip_prefix"] is True

    def test_ssid(self, intel: IpIntel) -> None:
        profile = history(intel, ssid_key="ssid-home")

        same = features(intel, login(ssid_key="ssid-home"), profile)
        other = features(intel, login(ssid_key="ssid-cafe"), profile)
        none = features(intel, login(), profile)

        assert (same["new_ssid"], same["ssid_known"]) == (False, True)
        assert (other["new_ssid"], other["ssid_known"]) == (True, False)
        assert (none["new_ssid"], none["ssid_known"]) == (None, False)

    def test_sim_changed_when_the_phone_was_learned_with_another_sim(
        self, intel: IpIntel
    ) -> None:
        profile = history(intel, phone_key="phone-1", iccid_key="sim-1", imsi_key="imsi-1")

        fv = features(intel, login(phone_key="phone-1", iccid_key="sim-2", imsi_key="imsi-2"),
                      profile)

        assert fv["sim_changed"] is True

    def test_sim_not_changed_with_the_same_sim(self, intel: IpIntel) -> None:
        profile = history(intel, phone_key="phone-1", iccid_key="sim-1", imsi_key="imsi-1")

        fv = features(intel, login(phone_key="phone-1", iccid_key="sim-1", imsi_key="imsi-1"),
                      profile)

        assert fv["sim_changed"] is False

    def test_sim_is_the_imsi_when_there_is_no_iccid(self, intel: IpIntel) -> None:
        profile = history(intel, phone_key="phone-1", imsi_key="imsi-1")

        same = features(intel, login(phone_key="phone-1", imsi_key="imsi-1"), profile)
        other = features(intel, login(phone_key="phone-1", imsi_key="imsi-2"), profile)

        assert same["sim_changed"] is False
        assert other["sim_changed"] is True

    def test_a_phone_never_learned_has_no_sim_to_change_from(self, intel: IpIntel) -> None:
        profile = history(intel, phone_key="phone-1", iccid_key="sim-1")

        fv = features(intel, login(phone_key="phone-2", iccid_key="sim-2"), profile)

        assert fv["sim_changed"] is False

    @pytest.mark.parametrize(
        "fields",
        [{"iccid_key": "sim-2"}, {"phone_key": "phone-1"}, {}],
        ids=["no phone", "no sim", "neither"],
    )
    def test_sim_changed_is_unknown_without_phone_or_sim(
        self, intel: IpIntel, fields: dict[str, str]
    ) -> None:
        profile = history(intel, phone_key="phone-1", iccid_key="sim-1")

        assert features(intel, login(**fields), profile)["sim_changed"] is None


class TestTime:
    def test_local_hour_is_in_the_ip_time_zone(self, intel: IpIntel) -> None:
        assert features(intel, login(BEIJING))["local_hour"] == pytest.approx(9.5)
        assert features(intel, login(SHANGHAI))["local_hour"] == pytest.approx(9.5)
        # Berlin in November is UTC+1.
        assert features(intel, login(TOR_BERLIN))["local_hour"] == pytest.approx(2.5)

    def test_local_hour_is_the_same_whatever_offset_the_client_wrote(
        self, intel: IpIntel
    ) -> None:
        as_utc8 = T0.astimezone(timezone(timedelta(hours=8)))
        as_minus5 = T0.astimezone(timezone(timedelta(hours=-5)))

        for when in (as_utc8, as_minus5):
            assert features(intel, login(BEIJING, at=when))["local_hour"] == pytest.approx(9.5)

    def test_without_a_time_zone_for_the_ip_the_client_offset_is_used(
        self, intel: IpIntel
    ) -> None:
        as_utc8 = T0.astimezone(timezone(timedelta(hours=8)))

        assert features(intel, login(PRIVATE, at=as_utc8))["local_hour"] == pytest.approx(9.5)
        assert features(intel, login(PRIVATE, at=T0))["local_hour"] == pytest.approx(1.5)

    @pytest.mark.parametrize(
        ("utc_hour", "local", "sin", "cos"),
        [(16, 0.0, 0.0, 1.0), (22, 6.0, 1.0, 0.0), (4, 12.0, 0.0, -1.0), (10, 18.0, -1.0, 0.0)],
    )
    def test_hour_on_the_unit_circle(
        self, intel: IpIntel, utc_hour: int, local: float, sin: float, cos: float
    ) -> None:
        fv = features(intel, login(BEIJING, at=T0.replace(hour=utc_hour, minute=0)))

        assert fv["local_hour"] == pytest.approx(local)
        assert fv["local_hour_sin"] == pytest.approx(sin, abs=1e-9)
        assert fv["local_hour_cos"] == pytest.approx(cos, abs=1e-9)

    def test_hour_rarity_is_low_at_the_usual_hour_and_high_at_a_never_used_one(
        self, intel: IpIntel
    ) -> None:
        profile = history(intel, days=20)  # every day at 09:30 Beijing time

        usual = features(intel, login(BEIJING), profile)["hour_rarity"]
        night = features(intel, login(BEIJING, at=T0.replace(hour=19)), profile)["hour_rarity"]

        assert isinstance(usual, float) and isinstance(night, float)
        assert usual < 0.1
        assert night > 0.7
        assert 0.0 <= usual <= night <= 1.0

    def test_hour_rarity_of_a_never_used_hour_grows_with_history(self, intel: IpIntel) -> None:
        at_3am = login(BEIJING, at=T0.replace(hour=19))

        few = features(intel, at_3am, history(intel, days=3))["hour_rarity"]
        many = features(intel, at_3am, history(intel, days=20))["hour_rarity"]

        assert few < many  # type: ignore[operator]

    def test_days_and_hours_since_last_login(self, intel: IpIntel) -> None:
        profile = learned(intel, login(at=T0 - timedelta(days=3, hours=12)))

        fv = features(intel, login(), profile)

        assert fv["days_since_last_login"] == pytest.approx(3.5)
        assert fv["hours_since_last_login"] == pytest.approx(84.0)

    def test_nothing_since_the_last_login_for_a_new_user(self, intel: IpIntel) -> None:
        fv = features(intel, login())

        assert fv["days_since_last_login"] is None
        assert fv["hours_since_last_login"] is None


class TestVelocity:
    def test_beijing_to_shanghai(self, intel: IpIntel) -> None:
        profile = learned(intel, login(BEIJING, at=T0 - timedelta(hours=2)))

        fv = features(intel, login(SHANGHAI), profile)

        distance, speed = fv["geo_distance_km"], fv["geo_velocity_kmh"]
        assert distance == pytest.approx(1070, abs=40)
        # Two hours for ~1070 km, less the city-level tolerance: a fast train, not a plane.
        assert 400 < speed < 550  # type: ignore[operator]

    def test_beijing_to_shanghai_in_ten_minutes_is_impossible(self, intel: IpIntel) -> None:
        profile = learned(intel, login(BEIJING, at=T0 - timedelta(minutes=10)))

        fv = features(intel, login(SHANGHAI), profile)

        assert fv["geo_velocity_kmh"] > 5000  # type: ignore[operator]

    def test_city_jitter_within_tolerance_is_standing_still(self, intel: IpIntel) -> None:
        profile = learned(intel, login(BEIJING, at=T0 - timedelta(minutes=2)))
        beijing = intel.lookup(BEIJING)
        # The same line geolocated ~40 km away (carrier NAT in the provincial capital).
        assert beijing.latitude is not None and beijing.longitude is not None
        jittered = dataclasses.replace(
            beijing, latitude=beijing.latitude + 0.3, longitude=beijing.longitude + 0.3
        )

        fv = features(intel, login(BEIJING), profile, ip=jittered)

        assert 20 < fv["geo_distance_km"] < 60  # type: ignore[operator]
        assert fv["geo_velocity_kmh"] == 0.0

    def test_same_place_is_zero(self, intel: IpIntel) -> None:
        profile = learned(intel, login(BEIJING, at=T0 - timedelta(seconds=5)))

        fv = features(intel, login(BEIJING_OTHER_24), profile)

        assert fv["geo_distance_km"] == pytest.approx(0.0, abs=1.0)
        assert fv["geo_velocity_kmh"] == 0.0

    def test_no_travel_without_a_last_location(self, intel: IpIntel) -> None:
        new_user = features(intel, login(SHANGHAI))
        from_private = features(intel, login(PRIVATE), history(intel))

        for fv in (new_user, from_private):
            assert fv["geo_distance_km"] is None
            assert fv["geo_velocity_kmh"] is None

    def test_user_failures_count_the_profile_and_this_failure(self, intel: IpIntel) -> None:
        profile = history(intel)
        for ago in (timedelta(hours=30), timedelta(hours=2), timedelta(minutes=5)):
            profile = note_failure(profile, (T0 - ago).timestamp())

        failed = features(intel, login(auth_result=AuthResult.FAILURE), profile)
        ok = features(intel, login(), profile)

        assert (failed["user_failures_10m"], failed["user_failures_24h"]) == (2, 3)
        assert (ok["user_failures_10m"], ok["user_failures_24h"]) == (1, 2)
        assert failed["auth_failed"] is True
        assert ok["auth_failed"] is False

    def test_first_failure_of_a_new_user(self, intel: IpIntel) -> None:
        fv = features(intel, login(auth_result=AuthResult.FAILURE))

        assert (fv["user_failures_10m"], fv["user_failures_24h"]) == (1, 1)

    def test_shared_counts_are_the_window_plus_this_event(self, intel: IpIntel) -> None:
        window = Velocity(ip_users_10m=4, ip_failures_10m=7, asn_users_10m=30,
                          asn_failures_10m=12, device_accounts_30d=2)

        ok = features(intel, login(device_key="dev-1"), velocity=window)
        failed = features(intel, login(device_key="dev-1", auth_result=AuthResult.FAILURE),
                          velocity=window)

        assert ok["ip_users_10m"] == 5
        assert ok["ip_failures_10m"] == 7
        assert ok["asn_users_10m"] == 31
        assert ok["asn_failures_10m"] == 12
        assert ok["device_accounts_30d"] == 3
        assert failed["ip_users_10m"] == 5
        assert failed["ip_failures_10m"] == 8
        assert failed["asn_users_10m"] == 31
        assert failed["asn_failures_10m"] == 13
        assert failed["device_accounts_30d"] == 3

    def test_first_event_anywhere_counts_itself(self, intel: IpIntel) -> None:
        fv = features(intel, login(device_key="dev-1", auth_result=AuthResult.FAILURE))

        assert fv["ip_users_10m"] == 1
        assert fv["ip_failures_10m"] == 1
        assert fv["asn_users_10m"] == 1
        assert fv["asn_failures_10m"] == 1
        assert fv["device_accounts_30d"] == 1

    def test_no_device_or_asn_count_without_a_device_or_an_asn(self, intel: IpIntel) -> None:
        fv = features(intel, login(PRIVATE), velocity=Velocity(device_accounts_30d=3))

        assert fv["device_accounts_30d"] is None
        assert fv["asn_users_10m"] is None
        assert fv["asn_failures_10m"] is None


_PYTHON_TYPES = {"bool": (bool,), "int": (int,), "float": (float, int), "str": (str,)}


def _sample_vectors(intel: IpIntel) -> list[FeatureVector]:
    rich = login(
        SHANGHAI,
        device_key="dev-2",
        device_model="Xiaomi 14",
        os_name="Android",
        os_version="14",
        bluetooth_key="bt-1",
        ssid_key="ssid-1",
        phone_key="phone-1",
        iccid_key="sim-2",
        user_agent="okhttp/4.12.0",
        auth_result=AuthResult.FAILURE,
    )
    profile = history(intel, days=3, device_key="dev-1", phone_key="phone-1", iccid_key="sim-1",
                      os_name="Android", os_version="15")
    return [
        features(intel, login()),
        features(intel, login(PRIVATE), profile),
        features(intel, rich, profile, Velocity(1, 1, 1, 1, 1)),
        features(intel, login(BEIJING_V6, device_key="dev-1"), profile),
    ]


def test_extractor_and_catalog_name_exactly_the_same_features(intel: IpIntel) -> None:
    for fv in _sample_vectors(intel):
        assert set(fv) == set(BY_NAME)
        assert len(fv) == len(BY_NAME)


def test_every_value_has_the_catalog_type(intel: IpIntel) -> None:
    for fv in _sample_vectors(intel):
        for name, value in fv.items():
            if value is None:
                continue
            kind = BY_NAME[name].kind
            assert isinstance(value, _PYTHON_TYPES[kind]), (name, value)
            if kind != "bool":
                assert not isinstance(value, bool), (name, value)
            if isinstance(value, float):
                assert math.isfinite(value), (name, value)
