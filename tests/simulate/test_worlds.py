"""Worlds: the default one is the old simulator to the byte; every parameter of a drawn
world moves the traffic the way its name says; the weak-spot attackers are there."""

from __future__ import annotations

import hashlib
import io
import re
import statistics
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import pytest

from features.ipintel import IpIntel
from riskengine.core.wire import ScoreRequest
from riskengine.tools import simdata as sd
from riskengine.tools.simulate import (
    PLACEHOLDER_IDFA,
    PLACEHOLDER_OAID,
    UNKNOWN_SSID,
    WEAK_SPOT_SCENARIOS,
    Simulator,
    write_jsonl,
)
from riskengine.tools.worlds import World

Events = list[dict[str, Any]]

# Digests of the simulator's output (JSONL, then each signal file) recorded at 85f65b2,
# before worlds existed: (users, days, seed, signals) -> (events, sha256).
BEFORE_WORLDS = {
    (40, 10, 3, False): (539, "db9419c529c52e9dcbe6be9cdd08d1aa3395914744d6dd49a51e9f58c2f52a10"),
    (120, 25, 8, False): (3639, "c35578603b85e9f5699448ee66faac74bbd12d6e6c24dbe378c7fc66cbe696ff"),
    (300, 30, 16, True): (10453,
                          "dee7cd7bb243421fa9123768354450e16a0b5b570ae035a4a7655718d4d72750"),
    (200, 60, 1, True): (15679, "17bf5cf7f33c30ee8d8613706b38505a5721863d1865520bfdd78f08339b36fe"),
}


def _digest(sim: Simulator) -> tuple[int, str]:
    h = hashlib.sha256()
    buf = io.StringIO()
    n = write_jsonl(sim.events(), buf)
    h.update(buf.getvalue().encode())
    if sim.signals:
        with tempfile.TemporaryDirectory() as folder:
            paths = sim.write_signal_files(folder)
            for key in sorted(paths):
                h.update(key.encode())
                h.update(paths[key].read_bytes())
    return n, h.hexdigest()


@pytest.mark.parametrize("config", list(BEFORE_WORLDS), ids=str)
def test_the_default_world_is_the_old_simulator_byte_for_byte(config) -> None:
    users, days, seed, signals = config
    assert _digest(Simulator(users=users, days=days, seed=seed, signals=signals)) == \
        BEFORE_WORLDS[config]
    explicit = Simulator(users=users, days=days, seed=seed, signals=signals,
                         world=World.default())
    assert _digest(explicit) == BEFORE_WORLDS[config]


def test_worlds_are_drawn_by_seed_from_wide_ranges() -> None:
    assert World.draw(3) == World.draw(3) != World.draw(4)
    drawn = [World.draw(s) for s in range(1, 41)]
    spreads = {"ipv6_share": 0.6, "ad_tracking_off_share": 0.25, "sim_ids_share": 0.7,
               "ssid_share": 0.7, "customer_pass_rate": 0.06, "household_share": 0.2,
               "stuffing_scale": 1.5, "report_median_hours": 40.0}
    for name, spread in spreads.items():
        values = [getattr(w, name) for w in drawn]
        assert max(values) - min(values) >= spread, name
    assert len({w.cgnat_addresses for w in drawn}) > 2
    with pytest.raises(TypeError):
        World.default().replace(no_such_share=1.0)


def test_a_drawn_world_is_valid_on_the_wire_and_deterministic() -> None:
    a = list(Simulator(users=60, days=20, seed=2, world=World.draw(9)).events())
    b = list(Simulator(users=60, days=20, seed=2, world=World.draw(9)).events())
    assert a == b
    assert a != list(Simulator(users=60, days=20, seed=2, world=World.draw(10)).events())
    assert all(e["event_id"].startswith("sim2w9-") for e in a)
    stamps = [e["timestamp"] for e in a]
    assert stamps == sorted(stamps)
    for e in a:
        wire = {k: v for k, v in e.items() if k != "label"}
        if "device" in wire:
            # Device ids are real shapes (whether the wire takes each one is the wire's
            # test); everything else must be valid as it is.
            assert _ID_SHAPES.fullmatch(wire["device"]["id"]), wire["device"]["id"]
            wire["device"] = {k: v for k, v in wire["device"].items() if k != "id"}
        ScoreRequest(**wire)


# IMEI, IDFV (upper-case UUID), OAID (UUID), Android id (16 hex), vendor id (64 hex), and the
# all-zero advertising ids of ad tracking off.
_ID_SHAPES = re.compile(r"[0-9]{15}|[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}"
                        r"|[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}|[0-9a-f]{16}|[0-9a-f]{64}")


# -- each parameter moves the traffic the way its name says ---------------------------------

BASE = World.draw(5).replace(borrowed_device_share=0.0, household_share=0.0)
_intel: IpIntel | None = None


def _traffic(world: World, *, users: int = 150, days: int = 24,
             signals: bool = False) -> tuple[Events, Simulator]:
    sim = Simulator(users=users, days=days, seed=4, world=world, signals=signals)
    return list(sim.events()), sim


def _customers(events: Events) -> Events:
    return [e for e in events if not e["label"]["attack"]]


def _app(events: Events) -> Events:
    return [e for e in _customers(events) if e.get("device")]


def _share(items: Events, test: Callable[[dict[str, Any]], bool]) -> float:
    return sum(1 for e in items if test(e)) / max(len(items), 1)


def _cellular(events: Events) -> Events:
    return [e for e in _customers(events) if e["network"]["type"] == "cellular"]


def _per_account(events: Events, value: Callable[[dict[str, Any]], Any]) -> float:
    seen: defaultdict[str, set[Any]] = defaultdict(set)
    for e in events:
        v = value(e)
        if v is not None:
            seen[e["user_id"]].add(v)
    return statistics.mean(len(v) for v in seen.values()) if seen else 0.0


def _country(ip: str) -> str | None:
    global _intel
    _intel = _intel or IpIntel.bundled()
    return _intel.lookup(ip).country


def _shared_devices(events: Events) -> float:
    """Device ids that more than one account signs in on."""
    accounts = Counter(d for _, d in {(e["user_id"], _real_id(e)) for e in events} if d)
    return float(sum(1 for n in accounts.values() if n > 1))


def _label_story(story: str) -> Callable[[Events], float]:
    return lambda ev: _share(_customers(ev), lambda e: e["label"].get("story") == story)


def _scenario_count(*names: str) -> Callable[[Events], float]:
    return lambda ev: float(sum(1 for e in ev if e["label"]["scenario"] in names))


def _real_id(e: dict[str, Any]) -> str | None:
    did = e["device"].get("id")
    return None if did in (PLACEHOLDER_OAID, PLACEHOLDER_IDFA) else did


_HOME = re.compile("|".join(p.replace("{x}", "[0-9A-F]{4}") for p in sd.HOME_SSIDS))
_TARGETED = ("account_takeover", "device_replay", "impossible_travel", "slow_poisoning",
             *WEAK_SPOT_SCENARIOS)

# parameter: (low, high, the world's other changes, how much of it the traffic shows)
DIRECTIONS: dict[str, tuple[Any, Any, dict[str, Any], Callable[[Events], float]]] = {
    "abroad_share": (0.0, 0.5, {}, lambda ev: _share(
        list({e["user_id"]: e for e in _customers(ev)}.values()),
        lambda e: not e["phone"].startswith("+86"))),
    "ipv6_share": (0.0, 1.0, {"ipv6_mobile_share": 0.0}, lambda ev: _share(
        _customers(ev), lambda e: ":" in e["ip"])),
    "ipv6_session_share": (0.1, 1.0, {"ipv6_share": 1.0, "ipv6_mobile_share": 0.0},
                           lambda ev: _share(_customers(ev), lambda e: ":" in e["ip"])),
    "ipv6_mobile_share": (0.0, 1.0, {}, lambda ev: _share(
        _cellular(ev), lambda e: ":" in e["ip"])),
    "national_ipv6": (False, True, {"ipv6_share": 1.0, "ipv6_mobile_share": 0.0},
                      lambda ev: _share(_customers(ev), lambda e: ":" in e["ip"])),
    "cgnat_addresses": (16, 0, {"ipv6_mobile_share": 0.0}, lambda ev: len(
        {e["ip"] for e in _cellular(ev)}) / max(len(_cellular(ev)), 1)),
    "home_wifi_share": (0.2, 0.9, {}, lambda ev: _share(
        _app(ev), lambda e: e["network"]["type"] == "wifi")),
    "public_wifi_share": (0.0, 0.3, {"ssid_share": 1.0}, lambda ev: _share(
        _app(ev), lambda e: e["network"].get("ssid") in sd.PUBLIC_SSIDS)),
    "web_share": (0.0, 1.0, {}, lambda ev: _share(
        _customers(ev), lambda e: e["network"]["type"] == "ethernet")),
    "mobile_web_share": (0.0, 0.5, {}, lambda ev: _share(
        _customers(ev), lambda e: e["user_agent"] in sd.MOBILE_WEB_UAS)),
    "second_device_share": (0.0, 1.0, {"web_share": 0.0, "ad_tracking_off_share": 0.0},
                            lambda ev: _per_account(_app(ev), _real_id)),
    "household_share": (0.0, 0.6, {}, lambda ev: _shared_devices(_app(ev))),
    "borrowed_device_share": (0.0, 0.5, {}, _label_story("borrowed_device")),
    "ad_tracking_off_share": (0.0, 0.8, {}, lambda ev: _share(
        _app(ev), lambda e: e["device"].get("id") in (PLACEHOLDER_OAID, PLACEHOLDER_IDFA))),
    "typo_share": (0.0, 0.3, {"forgot_password_share": 0.0}, lambda ev: _share(
        _customers(ev), lambda e: e["auth_result"] == "failure")),
    "forgot_password_share": (0.0, 0.2, {"typo_share": 0.0}, lambda ev: _share(
        _customers(ev), lambda e: e["auth_result"] == "failure")),
    "sms_login_share": (0.0, 0.8, {}, lambda ev: _share(
        _app(ev), lambda e: e["login_method"] == "sms_otp")),
    "trip_share": (0.0, 0.8, {"trip_abroad_share": 1.0}, lambda ev: _per_account(
        [e for e in _customers(ev) if ":" not in e["ip"]], lambda e: _country(e["ip"]))),
    "trip_abroad_share": (0.0, 1.0, {"trip_share": 0.8}, lambda ev: _per_account(
        [e for e in _customers(ev) if ":" not in e["ip"]], lambda e: _country(e["ip"]))),
    "local_sim_share": (0.0, 1.0, {"trip_share": 0.8, "trip_abroad_share": 1.0,
                                   "sim_ids_share": 1.0, "ios_share": 0.01},
                        lambda ev: _share(_app(ev), lambda e: not e.get("sim", {}).get(
                            "imsi", "460").startswith("460"))),
    "airport_share": (0.0, 1.0, {"trip_share": 0.8, "ssid_share": 1.0}, lambda ev: _share(
        _app(ev), lambda e: e["network"].get("ssid") in sd.AIRPORT_SSIDS)),
    "new_phone_share": (0.0, 1.0, {"second_device_share": 0.0, "web_share": 0.0,
                                   "ad_tracking_off_share": 0.0},
                        lambda ev: _per_account(_app(ev), _real_id)),
    "new_sim_share": (0.0, 0.8, {"sim_ids_share": 1.0, "ios_share": 0.01,
                                 "trip_share": 0.0},
                      lambda ev: _per_account(_app(ev), lambda e: e.get("sim", {}).get(
                          "iccid"))),
    "address_churn_share": (0.0, 0.8, {"ssid_share": 1.0}, lambda ev: _per_account(
        _app(ev), lambda e: e["network"].get("ssid") if _HOME.fullmatch(
            e["network"].get("ssid") or "") else None)),
    "joins_share": (0.0, 0.5, {}, lambda ev: _share(
        _customers(ev), lambda e: e["event_type"] == "registration")),
    "platform_limits": (False, True, {"ios_share": 0.5, "sim_ids_share": 1.0},
                        lambda ev: -_share(_app(ev), lambda e: "sim" in e)),
    "ios_share": (0.1, 0.9, {}, lambda ev: _share(
        _app(ev), lambda e: e["device"]["os_name"] == "iOS")),
    "old_android_share": (0.0, 0.6, {}, lambda ev: _share(
        _app(ev), lambda e: any(e["device"]["model"] == p.model for p in sd.OLD_ANDROID))),
    "android_id_share": (0.0, 0.8, {"vendor_id_share": 0.0}, lambda ev: _share(
        _app(ev), lambda e: bool(re.fullmatch(r"[0-9a-f]{16}", e["device"].get("id") or ""))
        and e["device"]["id"] != PLACEHOLDER_OAID)),
    "vendor_id_share": (0.0, 0.8, {"android_id_share": 0.0}, lambda ev: _share(
        _app(ev), lambda e: len(e["device"].get("id") or "") == 64)),
    "sim_ids_share": (0.0, 1.0, {"ios_share": 0.1}, lambda ev: _share(
        _app(ev), lambda e: "sim" in e)),
    "ssid_share": (0.0, 1.0, {}, lambda ev: _share(
        [e for e in _app(ev) if e["network"]["type"] == "wifi"],
        lambda e: e["network"].get("ssid") not in (None, UNKNOWN_SSID))),
    "bluetooth_share": (0.0, 1.0, {}, lambda ev: _share(
        _app(ev), lambda e: e["device"].get("bluetooth_mac") not in (
            None, "02:00:00:00:00:00"))),
    "outcome_labels": (False, True, {}, lambda ev: _share(ev, lambda e: "passes" in e["label"])),
    "customer_pass_rate": (0.5, 1.0, {}, lambda ev: _share(
        _customers(ev), lambda e: bool(e["label"]["passes"]))),
    "captcha_solver_share": (0.0, 1.0, {}, lambda ev: _share(
        [e for e in ev if e["label"]["scenario"] == "credential_stuffing"],
        lambda e: "captcha" in e["label"]["passes"])),
    "phished_email_share": (0.0, 1.0, {}, lambda ev: _share(
        [e for e in ev if e["label"]["scenario"] in _TARGETED],
        lambda e: "email_otp" in e["label"]["passes"])),
    "report_share": (0.0, 1.0, {}, lambda ev: _share(
        [e for e in ev if e["label"]["attack"] and e["auth_result"] == "success"],
        lambda e: e["label"]["reported_after_hours"] is not None)),
    "report_median_hours": (2.0, 96.0, {"report_share": 1.0}, lambda ev: statistics.median(
        e["label"]["reported_after_hours"] for e in ev
        if e["label"].get("reported_after_hours") is not None)),
    "stuffing_scale": (0.3, 3.0, {}, _scenario_count("credential_stuffing")),
    "spraying_scale": (0.3, 3.0, {}, _scenario_count("password_spraying")),
    "targeted_scale": (0.5, 3.0, {}, _scenario_count(
        "account_takeover", "sim_swap", "device_replay", "impossible_travel")),
    "weak_spot_share": (0.0, 0.05, {}, _scenario_count(*WEAK_SPOT_SCENARIOS)),
}


def test_every_world_parameter_has_a_direction_test() -> None:
    tested = set(DIRECTIONS) | {"port_reported_share", "seed"}
    assert tested == {f.name for f in fields(World)}


@pytest.mark.parametrize("name", list(DIRECTIONS))
def test_each_parameter_moves_the_traffic_the_way_it_names(name: str) -> None:
    low, high, others, measure = DIRECTIONS[name]
    base = BASE.replace(**others)
    lo = measure(_traffic(base.replace(**{name: low}))[0])
    hi = measure(_traffic(base.replace(**{name: high}))[0])
    assert hi > lo, (name, lo, hi)


def test_the_carrier_reports_number_ports_in_the_signal_lists() -> None:
    def reported(share: float) -> int:
        events, sim = _traffic(BASE.replace(port_reported_share=share, weak_spot_share=0.05),
                               signals=True)
        assert sim.signal_lists is not None
        ported = {e["phone"] for e in events if e["label"]["scenario"] == "number_port"}
        return sum(1 for number, _ in sim.signal_lists.recycled if number in ported)

    assert reported(0.0) == 0 < reported(1.0)


# -- the attackers the engine is weakest against, and customers who change SIM and phone ---


@pytest.fixture(scope="module")
def drawn() -> list[Events]:
    return [list(Simulator(users=200, days=40, seed=s, world=World.draw(s)).events())
            for s in (1, 2, 3)]


def test_every_weak_spot_attack_is_in_every_drawn_world_with_its_label(drawn) -> None:
    for events in drawn:
        labels = [e["label"] for e in events if e["label"]["attack"]]
        assert {*WEAK_SPOT_SCENARIOS, "sim_swap", "credential_stuffing"} <= {
            x["scenario"] for x in labels}
        for label in labels:
            assert set(label["passes"]) <= {"sms_otp", "email_otp", "captcha"}
            hours = label["reported_after_hours"]
            assert hours is None or hours > 0
        ports = [x for x in labels if x["scenario"] in ("number_port", "sim_swap")]
        assert all("sms_otp" in x["passes"] for x in ports)
        bots = [x for x in labels if x["scenario"] == "credential_stuffing"]
        assert all("sms_otp" not in x["passes"] for x in bots)


def test_a_device_record_replay_carries_the_victims_record(drawn) -> None:
    for events in drawn:
        records = {(e["user_id"], e["device"]["id"], e["device"]["model"], e["user_agent"])
                   for e in _app(events)}
        replays = [e for e in events if e["label"]["scenario"] == "device_record_replay"]
        assert replays
        for e in replays:
            assert (e["user_id"], e["device"]["id"], e["device"]["model"],
                    e["user_agent"]) in records
            assert e["login_method"] == "password"


def test_a_residential_proxy_is_the_victims_provider_on_another_block(drawn) -> None:
    for events in drawn:
        homes: defaultdict[str, set[str]] = defaultdict(set)
        for e in _customers(events):
            if ":" not in e["ip"]:
                homes[e["user_id"]].add(e["ip"].rsplit(".", 1)[0])
        proxies = [e for e in events if e["label"]["scenario"] == "residential_proxy"]
        assert proxies
        for e in proxies:
            block = e["ip"].rsplit(".", 1)[0]
            net16 = ".".join(block.split(".")[:2])
            assert any(b.startswith(net16 + ".") for b in homes[e["user_id"]])


def test_a_number_port_is_a_new_sim_and_an_sms_login_from_a_new_phone(drawn) -> None:
    for events in drawn:
        phones = {e["device"]["id"] for e in _app(events)}
        ports = [e for e in events if e["label"]["scenario"] == "number_port"]
        assert ports
        for e in ports:
            assert e["login_method"] == "sms_otp"
            assert e["device"]["id"] not in phones


def test_customers_get_new_sims_and_then_sign_in_by_sms(drawn) -> None:
    """A real customer's new SIM followed by an SMS login is in the traffic."""
    found = 0
    for events in drawn:
        seen: defaultdict[str, set[str]] = defaultdict(set)
        for e in _app(events):
            iccid = e.get("sim", {}).get("iccid")
            if iccid is None:
                continue
            if seen[e["user_id"]] and iccid not in seen[e["user_id"]] and \
                    e["login_method"] == "sms_otp":
                found += 1
            seen[e["user_id"]].add(iccid)
    assert found > 0
