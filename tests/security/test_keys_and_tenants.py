"""Issue #18, items 2 (analyst claims) and 3 (keys not tied to tenants), and the metrics
scope: what a key may do is what it was made for, and nothing a caller writes in a request
widens it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.security.conftest import bearer, keyed_client, write_key

LOGIN = {"user_id": "+8613800138000", "ip": "123.120.5.9", "event_id": "evt-a1",
         "tenant": "tenantA"}



def stored_decision(client: Any, tenant: str, event_id: str) -> Any:
    """The decision kept for the caller's ``event_id`` (under the id's pseudonym)."""
    engine = client.app.state.built.engine
    return engine.store.get_decision(tenant, engine.event_key(tenant, event_id))

def test_a_key_cannot_act_for_another_tenant_by_naming_it(tmp_path: Path) -> None:
    """A feedback key of tenant B set ``"tenant": "tenantA"`` in the body and applied
    feedback to tenant A's event (issue #18, 3)."""
    keys = tmp_path / "keys.json"
    scorer_a = write_key(keys, "shop-a", ["score"], ["tenantA"])
    feedback_b = write_key(keys, "shop-b", ["feedback"], ["tenantB"])
    admin_b = write_key(keys, "ops-b", ["admin"], ["tenantB"])
    with keyed_client(tmp_path) as client:
        assert client.post("/v1/score", json=LOGIN, headers=bearer(scorer_a)).status_code == 200

        forged = client.post("/v1/feedback", headers=bearer(feedback_b), json={
            "event_id": "evt-a1", "tenant": "tenantA", "label": "fraud",
            "source": "user_report"})
        scored_for_a = client.post("/v1/score", json={**LOGIN, "event_id": "evt-b"},
                                   headers=bearer(admin_b))
        exported = client.post("/v1/users/data", headers=bearer(admin_b),
                               json={"user_id": LOGIN["user_id"], "tenant": "tenantA"})
        erased = client.post("/v1/users/erase", headers=bearer(admin_b),
                             json={"user_id": LOGIN["user_id"], "tenant": "tenantA"})
        # the query string is no way around it either
        by_query = client.post("/v1/feedback?tenant=tenantB", headers=bearer(feedback_b), json={
            "event_id": "evt-a1", "tenant": "tenantA", "label": "fraud",
            "source": "user_report"})

        for answer in (forged, scored_for_a, exported, erased, by_query):
            assert answer.status_code == 403, answer.text
            assert answer.json()["fields"] == ["tenant"]
        stored = stored_decision(client, "tenantA", "evt-a1")
        assert stored is not None and not stored.feedback  # nothing was applied
        # its own tenant, it may
        assert client.post("/v1/score", json={**LOGIN, "tenant": "tenantB"},
                           headers=bearer(admin_b)).status_code == 200


def test_a_key_for_several_tenants_serves_each_and_no_other(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    both = write_key(keys, "two", ["score"], ["tenantA", "tenantB"])
    every = write_key(keys, "all", ["score"], ["*"])
    with keyed_client(tmp_path) as client:
        for tenant, key, status in [("tenantA", both, 200), ("tenantB", both, 200),
                                    ("tenantC", both, 403), ("default", both, 403),
                                    ("tenantC", every, 200)]:
            answer = client.post("/v1/score", json={**LOGIN, "tenant": tenant,
                                                    "event_id": f"{tenant}-{status}"},
                                 headers=bearer(key))
            assert answer.status_code == status, (tenant, answer.text)


def test_only_an_analyst_key_may_claim_an_analyst_verdict(tmp_path: Path) -> None:
    """Any key with the feedback scope could claim ``source: analyst`` (issue #18, 2)."""
    keys = tmp_path / "keys.json"
    scorer = write_key(keys, "shop", ["score"], ["tenantA"])
    feedback = write_key(keys, "auth-service", ["feedback"], ["tenantA"])
    analyst = write_key(keys, "fraud-desk", ["analyst"], ["tenantA"])
    verdict = {"event_id": "evt-a1", "tenant": "tenantA", "label": "legit", "source": "analyst"}
    with keyed_client(tmp_path) as client:
        assert client.post("/v1/score", json=LOGIN, headers=bearer(scorer)).status_code == 200

        claimed = client.post("/v1/feedback", json=verdict, headers=bearer(feedback))
        assert claimed.status_code == 403 and claimed.json()["fields"] == ["source"]
        stored = stored_decision(client, "tenantA", "evt-a1")
        assert not stored.feedback

        assert client.post("/v1/feedback", json=verdict,
                           headers=bearer(analyst)).status_code == 200
        assert stored_decision(client, "tenantA", "evt-a1").feedback
        # the feedback scope keeps doing what it did
        report = {**verdict, "label": "fraud", "source": "user_report"}
        assert client.post("/v1/feedback", json=report,
                           headers=bearer(feedback)).status_code == 200


def test_a_metrics_key_reads_metrics_and_nothing_else(tmp_path: Path) -> None:
    """The Prometheus scraper needed an admin key, one that can erase users."""
    keys = tmp_path / "keys.json"
    scraper = write_key(keys, "prometheus", ["metrics"], ["*"])
    with keyed_client(tmp_path) as client:
        metrics = client.get("/metrics", headers=bearer(scraper))
        assert metrics.status_code == 200 and "riskengine_decisions_total" in metrics.text
        for method, path, body in [
                ("POST", "/v1/users/erase", {"user_id": "+8613800138000"}),
                ("POST", "/v1/users/data", {"user_id": "+8613800138000"}),
                ("POST", "/v1/score", LOGIN),
                ("POST", "/v1/feedback", {"event_id": "e", "label": "fraud",
                                          "source": "user_report"}),
                ("GET", "/v1/admin/rules", None),
                ("POST", "/v1/admin/rules/reload", None)]:
            answer = client.request(method, path, json=body, headers=bearer(scraper))
            assert answer.status_code == 403, (path, answer.text)


def test_global_routes_need_a_key_for_every_tenant(tmp_path: Path) -> None:
    """Rules, thresholds, the shadow report and the metrics are every tenant's: a key of one
    tenant, admin or not, does not get them."""
    keys = tmp_path / "keys.json"
    admin_a = write_key(keys, "ops-a", ["admin"], ["tenantA"])
    metrics_a = write_key(keys, "prom-a", ["metrics"], ["tenantA"])
    admin_all = write_key(keys, "ops", ["admin"], ["*"])
    with keyed_client(tmp_path) as client:
        for path in ("/v1/admin/rules", "/v1/admin/shadow/report"):
            assert client.get(path, headers=bearer(admin_a)).status_code == 403
            assert client.get(path, headers=bearer(admin_all)).status_code == 200
        assert client.get("/metrics", headers=bearer(metrics_a)).status_code == 403
        # its own tenant's users it may still export
        assert client.post("/v1/users/data", json={"user_id": "u", "tenant": "tenantA"},
                           headers=bearer(admin_a)).status_code == 200
