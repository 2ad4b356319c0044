"""Hostile bodies get 4xx, never a 5xx, and never reach a log unescaped."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from riskengine.api import create_app
from riskengine.service.settings import Settings


@pytest.fixture()
def client(tmp_path):
    settings = Settings(env="test", auth="open", store=f"sqlite:{tmp_path / 'r.db'}",
                        _env_file=None)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"[" * 20_000 + b"]" * 20_000, 400),  # deeply nested
        (b'{"user_id": "\xff\xfe", "ip": "1.2.3.4"}', 400),  # invalid UTF-8
        (b'{"user_id": "' + b"a" * 100_000 + b'", "ip": "1.2.3.4"}', 413),  # huge
        (b"not json", 400),  # not JSON at all: the body, not a field, is at fault
        (b"", 422),
    ],
)
def test_malformed_bodies_are_4xx(client, body, status) -> None:
    assert client.post("/v1/score", content=body, headers=JSON).status_code == status


def test_a_huge_body_without_a_declared_length_is_refused(client) -> None:
    def chunks():
        for _ in range(200):
            yield b"a" * 1024

    response = client.post("/v1/score", content=chunks(), headers=JSON)
    assert response.status_code == 413


@pytest.mark.parametrize("field", ["user_id", "user_agent", "event_id"])
@pytest.mark.parametrize("evil", ["a\r\nInjected: yes", "a\nb", "nul\x00byte", "bell\x07"])
def test_control_characters_are_refused_and_not_logged(client, caplog, field, evil) -> None:
    caplog.set_level(logging.DEBUG)
    body = {"user_id": "u1", "ip": "123.120.5.9", field: evil}
    response = client.post("/v1/score", json=body)
    assert response.status_code == 422 and field in response.json()["fields"]
    assert evil not in caplog.text and "Injected: yes\n" not in caplog.text
