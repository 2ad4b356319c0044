"""The user's rights over the API: export everything, erase everything (admin scope), the
user's identifier in the body, never in the URL."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from riskengine.adapters.auth import KeyStore
from riskengine.api import create_app
from riskengine.service.settings import Settings

USER = {"user_id": "li.wei@example.cn"}
LOGIN = {"user_id": "li.wei@example.cn", "ip": "123.120.5.9",
         "device": {"id": "490154203237518"}, "network": {"type": "wifi", "ssid": "Home"}}


def _client(tmp_path, **extra) -> TestClient:
    settings = Settings(**{"env": "test", "auth": "open", "store": f"sqlite:{tmp_path / 'r.db'}",
                           "_env_file": None, **extra})
    return TestClient(create_app(settings))


def test_export_then_erase_then_the_user_is_new(tmp_path) -> None:
    with _client(tmp_path) as client:
        for n in range(3):
            client.post("/v1/score", json={**LOGIN, "event_id": f"e{n}"})
        export = client.post("/v1/users/data", json=USER).json()
        engine = client.app.state.built.engine  # event ids are kept as pseudonyms
        assert [d["event_id"] for d in export["decisions"]] == [
            engine.event_key("default", f"e{n}") for n in range(3)]
        [profile] = export["profiles"]
        kinds = {item["kind"] for item in profile["items"]}
        assert {"devices", "ssids", "ip_prefixes", "countries"} <= kinds
        assert all(item["meaning"] for item in profile["items"])

        erased = client.post("/v1/users/erase", json=USER).json()
        assert erased["erased_records"] >= 4
        after = client.post("/v1/users/data", json=USER).json()
        assert after["profiles"] == [] and after["decisions"] == []
        client.post("/v1/score", json={**LOGIN, "event_id": "e9"})
        stored = engine.store.get_decision("default", engine.event_key("default", "e9"))
        assert stored.features["user_is_new"] is True  # the next login is a new user's


def test_user_routes_need_the_admin_scope(tmp_path) -> None:
    keys = tmp_path / "keys.json"
    _, scorer = KeyStore(keys).create("scorer", ["score"])
    _, admin = KeyStore(keys).create("admin", ["admin"])
    with _client(tmp_path, auth="keys", api_keys=keys) as client:
        for path in ("/v1/users/data", "/v1/users/erase"):
            assert client.post(path, json=USER).status_code == 401
            assert client.post(path, json=USER,
                               headers={"Authorization": f"Bearer {scorer}"}).status_code == 403
            assert client.post(path, json=USER,
                               headers={"Authorization": f"Bearer {admin}"}).status_code == 200


def test_a_user_id_with_a_slash_is_exported_and_erased(tmp_path) -> None:
    user = {"user_id": "dept/alice", "tenant": "acme"}
    with _client(tmp_path) as client:
        assert client.post("/v1/score", json={**LOGIN, **user}).status_code == 200

        export = client.post("/v1/users/data", json=user).json()
        erased = client.post("/v1/users/erase", json=user).json()

        assert len(export["decisions"]) == 1 and export["tenant"] == "acme"
        assert erased == {"tenant": "acme", "erased_records": erased["erased_records"]}
        assert erased["erased_records"] >= 1
        assert client.post("/v1/users/data", json=user).json()["decisions"] == []


def test_the_old_routes_with_the_id_in_the_url_are_gone(tmp_path) -> None:
    with _client(tmp_path) as client:
        assert client.get("/v1/users/li.wei@example.cn/data").status_code == 404
        assert client.delete("/v1/users/li.wei@example.cn").status_code in (404, 405)
        assert client.get("/v1/users/data").status_code == 405  # the id goes in a POST body


@pytest.mark.parametrize("body", [{}, {"user_id": ""}, {"user_id": 5}, {"user_id": "a\nb"},
                                  {"user_id": "u", "tenant": "a b"}],
                         ids=["missing", "empty", "number", "newline", "bad tenant"])
def test_a_bad_user_reference_is_a_422_naming_the_field(tmp_path, body) -> None:
    with _client(tmp_path) as client:
        for path in ("/v1/users/data", "/v1/users/erase"):
            answer = client.post(path, json=body)
            assert answer.status_code == 422, answer.text
            assert answer.json()["fields"] in (["user_id"], ["tenant"])
