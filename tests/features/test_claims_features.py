"""Features that treat what the client reports as claims (issue #17): the device's own
travel, builds that only move forward, the web's device, a household's device, and how wide
a user's normal is."""

from __future__ import annotations

from datetime import timedelta

import pytest

from features.ipintel import IpIntel
from features.profile import UserProfile, Velocity
from tests.features.test_extract import (
    AWS_NEW_YORK,
    BEIJING,
    BEIJING_OTHER_24,
    GUANGZHOU,
    SHANGHAI,
    T0,
    features,
    history,
    learned,
    login,
)

APP = "MallApp/8.6.2 (Android 14; Xiaomi 14) okhttp/4.12.0"
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/126.0.0.0 Safari/537.36")
LONDON = "81.2.69.1"


@pytest.fixture(scope="session")
def intel() -> IpIntel:
    return IpIntel.bundled()


class TestDeviceTravel:
    def test_a_device_verified_in_beijing_cannot_be_in_london_an_hour_later(
            self, intel: IpIntel) -> None:
        profile = learned(intel, login(at=T0 - timedelta(hours=1), device_key="dev-1"))

        fv = features(intel, login(LONDON, device_key="dev-1"), profile)

        assert fv["device_speed_kmh"] is not None and fv["device_speed_kmh"] > 5000

    def test_the_device_speed_is_from_the_devices_own_last_place(self, intel: IpIntel) -> None:
        # The user's last login was another device in Shanghai; dev-1 was last in Beijing
        # a week ago: a week is time enough to get anywhere.
        profile = learned(intel, login(at=T0 - timedelta(days=7), device_key="dev-1"),
                          login(SHANGHAI, at=T0 - timedelta(minutes=20), device_key="dev-2"))

        fv = features(intel, login(GUANGZHOU, device_key="dev-1"), profile)

        assert fv["device_speed_kmh"] == pytest.approx(0.0, abs=20.0)
        assert fv["geo_velocity_kmh"] > 1000  # the user-level speed, from Shanghai

    def test_an_address_that_does_not_locate_the_user_gives_no_speed(
            self, intel: IpIntel) -> None:
        profile = learned(intel, login(at=T0 - timedelta(hours=1), device_key="dev-1"))

        fv = features(intel, login(AWS_NEW_YORK, device_key="dev-1"), profile)

        assert fv["device_speed_kmh"] is None


class TestBuilds:
    def test_an_older_app_build_than_the_device_ran_is_a_downgrade(self, intel: IpIntel) -> None:
        profile = history(intel, 3, device_key="dev-1", user_agent=APP)

        old_build = APP.replace("8.6.2", "8.1.0")
        older = features(intel, login(device_key="dev-1", user_agent=old_build), profile)
        new_build = APP.replace("8.6.2", "8.7.0")
        newer = features(intel, login(device_key="dev-1", user_agent=new_build), profile)

        assert older["client_version"] == "8.1.0" and older["client_downgrade"] is True
        assert newer["client_downgrade"] is False

    def test_a_browser_version_is_the_web_clients_build(self, intel: IpIntel) -> None:
        fv = features(intel, login(user_agent=CHROME))
        assert fv["client_version"] == "126.0"


class TestWebDevice:
    def test_a_browser_seen_in_verified_web_logins_is_known(self, intel: IpIntel) -> None:
        profile = history(intel, 3, user_agent=CHROME)

        same = features(intel, login(user_agent=CHROME.replace("126.0.0.0", "127.0.0.0")), profile)
        mac = CHROME.replace("Windows NT 10.0; Win64; x64", "Macintosh; Intel Mac OS X 10_15_7")
        other = features(intel, login(user_agent=mac), profile)

        # A browser update keeps the family; another OS is another browser.
        assert same["browser_known"] is True
        assert other["browser_known"] is False

    def test_an_app_login_has_no_browser_family(self, intel: IpIntel) -> None:
        fv = features(intel, login(device_key="dev-1", user_agent=APP), history(intel, 2))
        assert fv["browser_family"] is None and fv["browser_known"] is None


class TestHousehold:
    @pytest.mark.parametrize(
        ("ip", "accounts", "expected"),
        [
            (BEIJING, 2, True),  # a family member's phone on the user's own block
            (BEIJING, 1, False),  # nobody else uses it: simply a new device
            (BEIJING_OTHER_24, 2, False),  # not on the user's own network
            (AWS_NEW_YORK, 3, False),  # an anonymiser is nobody's home
        ],
    )
    def test_a_new_device_other_accounts_use_on_the_users_network(
            self, intel: IpIntel, ip: str, accounts: int, expected: bool) -> None:
        profile = history(intel, 3, device_key="dev-1")

        fv = features(intel, login(ip, device_key="dev-2"), profile,
                      Velocity(device_accounts_30d=accounts - 1))

        assert fv["household_device"] is expected

    def test_unknown_for_a_new_user(self, intel: IpIntel) -> None:
        fv = features(intel, login(device_key="dev-2"), UserProfile(),
                      Velocity(device_accounts_30d=1))
        assert fv["household_device"] is None


class TestWidthOfNormal:
    def test_the_profile_says_how_many_devices_countries_and_networks(
            self, intel: IpIntel) -> None:
        profile = learned(intel, login(device_key="a", at=T0 - timedelta(days=3)),
                          login(LONDON, device_key="b", at=T0 - timedelta(days=2)),
                          login(SHANGHAI, device_key="c", at=T0 - timedelta(days=1)))

        fv = features(intel, login(device_key="a"), profile)

        assert (fv["user_devices"], fv["user_countries"]) == (3, 2)
        assert fv["user_asns"] == 3
        assert fv["same_country_as_last"] is True


class TestLastLoginOverMobileData:
    """Where the last login was on mobile data its place is the carrier's exit (issue #17:
    a phone on mobile data, then the computer at home, read as impossible travel)."""

    def test_the_profile_keeps_whether_its_last_place_came_over_mobile_data(
            self, intel: IpIntel) -> None:
        from features.event import NetworkType
        from features.profile import UserProfile

        mobile = learned(intel, login(SHANGHAI, at=T0 - timedelta(minutes=30),
                                      network_type=NetworkType.CELLULAR))
        fv = features(intel, login(), mobile)

        assert fv["last_login_mobile"] is True
        assert fv["same_country_as_last"] is True
        assert fv["geo_velocity_kmh"] > 1000  # the distance is measured all the same
        assert UserProfile.from_dict(mobile.to_dict()).last_mobile is True

        # A located login at home replaces it; a profile stored before the field reads False.
        home = learned(intel, login(SHANGHAI, at=T0 - timedelta(minutes=30),
                                    network_type=NetworkType.WIFI), profile=mobile)
        assert features(intel, login(), home)["last_login_mobile"] is False
        old = {k: v for k, v in mobile.to_dict().items() if k != "last_mobile"}
        assert UserProfile.from_dict(old).last_mobile is False

    def test_unknown_without_a_located_login(self, intel: IpIntel) -> None:
        assert features(intel, login())["last_login_mobile"] is None
        hosted = learned(intel, login(AWS_NEW_YORK, at=T0 - timedelta(hours=2)))
        assert features(intel, login(), hosted)["last_login_mobile"] is None
