"""GET /metrics: decisions, latency, failovers and store errors in the Prometheus format."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from riskengine.adapters.auth import KeyStore, Scope
from riskengine.adapters.stores.base import StoreError
from riskengine.api import create_app
from riskengine.api.metrics import LATENCY_BUCKETS_S, MAX_TENANT_LABELS
from riskengine.service.settings import Settings

LOGIN = {"user_id": "+8613800138000", "ip": "123.120.5.9"}


def samples(client: TestClient, **headers: str) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def decisions(found: dict[tuple[str, frozenset], float], **labels: str) -> float:
    return found.get(("riskengine_decisions_total", frozenset(labels.items())), 0.0)


def test_scores_are_counted_by_decision_tenant_and_failover(client: TestClient) -> None:
    for n in range(3):
        assert client.post("/v1/score", json={**LOGIN, "event_id": f"a-{n}"}).status_code == 200
    deny = {**LOGIN, "tenant": "shop2", "user_id": "u2", "event_id": "b-1"}
    answer = client.post("/v1/score", json=deny).json()["decision"]

    found = samples(client)

    assert decisions(found, decision="allow", tenant="default", failover="false") == 3
    assert decisions(found, decision=answer, tenant="shop2", failover="false") == 1
    assert found[("riskengine_store_errors_total", frozenset())] == 0
    assert found[("riskengine_failovers_total",
                  frozenset({("reason", "store_unavailable")}))] == 0


def test_latency_histogram_counts_every_answer(client: TestClient) -> None:
    for n in range(4):
        client.post("/v1/score", json={**LOGIN, "event_id": f"lat-{n}"})
    client.post("/v1/score", json={**LOGIN, "event_id": "lat-0"})  # a replay: an answer too

    found = samples(client)

    assert found[("riskengine_score_latency_seconds_count", frozenset())] == 5
    assert 0 < found[("riskengine_score_latency_seconds_sum", frozenset())] < 5
    bounds = {float(dict(labels)["le"]) for name, labels in found
              if name == "riskengine_score_latency_seconds_bucket"}
    assert bounds == {*LATENCY_BUCKETS_S, float("inf")}
    assert min(bounds) == 0.0005 and max(b for b in bounds if b != float("inf")) == 0.25
    # The replay is not a second decision.
    assert decisions(found, decision="allow", tenant="default", failover="false") == 4


@pytest.mark.parametrize(("error", "reason"), [(StoreError("disk gone"), "store_unavailable"),
                                               (RuntimeError("bug"), "internal_error")])
def test_failovers_are_counted_by_reason(client: TestClient, monkeypatch: pytest.MonkeyPatch,
                                         error: Exception, reason: str) -> None:
    store = client.app.state.built.engine.store  # type: ignore[attr-defined]

    def failing(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(store, "load", failing)
    for n in range(2):
        body = client.post("/v1/score", json={**LOGIN, "event_id": f"f-{n}"}).json()
        assert body["failover"] is True

    found = samples(client)

    assert decisions(found, decision="challenge", tenant="default", failover="true") == 2
    assert found[("riskengine_failovers_total", frozenset({("reason", reason)}))] == 2
    store_errors = 2 if reason == "store_unavailable" else 0
    assert found[("riskengine_store_errors_total", frozenset())] == store_errors


def test_tenant_label_is_capped(client: TestClient) -> None:
    tenants = [f"t{n:03d}" for n in range(MAX_TENANT_LABELS + 3)]
    for tenant in tenants:
        response = client.post("/v1/score", json={**LOGIN, "tenant": tenant, "event_id": "x"})
        assert response.status_code == 200

    found = samples(client)

    labelled = {dict(labels)["tenant"] for name, labels in found
                if name == "riskengine_decisions_total"}
    assert len(labelled) == MAX_TENANT_LABELS + 1
    assert labelled == set(tenants[:MAX_TENANT_LABELS]) | {"other"}
    assert decisions(found, decision="allow", tenant="other", failover="false") == 3
    # A tenant that already has its label keeps it.
    client.post("/v1/score", json={**LOGIN, "tenant": tenants[0], "event_id": "y"})
    assert decisions(samples(client), decision="allow", tenant=tenants[0], failover="false") == 2


def test_each_app_counts_only_its_own(tmp_path: Path) -> None:
    apps = [create_app(Settings(env="test", auth="open", store=f"sqlite:{tmp_path / f'{n}.db'}"))
            for n in range(2)]
    with TestClient(apps[0]) as first, TestClient(apps[1]) as second:
        first.post("/v1/score", json=LOGIN)

        assert decisions(samples(first), decision="allow", tenant="default",
                         failover="false") == 1
        assert decisions(samples(second), decision="allow", tenant="default",
                         failover="false") == 0


def test_metrics_need_an_admin_key(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "keys.json")
    admin = keys.create("prometheus", [Scope.ADMIN])[1]
    scorer = keys.create("checkout", [Scope.SCORE])[1]
    settings = Settings(env="test", auth="keys", store=f"sqlite:{tmp_path / 're.db'}",
                        api_keys=keys.path)
    with TestClient(create_app(settings)) as client:
        client.post("/v1/score", json=LOGIN, headers={"X-API-Key": scorer})

        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"X-API-Key": scorer}).status_code == 403
        found = samples(client, Authorization=f"Bearer {admin}")
    assert decisions(found, decision="allow", tenant="default", failover="false") == 1
