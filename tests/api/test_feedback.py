"""POST /v1/feedback: idempotent, 404 for unknown events, 422 naming bad fields."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

LOGIN = {"user_id": "+8613800138000", "ip": "123.120.5.9", "event_id": "fb-1",
         "timestamp": "2026-11-02T01:00:00Z",
         "device": {"id": "490154203237518"}, "network": {"type": "wifi", "ssid": "Home"}}


def test_feedback_is_applied_once(client: TestClient) -> None:
    assert client.post("/v1/score", json=LOGIN).status_code == 200
    body = {"event_id": "fb-1", "label": "legit", "source": "analyst"}
    first = client.post("/v1/feedback", json=body)
    second = client.post("/v1/feedback", json=body)
    assert first.status_code == second.status_code == 200
    assert first.json() == {"event_id": "fb-1", "status": "applied"}
    assert second.json() == {"event_id": "fb-1", "status": "duplicate"}
    changed = client.post("/v1/feedback", json={**body, "label": "fraud",
                                                 "source": "user_report"})
    assert changed.json()["status"] == "applied"


def test_unknown_event_is_404(client: TestClient) -> None:
    response = client.post("/v1/feedback", json={"event_id": "never", "label": "fraud",
                                                  "source": "analyst"})
    assert response.status_code == 404
    assert response.json()["fields"] == ["event_id"]


def test_feedback_is_per_tenant(client: TestClient) -> None:
    client.post("/v1/score", json=LOGIN)
    response = client.post("/v1/feedback", json={"event_id": "fb-1", "tenant": "other",
                                                  "label": "legit", "source": "analyst"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"label": "legit", "source": "analyst"}, "event_id"),
        ({"event_id": "x", "label": "maybe", "source": "analyst"}, "label"),
        ({"event_id": "x", "label": "legit", "source": "rumour"}, "source"),
        ({"event_id": "x", "label": "legit"}, "source"),
        ({"event_id": 7, "label": "legit", "source": "analyst"}, "event_id"),
        ({"event_id": "x" * 129, "label": "legit", "source": "analyst"}, "event_id"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(client: TestClient, body: dict, field: str) -> None:
    response = client.post("/v1/feedback", json=body)
    assert response.status_code == 422
    assert field in response.json()["fields"]
