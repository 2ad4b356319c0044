"""Distinctive identifiers go in; none comes out raw anywhere the service writes: the
SQLite file, every Redis value, the logs, the outbox, the model snapshots, the export."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from models.snapshots import list_snapshots, load_snapshot
from riskengine.api import create_app
from riskengine.core.privacy import Kind
from riskengine.service.settings import Settings

IMEI, OAID = "868412034567899", "7d3c1e2a-9f8b-4c6d-a1e0-5b4f3c2d1e0f"
IMSI, ICCID = "460017712345678", "89860177123456789012"
MAC, SSID = "3c:22:fb:9a:7b:6c", "Wang-Family-5G-7731"
PHONE, EMAIL, IP = "+8613912345678", "wang.fang.7731@example.cn", "123.120.77.31"
RAW = [IMEI, OAID, IMSI, ICCID, MAC, MAC.replace(":", ""), MAC.upper(), SSID, PHONE,
       PHONE.lstrip("+"), PHONE[3:], EMAIL, IP]


def requests() -> Iterator[dict]:
    for i, user in enumerate((PHONE, EMAIL)):
        for k in range(4):
            yield {"event_id": f"scan-{i}-{k}", "user_id": user, "ip": IP, "phone": PHONE,
                   "timestamp": f"2026-11-0{2 + k}T01:00:00Z",
                   "login_method": "sms_otp" if k == 1 else "password",
                   "auth_result": "failure" if k == 3 else "success",
                   "device": {"id": IMEI if i == 0 else OAID, "model": "Xiaomi 14",
                              "bluetooth_mac": MAC},
                   "network": {"type": "wifi", "ssid": SSID},
                   "sim": {"imsi": IMSI, "iccid": ICCID}}


def exercise(settings: Settings, log_file: Path) -> list[str]:
    """Score, give feedback, export; returns the export texts."""
    handler = logging.FileHandler(log_file)
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.DEBUG)
    # The test's own HTTP client logs the URLs it calls; no user id is in any of them (the
    # export takes it in its body), so its lines stay in the scanned log.
    try:
        with TestClient(create_app(settings)) as client:
            for body in requests():
                assert client.post("/v1/score", json=body).status_code == 200
            client.post("/v1/feedback", json={"event_id": "scan-0-2", "label": "fraud",
                                              "source": "user_report"})
            client.post("/v1/score", json={"user_id": EMAIL, "ip": "999.1.1.1",
                                           "device": {"id": IMEI[:-1] + "0"}})  # a 422
            exports = [client.post("/v1/users/data", json={"user_id": u}).text
                       for u in (PHONE, EMAIL)]
            assert all('"decisions"' in e for e in exports)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    return exports


def redis_value(client: redis.Redis, key: bytes) -> object:
    kind = client.type(key).decode()
    if kind == "string":
        return client.get(key)
    if kind == "hash":
        return client.hgetall(key)
    if kind == "zset":
        return client.zrange(key, 0, -1, withscores=True)
    if kind == "set":
        return client.smembers(key)
    if kind == "stream":
        return client.xrange(key)
    return client.lrange(key, 0, -1)


def leaks(text: str) -> list[str]:
    low = text.lower()
    return [raw for raw in RAW if raw.lower() in low]


def snapshot_texts(folder: Path, key: bytes) -> list[str]:
    """The snapshots decompressed: a joblib file is zlib-compressed, so scan its pickle."""
    out = []
    for snap in list_snapshots(folder):
        model, card = load_snapshot(snap.path, key=key)
        out.append(pickle.dumps(model).decode("latin-1") + str(card))
    assert out, "the test expected at least one snapshot"
    return out


def test_sqlite_logs_snapshots_and_export_hold_no_raw_identifier(tmp_path: Path) -> None:
    settings = Settings(env="test", auth="open", store=f"sqlite:{tmp_path / 'r.db'}",
                        model_dir=tmp_path / "snapshots", _env_file=None)
    exports = exercise(settings, tmp_path / "service.log")
    files = [p for p in tmp_path.glob("r.db*")]
    assert files
    texts = [p.read_bytes().decode("latin-1") for p in files]
    texts.append((tmp_path / "service.log").read_text())
    texts += snapshot_texts(tmp_path / "snapshots", settings.signing_key())
    texts += exports
    # Data did land, under the event id's pseudonym: event ids may carry a phone number,
    # so they are pseudonymized like any identifier (issue #18).
    landed = settings.pseudonymizer()(Kind.EVENT_ID, "scan-0-0", scope="default")
    assert any(landed in t for t in texts)
    for n, text in enumerate(texts):
        assert leaks(text) == [], n
        assert "scan-0-" not in text and "scan-1-" not in text, n


def test_redis_values_and_the_outbox_hold_no_raw_identifier(tmp_path: Path) -> None:
    url = "redis://127.0.0.1:6379/12"
    client = redis.Redis.from_url(url)
    client.flushdb()
    settings = Settings(env="test", auth="open", store=url, outbox=tmp_path / "outbox.db",
                        model_dir=tmp_path / "snapshots", _env_file=None)
    try:
        exports = exercise(settings, tmp_path / "service.log")
        texts = [(tmp_path / "service.log").read_text(), *exports]
        for key in client.scan_iter(count=500):
            texts.append(key.decode() + repr(redis_value(client, key)))
        assert len(texts) > 10
        texts += [p.read_bytes().decode("latin-1") for p in tmp_path.glob("outbox.db*")]
        for text in texts:
            assert leaks(text) == []
    finally:
        client.flushdb()


@pytest.fixture(autouse=True)
def _quiet_root_logger() -> Iterator[None]:
    root, client = logging.getLogger(), logging.getLogger("httpx")
    levels = root.level, client.level
    yield
    root.setLevel(levels[0])
    client.setLevel(levels[1])
