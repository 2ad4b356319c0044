"""Turn one login event and the user's history into named features.

``extract`` is the one feature code path: the scoring service, replays, backtests and the
notebooks all call it. It is pure: time is the event's own timestamp, history and velocity
counts come in as arguments, and the result depends on nothing else.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from features.catalog import identity_features
from features.event import EventType, LoginEvent, LoginMethod, NetworkType
from features.ipintel import IpInfo
from features.profile import (
    ABUSE_BUCKET_S,
    ABUSE_BUCKETS,
    AbuseBucket,
    UserProfile,
    Velocity,
    abuse_bucket,
    account_bit,
    haversine_km,
    model_family,
    version_tuple,
)
from features.useragent import parse_user_agent

Value = bool | int | float | str | None

# City-level geolocation of the same line moves by tens of km (carrier NAT exits sit in
# the provincial capital), so that much distance is treated as standing still.
GEO_TOLERANCE_KM = 100.0
# Below a minute apart, speed is meaningless noise; divide by at least this.
MIN_TRAVEL_HOURS = 1.0 / 60.0
HOUR_PRIOR = 0.25
SIGNAL_FEATURES: tuple[str, ...] = (
    "phone_possible", "phone_valid", "phone_type", "phone_region", "phone_carrier",
    "phone_ip_country_mismatch", "phone_accounts_30d", "phone_risk_level",
    "phone_recycled_status", "phone_recycled_since_last_login", "ip_reputation",
)

_NO_SIGNALS: dict[str, Value] = dict.fromkeys(SIGNAL_FEATURES)
# The event's enums -> their values as plain text: ``member.value`` is a Python-level
# descriptor in this Python, a dict lookup is not.
_VALUE: dict[StrEnum, str] = {m: m.value for enum in (EventType, LoginMethod, NetworkType)
                              for m in enum}


@dataclass(frozen=True, slots=True)
class Listed:
    """The operator's allow and deny list entries the login's address matched, as text
    (``riskengine.core.rules.Lists.lookup``); None where none did."""

    allow: str | None = None
    deny: str | None = None


NOT_LISTED = Listed()


class FeatureVector(Mapping[str, Value]):
    """Named feature values; every name is in ``features.catalog.FEATURES``. Read-only."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Value]) -> None:
        self._values = values

    @property
    def mapping(self) -> Mapping[str, Value]:
        """The values themselves, for a hot loop that only reads them: a dict's ``get`` is
        a C call, this wrapper's a Python one."""
        return self._values

    def __getitem__(self, name: str) -> Value:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"FeatureVector({self._values!r})"

    def to_dict(self) -> dict[str, Value]:
        """A plain dict of the values (a copy): one C call, where ``dict(vector)`` goes
        through ``__getitem__`` once per feature."""
        return dict(self._values)

    # Straight to the dict: rules, policy, model and store read features by name many
    # times per event, and Mapping's generic versions go through __getitem__ and KeyError.
    def get(self, name: str, default: Any = None) -> Any:
        return self._values.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def keys(self) -> KeysView[str]:
        return self._values.keys()

    def items(self) -> ItemsView[str, Value]:
        return self._values.items()

    def values(self) -> ValuesView[Value]:
        return self._values.values()


# An IPv4 address in the one form ``str(ipaddress.IPv4Address(...))`` writes it (what the
# wire contract hands on): four decimal octets, no leading zeros, ASCII digits only.
_CANONICAL_IPV4 = re.compile(
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])")


def ip_prefix(ip: str) -> str:
    """The /24 network of an IPv4 address or the /48 of an IPv6 one, as text.

    An address already in canonical IPv4 form is cut at its last dot (a regular expression
    in C, a quarter of parsing it with ``ipaddress``); anything else goes through
    ``ip_prefix_reference``, the definition, which the tests compare it with."""
    if _CANONICAL_IPV4.fullmatch(ip):
        return f"{ip[:ip.rfind('.')]}.0/24"
    return ip_prefix_reference(ip)


def ip_prefix_reference(ip: str) -> str:
    """``ip_prefix`` by ``ipaddress`` alone: the definition (raises ``ValueError`` for what
    is not an address)."""
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address):
        mapped = addr.ipv4_mapped
        if mapped is None:
            return str(ipaddress.IPv6Network((int(addr) >> 80 << 80, 48)))
        addr = mapped
    # Formatted from the bytes: building an ip_network from text costs ten times more.
    a, b, c, _ = addr.packed
    return f"{a}.{b}.{c}.0/24"


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def local_hour(when: datetime, timezone: str | None) -> float:
    """Hour of day (fractional) where the login came from.

    The IP's time zone when known; otherwise the offset the client put in the timestamp
    (UTC when it sent none).
    """
    zone = _zone(timezone) if timezone else None
    local = when.astimezone(zone) if zone is not None else when
    return local.hour + local.minute / 60.0


def hour_rarity(hours: list[float], hour: float) -> float:
    """1 - 24 * p(hour) under the user's smoothed hour histogram, clipped to [0, 1]."""
    h = int(hour) % 24
    total = sum(hours)
    mass = 0.5 * hours[h] + 0.25 * hours[h - 1] + 0.25 * hours[(h + 1) % 24]
    p = (mass + HOUR_PRIOR) / (total + 24 * HOUR_PRIOR)
    return min(1.0, max(0.0, 1.0 - 24.0 * p))


# A network's 10-minute bucket is abusive when it failed in it on at least ABUSE_ACCOUNTS
# accounts and at least ABUSE_FAILURE_SHARE of its attempts failed. A bot trying stolen
# passwords fails on nearly every attempt; customers behind a carrier NAT mistype on a few
# percent of theirs (7 % on the busiest address of the rules' near miss), and a block or
# ASN busy enough to hold 8 failing accounts in 10 minutes has well over 16 attempts in it.
# A household or an office has not 8 accounts failing in one bucket, let alone in several.
ABUSE_ACCOUNTS = 8
ABUSE_FAILURE_SHARE = 0.5


def sustained_abuse(
    buckets: tuple[AbuseBucket, ...], now: float, *, failed: bool, bit: int
) -> tuple[int, int]:
    """Minutes of the last 6 hours (whole 10-minute buckets) in which a network was
    abusive, and its
    failing accounts in the current and the previous bucket, from its buckets (oldest
    first), with this attempt (``failed``, its account's sketch ``bit``) counted in.

    The buckets end at the latest one the network has, when that is later than ``now``:
    a login stamped in the past cannot look at an emptier history."""
    mine = abuse_bucket(now)
    latest = max(mine, buckets[-1][0]) if buckets else mine
    first = latest - ABUSE_BUCKETS + 1
    counts = {b: (a, f, s) for b, a, f, s in buckets if b >= first}
    if mine >= first:
        a, f, s = counts.get(mine, (0, 0, 0))
        counts[mine] = (a + 1, f + failed, s | bit if failed else s)
    abusive = sum(s.bit_count() >= ABUSE_ACCOUNTS and f >= ABUSE_FAILURE_SHARE * a
                  for a, f, s in counts.values())
    recent = counts.get(latest, (0, 0, 0))[2] | counts.get(latest - 1, (0, 0, 0))[2]
    return abusive * ABUSE_BUCKET_S // 60, recent.bit_count()


def _count_since(times: list[float], now: float, seconds: float) -> int:
    return sum(1 for t in times if now - seconds < t <= now)


def _differs(now: str | None, before: str | None) -> bool:
    return now is not None and before is not None and now != before


TRUST_TTL_S = 180 * 86_400.0


def _trusted(key: str | None, p: UserProfile, now: float) -> bool:
    return key is not None and key in p.trusted and now - p.trusted[key] < TRUST_TTL_S


def _novel(known: bool | None) -> bool | None:
    return None if known is None else not known


_PRODUCT = re.compile(r"([A-Za-z][A-Za-z0-9_.-]*)/([0-9][0-9A-Za-z_.]*)")


def client_version(user_agent: str | None, browser_version: str | None) -> str | None:
    """The app's build from its own product token (``MallApp/8.6.2 (...)``), else the
    browser's version."""
    if not user_agent:
        return None
    m = _PRODUCT.match(user_agent)
    if m and m.group(1) != "Mozilla":
        return m.group(2)[:32]
    return browser_version


def _speed(distance_km: float, hours: float) -> float:
    return max(0.0, distance_km - GEO_TOLERANCE_KM) / max(hours, MIN_TRAVEL_HOURS)


def extract(
    event: LoginEvent,
    ip: IpInfo,
    profile: UserProfile | None,
    velocity: Velocity,
    *,
    listed: Listed = NOT_LISTED,
    signals: Mapping[str, Value] | None = None,
) -> FeatureVector:
    """Features of ``event`` against ``profile`` (None or empty for a user never seen),
    with the operator's list entries its address matched (``listed``) and the external
    signals' values (``signals``, by name from ``SIGNAL_FEATURES``; a signal left out is
    None: unknown).

    Novelty features are None for a new user: there is nothing to be new against, and
    the cold-start policy scores such users on population signals only.
    """
    p = profile if profile is not None else UserProfile()
    is_new = p.logins == 0
    now = event.ts
    failed = event.failed

    ua = parse_user_agent(event.user_agent) if event.user_agent else None
    os_family = (event.os_name or (ua and ua.os) or "").strip() or None
    os_version = event.os_version or (ua.os_version if ua else None)
    device_model = model_family(event.device_model or (ua.device_model if ua else None))
    client = client_version(event.user_agent, ua.browser_version if ua else None)
    # A web login has no device id: its browser family stands in for the device.
    browser = (f"{ua.browser}|{ua.os}|{ua.device_type}"
               if ua is not None and event.device_key is None and ua.browser else None)

    def known(present: str | None, container: Mapping[str, object]) -> bool | None:
        if present is None or is_new:
            return None
        return present in container

    device_known = known(event.device_key, p.devices)
    ssid_known = known(event.ssid_key, p.ssids)
    prefix_known = known(event.ip_prefix_key, p.ip_prefixes)
    asn_known = known(str(ip.asn) if ip.asn is not None else None, p.asns)
    country_known = known(ip.country, p.countries)
    city_known = known(f"{ip.country}/{ip.city}" if ip.city else None, p.cities)

    device_key = event.device_key
    traits = p.device_traits.get(device_key) if device_key in p.devices else None
    os_downgrade = device_mismatch = device_sim_mismatch = client_downgrade = None
    device_speed = None
    if traits is not None:
        build, best_build = version_tuple(client), version_tuple(traits.client)
        if build and best_build:
            client_downgrade = build < best_build
        mine, theirs = version_tuple(os_version), version_tuple(traits.os_version)
        if mine and theirs and os_family and traits.os_family:
            os_downgrade = os_family == traits.os_family and mine < theirs
        # A replayed record carries the hardware's own model, OS and Bluetooth address; a
        # SIM is another matter (the customer's new card), so it is told apart.
        device_mismatch = (
            _differs(device_model, traits.model)
            or _differs(os_family, traits.os_family)
            or _differs(event.bluetooth_key, traits.bluetooth)
        )
        device_sim_mismatch = _differs(event.sim_key, traits.sim)

    sim_changed: bool | None = None
    if event.phone_key and event.sim_key and not is_new:
        sims = p.sims.get(event.phone_key)
        sim_changed = bool(sims) and event.sim_key not in (sims or {})

    hour = local_hour(event.timestamp, ip.timezone)
    # IpInfo's facts are properties: read once each.
    hosting, vpn, tor, locates = ip.is_hosting, ip.is_vpn, ip.is_tor, ip.locates_user
    days_since = hours_since = distance = speed = None
    if p.last_login is not None:
        hours_since = abs(now - p.last_login) / 3600.0
        days_since = hours_since / 24.0
        # The location of a VPN, Tor or hosting exit says nothing about where the user is.
        if locates and p.last_lat is not None and p.last_lon is not None:
            distance = haversine_km(p.last_lat, p.last_lon, ip.latitude or 0.0, ip.longitude or 0.0)
            speed = _speed(distance, hours_since)
    if (traits is not None and traits.at is not None and traits.lat is not None
            and traits.lon is not None and locates):
        device_speed = _speed(
            haversine_km(traits.lat, traits.lon, ip.latitude or 0.0, ip.longitude or 0.0),
            abs(now - traits.at) / 3600.0)
    anonymiser = bool(hosting or vpn or tor)
    device_accounts = velocity.device_accounts_30d + 1 if event.device_key is not None else None

    bit = account_bit(event.user_key)
    prefix_abuse_min, prefix_failing = sustained_abuse(velocity.ip_prefix_abuse, now,
                                                     failed=failed, bit=bit)
    asn_abuse_min, asn_failing = sustained_abuse(velocity.asn_abuse, now, failed=failed, bit=bit)
    # This attempt counts in its own IP window.
    ip_users, ip_failures = velocity.ip_users_10m + 1, velocity.ip_failures_10m + int(failed)
    values: dict[str, Value] = {
        "auth_failed": failed,
        "event_type": _VALUE[event.event_type],
        "login_method": _VALUE[event.login_method],
        "network_type": _VALUE[event.network_type],
        "user_is_new": is_new,
        "user_logins_count": p.logins,
        "days_since_last_login": days_since,
        "device_id_present": event.device_key is not None,
        "device_known": bool(device_known),
        "device_trusted": _trusted(device_key, p, now),
        "marked_bad": bool(p.bad) and any(
            k is not None and k in p.bad
            for k in (event.device_key, event.ip_prefix_key, event.ssid_key)
        ),
        "device_reported": bool(p.reported) and event.device_key in p.reported,
        "new_device": _novel(device_known),
        "device_model": device_model,
        "device_model_known": known(device_model, p.models),
        "os_family": os_family,
        "os_family_known": known(os_family, p.os_families),
        "os_downgrade": os_downgrade,
        "device_mismatch": device_mismatch,
        "bluetooth_known": known(event.bluetooth_key, p.bluetooth),
        "device_accounts_30d": device_accounts,
        "device_sim_mismatch": device_sim_mismatch,
        "device_id_kind": event.device_id_kind,
        "client_version": client,
        "client_downgrade": client_downgrade,
        "device_speed_kmh": device_speed,
        "browser_family": browser,
        "browser_known": known(browser, p.browsers),
        "household_device": (
            device_known is False and (device_accounts or 0) >= 2 and not anonymiser
            and bool(prefix_known or ssid_known)
        ) if device_known is not None else None,
        "user_devices": len(p.devices),
        "user_countries": len(p.countries),
        "user_asns": len(p.asns),
        "user_anonymised_logins": p.anonymised,
        "ip_version": ip.version,
        "ip_is_private": ip.is_private,
        "ip_country": ip.country,
        "ip_city": ip.city,
        "ip_asn": ip.asn,
        "ip_latitude_deg": ip.latitude,
        "ip_longitude_deg": ip.longitude,
        "ip_is_hosting": hosting,
        "ip_is_vpn": vpn,
        "ip_is_tor": tor,
        "ip_allowlisted": listed.allow,
        "ip_denylisted": listed.deny,
        "new_ip_prefix": _novel(prefix_known),
        "new_asn": _novel(asn_known),
        "new_country": _novel(country_known),
        "new_city": _novel(city_known),
        "new_ssid": _novel(ssid_known),
        "ssid_known": bool(ssid_known),
        "ip_prefix_known": bool(prefix_known),
        "asn_known": bool(asn_known),
        "last_login_mobile": p.last_mobile if p.last_lat is not None else None,
        "same_country_as_last": (
            ip.country == p.last_country
            if ip.country is not None and p.last_country is not None else None
        ),
        "sim_changed": sim_changed,
        "local_hour": hour,
        "local_hour_sin": math.sin(2 * math.pi * hour / 24.0),
        "local_hour_cos": math.cos(2 * math.pi * hour / 24.0),
        "hour_rarity": None if is_new else hour_rarity(p.hours, hour),
        "geo_distance_km": distance,
        "geo_velocity_kmh": speed,
        "hours_since_last_login": hours_since,
        "user_failures_10m": _count_since(p.failures, now, 600.0) + int(failed),
        "user_failures_24h": _count_since(p.failures, now, 86_400.0) + int(failed),
        "tenant_failures_10m": velocity.tenant_failures_10m + int(failed),
        "tenant_failure_ratio_10m": (velocity.tenant_failures_10m + int(failed))
        / (velocity.tenant_attempts_10m + 1),
        "ip_users_10m": ip_users,
        "ip_failures_10m": ip_failures,
        "ip_failures_per_user_10m": ip_failures / ip_users,
        "asn_users_10m": velocity.asn_users_10m + 1 if ip.asn is not None else None,
        "asn_failures_10m": (
            velocity.asn_failures_10m + int(failed) if ip.asn is not None else None
        ),
        "ip_prefix_abuse_minutes_6h": prefix_abuse_min,
        "ip_prefix_failed_accounts_20m": prefix_failing,
        "asn_abuse_minutes_6h": asn_abuse_min if ip.asn is not None else None,
        "asn_failed_accounts_20m": asn_failing if ip.asn is not None else None,
        **identity_features(event),
        # Looked up outside (riskengine.adapters.signals): they need the raw phone number,
        # which never reaches the event, or another service.
        **_NO_SIGNALS,
    }
    if signals:
        values.update(signals)
    return FeatureVector(values)
