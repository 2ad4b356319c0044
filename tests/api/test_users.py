"""The user's rights over the API: export everything, erase everything (admin scope)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from riskengine.adapters.auth import KeyStore
from riskengine.api import create_app
from riskengine.service.settings import Settings

LOGIN = {"user_id": "li.wei@example.cn", "ip": "123.120.5.9",
         "device": {"id": "490154203237518"}, "network": {"type": "wifi", "ssid": "Home"}}


def _client(tmp_path, **extra) -> TestClient:
    settings = Settings(**{"env": "test", "auth": "open", "store": f"sqlite:{tmp_path / 'r.db'}",
                           "_env_file": None, **extra})
    return TestClient(create_app(settings))


def test_export_then_erase_then_the_user_is_new(tmp_path) -> None:
    with _client(tmp_path) as client:
        for day in range(3):
            client.post("/v1/score", json={**LOGIN, "event_id": f"e{day}",
                                           "timestamp": f"2026-11-0{day + 2}T01:00:00Z"})
        export = client.get("/v1/users/li.wei@example.cn/data").json()
        assert [d["event_id"] for d in export["decisions"]] == ["e0", "e1", "e2"]
        [profile] = export["profiles"]
        kinds = {item["kind"] for item in profile["items"]}
        assert {"devices", "ssids", "ip_prefixes", "countries"} <= kinds
        assert all(item["meaning"] for item in profile["items"])

        erased = client.delete("/v1/users/li.wei@example.cn").json()
        assert erased["erased_records"] >= 4
        after = client.get("/v1/users/li.wei@example.cn/data").json()
        assert after["profiles"] == [] and after["decisions"] == []
        client.post("/v1/score", json={**LOGIN, "event_id": "e9",
                                       "timestamp": "2026-11-09T01:00:00Z"})
        stored = client.app.state.built.engine.store.get_decision("default", "e9")
        assert stored.features["user_is_new"] is True  # the next login is a new user's


def test_user_routes_need_the_admin_scope(tmp_path) -> None:
    keys = tmp_path / "keys.json"
    _, scorer = KeyStore(keys).create("scorer", ["score"])
    _, admin = KeyStore(keys).create("admin", ["admin"])
    with _client(tmp_path, auth="keys", api_keys=keys) as client:
        path = "/v1/users/li.wei@example.cn/data"
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": f"Bearer {scorer}"}).status_code == 403
        assert client.get(path, headers={"Authorization": f"Bearer {admin}"}).status_code == 200
        assert client.delete("/v1/users/x", headers={"X-API-Key": scorer}).status_code == 403
