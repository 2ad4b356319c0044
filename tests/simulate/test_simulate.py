"""The simulator: deterministic, valid wire events, every scenario, no tell-tale artefacts."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from features.ipintel import IpIntel
from riskengine.core.wire import ScoreRequest
from riskengine.tools import simdata as sd
from riskengine.tools.simulate import SCENARIOS, Simulator, simulate_to


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return list(Simulator(users=400, days=40, seed=11).events())


def test_same_seed_same_traffic_other_seed_other_traffic() -> None:
    a = list(Simulator(users=40, days=10, seed=3).events())
    b = list(Simulator(users=40, days=10, seed=3).events())
    c = list(Simulator(users=40, days=10, seed=4).events())
    assert a == b
    assert a != c


def test_events_are_in_time_order_with_unique_ids(events) -> None:
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)
    assert len({e["event_id"] for e in events}) == len(events)


def test_every_event_is_a_valid_wire_request(events) -> None:
    for e in events:
        ScoreRequest(**{k: v for k, v in e.items() if k != "label"})


def test_every_scenario_is_there_and_customers_are_the_bulk(events) -> None:
    counts = Counter(e["label"]["scenario"] for e in events)
    assert set(counts) == {"customer", *SCENARIOS}
    assert counts["customer"] > 0.8 * len(events)
    assert all(e["label"]["attack"] == (e["label"]["scenario"] != "customer") for e in events)


def test_customers_drift_like_real_people(events) -> None:
    customers = [e for e in events if not e["label"]["attack"]]
    assert any(e["event_type"] == "registration" for e in customers)
    assert any(e["auth_result"] == "failure" for e in customers)  # typos
    assert any(":" in e["ip"] for e in customers)  # IPv6
    assert any(e.get("network", {}).get("ssid") in sd.PUBLIC_SSIDS for e in customers)
    devices_per_user: dict[str, set[str]] = {}
    for e in customers:
        if e.get("device"):
            devices_per_user.setdefault(e["user_id"], set()).add(e["device"]["id"])
    assert any(len(d) > 1 for d in devices_per_user.values())  # new and second phones
    accounts_per_device = Counter(d for ds in devices_per_user.values() for d in ds)
    assert max(accounts_per_device.values()) > 1  # a shared family phone


def test_attacks_use_the_customers_pools(events) -> None:
    """No artefact separates attackers: same models, user agents, Wi-Fi name shapes."""
    customers = [e for e in events if not e["label"]["attack"]]
    attacks = [e for e in events if e["label"]["attack"]]
    models = {e["device"]["model"] for e in customers if e.get("device")}
    assert {e["device"]["model"] for e in attacks if e.get("device")} <= models
    desktop = {e["user_agent"] for e in customers if not e.get("device")}
    assert {e["user_agent"] for e in attacks if not e.get("device")} <= desktop
    assert any(e.get("network", {}).get("ssid") for e in attacks)
    assert any(not e.get("network", {}).get("ssid") for e in customers)
    # Attackers' addresses come from the same city networks and VPN exits as customers',
    # plus the proxy hosting that only attackers rent.
    places = {n for p in (*sd.CHINA, *sd.ABROAD) for n in (*p.broadband, *p.mobile, *p.ipv6)}
    shared = places | set(sd.VPN_EXITS)
    assert {_net(e["ip"]) for e in customers} <= shared
    assert {_net(e["ip"]) for e in attacks} <= shared | set(sd.PROXY_HOSTING)


def _net(ip: str) -> str:
    return ".".join(ip.split(".")[:2]) if ":" not in ip else ":".join(ip.split(":")[:2])


@pytest.mark.parametrize("place", [*sd.CHINA, *sd.ABROAD], ids=lambda p: p.name)
def test_place_networks_geolocate_to_their_country(place: sd.Place, intel: IpIntel) -> None:
    for net in place.broadband:
        assert intel.lookup(f"{net}.1.1").country == place.country, net


def test_anonymizer_exits_are_flagged(intel: IpIntel) -> None:
    assert all(intel.lookup(f"{net}.1.1").is_hosting for net in sd.VPN_EXITS)


def test_write_jsonl(tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    n = simulate_to(out, users=10, days=3, seed=2)
    lines = out.read_text().splitlines()
    assert n == len(lines) > 0
    assert "label" in json.loads(lines[0])


@pytest.fixture(scope="module")
def intel() -> IpIntel:
    return IpIntel.bundled()
