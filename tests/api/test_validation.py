"""Malformed requests get a 422 naming the field, and never touch the store."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from riskengine.api import create_app
from riskengine.service.settings import Settings

GOOD: dict[str, Any] = {
    "event_id": "good-1",
    "user_id": "li.wei@example.cn",
    "ip": "123.120.5.9",
    "timestamp": "2026-11-02T09:30:00+08:00",
    "device": {"id": "490154203237518", "model": "Xiaomi 14", "bluetooth_mac": "3c:22:fb:12:34:56"},
    "network": {"type": "wifi", "ssid": "Home"},
    "sim": {"imsi": "460001234567890", "iccid": "89860012345678901234"},
    "phone": "+8613800138000",
}

_DROP = object()


def with_(path: str, value: Any) -> dict[str, Any]:
    """``GOOD`` with the dotted ``path`` set to ``value`` (or removed for ``_DROP``)."""
    body = json.loads(json.dumps(GOOD))
    *parents, last = path.split(".")
    node = body
    for name in parents:
        node = node[name]
    if value is _DROP:
        del node[last]
    else:
        node[last] = value
    return body


# (field named in the 422, request body)
BAD: list[tuple[str, str, dict[str, Any]]] = [
    # -- wrong JSON types: validation is strict
    ("user_id false", "user_id", with_("user_id", False)),
    ("user_id number", "user_id", with_("user_id", 1)),
    ("user_id null", "user_id", with_("user_id", None)),
    ("ip true", "ip", with_("ip", True)),
    ("ip number", "ip", with_("ip", 2071987465)),
    ("device.model number", "device.model", with_("device.model", 14)),
    ("device.id number", "device.id", with_("device.id", 490154203237518)),
    ("device string", "device", with_("device", "Xiaomi 14")),
    ("network string", "network", with_("network", "wifi")),
    ("sim list", "sim", with_("sim", ["460001234567890"])),
    ("event_id number", "event_id", with_("event_id", 42)),
    ("timestamp epoch", "timestamp", with_("timestamp", 1793583000)),
    ("phone number", "phone", with_("phone", 8613800138000)),
    ("auth_result bool", "auth_result", with_("auth_result", True)),
    # -- IP
    ("ip out of range", "ip", with_("ip", "999.1.1.1")),
    ("ip letters", "ip", with_("ip", "abc")),
    ("ip empty", "ip", with_("ip", "")),
    ("ip with port", "ip", with_("ip", "123.120.5.9:443")),
    ("ip cidr", "ip", with_("ip", "123.120.5.0/24")),
    # -- device
    ("imei bad luhn", "device.id", with_("device.id", "490154203237519")),
    ("device id with spaces", "device.id", with_("device.id", "not an id at all")),
    ("device id markup", "device.id", with_("device.id", "<img src=x>")),
    ("device id too long", "device.id", with_("device.id", "a" * 65)),
    ("mac malformed", "device.bluetooth_mac", with_("device.bluetooth_mac", "zz:22:fb:12:34:56")),
    ("mac short", "device.bluetooth_mac", with_("device.bluetooth_mac", "3c:22:fb:12:34")),
    ("mac too long", "device.bluetooth_mac", with_("device.bluetooth_mac", "3c:22:fb:12:34:56:")),
    # -- SIM and phone
    ("imsi 13 digits", "sim.imsi", with_("sim.imsi", "4600012345678")),
    ("imsi 16 digits", "sim.imsi", with_("sim.imsi", "4600012345678901")),
    ("imsi letters", "sim.imsi", with_("sim.imsi", "46000123456789x")),
    ("iccid not 89", "sim.iccid", with_("sim.iccid", "12860012345678901234")),
    ("iccid 17 digits", "sim.iccid", with_("sim.iccid", "89860012345678901")),
    ("iccid 21 digits", "sim.iccid", with_("sim.iccid", "898600123456789012345")),
    ("phone without +", "phone", with_("phone", "8613800138000")),
    ("phone 16 digits", "phone", with_("phone", "+8613800138000123")),
    ("phone letters", "phone", with_("phone", "+86138abc8000")),
    ("phone spaces", "phone", with_("phone", "+86 138 0013 8000")),
    # -- timestamp
    ("timestamp words", "timestamp", with_("timestamp", "yesterday at noon")),
    ("timestamp date only", "timestamp", with_("timestamp", "2026-11-02")),
    ("timestamp slashes", "timestamp", with_("timestamp", "02/11/2026 09:30:00 +08:00")),
    ("timestamp no offset", "timestamp", with_("timestamp", "2026-11-02T09:30:00")),
    ("timestamp no offset ms", "timestamp", with_("timestamp", "2026-11-02T09:30:00.123")),
    ("timestamp bad month", "timestamp", with_("timestamp", "2026-13-02T09:30:00+08:00")),
    # -- lengths
    ("user_id 257 chars", "user_id", with_("user_id", "u" * 257)),
    ("event_id 129 chars", "event_id", with_("event_id", "e" * 129)),
    ("user_agent 1025 chars", "user_agent", with_("user_agent", "M" * 1025)),
    ("ssid 65 chars", "network.ssid", with_("network.ssid", "s" * 65)),
    ("device.model 129 chars", "device.model", with_("device.model", "m" * 129)),
    # -- missing or empty
    ("user_id missing", "user_id", with_("user_id", _DROP)),
    ("ip missing", "ip", with_("ip", _DROP)),
    ("user_id empty", "user_id", with_("user_id", "")),
    # -- enums
    ("event_type", "event_type", with_("event_type", "logout")),
    ("auth_result", "auth_result", with_("auth_result", "ok")),
    ("auth_result case", "auth_result", with_("auth_result", "SUCCESS")),
    ("login_method", "login_method", with_("login_method", "face_id")),
    ("network.type number", "network.type", with_("network.type", 5)),
    ("tenant spaces", "tenant", with_("tenant", "acme corp")),
    ("tenant empty", "tenant", with_("tenant", "")),
    ("tenant 65 chars", "tenant", with_("tenant", "t" * 65)),
    ("tenant newline", "tenant", with_("tenant", "acme\n")),
]

# Lookalikes of valid values: trailing newlines, other scripts' digits, ISO-but-not-RFC-3339.
LOOKALIKES = [
    pytest.param(
        "sim.imsi",
        with_("sim.imsi", "46000123456789\n"),
        id="imsi trailing newline",
    ),
    pytest.param(
        "sim.imsi",
        with_("sim.imsi", "４６０００１２３４５６７８９０"),
        id="imsi fullwidth digits",
    ),
    pytest.param(
        "sim.iccid",
        with_("sim.iccid", "898600123456789012\n"),
        id="iccid trailing newline",
    ),
    pytest.param(
        "phone",
        with_("phone", "+8613800138000\n"),
        id="phone trailing newline",
    ),
    pytest.param(
        "phone",
        with_("phone", "+86１３８００１３８０００"),
        id="phone fullwidth digits",
    ),
    pytest.param(
        "timestamp",
        with_("timestamp", "2026-W45-1T09:30:00+08:00"),
        id="timestamp iso week date",
    ),
    pytest.param(
        "timestamp",
        with_("timestamp", "2026-11-02T09:30:00+0800"),
        id="timestamp offset without colon",
    ),
    pytest.param(
        "timestamp",
        with_("timestamp", "2026-11-02T09:30:00+08"),
        id="timestamp hour-only offset",
    ),
    pytest.param(
        "ip",
        with_("ip", "2408:8207:1::1%eth0"),
        id="ip with ipv6 zone id",
    ),
]


def snapshot(db_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, read through a separate connection."""
    with sqlite3.connect(db_path) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        )]
        assert tables, "the store created its schema at start-up"
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr)
                for t in tables}


def assert_rejected(client: TestClient, body: dict[str, Any], field: str) -> None:
    response = client.post("/v1/score", json=body)

    assert response.status_code == 422, response.text
    answer = response.json()
    assert field in answer["fields"], answer
    assert field in answer["error"]
    assert {d["field"] for d in answer["detail"]} == set(answer["fields"])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path]]:
    """One app for the table, whose store already holds one good decision."""
    db_path = tmp_path_factory.mktemp("validation") / "re.db"
    with TestClient(create_app(Settings(env="test", store=f"sqlite:{db_path}"))) as client:
        assert client.post("/v1/score", json=GOOD).status_code == 200
        yield client, db_path


@pytest.mark.parametrize(("field", "body"), [pytest.param(f, b, id=i) for i, f, b in BAD])
def test_malformed_request_is_refused_naming_the_field(
    served: tuple[TestClient, Path], field: str, body: dict[str, Any]
) -> None:
    client, db_path = served
    before = snapshot(db_path)

    assert_rejected(client, body, field)

    assert snapshot(db_path) == before


@pytest.mark.parametrize(("field", "body"), LOOKALIKES)
def test_lookalike_values_are_refused(
    served: tuple[TestClient, Path], field: str, body: dict[str, Any]
) -> None:
    client, db_path = served
    before = snapshot(db_path)

    assert_rejected(client, body, field)

    assert snapshot(db_path) == before


def test_identifier_values_are_not_echoed_in_the_422(served: tuple[TestClient, Path]) -> None:
    client, _ = served
    values = {
        "device.id": "490154203237519",
        "sim.imsi": "4600012345678",
        "sim.iccid": "12860012345678901234",
        "phone": "8613912345678",
        "device.bluetooth_mac": "zz:22:fb:12:34:56",
    }
    for field, value in values.items():
        response = client.post("/v1/score", json=with_(field, value))
        assert response.status_code == 422
        assert value not in response.text, field


def test_several_bad_fields_are_all_named(served: tuple[TestClient, Path]) -> None:
    client, _ = served
    body = {**with_("ip", "abc"), "user_id": 7, "sim": {"imsi": "1", "iccid": "2"}}

    response = client.post("/v1/score", json=body)

    assert response.status_code == 422
    assert {"ip", "user_id", "sim.imsi", "sim.iccid"} <= set(response.json()["fields"])


def test_body_that_is_not_a_json_object_is_refused(served: tuple[TestClient, Path]) -> None:
    client, db_path = served
    before = snapshot(db_path)

    for content, status in ((b"[]", 422), (b'"login"', 422), (b"null", 422),
                            (b"{not json", 400)):
        response = client.post(
            "/v1/score", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == status, content

    assert snapshot(db_path) == before


@pytest.mark.parametrize("seeded", [False, True], ids=["empty store", "store with data"])
def test_a_batch_of_bad_requests_leaves_the_store_as_it_was(tmp_path: Path, seeded: bool) -> None:
    db_path = tmp_path / "re.db"
    with TestClient(create_app(Settings(env="test", store=f"sqlite:{db_path}"))) as client:
        if seeded:
            for n in range(3):
                result = "failure" if n % 2 else "success"
                good = {**GOOD, "event_id": f"good-{n}", "auth_result": result}
                assert client.post("/v1/score", json=good).status_code == 200
        before = snapshot(db_path)
        assert any(before.values()) is seeded

        for _, field, body in BAD:
            assert_rejected(client, body, field)

        assert snapshot(db_path) == before
    assert snapshot(db_path) == before


# Real clients' shapes: placeholders and SDK spellings are accepted, never a 422 on a real
# customer's login (issue #17).
REAL_WORLD = [
    ("all-zero OAID", with_("device.id", "0000000000000000")),
    ("all-zero IDFA", with_("device.id", "00000000-0000-0000-0000-000000000000")),
    ("IDFV upper case", with_("device.id", "A1B2C3D4-E5F6-7890-ABCD-EF1234567890")),
    ("Android id", with_("device.id", "3f2a9c0e1b4d5a6f")),
    ("vendor id", with_("device.id", "HONOR_1a2b3c4d5e")),
    ("empty device id", with_("device.id", "")),
    ("Bluetooth placeholder", with_("device.bluetooth_mac", "02:00:00:00:00:00")),
    ("empty Bluetooth", with_("device.bluetooth_mac", "")),
    ("unknown ssid", with_("network.ssid", "<unknown ssid>")),
    ("quoted ssid", with_("network.ssid", '"HomeNet"')),
    ("network 4G", with_("network.type", "4G")),
    ("network WIFI", with_("network.type", "WIFI")),
    ("empty IMSI", with_("sim.imsi", "")),
    ("all-zero ICCID", with_("sim.iccid", "00000000000000000000")),
    ("ICCID with filler F", with_("sim.iccid", "8986001234567890123F")),
    ("empty phone", with_("phone", "")),
    ("empty model", with_("device.model", "")),
    ("empty timestamp", with_("timestamp", "")),
    ("empty event id", with_("event_id", "")),
]


@pytest.mark.parametrize(("case", "body"), REAL_WORLD, ids=[c for c, _ in REAL_WORLD])
def test_real_world_shapes_are_scored(served: tuple[TestClient, Path], case: str,
                                      body: dict[str, Any]) -> None:
    client, _ = served
    # Each case is a login of its own (the same event_id with another body is a 409).
    if body.get("event_id"):
        body = {**body, "event_id": f"real-world-{case}"}

    response = client.post("/v1/score", json=body)

    assert response.status_code == 200, (case, response.text)
