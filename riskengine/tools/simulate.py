"""Labelled login traffic of an online mall's customers, with attacks mixed in.

Each line is a ``/v1/score`` request body plus ``label`` {``attack``, ``scenario``}, in time
order, deterministic by seed. Customers live in Chinese cities (and a minority abroad), use
one to three devices on home and office Wi-Fi and their carrier's NAT, keep daily and weekly
rhythms, and drift in ways naive engines flag: a new phone, OS upgrades, trips, VPNs, hotel
and café Wi-Fi, family tablets, password typos. Attackers draw from the same pools of
networks, device models, user agents and Wi-Fi names as customers, so no artefact of the
generator gives them away; what differs is only what differs in real attacks.

That is the default world, the one the rules were tuned on. ``Simulator(world=World.draw(n))``
draws another (``riskengine.tools.worlds``): other shares of every behaviour above, what the
clients can read, the attack mix and the weak-spot attacks (``WEAK_SPOT_SCENARIOS``); its
labels also say what the actor passes if challenged (``passes``) and, for attacks, when the
victim reports a login that got in (``reported_after_hours``, or null).
"""

from __future__ import annotations

import json
import math
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from riskengine.tools import simdata as sd
from riskengine.tools.worlds import WORLD_STREAM_OFFSET, World

START = datetime(2026, 9, 1, tzinfo=UTC)
SCENARIOS = (
    "credential_stuffing",
    "password_spraying",
    "account_takeover",
    "sim_swap",
    "impossible_travel",
    "device_replay",
    "slow_poisoning",
)
# Only in drawn worlds (World.draw): the attacks a device-and-network engine is weakest
# against. (a) the victim's whole device record replayed, from hosting abroad or a proxy at
# home; (b) a residential proxy in the victim's own city and provider; (c) the victim's
# number ported or swapped to the attacker's SIM, then a login by SMS code.
WEAK_SPOT_SCENARIOS = (
    "device_record_replay",
    "residential_proxy",
    "number_port",
)
# What each actor can pass when challenged (labels of drawn worlds).
ALL_STEP_UPS = ("sms_otp", "email_otp", "captcha")
# Attacks that hold the victim's number and so receive its SMS codes.
HOLDS_THE_NUMBER = frozenset({"sim_swap", "number_port", "recycled_number_takeover"})
# Bots, not people: they pass a captcha only with a paid solving service.
BOT_SCENARIOS = frozenset({"credential_stuffing", "password_spraying", "high_risk_registration"})
PLACEHOLDER_BLUETOOTH = "02:00:00:00:00:00"  # Android, to apps without the permission
PLACEHOLDER_IDFA = "00000000-0000-0000-0000-000000000000"
PLACEHOLDER_OAID = "0000000000000000"
UNKNOWN_SSID = "<unknown ssid>"  # what Android returns to an app without location permission
# Only with Simulator(signals=True): attacks that external signals reveal.
SIGNAL_SCENARIOS = (
    "recycled_number_takeover",
    "high_risk_registration",
)
# The signal scenarios draw from their own random stream, so that a seed's other traffic
# stays exactly what it is without them.
SIGNAL_SEED_OFFSET = 0x51_6E_A1

Event = dict[str, Any]


# -- identifiers ------------------------------------------------------------------------


def _luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(string.digits, k=n))


def _uuid(rng: random.Random, upper: bool = False) -> str:
    h = f"{rng.getrandbits(128):032x}"
    text = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return text.upper() if upper else text


def _device_id(rng: random.Random, kind: str) -> str:
    if kind == "imei":
        body = "86" + _digits(rng, 12)
        return body + _luhn_digit(body)
    return _uuid(rng, upper=kind == "idfv")


def _mac(rng: random.Random) -> str:
    first = rng.randrange(256) & 0xFC  # unicast, globally administered
    return ":".join(f"{b:02x}" for b in [first, *(rng.randrange(256) for _ in range(5))])


_COUNTRY_CODES = {"US": "+1", "DE": "+49", "GB": "+44", "JP": "+81", "SG": "+65", "TH": "+66",
                  "HK": "+852", "TW": "+886"}


def _phone(rng: random.Random, country: str) -> str:
    if country == "CN":
        return f"+861{rng.choice('3456789')}{_digits(rng, 9)}"
    return _COUNTRY_CODES[country] + str(rng.randint(2, 9)) + _digits(rng, 8)


def _sim(rng: random.Random) -> dict[str, str]:
    return {"imsi": "460" + rng.choice(("00", "01", "11")) + _digits(rng, 10),
            "iccid": "8986" + _digits(rng, 15)}


def _ip(rng: random.Random, net16: str, third: int | None = None) -> str:
    """An address in an IPv4 /16 (and /24 when ``third`` is given) or an IPv6 /32 or /48."""
    if ":" in net16:
        hextets = [rng.randrange(1, 0xFFFF) for _ in range(3)]
        if net16.count(":") == 1:  # a /32: pick the /48 too
            net16 = f"{net16}:{hextets.pop():x}"
        return f"{net16}:{hextets[0]:x}::{hextets[1]:x}"
    return f"{net16}.{rng.randrange(256) if third is None else third}.{rng.randrange(1, 255)}"


# -- customers ----------------------------------------------------------------------------


@dataclass(slots=True)
class Device:
    id: str | None
    model: sd.PhoneModel | None
    os_version: str
    bluetooth: str | None
    user_agent: str
    # What the app may read on this install (drawn worlds; the default world reads all).
    sim_readable: bool = True
    ssid_readable: bool = True

    def wire(self) -> dict[str, Any] | None:
        if self.model is None:
            return None
        return {"id": self.id, "model": self.model.model, "os_name": self.model.os_name,
                "os_version": self.os_version, "bluetooth_mac": self.bluetooth}


@dataclass(slots=True)
class Customer:
    index: int
    user_id: str
    phone: str
    place: sd.Place
    sim: dict[str, str]
    devices: list[Device]
    home: tuple[str, int]  # broadband /16 and the /24 inside it
    home6: str  # the /48 delegated to the home line
    work: tuple[str, int]
    home_ssid: str
    work_ssid: str
    rate_per_day: float
    peaks: tuple[int, ...]
    ipv6: bool
    vpn_share: float
    joins_day: int
    trips: list[tuple[int, int, sd.Place]] = field(default_factory=list)
    events: list[tuple[float, int]] = field(default_factory=list)  # (epoch, device index)
    # Drawn worlds only (World.draw): what this customer does that the default world lacks.
    new_sim_day: int = -1
    move_day: int = -1
    borrow_rate: float = 0.0  # days on which a relative's phone is used, share
    borrowed: Device | None = None
    mobile_web: Device | None = None
    trip_sims: dict[int, dict[str, str]] = field(default_factory=dict)  # trip start: SIM
    airport_trips: set[int] = field(default_factory=set)  # trip starts
    sms_next: bool = False  # the next app login is by SMS code (a new SIM or phone)
    household: list[Customer] = field(default_factory=list)


def _pick_phone(rng: random.Random, phones: tuple[sd.PhoneModel, ...] = sd.PHONES,
                weights: list[float] | None = None) -> sd.PhoneModel:
    return rng.choices(phones, weights=weights or [p.share for p in phones])[0]


def _new_phone(rng: random.Random, model: sd.PhoneModel | None = None) -> Device:
    model = model or _pick_phone(rng)
    version = rng.choice(model.os_versions[-2:])
    return Device(
        id=_device_id(rng, model.id_kind),
        model=model,
        os_version=version,
        # Android hides the real address from apps; many report the placeholder.
        bluetooth=_mac(rng) if rng.random() < 0.5 else "02:00:00:00:00:00",
        user_agent=sd.APP_UA.format(os_name=model.os_name, os_version=version, model=model.model),
    )


def _desktop(rng: random.Random, uas: tuple[str, ...] = sd.DESKTOP_UAS) -> Device:
    """A browser: no device record, only its user agent."""
    return Device(None, None, "", None, rng.choice(uas))


def _local_sim(rng: random.Random, country: str) -> dict[str, str]:
    """A prepaid SIM bought abroad: the local operator's IMSI and ICCID."""
    return {"imsi": sd.MCC[country] + _digits(rng, 12), "iccid": "89" + _digits(rng, 17)}


def _phone_table(world: World) -> tuple[tuple[sd.PhoneModel, ...], list[float] | None]:
    """The phones of the world and their weights (None: the table's own shares)."""
    if not world.ios_share and not world.old_android_share:
        return sd.PHONES, None
    phones = (*sd.PHONES, *sd.OLD_ANDROID)
    ios = sum(p.share for p in sd.PHONES if p.os_name == "iOS")
    other = sum(p.share for p in sd.PHONES if p.os_name != "iOS")
    old = sum(p.share for p in sd.OLD_ANDROID)
    ios_share = world.ios_share or ios / (ios + other)
    rest = max(0.0, 1.0 - ios_share - world.old_android_share)
    weights = [(p.share / ios * ios_share if p.os_name == "iOS" else p.share / other * rest)
               for p in sd.PHONES]
    weights += [p.share / old * world.old_android_share for p in sd.OLD_ANDROID]
    return phones, weights


def _ssid(rng: random.Random, patterns: tuple[str, ...]) -> str:
    return rng.choice(patterns).format(x="".join(rng.choices("ABCDEF0123456789", k=4)))


class Simulator:
    """Generates the labelled traffic of ``users`` customers over ``days`` days.

    >>> events = list(Simulator(users=20, days=3, seed=1).events())
    >>> all(e["timestamp"] <= f["timestamp"] for e, f in zip(events, events[1:]))
    True

    With ``signals=True`` it adds the attacks that external signals reveal
    (``SIGNAL_SCENARIOS``) and, once the events are read, the lists a carrier or risk
    service would hold about this traffic (``signal_lists``, ``write_signal_files``). The
    rest of the traffic, event ids included, is the same as without.

    ``world`` says how customers and attackers behave (``riskengine.tools.worlds``); the
    default world is the traffic the rules were tuned on. Whatever a drawn world adds is
    drawn from its own random stream (``xrng``), so that the default world's traffic stays
    byte for byte what it always was.
    """

    def __init__(self, *, users: int, days: int, seed: int, signals: bool = False,
                 world: World | None = None) -> None:
        self.users = users
        self.days = days
        self.seed = seed
        self.signals = signals
        self.world = world or World.default()
        self.signal_lists: SignalLists | None = None
        self.rng = random.Random(seed)
        self.xrng = random.Random(seed * 1_000_003 + self.world.seed + WORLD_STREAM_OFFSET)
        self._phones, self._phone_weights = _phone_table(self.world)
        self._ports: list[tuple[str, str]] = []  # (number, when) the carrier reports
        self.customers = [self._customer(i) for i in range(users)]
        self._settle()
        self._zones = {p.tz: ZoneInfo(p.tz) for p in (*sd.CHINA, *sd.ABROAD)}
        self._ids = f"sim{seed}" if self.world == World.default() else \
            f"sim{seed}w{self.world.seed}"

    # -- people

    def _customer(self, i: int) -> Customer:
        rng, w = self.rng, self.world
        abroad = rng.random() < w.abroad_share
        places = sd.ABROAD if abroad else sd.CHINA
        place = rng.choices(places, weights=[p.weight for p in places])[0]
        phone = _phone(rng, "CN" if not abroad or rng.random() < 0.5 else place.country)
        email = f"{rng.choice(['li', 'wang', 'zhang', 'liu', 'chen', 'yang', 'zhao'])}" \
                f".{rng.choice(['wei', 'fang', 'na', 'min', 'jing', 'lei', 'yan'])}{i}" \
                f"@{rng.choice(['qq.com', '163.com', 'outlook.com', 'gmail.com'])}"
        devices = [self._phone(rng)]
        if rng.random() < w.web_share:
            devices.append(_desktop(rng))
        if rng.random() < w.second_device_share:
            devices.append(self._phone(rng))  # a tablet or second phone
        # Heavy-tailed activity: most log in every few days, a few many times a day.
        rate = min(8.0, rng.lognormvariate(math.log(0.7), 0.9))
        customer = Customer(
            index=i,
            user_id=phone if rng.random() < 0.7 else email,
            phone=phone,
            place=place,
            sim=_sim(rng),
            devices=devices,
            home=(rng.choice(place.broadband), rng.randrange(256)),
            home6=(f"{rng.choice(place.ipv6)}:{rng.randrange(1, 0xFFFF):x}" if place.ipv6
                   else ""),
            work=(rng.choice(place.broadband), rng.randrange(256)),
            home_ssid=_ssid(rng, sd.HOME_SSIDS),
            work_ssid=_ssid(rng, sd.WORK_SSIDS),
            rate_per_day=rate,
            peaks=tuple(sorted(rng.sample((7, 8, 9, 12, 13, 18, 19, 20, 21, 22, 23), k=3))),
            ipv6=bool(place.ipv6) and rng.random() < w.ipv6_share,
            vpn_share=rng.choice((0.0,) * 18 + (0.3, 0.8)),
            joins_day=rng.randrange(self.days) if rng.random() < w.joins_share else -1,
        )
        if rng.random() < w.trip_share:  # a trip by plane
            start = rng.randrange(max(1, self.days - 3))
            where = rng.choice(sd.ABROAD if rng.random() < w.trip_abroad_share else sd.CHINA)
            if where is not place:
                customer.trips.append((start, start + rng.randint(2, 7), where))
        return customer

    # -- the world's extras (drawn from xrng; none of them happens in the default world)

    def _pick(self, rng: random.Random) -> sd.PhoneModel:
        return _pick_phone(rng, self._phones, self._phone_weights)

    def _phone(self, rng: random.Random, model: sd.PhoneModel | None = None) -> Device:
        """A phone from the world's table, with what its app may read on this install."""
        return self._dress(_new_phone(rng, model or self._pick(rng)))

    def _dress(self, device: Device) -> Device:
        """The world's platform rules on one install: which id the app reads, whether it
        sees the SIM, the Wi-Fi name and the Bluetooth address."""
        w, x = self.world, self.xrng
        model = device.model
        if model is None:
            return device
        ios = model.os_name == "iOS"
        old_android = model in sd.OLD_ANDROID
        if not ios and not old_android:
            r = x.random()
            if r < w.android_id_share:
                device.id = f"{x.getrandbits(64):016x}"  # Settings.Secure.ANDROID_ID
            elif r < w.android_id_share + w.vendor_id_share:
                device.id = f"{x.getrandbits(256):064x}"  # the vendor's VAID
        if x.random() < w.ad_tracking_off_share and device.id is not None:
            if ios:
                device.id = PLACEHOLDER_IDFA  # the app keys on the IDFA; tracking denied
            elif not old_android and "-" in device.id:
                device.id = PLACEHOLDER_OAID  # MSA's OAID with "limit ad tracking" on
        if w.platform_limits:
            # iOS apps never read the SIM or the Bluetooth address; Android 10+ keeps the
            # IMSI and ICCID from ordinary apps, and the Bluetooth address from apps
            # without the permission.
            device.sim_readable = old_android or (not ios and x.random() < w.sim_ids_share)
            if ios:
                device.bluetooth = None
            elif x.random() < w.bluetooth_share:
                device.bluetooth = _mac(x)
            else:
                device.bluetooth = PLACEHOLDER_BLUETOOTH
            device.ssid_readable = x.random() < w.ssid_share
        return device

    def _settle(self) -> None:
        """What the drawn world's customers do beyond the default world's: households,
        relatives' phones, phone browsers, new SIMs, moves, local SIMs and airports."""
        w, x = self.world, self.xrng
        unassigned = [c for c in self.customers if x.random() < w.household_share]
        while len(unassigned) >= 2:  # households of two or three on one line and tablet
            size = min(len(unassigned), x.choice((2, 2, 3)))
            members, unassigned = unassigned[:size], unassigned[size:]
            head = members[0]
            tablet = self._phone(x)
            for c in members:
                if c is not head:
                    c.home, c.home6, c.home_ssid = head.home, head.home6, head.home_ssid
                    c.ipv6, c.place = head.ipv6, head.place
                c.devices.append(tablet)
                c.household = [m for m in members if m is not c]
        for c in self.customers:
            if w.national_ipv6 and not c.home6 and c.place.country == "CN":
                c.home6 = f"{x.choice(sd.CN_MOBILE_IPV6)}:{x.randrange(1, 0xFFFF):x}"
                c.ipv6 = x.random() < w.ipv6_share
            if x.random() < w.new_sim_share:
                c.new_sim_day = x.randrange(self.days)
            if x.random() < w.address_churn_share:
                c.move_day = x.randrange(1, max(2, self.days))
            if x.random() < w.borrowed_device_share:
                c.borrow_rate = x.uniform(0.02, 0.15)
                c.borrowed = next((m.devices[0] for m in c.household
                                   if m.devices[0].model is not None), None) or self._phone(x)
            if w.mobile_web_share:
                c.mobile_web = _desktop(x, sd.MOBILE_WEB_UAS)
            for start, _, where in c.trips:
                if where.country != c.place.country and x.random() < w.local_sim_share:
                    c.trip_sims[start] = _local_sim(x, where.country)
                if x.random() < w.airport_share:
                    c.airport_trips.add(start)

    def _cellular_ip(self, rng: random.Random, place: sd.Place) -> str:
        """A carrier address: behind its NAT (few addresses, many subscribers) or on its
        IPv6 (one /64 per attachment), as the world has them."""
        w, x = self.world, self.xrng
        ip = _ip(rng, rng.choice(place.mobile))
        if place.country == "CN" and x.random() < w.ipv6_mobile_share:
            return _ip(x, x.choice(place.ipv6 or sd.CN_MOBILE_IPV6))
        if w.cgnat_addresses and ":" not in ip:
            k = x.randrange(w.cgnat_addresses)
            net16 = ".".join(ip.split(".")[:2])
            return f"{net16}.{(k * 37) % 256}.{1 + (k * 101) % 253}"
        return ip

    def _customer_label(self, c: Customer, *, sms: bool = True,
                        story: str | None = None) -> dict[str, Any]:
        """The customer's label; in drawn worlds with what they pass if challenged (most
        pass every step-up; some give up; abroad on a local SIM no SMS reaches them)."""
        w, x = self.world, self.xrng
        if not w.outcome_labels:
            return _customer()
        passes = [s for s in ALL_STEP_UPS if sms or s != "sms_otp"] \
            if x.random() < w.customer_pass_rate else []
        label: dict[str, Any] = {"attack": False, "scenario": "customer", "passes": passes}
        if story:
            label["story"] = story
        return label

    # -- time

    def _at(self, place: sd.Place, day: int, hour: float) -> datetime:
        local = (START + timedelta(days=day)).astimezone(self._zones[place.tz])
        local = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return (local + timedelta(hours=hour)).astimezone(UTC)

    def _hour(self, c: Customer) -> float:
        return (self.rng.choice(c.peaks) + self.rng.gauss(0.3, 1.1)) % 24

    # -- customer events

    def _customer_events(self, c: Customer) -> Iterator[Event]:
        rng, w, x = self.rng, self.world, self.xrng
        first = max(0, c.joins_day)
        registered = c.joins_day < 0
        new_phone_day = rng.randrange(self.days) if rng.random() < w.new_phone_share else -1
        upgrade_day = rng.randrange(self.days) if rng.random() < 0.3 else -1
        family_device: Device | None = None
        for day in range(first, self.days):
            if day == new_phone_day:
                old = c.devices[0]
                c.devices[0] = self._phone(rng)
                if rng.random() < 0.3:  # the old phone goes to a family member
                    family_device = old
                if w.outcome_labels and x.random() < 0.5:  # signs in on it by SMS code
                    c.sms_next = True
            if day == upgrade_day and c.devices[0].model is not None:
                versions = c.devices[0].model.os_versions
                current = c.devices[0].os_version
                if current != versions[-1]:
                    c.devices[0].os_version = versions[versions.index(current) + 1]
            if day == c.new_sim_day:  # a replacement SIM or eSIM on the same number
                c.sim = _sim(x)
                c.sms_next = True
            if day == c.move_day:  # a new home line (a move, or another provider)
                c.home = (x.choice(c.place.broadband), x.randrange(256))
                c.home_ssid = _ssid(x, sd.HOME_SSIDS)
                if c.home6:
                    c.home6 = f"{c.home6.rsplit(':', 1)[0]}:{x.randrange(1, 0xFFFF):x}"
            trip = next((t for t in c.trips if t[0] <= day < t[1]), None)
            weekend = (START + timedelta(days=day)).weekday() >= 5
            n = _poisson(rng, c.rate_per_day * (1.2 if weekend else 1.0))
            if not registered:
                n = max(n, 1)
            for _ in range(n):
                yield from self._session(c, day, trip, weekend, registering=not registered)
                registered = True
            if family_device is not None and rng.random() < 0.1:
                yield from self._family_login(c, family_device, day)
            if registered:
                yield from self._extras(c, day)

    def _extras(self, c: Customer, day: int) -> Iterator[Event]:
        """A drawn world's customer logins beyond the default world's: on a relative's
        phone, and at the airport on the way out and back."""
        x = self.xrng
        if c.borrowed is not None and x.random() < c.borrow_rate:
            when = self._at(c.place, day, x.uniform(8, 23))
            if x.random() < 0.6:
                ip, network = _ip(x, c.home[0], c.home[1]), {"type": "wifi",
                                                             "ssid": c.home_ssid}
            else:
                ip, network = self._cellular_ip(x, c.place), {"type": "cellular"}
            # The relative's phone carries the relative's SIM: a code goes to the
            # customer's own phone, so it is a password login.
            event = self._wire(c, c.borrowed, when, ip, network, "password", sim=_sim(x))
            yield {**event, "label": self._customer_label(c, story="borrowed_device")}
        for start, end, where in c.trips:
            if start not in c.airport_trips or day not in (start, end):
                continue
            place = c.place if day == start else where
            when = self._at(place, day, x.uniform(7, 21))
            phone = c.devices[0]
            if phone.model is None:
                continue
            event = self._wire(c, phone, when, _ip(x, x.choice(place.broadband)),
                               {"type": "wifi", "ssid": x.choice(sd.AIRPORT_SSIDS)},
                               "password")
            yield {**event, "label": self._customer_label(c, story="airport")}

    def _session(
        self, c: Customer, day: int, trip: tuple[int, int, sd.Place] | None, weekend: bool,
        *, registering: bool,
    ) -> Iterator[Event]:
        rng, w, x = self.rng, self.world, self.xrng
        place = trip[2] if trip else c.place
        hour = self._hour(c)
        when = self._at(place, day, hour)
        device = c.devices[0] if len(c.devices) == 1 or rng.random() < 0.75 else \
            rng.choice(c.devices[1:])
        network: dict[str, Any]
        sim: dict[str, str] | None = None
        story: str | None = None
        if trip:
            if rng.random() < 0.5:  # hotel and café Wi-Fi at the destination
                ip, network = _ip(rng, rng.choice(place.broadband)), {
                    "type": "wifi", "ssid": rng.choice(sd.PUBLIC_SSIDS)}
            else:  # roaming data is routed home by the carrier
                ip, network = self._cellular_ip(rng, c.place), {"type": "cellular"}
                if trip[0] in c.trip_sims:  # a local SIM: the local carrier's network
                    ip, sim, story = self._cellular_ip(x, place), c.trip_sims[trip[0]], \
                        "local_sim"
        elif c.vpn_share and rng.random() < c.vpn_share:
            ip, network = _ip(rng, rng.choice(sd.VPN_EXITS)), {"type": "wifi",
                                                                "ssid": c.home_ssid}
        else:
            at_work = not weekend and 9 <= hour <= 18 and rng.random() < 0.6
            r = rng.random()
            if device.model is None or r < w.home_wifi_share:
                net16, third = c.work if at_work else c.home
                if c.ipv6 and not at_work and rng.random() < w.ipv6_session_share:
                    ip = _ip(rng, c.home6)
                else:
                    ip = _ip(rng, net16, third)
                network = {"type": "ethernet" if device.model is None else "wifi"}
                if device.model is not None:
                    network["ssid"] = c.work_ssid if at_work else c.home_ssid
            elif r < round(w.home_wifi_share + w.public_wifi_share, 12):
                ip, network = _ip(rng, rng.choice(c.place.broadband)), {
                    "type": "wifi", "ssid": rng.choice(sd.PUBLIC_SSIDS)}
            else:
                ip, network = self._cellular_ip(rng, c.place), {"type": "cellular"}
        method = "password"
        if device.model is not None and c.phone.startswith("+86") and \
                rng.random() < w.sms_login_share:
            method = "sms_otp"
        if device.model is not None and c.mobile_web is not None and \
                x.random() < w.mobile_web_share:
            # The same phone and network, in the browser: no device record, no network type.
            device, network = c.mobile_web, {"type": "unknown"}
        elif c.sms_next and device.model is not None and c.phone.startswith("+86"):
            method, c.sms_next, story = "sms_otp", False, story or "new_sim_or_phone"
        base = self._wire(c, device, when, ip, network, method, sim=sim)
        label = self._customer_label(c, sms=sim is None, story=story)
        if registering:
            base["event_type"] = "registration"
        elif method == "password" and rng.random() < w.typo_share:  # a typo first
            yield {**base, "auth_result": "failure", "label": label}
            base["timestamp"] = _ts(when + timedelta(seconds=rng.uniform(8, 60)))
        elif method == "password" and x.random() < w.forgot_password_share:
            # Wrong passwords, then in by a code instead.
            for k in range(x.randint(2, 4)):
                yield {**base, "auth_result": "failure",
                       "timestamp": _ts(when + timedelta(seconds=20 * k)), "label": label}
            base["timestamp"] = _ts(when + timedelta(seconds=x.uniform(90, 300)))
            base["login_method"] = "sms_otp" if "device" in base and \
                c.phone.startswith("+86") else "email_otp"
            label = self._customer_label(c, sms=sim is None, story="forgot_password")
        yield {**base, "label": label}

    def _family_login(self, c: Customer, device: Device, day: int) -> Iterator[Event]:
        """A family member on the customer's old phone, on the customer's home Wi-Fi."""
        rng = self.rng
        when = self._at(c.place, day, (20 + rng.gauss(0, 1.5)) % 24)
        other = self.customers[(c.index * 7 + 3) % len(self.customers)]
        yield {**self._wire(other, device, when, _ip(rng, c.home[0], c.home[1]),
                            {"type": "wifi", "ssid": c.home_ssid}, "password"),
               "label": self._customer_label(other)}

    def _wire(self, c: Customer, device: Device, when: datetime, ip: str,
              network: dict[str, Any], method: str, *,
              sim: dict[str, str] | None = None) -> Event:
        event: Event = {
            "user_id": c.user_id,
            "timestamp": _ts(when),
            "event_type": "login",
            "auth_result": "success",
            "login_method": method,
            "ip": ip,
            "user_agent": device.user_agent,
            "network": network,
            "phone": c.phone,
        }
        wire_device = device.wire()
        if wire_device is not None:
            event["device"] = wire_device
            if device.sim_readable and (sim is not None or c.phone.startswith("+86")):
                event["sim"] = dict(sim or c.sim)
            if not device.ssid_readable and "ssid" in network:
                # Without the location permission Android names every network
                # "<unknown ssid>"; iOS gives the app nothing.
                event["network"] = {k: v for k, v in network.items() if k != "ssid"}
                if wire_device["os_name"] != "iOS":
                    event["network"]["ssid"] = UNKNOWN_SSID
        return event

    # -- attacks

    def _victims(self, share: float, minimum: int = 1) -> list[Customer]:
        n = max(minimum, round(len(self.customers) * share))
        pool = [c for c in self.customers if c.joins_day < 0]
        return self.rng.sample(pool, min(n, len(pool)))

    def _attack(self, base: Event, scenario: str, *, solver: bool = False) -> Event:
        label: dict[str, Any] = {"attack": True, "scenario": scenario}
        if self.world.outcome_labels:
            label["passes"] = self._attacker_passes(scenario, solver=solver)
            label["reported_after_hours"] = self._reported_after(base, scenario)
        return {**base, "label": label}

    def _attacker_passes(self, scenario: str, *, solver: bool) -> list[str]:
        """What this attacker passes if challenged: the number's holder gets the SMS code;
        a person at a keyboard solves a captcha, a bot only with a paid service; some
        targeted attackers phish the e-mail code too."""
        x = self.xrng
        passes = set()
        if scenario in HOLDS_THE_NUMBER:
            passes.add("sms_otp")
        if scenario not in BOT_SCENARIOS or solver:
            passes.add("captcha")
        if scenario not in BOT_SCENARIOS and x.random() < self.world.phished_email_share:
            passes.add("email_otp")
        return [s for s in ALL_STEP_UPS if s in passes]

    def _reported_after(self, event: Event, scenario: str) -> float | None:
        """Hours until the victim notices and reports a login that got in (an order they
        did not place, a changed address), or None: never, or nothing to report."""
        x = self.xrng
        if event["auth_result"] != "success" or scenario == "high_risk_registration" or \
                x.random() >= self.world.report_share:
            return None
        return round(min(24 * 30.0, x.lognormvariate(
            math.log(self.world.report_median_hours), 1.0)), 1)

    def _attacker_device(self, rng: random.Random, mimic: sd.PhoneModel | None = None) -> Device:
        return self._phone(rng, mimic or self._pick(rng))

    def _credential_stuffing(self) -> Iterator[Event]:
        rng = self.rng
        campaigns = max(1, self.days // 12)
        ids = [c.user_id for c in self.customers]
        for _ in range(campaigns):
            day = rng.randrange(self.days)
            start = START + timedelta(days=day, hours=rng.uniform(0, 24))
            bots = [_ip(rng, rng.choice(rng.choice((*sd.CHINA, *sd.ABROAD)).broadband))
                    for _ in range(rng.randint(40, 120))]
            attempts = int(rng.randint(8, 15) * len(self.customers) // 10
                           * self.world.stuffing_scale)
            solver = self.xrng.random() < self.world.captcha_solver_share
            for k in range(attempts):
                victim = rng.choice(ids) if rng.random() < 0.7 else \
                    f"{rng.choice(['wang', 'li', 'user'])}{rng.randint(1, 99999)}@qq.com"
                device = _desktop(rng) if rng.random() < 0.6 else self._attacker_device(rng)
                event: Event = {
                    "user_id": victim,
                    "timestamp": _ts(start + timedelta(seconds=k * rng.uniform(0.5, 4))),
                    "event_type": "login",
                    "auth_result": "success" if rng.random() < 0.02 else "failure",
                    "login_method": "password",
                    "ip": rng.choice(bots),
                    "user_agent": device.user_agent,
                    "network": {"type": "unknown"},
                }
                if device.model is not None:
                    event["device"] = device.wire()
                yield self._attack(event, "credential_stuffing", solver=solver)

    def _password_spraying(self) -> Iterator[Event]:
        rng = self.rng
        proxies = [_ip(rng, rng.choice(sd.PROXY_HOSTING + sd.VPN_EXITS)) for _ in range(25)]
        start_day = rng.randrange(max(1, self.days // 3))
        ids = [c.user_id for c in self.customers]
        solver = self.xrng.random() < self.world.captcha_solver_share
        for day in range(start_day, self.days):
            for _ in range(max(3, round(len(self.customers) // 40 * self.world.spraying_scale))):
                when = START + timedelta(days=day, hours=rng.uniform(0, 24))
                device = _desktop(rng)
                yield self._attack({
                    "user_id": rng.choice(ids),
                    "timestamp": _ts(when),
                    "event_type": "login",
                    "auth_result": "success" if rng.random() < 0.005 else "failure",
                    "login_method": "password",
                    "ip": rng.choice(proxies),
                    "user_agent": device.user_agent,
                    "network": {"type": "unknown"},
                }, "password_spraying", solver=solver)

    def _takeover(self, c: Customer, scenario: str, *, when: datetime | None = None,
                  far: bool = False) -> Event:
        """The attacker with the victim's password (or SIM, or device id)."""
        rng = self.rng
        day = rng.randrange(15, self.days) if self.days > 15 else self.days - 1
        place = rng.choice([p for p in (*sd.CHINA, *sd.ABROAD) if p.country != c.place.country]) \
            if far else c.place
        when = when or self._at(place, day, self._hour(c))
        victim_model = c.devices[0].model
        mimic = victim_model if scenario == "device_replay" and rng.random() < 0.5 else \
            self._pick(rng)
        device = self._attacker_device(rng, mimic)
        if scenario == "device_replay":
            device.id = c.devices[0].id
        if rng.random() < 0.5:  # a residential proxy in the victim's city, or the carrier
            ip, network = _ip(rng, rng.choice(place.broadband)), {
                "type": "wifi", "ssid": _ssid(rng, sd.HOME_SSIDS)}
        else:
            ip, network = self._cellular_ip(rng, place), {"type": "cellular"}
        event = self._wire(c, device, when, ip, network, "password")
        if scenario == "sim_swap":
            event["sim"] = _sim(rng)
            event["login_method"] = "sms_otp"
            if not device.sim_readable:
                del event["sim"]
        elif "sim" in event:
            if rng.random() < 0.5:
                event["sim"] = _sim(rng)  # the attacker's own SIM in the attacker's phone
            else:
                del event["sim"]  # an emulator without a SIM
        return self._attack(event, scenario)

    def _targeted(self, first_events: dict[int, list[tuple[float, Event]]]) -> Iterator[Event]:
        rng, scale = self.rng, self.world.targeted_scale
        for c in self._victims(0.02 * scale, 3):
            for _ in range(rng.randint(1, 2)):
                yield self._takeover(c, "account_takeover")
        for c in self._victims(0.01 * scale, 3):
            yield self._takeover(c, "sim_swap")
        for c in self._victims(0.01 * scale, 3):
            yield self._takeover(c, "device_replay", far=rng.random() < 0.5)
        for c in self._victims(0.012 * scale, 3):
            mine = [t for t, _ in first_events.get(c.index, []) if t > (START + timedelta(
                days=14)).timestamp()]
            if not mine:
                continue
            t = rng.choice(mine)
            when = datetime.fromtimestamp(t, UTC) + timedelta(minutes=rng.uniform(5, 90))
            yield self._takeover(c, "impossible_travel", when=when, far=True)

    def _slow_poisoning(self) -> Iterator[Event]:
        """One attacker, one account, for weeks: rarely at first, then more and more often."""
        rng = self.rng
        for c in self._victims(0.002 * self.world.targeted_scale, 3):
            device = self._attacker_device(rng)
            place = rng.choice([p for p in sd.CHINA if p is not c.place])
            net16 = rng.choice(place.broadband)
            third = rng.randrange(256)
            ssid = _ssid(rng, sd.HOME_SSIDS)
            # Like the other targeted attacks, it begins once the victim has a history.
            day = float(min(self.days - 1, 14 + rng.randrange(0, 7)))
            gap = 4.0
            while day < self.days:
                when = self._at(place, int(day), self._hour(c))
                event = self._wire(c, device, when, _ip(rng, net16, third),
                                   {"type": "wifi", "ssid": ssid}, "password")
                event.pop("sim", None)
                yield self._attack(event, "slow_poisoning")
                gap = max(0.25, gap * 0.85)
                day += gap

    def _weak_spots(self, firsts: dict[int, list[tuple[float, Event]]]) -> Iterator[Event]:
        """The attacks a device-and-network engine is weakest against (drawn worlds).

        Each starts once the victim has a history (after day 14), from a login the victim
        really made: its device record is what malware or a leaked SDK log hands over.
        """
        x = self.xrng
        after = (START + timedelta(days=14)).timestamp()
        end = (START + timedelta(days=self.days)).timestamp()
        pool = [c for c in self.customers if c.joins_day < 0 and any(
            t > after and e["user_id"] == c.user_id and "device" in e
            for t, e in firsts.get(c.index, []))]
        n = max(3, round(len(self.customers) * self.world.weak_spot_share))
        for scenario in WEAK_SPOT_SCENARIOS:
            for c in x.sample(pool, min(n, len(pool))):
                records = [(t, e) for t, e in firsts[c.index]
                           if t > after and e["user_id"] == c.user_id and "device" in e]
                t0, record = x.choice(records)
                for _ in range(1 if x.random() < 0.7 else 2):
                    t = t0 + x.uniform(3_600, 5 * 86_400)
                    if t >= end:
                        continue
                    when = datetime.fromtimestamp(t, UTC)
                    if scenario == "device_record_replay":
                        yield self._record_replay(c, record, when)
                    elif scenario == "residential_proxy":
                        yield self._residential_proxy(c, record, when)
                    else:
                        yield self._number_port(c, when)

    def _replayed(self, record: Event, event: Event, *, ssid: bool) -> Event:
        """``event`` carrying the victim's device record: id, model, OS, SIM, user agent,
        Bluetooth, and perhaps the home Wi-Fi name."""
        event = {**event, "device": dict(record["device"]), "user_agent": record["user_agent"]}
        event.pop("sim", None)
        if "sim" in record:
            event["sim"] = dict(record["sim"])
        if ssid and record["network"].get("ssid"):
            event["network"] = {"type": "wifi", "ssid": record["network"]["ssid"]}
        return event

    def _record_replay(self, c: Customer, record: Event, when: datetime) -> Event:
        """(a) The whole device record, from a hosting address abroad or a proxy at home."""
        x = self.xrng
        if x.random() < 0.5:
            ip, network = _ip(x, x.choice(sd.PROXY_HOSTING)), {"type": "wifi"}
        else:
            home = x.choice([p for p in sd.CHINA if p.country == c.place.country] or
                            [c.place])
            ip, network = _ip(x, x.choice(home.broadband)), {"type": "wifi"}
        event = self._wire(c, _desktop(x), when, ip, network, "password")
        event = self._replayed(record, event, ssid=x.random() < 0.5)
        if "ssid" not in event["network"]:
            event["network"] = {"type": "wifi", "ssid": _ssid(x, sd.HOME_SSIDS)}
        return self._attack(event, "device_record_replay")

    def _residential_proxy(self, c: Customer, record: Event, when: datetime) -> Event:
        """(b) An address of the victim's own provider in the victim's city (same /16, so
        the same network, another /24), a stolen password, another or a replayed device."""
        x = self.xrng
        net16, third = c.home
        other = (third + x.randrange(1, 256)) % 256
        network = {"type": "wifi", "ssid": _ssid(x, sd.HOME_SSIDS)}
        if x.random() < 0.5:
            event = self._wire(c, self._attacker_device(x), when, _ip(x, net16, other),
                               network, "password")
            if "sim" in event:
                event["sim"] = _sim(x)  # the attacker's phone, the attacker's SIM
        else:
            event = self._replayed(record, self._wire(
                c, _desktop(x), when, _ip(x, net16, other), network, "password"),
                ssid=x.random() < 0.3)
        return self._attack(event, "residential_proxy")

    def _number_port(self, c: Customer, when: datetime) -> Event:
        """(c) The victim's number moved to the attacker's SIM (a port to another carrier,
        or a swap at the same one), then a login by SMS code from a new phone."""
        x = self.xrng
        carriers = [m for m in ("00", "01", "11") if m != c.sim["imsi"][3:5]]
        sim = {"imsi": "460" + x.choice(carriers) + _digits(x, 10),
               "iccid": "8986" + _digits(x, 15)}
        if x.random() < 0.5:
            ip, network = self._cellular_ip(x, c.place), {"type": "cellular"}
        else:
            ip, network = _ip(x, x.choice(c.place.broadband)), {
                "type": "wifi", "ssid": _ssid(x, sd.HOME_SSIDS)}
        device = self._attacker_device(x)
        event = self._wire(c, device, when, ip, network, "sms_otp", sim=sim)
        if c.phone.startswith("+86") and x.random() < self.world.port_reported_share:
            ported = when - timedelta(hours=x.uniform(0.2, 12))
            self._ports.append((c.phone, _ts(ported)))
        return self._attack(event, "number_port")

    # -- all of it

    def events(self) -> Iterator[Event]:
        """Every event, in time order, with stable event ids."""
        everything: list[tuple[str, int, Event]] = []
        firsts: dict[int, list[tuple[float, Event]]] = {}
        for c in self.customers:
            for e in self._customer_events(c):
                everything.append((e["timestamp"], len(everything), e))
                if e["auth_result"] == "success":
                    firsts.setdefault(c.index, []).append(
                        (datetime.fromisoformat(e["timestamp"]).timestamp(), e))
        sources = [self._credential_stuffing(), self._password_spraying(),
                   self._targeted(firsts), self._slow_poisoning()]
        if self.world.weak_spot_share:
            sources.append(self._weak_spots(firsts))
        for source in sources:
            for e in source:
                everything.append((e["timestamp"], len(everything), e))
        everything.sort(key=lambda item: (item[0], item[1]))
        extra: list[tuple[str, Event]] = []
        if self.signals:
            extra, self.signal_lists = self._signal_traffic(everything)
        j = 0
        for n, (stamp, _, e) in enumerate(everything):
            while j < len(extra) and extra[j][0] < stamp:
                yield {"event_id": f"{self._ids}s-{j:06d}", **extra[j][1]}
                j += 1
            yield {"event_id": f"{self._ids}-{n:08d}", **e}
        for k in range(j, len(extra)):
            yield {"event_id": f"{self._ids}s-{k:06d}", **extra[k][1]}

    # -- external signals

    def _signal_traffic(
        self, everything: list[tuple[str, int, Event]]
    ) -> tuple[list[tuple[str, Event]], SignalLists]:
        """The signal scenarios' events (time-ordered) and the lists that go with them."""
        rng = random.Random(self.seed + SIGNAL_SEED_OFFSET)
        lists = SignalLists()
        extra = [*self._recycled_takeovers(rng, everything, lists),
                 *self._signup_farms(rng, lists)]
        # Numbers a customer got second-hand, before the simulation: listed as recycled,
        # and no reason for alarm (the customer is the new holder).
        for c in self.customers:
            if rng.random() < 0.03:
                lists.recycled.append(
                    (c.phone, _ts(START - timedelta(days=rng.uniform(30, 700)))))
        # Numbers the carrier reports as ported or swapped (the number on a new SIM): the
        # list with a time that says the number changed hands.
        lists.recycled += self._ports
        lists.phone_risk.append((sd.MEDIUM_RISK_PREFIX, "medium"))
        # Reputation feeds: the rented proxy networks, the VPN exits customers use too, and
        # part of the stuffing botnets' machines (a feed never knows all of them).
        lists.ip_reputation += [(f"{net}.0.0/16", "proxy") for net in sd.PROXY_HOSTING]
        lists.ip_reputation += [(f"{net}.0.0/16", "vpn") for net in sd.VPN_EXITS]
        bots = sorted({e["ip"] for _, _, e in everything
                       if e["label"]["scenario"] == "credential_stuffing"})
        lists.ip_reputation += [(ip, "botnet") for ip in bots if rng.random() < 0.6]
        extra.sort(key=lambda item: item[0])
        return extra, lists

    def _recycled_takeovers(
        self, rng: random.Random, everything: list[tuple[str, int, Event]],
        lists: SignalLists,
    ) -> Iterator[tuple[str, Event]]:
        """The carrier gives a customer's old number to someone else, who then signs in to
        the customer's account with an SMS code sent to it."""
        after = (START + timedelta(days=14)).timestamp()
        # Every successful login of each account, whoever made it: any may be the last one
        # the engine learned.
        successes: dict[str, list[float]] = {}
        for stamp, _, e in everything:
            if e["auth_result"] == "success":
                successes.setdefault(e["user_id"], []).append(
                    datetime.fromisoformat(stamp).timestamp())
        pool = [c for c in self.customers
                if c.user_id == c.phone and c.phone.startswith("+86") and c.joins_day < 0
                and any(t > after for t in successes.get(c.user_id, []))]
        for c in rng.sample(pool, min(len(pool), max(3, round(len(self.customers) * 0.01)))):
            times = sorted(successes[c.user_id])
            k = rng.choice([i for i, t in enumerate(times) if t > after])
            gap = (times[k + 1] - times[k]) if k + 1 < len(times) else 3 * 86_400.0
            # Reassigned after the customer's last login, then used before the next one.
            attack_at = times[k] + gap * rng.uniform(0.5, 0.9)
            recycled_at = times[k] + (attack_at - times[k]) * rng.uniform(0.2, 0.6)
            lists.recycled.append((c.phone, _ts(datetime.fromtimestamp(recycled_at, UTC))))
            device = self._attacker_device(rng)
            if rng.random() < 0.5:
                ip, network = _ip(rng, rng.choice(c.place.mobile)), {"type": "cellular"}
            else:
                ip, network = _ip(rng, rng.choice(c.place.broadband)), {
                    "type": "wifi", "ssid": _ssid(rng, sd.HOME_SSIDS)}
            event = self._wire(c, device, datetime.fromtimestamp(attack_at, UTC), ip, network,
                               "sms_otp")
            event["sim"] = _sim(rng)  # the new holder's own SIM
            yield event["timestamp"], self._attack(event, "recycled_number_takeover")

    def _signup_farms(self, rng: random.Random, lists: SignalLists) -> Iterator[tuple[str, Event]]:
        """Fake accounts registered in bursts, several on each bought number."""
        for farm in range(max(2, len(self.customers) // 200)):
            if farm % 2 == 1:
                prefix = rng.choice(sd.VOIP_PREFIXES)
                phone = prefix + _digits(rng, 13 - len(prefix))  # +44 56 or +81 50, 8 digits
            else:
                phone = sd.FARM_PREFIX + _digits(rng, 8)
            lists.phone_risk.append((phone, "high"))
            day = rng.randrange(1, max(2, self.days))
            start = START + timedelta(days=day, hours=rng.uniform(0, 24))
            nets = sd.PROXY_HOSTING if rng.random() < 0.5 else \
                rng.choice((*sd.CHINA, *sd.ABROAD)).broadband
            for k in range(rng.randint(4, 8)):
                email = f"{rng.choice(sd.EMAIL_NAMES)}.{rng.choice(sd.EMAIL_GIVEN)}" \
                        f"{rng.randint(1000, 99999)}@{rng.choice(sd.EMAIL_DOMAINS)}"
                device = self._attacker_device(rng)
                when = start + timedelta(minutes=k * rng.uniform(2, 15))
                event: Event = {
                    "user_id": email,
                    "timestamp": _ts(when),
                    "event_type": "registration",
                    "auth_result": "success",
                    "login_method": "password",
                    "ip": _ip(rng, rng.choice(nets)),
                    "user_agent": device.user_agent,
                    "device": device.wire(),
                    "network": {"type": "wifi", "ssid": _ssid(rng, sd.HOME_SSIDS)},
                    "phone": phone,
                }
                yield event["timestamp"], self._attack(event, "high_risk_registration")

    def write_signal_files(self, folder: str | Path) -> dict[str, Path]:
        """Write the signal lists as the files ``riskengine.adapters.signals`` reads; the paths by
        setting name (``signals_phone_risk_file``, ...), ready for ``Settings(**paths)``.

        The lists exist once the events have been read (``events()``).
        """
        if self.signal_lists is None:
            raise RuntimeError("read events() of a Simulator(signals=True) first")
        return self.signal_lists.write(folder)


@dataclass(slots=True)
class SignalLists:
    """What a carrier or risk service would list about the simulated traffic."""

    phone_risk: list[tuple[str, str]] = field(default_factory=list)  # number or prefix, level
    recycled: list[tuple[str, str]] = field(default_factory=list)  # number, RFC 3339 time
    ip_reputation: list[tuple[str, str]] = field(default_factory=list)  # network, category

    def write(self, folder: str | Path) -> dict[str, Path]:
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        files = {"signals_phone_risk_file": ("phone_risk.csv", "number,level", self.phone_risk),
                 "signals_recycled_file": ("recycled.csv", "number,recycled_on", self.recycled),
                 "signals_ip_reputation_file": ("ip_reputation.csv", "network,category",
                                        self.ip_reputation)}
        paths = {}
        for setting, (name, header, rows) in files.items():
            path = out / name
            path.write_text("\n".join([header, *(f"{a},{b}" for a, b in rows)]) + "\n",
                            encoding="utf-8")
            paths[setting] = path
        return paths


def _customer() -> dict[str, Any]:
    return {"attack": False, "scenario": "customer"}


def _ts(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method: lam stays small (a few logins a day).
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def write_jsonl(events: Iterator[Event], out: TextIO) -> int:
    """Write one JSON object per line; returns how many."""
    n = 0
    for event in events:
        out.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")))
        out.write("\n")
        n += 1
    return n


def simulate_to(
    path: str | Path, *, users: int, days: int, seed: int, signals_dir: str | Path | None = None,
    world: World | None = None,
) -> int:
    """Write the traffic to ``path``; with ``signals_dir``, the signal scenarios too, and the
    lists that go with them into that folder; ``world``: another world than the default."""
    sim = Simulator(users=users, days=days, seed=seed, signals=signals_dir is not None,
                    world=world)
    with open(path, "w", encoding="utf-8") as out:
        n = write_jsonl(sim.events(), out)
    if signals_dir is not None:
        sim.write_signal_files(signals_dir)
    return n
