"""A user's login history and the velocity counters around an event, and how they learn.

The profile is bounded: each map keeps at most ``MAX_ITEMS`` entries, the top ones by a
decayed count (each sighting counts 1, halved for every ``ITEM_HALF_LIFE_S`` since the item
was last seen; an item just seen always stays), and the failure list the last
``MAX_FAILURES`` attempts of the last 24 hours, so a profile never grows past a few
kilobytes however long the account lives. Keys of identifier maps are
pseudonyms (see ``LoginEvent``); countries, ASNs and cities are coarse and kept as is.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from operator import attrgetter
from typing import Any

from features.event import LoginEvent
from features.ipintel import IpInfo

MAX_ITEMS = 32
# How fast an item's sightings fade when a full map must drop one: the home Wi-Fi of two
# years, unused for a month, still outweighs a burst of one-off hotel networks, while a
# phone sold a year ago weighs almost nothing.
ITEM_HALF_LIFE_S = 30 * 86_400.0
MAX_FAILURES = 64
FAILURE_HORIZON_S = 86_400.0
# The hour histogram forgets: a user who moved to night shifts half a year ago should
# not still look unusual. Each learned login multiplies old counts by this factor.
HOUR_DECAY = 0.98


@dataclass(frozen=True, slots=True)
class Seen:
    """How often and when an item (device, network, country...) was seen. Immutable, so
    copying a profile only needs to copy its maps."""

    count: int
    first: float
    last: float


@dataclass(frozen=True, slots=True)
class DeviceTraits:
    """What a known device id reported when it was last verified: a replayed id on other
    hardware shows up as a mismatch. ``os_version`` and ``client`` (the app or browser
    build) are the highest seen: they only move forward. ``at``, ``lat`` and ``lon`` are
    when and where the device was last verified, for the device's own travel speed."""

    model: str | None = None
    os_family: str | None = None
    os_version: str | None = None
    bluetooth: str | None = None
    sim: str | None = None
    client: str | None = None
    at: float | None = None
    lat: float | None = None
    lon: float | None = None


@dataclass(slots=True)
class UserProfile:
    """Everything learned about one user from verified-good logins."""

    logins: int = 0
    # of them through a hosting or VPN range: a VPN user's normal is a data centre's address
    anonymised: int = 0
    first_seen: float | None = None
    last_login: float | None = None
    last_lat: float | None = None
    last_lon: float | None = None
    last_country: str | None = None
    last_city: str | None = None
    # the last located login came over mobile data (the client's claim on a verified login):
    # its place is wherever the carrier's NAT exit is, not where the user was
    last_mobile: bool = False
    devices: dict[str, Seen] = field(default_factory=dict)
    device_traits: dict[str, DeviceTraits] = field(default_factory=dict)
    models: dict[str, Seen] = field(default_factory=dict)
    os_families: dict[str, Seen] = field(default_factory=dict)
    bluetooth: dict[str, Seen] = field(default_factory=dict)
    ip_prefixes: dict[str, Seen] = field(default_factory=dict)
    asns: dict[str, Seen] = field(default_factory=dict)
    countries: dict[str, Seen] = field(default_factory=dict)
    cities: dict[str, Seen] = field(default_factory=dict)
    ssids: dict[str, Seen] = field(default_factory=dict)
    # browser family / OS / device type of web logins (no device id), the web's "device"
    browsers: dict[str, Seen] = field(default_factory=dict)
    sims: dict[str, dict[str, Seen]] = field(default_factory=dict)
    hours: list[float] = field(default_factory=lambda: [0.0] * 24)
    failures: list[float] = field(default_factory=list)
    # device key -> when a step-up on it was passed; only these devices earn trust
    trusted: dict[str, float] = field(default_factory=dict)
    # pseudonyms of devices, address blocks and Wi-Fi names seen in confirmed fraud,
    # with the time they were marked
    bad: dict[str, float] = field(default_factory=dict)
    # pseudonyms of devices the account's owner or an analyst named in a fraud verdict (a
    # user's report, an analyst's label), with the time: a step-up passed on one of them is
    # what a phished code produces, and teaches nothing
    reported: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data, the same as ``dataclasses.asdict`` gives, built directly:
        this runs on every stored login, and ``asdict`` deep-copies field by field."""
        return {
            "logins": self.logins,
            "anonymised": self.anonymised,
            "first_seen": self.first_seen,
            "last_login": self.last_login,
            "last_lat": self.last_lat,
            "last_lon": self.last_lon,
            "last_country": self.last_country,
            "last_city": self.last_city,
            "last_mobile": self.last_mobile,
            "devices": _seen_dict(self.devices),
            "device_traits": {
                k: {"model": t.model, "os_family": t.os_family, "os_version": t.os_version,
                    "bluetooth": t.bluetooth, "sim": t.sim, "client": t.client, "at": t.at,
                    "lat": t.lat, "lon": t.lon}
                for k, t in self.device_traits.items()
            },
            "models": _seen_dict(self.models),
            "os_families": _seen_dict(self.os_families),
            "bluetooth": _seen_dict(self.bluetooth),
            "ip_prefixes": _seen_dict(self.ip_prefixes),
            "asns": _seen_dict(self.asns),
            "countries": _seen_dict(self.countries),
            "cities": _seen_dict(self.cities),
            "ssids": _seen_dict(self.ssids),
            "browsers": _seen_dict(self.browsers),
            "sims": {k: _seen_dict(v) for k, v in self.sims.items()},
            "hours": list(self.hours),
            "failures": list(self.failures),
            "trusted": dict(self.trusted),
            "bad": dict(self.bad),
            "reported": dict(self.reported),
        }

    def copy(self) -> UserProfile:
        """An independent copy (the ``Seen`` values are immutable and shared).

        Built slot by slot rather than with ``dataclasses.replace``, which re-runs
        ``__init__`` with every field: a scoring pass copies profiles several times."""
        out = _blank(UserProfile)
        out.logins = self.logins
        out.anonymised = self.anonymised
        out.first_seen = self.first_seen
        out.last_login = self.last_login
        out.last_lat = self.last_lat
        out.last_lon = self.last_lon
        out.last_country = self.last_country
        out.last_city = self.last_city
        out.last_mobile = self.last_mobile
        out.devices = self.devices.copy()
        out.device_traits = self.device_traits.copy()
        out.models = self.models.copy()
        out.os_families = self.os_families.copy()
        out.bluetooth = self.bluetooth.copy()
        out.ip_prefixes = self.ip_prefixes.copy()
        out.asns = self.asns.copy()
        out.countries = self.countries.copy()
        out.cities = self.cities.copy()
        out.ssids = self.ssids.copy()
        out.browsers = self.browsers.copy()
        out.sims = {k: v.copy() for k, v in self.sims.items()}
        out.hours = self.hours.copy()
        out.failures = self.failures.copy()
        out.trusted = self.trusted.copy()
        out.bad = self.bad.copy()
        out.reported = self.reported.copy()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UserProfile:
        seen_map = _seen_map
        out = cls(
            logins=int(data.get("logins", 0)),
            anonymised=int(data.get("anonymised", 0)),
            first_seen=data.get("first_seen"),
            last_login=data.get("last_login"),
            last_lat=data.get("last_lat"),
            last_lon=data.get("last_lon"),
            last_country=data.get("last_country"),
            last_city=data.get("last_city"),
            last_mobile=bool(data.get("last_mobile", False)),
            device_traits={k: DeviceTraits(**v) for k, v in
                           (data.get("device_traits") or {}).items()},
            sims={p: seen_map(m) for p, m in (data.get("sims") or {}).items()},
            hours=[float(h) for h in (data.get("hours") or [0.0] * 24)],
            failures=[float(t) for t in data.get("failures") or []],
            trusted={str(k): float(v) for k, v in (data.get("trusted") or {}).items()},
            bad={str(k): float(v) for k, v in (data.get("bad") or {}).items()},
            reported={str(k): float(v) for k, v in (data.get("reported") or {}).items()},
        )
        for name in ("devices", "models", "os_families", "bluetooth", "ip_prefixes", "asns",
                     "countries", "cities", "ssids", "browsers"):
            setattr(out, name, seen_map(data.get(name)))
        if len(out.hours) != 24:
            raise ValueError("profile hour histogram must have 24 buckets")
        return out


# The sustained-abuse counters (issue #18): per address block and per ASN, the attempts,
# failures and failing accounts of each 10-minute bucket of event time, the last
# ABUSE_BUCKETS of them (6 hours). Counts only: the failing accounts are a 64-bit sketch,
# one bit per account chosen by its pseudonym (``account_bit``), never the pseudonyms.
ABUSE_BUCKET_S = 600
ABUSE_BUCKETS = 36
ABUSE_SKETCH_BITS = 64
# One bucket's counts: (bucket number: event time // ABUSE_BUCKET_S, attempts, failures,
# failing-accounts sketch as an unsigned 64-bit integer).
AbuseBucket = tuple[int, int, int, int]


def abuse_bucket(ts: float) -> int:
    """The number of the 10-minute bucket that event time ``ts`` falls in."""
    return int(ts // ABUSE_BUCKET_S)


def account_bit(user_key: str) -> int:
    """The sketch bit of an account: one of 64, from its pseudonym (a keyed hash, so an
    attacker cannot pick accounts that share a bit). The sketch's set bits never
    outnumber the accounts, so a count read from it is never more than the truth."""
    return 1 << (zlib.crc32(user_key.encode()) % ABUSE_SKETCH_BITS)


@dataclass(frozen=True, slots=True)
class Velocity:
    """Counts from the shared sliding windows, *excluding* the event being scored.

    ``tenant_*`` count every attempt on the tenant, the baseline against which a
    credential-stuffing wave stands out. ``ip_prefix_abuse`` and ``asn_abuse`` are the
    address block's and the ASN's 10-minute buckets of the last 6 hours (``AbuseBucket``,
    oldest first, empty buckets left out), from which ``features.extract`` tells how long
    a network has been failing across many accounts."""

    ip_users_10m: int = 0
    ip_failures_10m: int = 0
    asn_users_10m: int = 0
    asn_failures_10m: int = 0
    device_accounts_30d: int = 0
    tenant_attempts_10m: int = 0
    tenant_failures_10m: int = 0
    ip_prefix_abuse: tuple[AbuseBucket, ...] = ()
    asn_abuse: tuple[AbuseBucket, ...] = ()


def model_family(model: str | None) -> str | None:
    """Case- and space-insensitive device model name."""
    if not model:
        return None
    return " ".join(model.lower().split())


# Cached: the same few OS versions recur, and extraction and learning parse them several
# times per login. Bounded, since clients send the text.
@lru_cache(maxsize=1024)
def version_tuple(version: str | None) -> tuple[int, ...] | None:
    """``"14.2.1"`` -> ``(14, 2, 1)``; None when it does not start with a number."""
    if not version:
        return None
    parts: list[int] = []
    for piece in version.replace("_", ".").split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) or None


def _seen_dict(m: dict[str, Seen]) -> dict[str, dict[str, Any]]:
    return {k: {"count": s.count, "first": s.first, "last": s.last} for k, s in m.items()}


_blank = object.__new__
_set_count, _set_first, _set_last = (Seen.__dict__[n].__set__ for n in ("count", "first", "last"))


def _seen(count: int, first: float, last: float) -> Seen:
    """``Seen(count, first, last)``, built slot by slot: about twice as fast as the frozen
    dataclass's ``__init__``, and learning builds one per map it touches."""
    item = _blank(Seen)
    _set_count(item, count)
    _set_first(item, first)
    _set_last(item, last)
    return item


def _seen_map(m: dict[str, Any] | None) -> dict[str, Seen]:
    """``{key: Seen(**value)}``; a well-formed value is built slot by slot (twice as fast
    as the frozen dataclass's ``__init__``), anything else goes through ``Seen(**value)``
    and fails as it always did."""
    out: dict[str, Seen] = {}
    if not m:
        return out
    for key, value in m.items():
        try:
            if len(value) != 3:
                raise KeyError(key)
            item = _blank(Seen)
            _set_count(item, value["count"])
            _set_first(item, value["first"])
            _set_last(item, value["last"])
        except (KeyError, TypeError):
            item = Seen(**value)
        out[key] = item
    return out


def _touch(m: dict[str, Seen], key: str | None, ts: float) -> None:
    if key is None:
        return
    item = m.get(key)
    if item is None:
        m[key] = _seen(1, ts, ts)
        if len(m) > MAX_ITEMS:
            del m[_weakest(m, keep=key, now=ts)]
    else:
        m[key] = _seen(item.count + 1, item.first, max(item.last, ts))


def _weakest(m: dict[str, Seen], *, keep: str, now: float) -> str:
    """The entry with the lowest decayed count, other than ``keep``; the least recently seen
    of those that tie."""

    def weight(k: str) -> tuple[float, float]:
        item = m[k]
        age = max(0.0, now - item.last)
        return item.count * 0.5 ** (age / ITEM_HALF_LIFE_S), item.last

    return min((k for k in m if k != keep), key=weight)


def recent_failures(failures: list[float], now: float) -> list[float]:
    """Failures within 24 h of the newest one (or of ``now``), oldest first, at most
    ``MAX_FAILURES``. Events may arrive out of order: a late one drops nothing newer."""
    newest = max([now, *failures])
    kept = sorted(t for t in failures if t > newest - FAILURE_HORIZON_S)
    return kept[-MAX_FAILURES:]


def note_failure(profile: UserProfile, ts: float) -> UserProfile:
    """A failed attempt on this account (whoever made it)."""
    out = profile.copy()
    out.failures = recent_failures([*profile.failures, ts], ts)
    return out


def resolved(profile: UserProfile, aliases: Mapping[str, tuple[str, ...]]) -> UserProfile:
    """A copy of ``profile`` where what it keeps under a retired pseudonym of one of the
    ``aliases`` (current pseudonym -> its retired ones, during a key rotation) is also kept
    under the current one. ``profile`` itself is left as it is."""
    out = profile.copy()
    old_to_new = {old: new for new, olds in aliases.items() for old in olds}
    maps: list[dict[str, Any]] = [out.devices, out.device_traits, out.bluetooth,
                                  out.ip_prefixes, out.ssids, out.trusted, out.bad, out.reported,
                                  out.sims]
    for new, olds in aliases.items():
        for m in (*maps, *out.sims.values()):
            _alias(m, new, olds)
    for key, traits in out.device_traits.items():
        if traits.sim in old_to_new:
            out.device_traits[key] = replace(traits, sim=old_to_new[traits.sim])
    return out


def _alias(m: dict[str, Any], new: str, olds: tuple[str, ...]) -> None:
    if new not in m:
        old = next((o for o in olds if o in m), None)
        if old is not None:
            m[new] = m[old]


@dataclass(frozen=True, slots=True)
class Sighting:
    """What a verified-good login teaches a profile: pseudonyms and coarse facts only.

    Kept with the stored decision so that a login verified later (a passed step-up, a
    label days afterwards) can be learned then, without the raw event.
    """

    ts: float
    device_key: str | None = None
    device_model: str | None = None
    os_family: str | None = None
    os_version: str | None = None
    bluetooth_key: str | None = None
    ip_prefix_key: str | None = None
    asn: int | None = None
    country: str | None = None
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    ssid_key: str | None = None
    phone_key: str | None = None
    sim_key: str | None = None
    local_hour: float | None = None
    client_version: str | None = None
    browser: str | None = None
    anonymised: bool = False  # through a hosting or VPN range
    mobile: bool = False  # over mobile data, as the client says

    def to_dict(self) -> dict[str, Any]:
        # Every field is a plain value: no need for asdict's recursive deep copy.
        return dict(zip(_SIGHTING_FIELDS, _sighting_values(self), strict=True))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sighting:
        return cls(**data)


_SIGHTING_FIELDS = tuple(f.name for f in fields(Sighting))
_sighting_values = attrgetter(*_SIGHTING_FIELDS)


def sighting(event: LoginEvent, ip: IpInfo, values: Mapping[str, Any]) -> Sighting:
    """The learnable part of an event, with OS and model as the extractor resolved them."""
    locates = ip.locates_user
    return Sighting(
        ts=event.ts,
        device_key=event.device_key,
        device_model=values.get("device_model"),
        os_family=values.get("os_family"),
        os_version=event.os_version,
        bluetooth_key=event.bluetooth_key,
        ip_prefix_key=event.ip_prefix_key,
        asn=ip.asn,
        country=ip.country,
        city=ip.city,
        latitude=ip.latitude if locates else None,
        longitude=ip.longitude if locates else None,
        ssid_key=event.ssid_key,
        phone_key=event.phone_key,
        sim_key=event.sim_key,
        local_hour=values.get("local_hour"),
        client_version=values.get("client_version"),
        browser=values.get("browser_family"),
        anonymised=ip.is_hosting or ip.is_vpn,
        mobile=values.get("network_type") == "cellular",
    )


_NO_TRAITS = DeviceTraits()


def learn(profile: UserProfile, seen: Sighting, *, trust: bool = False) -> UserProfile:
    """The profile after a verified-good successful login; ``profile`` is left untouched.

    ``trust`` marks the device as trusted: the login passed a step-up on it.
    """
    out = profile.copy()
    ts = seen.ts
    out.logins += 1
    out.anonymised += seen.anonymised
    out.first_seen = ts if out.first_seen is None else min(out.first_seen, ts)
    if out.last_login is None or ts >= out.last_login:
        out.last_login = ts
        if seen.latitude is not None and seen.longitude is not None:
            out.last_lat, out.last_lon = seen.latitude, seen.longitude
            out.last_country, out.last_city = seen.country, seen.city
            out.last_mobile = seen.mobile
    model = model_family(seen.device_model)
    _touch(out.devices, seen.device_key, ts)
    if seen.device_key is not None:
        before = out.device_traits.get(seen.device_key, _NO_TRAITS)
        best = before.os_version
        mine = version_tuple(seen.os_version)
        if mine and (best is None or mine > (version_tuple(best) or ())):
            best = seen.os_version
        client = before.client
        build = version_tuple(seen.client_version)
        if build and (client is None or build > (version_tuple(client) or ())):
            client = seen.client_version
        newest = before.at is None or ts >= before.at
        at = ts if newest else before.at
        lat, lon = before.lat, before.lon
        if newest and seen.latitude is not None and seen.longitude is not None:
            lat, lon = seen.latitude, seen.longitude
        traits = (model or before.model, seen.os_family or before.os_family, best,
                  seen.bluetooth_key or before.bluetooth, seen.sim_key or before.sim,
                  client, at, lat, lon)
        out.device_traits[seen.device_key] = DeviceTraits(*traits)
        for gone in out.device_traits.keys() - out.devices.keys():
            del out.device_traits[gone]
        for gone in out.trusted.keys() - out.devices.keys():
            del out.trusted[gone]
    _touch(out.models, model, ts)
    _touch(out.os_families, seen.os_family, ts)
    _touch(out.bluetooth, seen.bluetooth_key, ts)
    _touch(out.ip_prefixes, seen.ip_prefix_key, ts)
    _touch(out.asns, str(seen.asn) if seen.asn is not None else None, ts)
    _touch(out.countries, seen.country, ts)
    _touch(out.cities, f"{seen.country}/{seen.city}" if seen.city else None, ts)
    _touch(out.ssids, seen.ssid_key, ts)
    if seen.device_key is None:
        _touch(out.browsers, seen.browser, ts)
    if seen.phone_key and seen.sim_key:
        sims = out.sims.setdefault(seen.phone_key, {})
        _touch(sims, seen.sim_key, ts)
        if len(out.sims) > MAX_ITEMS:
            del out.sims[next(iter(out.sims))]
    if seen.local_hour is not None:
        out.hours = [h * HOUR_DECAY for h in out.hours]
        out.hours[int(seen.local_hour) % 24] += 1.0
    if trust:
        _trust(out, seen)  # ``out`` is already this call's own copy
    return out


# Most devices one account may newly trust in a day: whoever can pass step-ups on many
# devices in a day is not one customer buying one phone.
MAX_TRUST_GRANTS_PER_DAY = 2


def trust_device(profile: UserProfile, seen: Sighting) -> UserProfile:
    """The profile with the login's device trusted (a step-up passed on it) and its
    device, address block and Wi-Fi no longer marked bad."""
    out = profile.copy()
    _trust(out, seen)
    return out


def unmark(profile: UserProfile, seen: Sighting) -> UserProfile:
    """The profile without the bad marks a (reversed) fraud label put on the login's device,
    address block and Wi-Fi, and without the device's report."""
    out = profile.copy()
    for key in (seen.device_key, seen.ip_prefix_key, seen.ssid_key):
        if key is not None:
            out.bad.pop(key, None)
    if seen.device_key is not None:
        out.reported.pop(seen.device_key, None)
    return out


def trust_grants_today(profile: UserProfile, ts: float) -> int:
    """Devices newly trusted within a day of ``ts``."""
    return sum(1 for t in profile.trusted.values() if abs(ts - t) < 86_400.0)


def _trust(out: UserProfile, seen: Sighting) -> None:
    key = seen.device_key
    if key is not None and key in out.devices and (
            key in out.trusted or trust_grants_today(out, seen.ts) < MAX_TRUST_GRANTS_PER_DAY):
        out.trusted[key] = seen.ts
    for key in (seen.device_key, seen.ip_prefix_key, seen.ssid_key):
        if key is not None:
            out.bad.pop(key, None)


def _untouch(m: dict[str, Seen], key: str | None) -> None:
    if key is None or (item := m.get(key)) is None:
        return
    if item.count <= 1:
        del m[key]
    else:
        m[key] = _seen(item.count - 1, item.first, item.last)


def unlearn(profile: UserProfile, seen: Sighting) -> UserProfile:
    """The profile with a login that was learned taken back out (it proved fraudulent).

    Counts drop by one and items seen only in that login disappear, its device loses any
    trust, and its hour leaves the histogram (as far as decay allows). The last location is
    left alone: the next verified login replaces it.
    """
    out = profile.copy()
    out.logins = max(0, out.logins - 1)
    out.anonymised = max(0, out.anonymised - seen.anonymised)
    for m, key in (
        (out.devices, seen.device_key),
        (out.bluetooth, seen.bluetooth_key),
        (out.ip_prefixes, seen.ip_prefix_key),
        (out.asns, str(seen.asn) if seen.asn is not None else None),
        (out.countries, seen.country),
        (out.cities, f"{seen.country}/{seen.city}" if seen.city else None),
        (out.ssids, seen.ssid_key),
        (out.browsers, seen.browser if seen.device_key is None else None),
        (out.models, model_family(seen.device_model)),
        (out.os_families, seen.os_family),
    ):
        _untouch(m, key)
    if seen.phone_key and seen.sim_key and seen.phone_key in out.sims:
        _untouch(out.sims[seen.phone_key], seen.sim_key)
    for gone in out.device_traits.keys() - out.devices.keys():
        del out.device_traits[gone]
    if seen.device_key is not None:
        out.trusted.pop(seen.device_key, None)
    if seen.local_hour is not None:
        h = int(seen.local_hour) % 24
        out.hours[h] = max(0.0, out.hours[h] - 1.0)
    return out


def mark_bad(profile: UserProfile, seen: Sighting, *, at: float,
             reported: bool = False) -> UserProfile:
    """Remember the device, address block and Wi-Fi of a fraudulent login as bad for
    this user (bounded like every other map: the oldest marks go first); ``reported``: the
    verdict is the owner's or an analyst's, and the device is also kept as reported.

    What the user's verified history holds is never marked: an attacker who used the
    victim's Wi-Fi name or address block must not turn the victim's own network against
    the victim (take a learned fraudulent login out with ``unlearn`` first).
    """
    out = profile.copy()
    for key, known in ((seen.device_key, out.devices), (seen.ip_prefix_key, out.ip_prefixes),
                       (seen.ssid_key, out.ssids)):
        if key is not None and key not in known:
            out.bad[key] = at
    if reported and seen.device_key is not None and seen.device_key not in out.devices:
        out.reported[seen.device_key] = at
    for marks in (out.bad, out.reported):
        while len(marks) > MAX_ITEMS:
            del marks[min(marks, key=marks.__getitem__)]
    return out


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance on a sphere of the Earth's mean radius."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(a)))
