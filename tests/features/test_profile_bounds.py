"""The profile stays bounded, and what a full map drops is what matters least: the entry
with the lowest decayed count, never the one just seen."""

from __future__ import annotations

import json

from features.profile import (
    ITEM_HALF_LIFE_S,
    MAX_ITEMS,
    Sighting,
    UserProfile,
    learn,
    mark_bad,
    resolved,
    trust_device,
)

DAY = 86_400.0
T0 = 1_780_000_000.0


def login(profile: UserProfile, ts: float, *, ssid: str, device: str = "dev-home",
          prefix: str = "net-home") -> UserProfile:
    return learn(profile, Sighting(ts=ts, device_key=device, ssid_key=ssid,
                                   ip_prefix_key=prefix, country="CN", city="Beijing"))


def test_every_map_stays_within_max_items() -> None:
    profile = UserProfile()
    for n in range(5 * MAX_ITEMS):
        profile = login(profile, T0 + n * 60, ssid=f"ssid-{n}", device=f"dev-{n}",
                        prefix=f"net-{n}")
    assert len(profile.ssids) == len(profile.devices) == len(profile.ip_prefixes) == MAX_ITEMS
    assert profile.device_traits.keys() <= profile.devices.keys()
    assert profile.logins == 5 * MAX_ITEMS


def test_a_long_used_network_outlives_a_burst_of_one_off_networks() -> None:
    profile = UserProfile()
    for day in range(200):  # home Wi-Fi every day for 200 days
        profile = login(profile, T0 + day * DAY, ssid="home")
    trip = T0 + 230 * DAY  # a month later, a trip through hotels and cafés
    for n in range(3 * MAX_ITEMS):
        profile = login(profile, trip + n * 3600, ssid=f"hotel-{n}")
    assert "home" in profile.ssids
    assert profile.ssids["home"].count == 200
    # Most recently seen first would have dropped it: 96 one-off networks came after it.
    assert len(profile.ssids) == MAX_ITEMS


def test_the_item_just_seen_is_kept_even_when_everything_else_weighs_more() -> None:
    profile = UserProfile()
    for n in range(MAX_ITEMS):
        for k in range(20):
            profile = login(profile, T0 + n * DAY + k * 60, ssid=f"regular-{n}")
    later = T0 + MAX_ITEMS * DAY
    profile = login(profile, later, ssid="brand-new")
    assert "brand-new" in profile.ssids  # a real move to a new home must be learnable
    # The one that went is the lightest: the least used of the oldest.
    assert "regular-0" not in profile.ssids
    profile = login(profile, later + 60, ssid="brand-new")
    assert profile.ssids["brand-new"].count == 2


def test_a_frequent_item_unused_for_a_year_loses_to_recent_ones() -> None:
    profile = UserProfile()
    for k in range(100):  # an old phone, used a lot, then sold
        profile = login(profile, T0 + k * 3600, ssid="home", device="old-phone")
    a_year = T0 + 365 * DAY  # 100 sightings halved 12 times weigh < 0.03 of one
    assert 100 * 0.5 ** ((a_year - T0) / ITEM_HALF_LIFE_S) < 1
    for n in range(MAX_ITEMS):
        profile = login(profile, a_year + n * 3600, ssid="home", device=f"phone-{n}")
    assert "old-phone" not in profile.devices
    assert "old-phone" not in profile.device_traits


def test_the_largest_possible_profile_is_bounded() -> None:
    """Every map full, with identifiers as long as pseudonyms get: the stated bound."""
    profile = UserProfile()
    for n in range(3 * MAX_ITEMS):
        key = f"{n:04d}" + "x" * 40
        profile = learn(profile, Sighting(
            ts=T0 + n * 60, device_key="d" + key, device_model=f"Model {n}",
            os_family=f"os{n}", os_version="14.1.2", bluetooth_key="b" + key,
            ip_prefix_key="p" + key, asn=n, country=f"C{n}", city=f"City {n}",
            latitude=39.9, longitude=116.4, ssid_key="s" + key, phone_key="f" + key,
            sim_key="i" + key, local_hour=float(n % 24)), trust=True)
        profile = trust_device(profile, Sighting(ts=T0 + n * 60, device_key="d" + key))
    size = len(json.dumps(profile.to_dict()))
    assert len(profile.devices) == MAX_ITEMS
    assert size < 200_000, size


def test_fraud_marks_and_reports_stay_bounded_and_survive_storage_and_rotation() -> None:
    profile = login(UserProfile(), T0, ssid="ssid-home")
    for n in range(3 * MAX_ITEMS):
        profile = mark_bad(profile, Sighting(ts=T0 + n, device_key=f"dev-{n}",
                                             ip_prefix_key=f"net-{n}"),
                           at=T0 + n, reported=n % 2 == 0)
    newest = f"dev-{3 * MAX_ITEMS - 2}"
    assert len(profile.bad) == len(profile.reported) == MAX_ITEMS
    assert newest in profile.reported and "dev-0" not in profile.reported
    # The user's own verified device is never marked, reported or not.
    assert mark_bad(profile, Sighting(ts=T0, device_key="dev-home"), at=T0,
                    reported=True).reported == profile.reported
    assert UserProfile.from_dict(json.loads(json.dumps(profile.to_dict()))) == profile
    assert "dev-rotated" in resolved(profile, {"dev-rotated": (newest,)}).reported
