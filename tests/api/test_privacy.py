"""Raw identifiers never reach the database file, its WAL, or any log, at any log level."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

EMAIL = "li.wei.8842@example.cn"
PHONE_ACCOUNT = "+8613912348842"
IMEI = "490154203237518"
IMEI_2 = "356938035643809"
OAID = "5f3e8842-aa11-4b2c-9d7e-0c1b2a398842"
IMSI = "460001234567890"
ICCID = "89860012345678901234"
MAC = "3c:22:fb:88:42:a1"
SSID = "Zhang-Family-WiFi-8842"
PHONE = "+8613700138842"  # not the example in the 422 message
IPV4 = "123.120.5.9"
IPV6 = "2408:8207:1::8842"
BAD_IMEI = "490154203237519"  # refused with a 422, still an identifier

REQUESTS: list[dict[str, Any]] = [
    {
        "event_id": "p-1",
        "user_id": EMAIL,
        "ip": IPV4,
        "timestamp": "2026-11-02T09:30:00+08:00",
        "device": {"id": IMEI, "model": "Xiaomi 14", "os_name": "Android", "os_version": "14",
                   "bluetooth_mac": MAC},
        "network": {"type": "wifi", "ssid": SSID},
        "sim": {"imsi": IMSI, "iccid": ICCID},
        "phone": PHONE,
    },
    {  # the same person, upper-case spellings, a failed password
        "event_id": "p-2",
        "user_id": EMAIL,
        "ip": IPV4,
        "timestamp": "2026-11-02T09:31:00+08:00",
        "auth_result": "failure",
        "device": {"id": OAID.upper(), "bluetooth_mac": MAC.upper().replace(":", "")},
        "network": {"type": "wifi", "ssid": f"  {SSID} "},
        "sim": {"iccid": ICCID},
        "phone": PHONE,
    },
    {  # a phone-number account over IPv6, SMS login
        "event_id": "p-3",
        "user_id": PHONE_ACCOUNT,
        "ip": IPV6,
        "timestamp": "2026-11-02T09:32:00+08:00",
        "login_method": "sms_otp",
        "device": {"id": IMEI_2, "bluetooth_mac": MAC.replace(":", "-")},
        "sim": {"imsi": IMSI},
        "phone": PHONE_ACCOUNT,
    },
    {  # registration from a Tor exit
        "user_id": EMAIL,
        "ip": "185.220.101.1",
        "event_type": "registration",
        "device": {"id": OAID},
        "network": {"type": "wifi", "ssid": SSID},
    },
    # (the same login sent again, below: a retry gets the first answer)
]
REQUESTS.append(dict(REQUESTS[0]))

INVALID_REQUESTS: list[dict[str, Any]] = [
    {"user_id": EMAIL, "ip": IPV4, "device": {"id": BAD_IMEI}},
    {"user_id": EMAIL, "ip": IPV4, "sim": {"imsi": IMSI[:13], "iccid": ICCID}, "phone": PHONE},
    {"user_id": EMAIL, "ip": IPV4, "phone": PHONE.lstrip("+"), "network": {"ssid": SSID}},
    {"user_id": EMAIL, "ip": IPV4, "device": {"bluetooth_mac": MAC + ":ff"}},
]


def _variants(value: str) -> set[str]:
    """Spellings of one identifier that would give it away (compared case-insensitively)."""
    out = {value, value.strip()}
    if value.count(":") == 5:  # a MAC address
        hexdigits = value.replace(":", "")
        out |= {hexdigits, value.replace(":", "-"), value.replace(":", ".")}
    if value.startswith("+"):
        out |= {value[1:], value[3:]}  # without + and without the country code
    if "-" in value and len(value) == 36:  # an OAID
        out.add(value.replace("-", ""))
    if "@" in value:
        out.add(value.split("@")[0])
    return {v.lower() for v in out}


SECRETS = sorted(
    set().union(*(_variants(v) for v in (EMAIL, PHONE_ACCOUNT, IMEI, IMEI_2, OAID, IMSI, ICCID,
                                         MAC, SSID, PHONE, BAD_IMEI)))
)


def leaked(text: bytes | str, secrets: list[str] = SECRETS) -> list[str]:
    haystack = text.lower() if isinstance(text, str) else text.lower().decode("latin-1")
    return [s for s in secrets if s in haystack]


def database_bytes(db_path: Path) -> dict[str, bytes]:
    files = [db_path, *(db_path.with_name(db_path.name + s) for s in ("-wal", "-shm", "-journal"))]
    return {f.name: f.read_bytes() for f in files if f.exists()}


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """Everything logged anywhere, at DEBUG, also written to a file."""
    path = tmp_path / "all.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


def test_the_secret_list_is_not_vacuous() -> None:
    assert "3c22fb8842a1" in SECRETS
    assert "3c-22-fb-88-42-a1" in SECRETS
    assert "8613700138842" in SECRETS
    assert "zhang-family-wifi-8842" in SECRETS
    assert leaked(f"x {MAC.upper()} y") and leaked(b"..3C22FB8842A1..")


def test_no_raw_identifier_is_stored_or_logged(
    app: FastAPI, db_path: Path, log_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="riskengine")
    with TestClient(app) as client:
        answers = [client.post("/v1/score", json=body) for body in REQUESTS]
        refusals = [client.post("/v1/score", json=body) for body in INVALID_REQUESTS]
        while_running = database_bytes(db_path)

    after_close = database_bytes(db_path)
    logged = log_file.read_text(encoding="utf-8")

    assert [a.status_code for a in answers] == [200] * len(REQUESTS)
    assert [r.status_code for r in refusals] == [422] * len(INVALID_REQUESTS)
    # The checks below must have something to look at.
    assert sum(r.name.startswith("riskengine") for r in caplog.records) >= len(REQUESTS)
    assert '"event": "decision"' in logged
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == len(REQUESTS) - 1
        assert conn.execute("SELECT COUNT(*) FROM profiles").fetchone()[0] >= 1

    after_close = {f"{name} (closed)": blob for name, blob in after_close.items()}
    for name, blob in {**while_running, **after_close}.items():
        assert leaked(blob) == [], name
    assert leaked(logged) == [], "log file"
    assert leaked(caplog.text) == [], "caplog"
    for record in caplog.records:
        assert leaked(repr(record.args)) == [], record.getMessage()
    for response in (*answers, *refusals):
        assert leaked(response.text) == [], response.text


def test_ip_addresses_are_not_stored_raw(app: FastAPI, db_path: Path) -> None:
    with TestClient(app) as client:
        for body in REQUESTS:
            assert client.post("/v1/score", json=body).status_code == 200
        blobs = database_bytes(db_path)
    blobs |= {f"{k} (closed)": v for k, v in database_bytes(db_path).items()}

    addresses = [IPV4, IPV6, "123.120.5.0", "2408:8207:1::", "185.220.101.1"]
    for name, blob in blobs.items():
        assert leaked(blob, addresses) == [], name
