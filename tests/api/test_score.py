"""POST /v1/score and the operations endpoints, through the app's own test client."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

CONTRACT_V1 = {
    "event_id": str,
    "decision": str,
    "score": float,
    "challenge": (str, type(None)),
    "reasons": list,
    "rules_version": str,
    "model_version": str,
    "latency_ms": float,
    "failover": bool,
    "user_message": (str, type(None)),  # set on a deny
}

FULL_REQUEST: dict[str, Any] = {
    "event_id": "evt-0001",
    "tenant": "acme",
    "user_id": "+8613800138000",
    "timestamp": "2026-11-02T09:30:00+08:00",
    "event_type": "login",
    "auth_result": "success",
    "login_method": "password",
    "ip": "123.120.5.9",
    "user_agent": "okhttp/4.12.0",
    "device": {
        "id": "490154203237518",
        "model": "Xiaomi 14",
        "os_name": "Android",
        "os_version": "14",
        "bluetooth_mac": "3c:22:fb:12:34:56",
    },
    "network": {"type": "wifi", "ssid": "Home-WiFi"},
    "sim": {"imsi": "460001234567890", "iccid": "89860012345678901234"},
    "phone": "+8613800138000",
}


def score(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/score", json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def assert_contract(body: dict[str, Any]) -> None:
    assert set(body) == set(CONTRACT_V1)
    for name, kind in CONTRACT_V1.items():
        value = body[name]
        assert isinstance(value, kind), (name, value)
        if kind is float:  # JSON 0 and 1 are ints; bools are not numbers
            assert not isinstance(value, bool), name
    assert body["decision"] in ("allow", "challenge", "deny")
    assert body["challenge"] in (None, "sms_otp", "email_otp", "captcha")
    assert (body["challenge"] is not None) == (body["decision"] == "challenge")
    assert 0.0 <= body["score"] <= 1.0
    assert body["rules_version"]
    assert body["model_version"]
    assert body["latency_ms"] >= 0.0
    assert body["reasons"], "every decision is explained"
    for reason in body["reasons"]:
        assert set(reason) == {"code", "message", "contribution", "observed"}
        assert isinstance(reason["code"], str) and reason["code"]
        assert isinstance(reason["message"], str) and reason["message"]
        assert isinstance(reason["contribution"], int | float)
        assert not isinstance(reason["contribution"], bool)
        assert isinstance(reason["observed"], dict)


def codes(body: dict[str, Any]) -> set[str]:
    return {r["code"] for r in body["reasons"]}


class TestHappyPath:
    def test_full_request_gets_a_complete_answer(self, client: TestClient) -> None:
        body = score(client, FULL_REQUEST)

        assert_contract(body)
        assert body["event_id"] == "evt-0001"
        assert body["failover"] is False

    def test_minimal_request(self, client: TestClient) -> None:
        body = score(client, {"user_id": "u1", "ip": "123.120.5.9"})

        assert_contract(body)

    @pytest.mark.parametrize("ip", ["185.220.101.1", "52.95.110.1", "2408:8207:1::1", "10.1.1.1"])
    def test_answer_is_complete_for_any_kind_of_address(self, client: TestClient, ip: str) -> None:
        assert_contract(score(client, {"user_id": "u1", "ip": ip}))

    def test_a_risky_login_is_explained_by_its_rules(self, client: TestClient) -> None:
        body = score(client, {"user_id": "u1", "ip": "185.220.101.1"})  # Tor exit

        assert_contract(body)
        assert body["decision"] in ("challenge", "deny")
        assert "tor_exit" in codes(body)
        tor = next(r for r in body["reasons"] if r["code"] == "tor_exit")
        assert tor["observed"] == {"ip_is_tor": True}
        assert tor["contribution"] > 0
        assert sum(r["contribution"] for r in body["reasons"]) == pytest.approx(
            body["score"], abs=1e-3
        )

    def test_event_id_is_echoed(self, client: TestClient) -> None:
        body = score(client, {"event_id": "a-b_c.42", "user_id": "u1", "ip": "123.120.5.9"})

        assert body["event_id"] == "a-b_c.42"

    def test_a_uuid_is_made_when_the_event_id_is_absent(self, client: TestClient) -> None:
        first = score(client, {"user_id": "u1", "ip": "123.120.5.9"})
        second = score(client, {"user_id": "u1", "ip": "123.120.5.9"})

        assert uuid.UUID(first["event_id"])
        assert uuid.UUID(second["event_id"])
        assert first["event_id"] != second["event_id"]

    def test_timestamp_may_be_absent_or_utc(self, client: TestClient) -> None:
        now = datetime.now(UTC).replace(microsecond=0)
        for ts in (None, now.isoformat().replace("+00:00", "Z"), now.isoformat()):
            body = {"user_id": "u1", "ip": "123.120.5.9"}
            if ts is not None:
                body["timestamp"] = ts
            assert_contract(score(client, body))


class TestIdempotency:
    def test_same_event_id_gets_the_same_answer(self, client: TestClient) -> None:
        first = score(client, FULL_REQUEST)
        second = score(client, FULL_REQUEST)

        first.pop("latency_ms")
        second.pop("latency_ms")
        assert second == first

    def test_an_event_id_reused_for_another_login_is_a_conflict(
        self, client: TestClient
    ) -> None:
        # Issue #18: another login under a used event_id got the first login's answer.
        request = {"event_id": "evt-7", "user_id": "u1", "ip": "123.120.5.9"}
        score(client, request)

        reused = client.post("/v1/score", json={**request, "ip": "185.220.101.1",
                                                "auth_result": "failure"})

        assert reused.status_code == 409
        assert reused.json()["fields"] == ["event_id"]

    def test_a_replayed_failure_is_counted_once(self, client: TestClient) -> None:
        start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
        failure = {"user_id": "u1", "ip": "123.120.5.9", "auth_result": "failure"}
        # Five replays of one failed attempt are one failure, not five: no brute-force alarm.
        for _ in range(5):
            score(client, {**failure, "event_id": "f-1", "timestamp": start.isoformat()})

        later = (start + timedelta(minutes=1)).isoformat()
        body = score(client, {**failure, "event_id": "f-2", "timestamp": later})

        assert "account_brute_force" not in codes(body)

    def test_distinct_failures_do_add_up(self, client: TestClient) -> None:
        start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
        failure = {"user_id": "u1", "ip": "123.120.5.9", "auth_result": "failure"}
        answers = [
            score(client, {**failure, "event_id": f"f-{n}",
                           "timestamp": (start + timedelta(seconds=n)).isoformat()})
            for n in range(5)
        ]

        assert "account_brute_force" not in codes(answers[3])
        assert "account_brute_force" in codes(answers[4])

    def test_event_ids_are_per_tenant(self, client: TestClient) -> None:
        a = score(client, {"event_id": "same", "tenant": "a", "user_id": "u1", "ip": "8.8.8.8"})
        b = score(client, {"event_id": "same", "tenant": "b", "user_id": "u1",
                           "ip": "185.220.101.1"})

        assert "tor_exit" in codes(b)
        assert "tor_exit" not in codes(a)


class TestLenientWhereItShouldBe:
    def test_unknown_fields_are_ignored(self, client: TestClient) -> None:
        body = {
            **FULL_REQUEST,
            "schema_version": 2,
            "extra": {"nested": [1, 2, 3]},
            "device": {**FULL_REQUEST["device"], "color": "red", "battery_pct": 71},
            "network": {**FULL_REQUEST["network"], "bssid": "whatever"},
            "sim": {**FULL_REQUEST["sim"], "carrier": "China Mobile"},
        }

        answer = score(client, body)

        assert_contract(answer)
        assert answer["event_id"] == "evt-0001"

    @pytest.mark.parametrize(
        "mac", ["02:00:00:00:00:00", "02-00-00-00-00-00", "020000000000", "00:00:00:00:00:00"]
    )
    def test_placeholder_bluetooth_address_is_taken_as_absent(
        self, app: FastAPI, client: TestClient, mac: str
    ) -> None:
        store = app.state.built.engine.store
        score(client, {"user_id": "u1", "ip": "123.120.5.9",
                       "device": {"bluetooth_mac": "3c:22:fb:12:34:56"}})

        real = score(client, {"user_id": "u1", "ip": "123.120.5.9",
                              "device": {"bluetooth_mac": "3C-22-FB-12-34-56"}})
        placeholder = score(client, {"user_id": "u1", "ip": "123.120.5.9",
                                     "device": {"bluetooth_mac": mac}})

        key = app.state.built.engine.event_key  # decisions are kept under the id's pseudonym
        assert store.get_decision("default", key("default", real["event_id"])
                                  ).features["bluetooth_known"] is True
        stored = store.get_decision("default", key("default", placeholder["event_id"]))
        assert stored.features["bluetooth_known"] is None

    @pytest.mark.parametrize(
        "device_id", ["00000000-0000-0000-0000-000000000000", "000000000000000", "", "   "]
    )
    def test_placeholder_device_id_is_taken_as_absent(
        self, app: FastAPI, client: TestClient, device_id: str
    ) -> None:
        store = app.state.built.engine.store
        answers = [
            score(client, {"user_id": f"user-{n}", "ip": "123.120.5.9",
                           "device": {"id": device_id}})
            for n in range(6)
        ]

        # Six accounts on one real device id would trip the shared-device rule; on the
        # placeholder they are six accounts with no device id at all.
        for answer in answers:
            assert_contract(answer)
            assert "device_many_accounts" not in codes(answer)
            stored = store.get_decision(
                "default", app.state.built.engine.event_key("default", answer["event_id"]))
            assert stored.features["device_id_present"] is False

    def test_a_real_device_id_shared_by_many_accounts_is_flagged(self, client: TestClient) -> None:
        answers = [
            score(client, {"user_id": f"user-{n}", "ip": "123.120.5.9",
                           "device": {"id": "A1B2C3D4-E5F6-7890-ABCD-EF1234567890"}})
            for n in range(6)
        ]

        assert "device_many_accounts" not in codes(answers[0])
        assert "device_many_accounts" in codes(answers[-1])

    def test_device_ids_are_case_insensitive(self, client: TestClient) -> None:
        answers = [
            score(client, {"user_id": f"user-{n}", "ip": "123.120.5.9",
                           "device": {"id": oaid}})
            for n, oaid in enumerate(["a1b2c3d4-e5f6-7890-abcd-ef1234567890",
                                      "A1B2C3D4-E5F6-7890-ABCD-EF1234567890"] * 3)
        ]

        assert "device_many_accounts" in codes(answers[-1])


class TestOperations:
    def test_healthz(self, client: TestClient) -> None:
        response = client.get("/healthz")

        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    def test_readyz_reports_the_ip_data_and_its_build_dates(self, client: TestClient) -> None:
        response = client.get("/readyz")

        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ready"
        checks = body["checks"]
        assert checks["store"] == "ok"
        assert checks["rules"]["version"]
        assert checks["rules"]["rules"] > 0
        assert checks["model"]["version"]
        databases = checks["ip_data"]["databases"]
        names = " ".join(d["name"] for d in databases)
        assert "DBIP-City" in names and "DBIP-ASN" in names
        for db in databases:
            assert datetime.strptime(db["build_date"], "%Y-%m-%d")
            assert db["license"]

    def test_readyz_versions_match_the_answers(self, client: TestClient) -> None:
        ready = client.get("/readyz").json()["checks"]
        body = score(client, {"user_id": "u1", "ip": "123.120.5.9"})

        assert body["rules_version"] == ready["rules"]["version"]
        assert body["model_version"] == ready["model"]["version"]

    def test_readyz_describes_the_model_serving_now(self, client: TestClient) -> None:
        engine = client.app.state.built.engine  # type: ignore[attr-defined]
        shipped = client.get("/readyz").json()["checks"]["model"]
        assert shipped["parent"] is None and shipped["trained_on"]["events"] > 0

        # A rollback or a published snapshot swaps the model while the service runs.
        card = {"model_version": "hst-test+s1", "parent": shipped["version"],
                "training": {"events": 12}}
        engine.swap_model(engine.model, "hst-test+s1", card)
        now = client.get("/readyz").json()["checks"]["model"]

        assert (now["version"], now["parent"], now["trained_on"]) == (
            "hst-test+s1", shipped["version"], {"events": 12})
        assert score(client, {"user_id": "u1", "ip": "123.120.5.9"})["model_version"] == \
            now["version"]

    def test_openapi_schema_describes_the_score_endpoint(self, client: TestClient) -> None:
        response = client.get("/openapi.json")

        assert response.status_code == 200
        spec = response.json()
        assert "post" in spec["paths"]["/v1/score"]
        assert {"ScoreRequest", "ScoreResponse"} <= set(spec["components"]["schemas"])
        assert {"/healthz", "/readyz"} <= set(spec["paths"])

    def test_docs_are_served(self, client: TestClient) -> None:
        response = client.get("/docs")

        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "openapi.json" in response.text
