"""Rules as versioned data: reload and watch, refusal keeps the old set, shadow, tenants, lists."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from riskengine.api import create_app
from riskengine.core.rules import load_ruleset, parse_ruleset
from riskengine.service.settings import Settings

SHIPPED = (Path(__file__).parents[2] / "riskengine" / "data" / "default_rules.yaml").read_text()
LOGIN = {"user_id": "+8613800138000", "ip": "123.120.5.9", "timestamp": "2026-11-02T01:00:00Z",
         "device": {"id": "490154203237518"}, "network": {"type": "wifi", "ssid": "Home"}}


def app_with(tmp_path: Path, **extra) -> TestClient:
    rules = tmp_path / "rules.yaml"
    if not rules.exists():
        rules.write_text(SHIPPED)
    settings = Settings(**{"env": "test", "auth": "open", "store": f"sqlite:{tmp_path / 'r.db'}",
                           "rules": rules, "_env_file": None, **extra})
    return TestClient(create_app(settings))


def test_an_invalid_ruleset_is_refused_and_the_old_one_keeps_serving(tmp_path) -> None:
    with app_with(tmp_path, rules_watch_s=0) as client:
        before = client.get("/v1/admin/rules").json()["live"]
        (tmp_path / "rules.yaml").write_text(SHIPPED.replace(
            "{feature: ip_is_tor, op: is_true}", "{feature: ip_is_onion, op: is_true}"))
        refused = client.post("/v1/admin/rules/reload")
        assert refused.status_code == 422
        error = refused.json()["error"]
        assert "rule 'failed_from_unfamiliar_network'" in error  # the first rule naming it
        assert "field 'when'" in error and "ip_is_onion" in error
        assert client.get("/v1/admin/rules").json()["live"] == before
        assert client.post("/v1/score", json=LOGIN).json()["rules_version"] == before

        (tmp_path / "rules.yaml").write_text(SHIPPED.replace('version: "2026.11.0"',
                                                             'version: "2026.11.1"'))
        accepted = client.post("/v1/admin/rules/reload")
        assert accepted.status_code == 200 and accepted.json()["live"].startswith("2026.11.1+")
        body = client.post("/v1/score", json={**LOGIN, "event_id": "after"}).json()
        assert body["rules_version"].startswith("2026.11.1+")


def test_the_file_watch_reloads_without_a_request(tmp_path) -> None:
    with app_with(tmp_path, rules_watch_s=0.1) as client:
        (tmp_path / "rules.yaml").write_text(SHIPPED.replace('version: "2026.11.0"',
                                                             'version: "2026.11.7"'))
        deadline = time.monotonic() + 10
        while not client.get("/v1/admin/rules").json()["live"].startswith("2026.11.7"):
            assert time.monotonic() < deadline, "the watch did not pick the change up"
            time.sleep(0.1)


def test_shadow_decisions_are_recorded_and_never_enforced(tmp_path) -> None:
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(SHIPPED.replace('version: "2026.11.0"', 'version: "candidate"')
                         .replace("  challenge: 0.45\n", "  challenge: 0.01\n"))
    with app_with(tmp_path, shadow_rules=candidate, rules_watch_s=0) as client:
        bodies = [client.post("/v1/score", json={**LOGIN, "event_id": f"s{i}",
                                                  "timestamp": f"2026-11-0{2 + i}T01:00:00Z"})
                  .json() for i in range(5)]
        assert all("shadow" not in b for b in bodies)
        assert all(not b["rules_version"].startswith("candidate") for b in bodies)
        report = client.get("/v1/admin/shadow/report").json()
        assert report["shadow_enabled"] and report["decisions"] == 5
        assert report["candidate_rules"].startswith("candidate")
        assert report["candidate"]["challenge"] >= report["live"]["challenge"]
        built = client.app.state.built
        # Kept under the event id's pseudonym.
        stored = built.engine.store.get_decision("default",
                                                 built.engine.event_key("default", "s0"))
        assert stored.decision["shadow"]["rules_version"].startswith("candidate")
        again = client.post("/v1/score", json={**LOGIN, "event_id": "s0",
                                               "timestamp": "2026-11-02T01:00:00Z"}).json()
        assert "shadow" not in again  # a replayed answer carries no shadow either


@pytest.mark.parametrize(
    ("lists", "code", "decision"),
    [
        ("lists:\n  allow: [{cidr: 123.120.0.0/16, note: office}]\n  deny: []\n",
         "allow_listed_network", None),
        ("lists:\n  allow: []\n  deny: [{asn: 4808, expires: 2099-01-01T00:00:00Z}]\n",
         "deny_listed_network", "deny"),
    ],
)
def test_listed_networks_show_up_as_reasons(tmp_path, lists, code, decision) -> None:
    (tmp_path / "rules.yaml").write_text(SHIPPED.replace("lists:\n  allow: []\n  deny: []\n",
                                                         lists))
    with app_with(tmp_path, rules_watch_s=0) as client:
        body = client.post("/v1/score", json=LOGIN).json()
        assert code in {r["code"] for r in body["reasons"]}
        if decision:
            assert body["decision"] == decision


def test_an_expired_list_entry_no_longer_applies(tmp_path) -> None:
    (tmp_path / "rules.yaml").write_text(SHIPPED.replace(
        "lists:\n  allow: []\n  deny: []\n",
        "lists:\n  allow: []\n  deny: [{asn: 4808, expires: 2026-01-01T00:00:00Z}]\n"))
    with app_with(tmp_path, rules_watch_s=0) as client:
        body = client.post("/v1/score", json=LOGIN).json()
        assert "deny_listed_network" not in {r["code"] for r in body["reasons"]}


def test_per_tenant_thresholds_and_overrides(tmp_path) -> None:
    (tmp_path / "rules.yaml").write_text(SHIPPED.replace("tenants: {}\n", (
        "tenants:\n  strict:\n    thresholds: {challenge: 0.01, deny: 0.99}\n"
        "    rules:\n      tor_exit: {enabled: false}\n")))
    with app_with(tmp_path, rules_watch_s=0) as client:
        tor = {**LOGIN, "ip": "185.220.101.1"}
        default = client.post("/v1/score", json=tor).json()
        strict = client.post("/v1/score", json={**tor, "tenant": "strict"}).json()
        assert "tor_exit" in {r["code"] for r in default["reasons"]}
        assert "tor_exit" not in {r["code"] for r in strict["reasons"]}
        assert client.get("/v1/admin/rules").json()["tenant_thresholds"]["strict"][
            "challenge"] == 0.01


def test_export_of_chosen_thresholds_is_a_valid_ruleset(tmp_path) -> None:
    with app_with(tmp_path, rules_watch_s=0) as client:
        text = client.get("/v1/admin/ui/ruleset",
                          params={"challenge": 0.30004, "deny": 0.8}).text
        exported = parse_ruleset(text)
        assert (exported.thresholds.challenge, exported.thresholds.deny) == (0.3, 0.8)
        # Only the thresholds change: every rule and comment of the live file stays.
        shipped = load_ruleset()
        assert exported.version == shipped.version
        assert [r.id for r in exported.rules] == [r.id for r in shipped.rules]
        assert "#" in text
        bad = client.get("/v1/admin/ui/ruleset", params={"challenge": 0.9, "deny": 0.5})
        assert bad.status_code == 422


def test_admin_routes_need_the_admin_scope(tmp_path) -> None:
    from riskengine.adapters.auth import KeyStore

    keys = tmp_path / "keys.json"
    _, scorer = KeyStore(keys).create("scorer", ["score"])
    with app_with(tmp_path, auth="keys", api_keys=keys, rules_watch_s=0) as client:
        for path in ("/v1/admin/rules", "/v1/admin/shadow/report", "/v1/admin/ui/data"):
            assert client.get(path).status_code == 401
            assert client.get(path, headers={"Authorization": f"Bearer {scorer}"}
                              ).status_code == 403
        assert client.get("/ui").status_code == 200  # the page holds no data
