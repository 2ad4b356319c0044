"""Callers and scopes: API keys in either header, 401 and 403, revocation without restart."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from riskengine.adapters.auth import KeyStore, KeyStoreError, Scope
from riskengine.api import create_app
from riskengine.api.security import require
from riskengine.service.settings import Settings

LOGIN = {"user_id": "+8613800138000", "ip": "123.120.5.9", "event_id": "auth-1"}
FEEDBACK = {"event_id": "auth-1", "label": "legit", "source": "user_report"}
KEY_RE = re.compile(r"rk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    """The key file, as `riskengine keys` would manage it beside the running app."""
    return KeyStore(tmp_path / "keys.json")


@pytest.fixture
def secured(tmp_path: Path, keys: KeyStore) -> Iterator[TestClient]:
    settings = Settings(env="test", auth="keys", store=f"sqlite:{tmp_path / 're.db'}",
                        api_keys=keys.path)
    with TestClient(create_app(settings)) as client:
        yield client


def make_key(keys: KeyStore, *scopes: Scope) -> str:
    return keys.create("test-caller", scopes)[1]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RISKENGINE_")}
    return subprocess.run([sys.executable, "-m", "riskengine.tools.cli", *args], env=clean,
                          capture_output=True, text=True, timeout=60, check=False)


# -- no key, bad keys -----------------------------------------------------------------


@pytest.mark.parametrize(("path", "body"), [("/v1/score", LOGIN), ("/v1/feedback", FEEDBACK)])
def test_no_key_is_401_with_a_bearer_challenge(secured: TestClient, path: str,
                                               body: dict) -> None:
    response = secured.post(path, json=body)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "API key" in response.json()["error"]


def test_no_key_is_401_even_for_a_malformed_body(secured: TestClient) -> None:
    response = secured.post("/v1/score", json={"ip": "not-an-ip"})

    assert response.status_code == 401  # nothing about the body is told to a stranger


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
@pytest.mark.parametrize("kind", ["malformed", "unknown", "wrong_secret", "revoked", "empty"])
def test_invalid_keys_are_401(secured: TestClient, keys: KeyStore, kind: str,
                              header: str) -> None:
    good = make_key(keys, Scope.SCORE)
    key_id = good.split("_")[1]
    presented = {
        "malformed": "not-a-key",
        "unknown": f"rk_{'0' * 12}_{good.split('_', 2)[2]}",
        "wrong_secret": f"rk_{key_id}_{'A' * 43}",
        "revoked": good,
        "empty": "",
    }[kind]
    if kind == "revoked":
        assert keys.revoke(key_id)
    value = f"Bearer {presented}" if header == "Authorization" else presented

    response = secured.post("/v1/score", json=LOGIN, headers={header: value})

    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_key_in_another_auth_scheme_is_not_taken(secured: TestClient, keys: KeyStore) -> None:
    key = make_key(keys, Scope.SCORE)

    response = secured.post("/v1/score", json=LOGIN, headers={"Authorization": f"Basic {key}"})

    assert response.status_code == 401


# -- scopes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "path", "body"),
    [(Scope.FEEDBACK, "/v1/score", LOGIN), (Scope.SCORE, "/v1/feedback", FEEDBACK)],
)
def test_a_key_without_the_scope_is_403(secured: TestClient, keys: KeyStore, scope: Scope,
                                        path: str, body: dict) -> None:
    response = secured.post(path, json=body, headers=bearer(make_key(keys, scope)))

    assert response.status_code == 403
    assert "www-authenticate" not in response.headers
    assert "scope" in response.json()["error"]


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
def test_the_right_scope_is_served_through_either_header(secured: TestClient, keys: KeyStore,
                                                         header: str) -> None:
    score_key = make_key(keys, Scope.SCORE)
    feedback_key = make_key(keys, Scope.FEEDBACK)

    def headers(key: str) -> dict[str, str]:
        return bearer(key) if header == "Authorization" else {"X-API-Key": key}

    scored = secured.post("/v1/score", json=LOGIN, headers=headers(score_key))
    told = secured.post("/v1/feedback", json=FEEDBACK, headers=headers(feedback_key))

    assert scored.status_code == 200 and scored.json()["event_id"] == "auth-1"
    assert told.status_code == 200 and told.json()["status"] == "applied"


def test_admin_implies_every_scope(secured: TestClient, keys: KeyStore) -> None:
    admin = bearer(make_key(keys, Scope.ADMIN))

    assert secured.post("/v1/score", json=LOGIN, headers=admin).status_code == 200
    assert secured.post("/v1/feedback", json=FEEDBACK, headers=admin).status_code == 200
    assert secured.get("/metrics", headers=admin).status_code == 200


def test_a_key_with_several_scopes_has_each(secured: TestClient, keys: KeyStore) -> None:
    both = bearer(make_key(keys, Scope.SCORE, Scope.FEEDBACK))

    assert secured.post("/v1/score", json=LOGIN, headers=both).status_code == 200
    assert secured.post("/v1/feedback", json=FEEDBACK, headers=both).status_code == 200
    assert secured.get("/metrics", headers=both).status_code == 403


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/docs", "/openapi.json"])
def test_operations_and_docs_stay_open(secured: TestClient, path: str) -> None:
    assert secured.get(path).status_code == 200


def test_the_openapi_schema_names_the_schemes_and_scopes(secured: TestClient) -> None:
    spec = secured.get("/openapi.json").json()

    assert {"HTTPBearer", "APIKeyHeader"} <= set(spec["components"]["securitySchemes"])
    assert {"HTTPBearer": ["score"]} in spec["paths"]["/v1/score"]["post"]["security"]
    assert "security" not in spec["paths"]["/healthz"]["get"]


# -- routes for administrators ----------------------------------------------------------


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "forgotten"])
def test_admin_paths_need_the_admin_scope(secured: TestClient, keys: KeyStore,
                                          declared: bool) -> None:
    """Also for a route that forgot to declare it: the path alone decides."""
    router = APIRouter()
    guard = [require(Scope.ADMIN)] if declared else []

    @router.get("/v1/admin/ping", dependencies=guard)
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    @router.get("/v1/users/{user_id}", dependencies=guard)
    def user(user_id: str) -> dict[str, str]:
        return {"user": user_id}

    app = secured.app
    assert isinstance(app, FastAPI)
    app.include_router(router)
    score_key = bearer(make_key(keys, Scope.SCORE, Scope.FEEDBACK))
    admin_key = make_key(keys, Scope.ADMIN)

    for path in ("/v1/admin/ping", "/v1/users/u1"):
        assert secured.get(path).status_code == 401
        assert secured.get(path, headers=bearer("rk_bogus")).status_code == 401
        assert secured.get(path, headers=score_key).status_code == 403
        assert secured.get(path, headers=bearer(admin_key)).status_code == 200
        assert secured.get(path, headers={"X-API-Key": admin_key}).status_code == 200
    assert secured.get("/v1/users/u1", headers=bearer(admin_key)).json() == {"user": "u1"}
    # Nothing there is even found without an admin key.
    assert secured.get("/v1/admin/nothing-here").status_code == 401
    assert secured.get("/v1/admin/nothing-here", headers=bearer(admin_key)).status_code == 404
    assert secured.get("/v1/usersettings").status_code == 404  # only the path itself, and below


# -- the key file and revocation --------------------------------------------------------


def test_revocation_by_the_cli_takes_effect_without_a_restart(secured: TestClient,
                                                              keys: KeyStore) -> None:
    made = cli("keys", "create", "--name", "checkout", "--scope", "score", "--tenant", "default",
               "--file", str(keys.path))
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    key_id = key.split("_")[1]
    # A key made after the app started is taken at once, too.
    assert secured.post("/v1/score", json=LOGIN, headers=bearer(key)).status_code == 200

    revoked = cli("keys", "revoke", key_id, "--file", str(keys.path))

    assert revoked.returncode == 0, revoked.stderr
    assert secured.post("/v1/score", json=LOGIN, headers=bearer(key)).status_code == 401
    assert any(r.id == key_id and r.revoked for r in KeyStore(keys.path).list())


def test_revocation_through_another_store_takes_effect(secured: TestClient,
                                                       keys: KeyStore) -> None:
    key = make_key(keys, Scope.SCORE)
    assert secured.post("/v1/score", json=LOGIN, headers=bearer(key)).status_code == 200

    assert KeyStore(keys.path).revoke(key.split("_")[1])

    assert secured.post("/v1/score", json=LOGIN, headers=bearer(key)).status_code == 401


def test_the_key_file_holds_no_secret(keys: KeyStore) -> None:
    key = make_key(keys, Scope.SCORE, Scope.FEEDBACK)
    secret = key.split("_", 2)[2]

    text = keys.path.read_text()

    assert key not in text and secret not in text
    (record,) = json.loads(text)["keys"]
    assert set(record) == {"id", "name", "scopes", "tenants", "created", "revoked",
                           "secret_sha256"}
    assert keys.path.stat().st_mode & 0o077 == 0  # readable by its owner only


def test_a_store_reads_its_file_only_when_it_changed(keys: KeyStore,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    key = make_key(keys, Scope.SCORE)
    reads = []
    real_read = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: (reads.append(self),
                                                                    real_read(self, *a, **k))[1])
    for _ in range(5):
        assert keys.verify(key) is not None
    assert reads == []
    KeyStore(keys.path).revoke(key.split("_")[1])  # another process, say
    reads.clear()

    assert keys.verify(key) is None
    assert keys.verify(key) is None
    assert len(reads) == 1


def test_an_unreadable_key_file_refuses_to_start(tmp_path: Path) -> None:
    bad = tmp_path / "keys.json"
    bad.write_text("{not json")
    settings = Settings(env="test", auth="keys", store=f"sqlite:{tmp_path / 're.db'}",
                        api_keys=bad)

    with pytest.raises(KeyStoreError, match="API key file"), TestClient(create_app(settings)):
        pass


# -- modes ------------------------------------------------------------------------------


def test_keys_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RISKENGINE_AUTH", raising=False)

    assert Settings(env="test", _env_file=None).auth == "keys"
    assert Settings(env="development", _env_file=None).auth == "keys"


def test_production_refuses_open_mode() -> None:
    with pytest.raises(ValidationError, match="RISKENGINE_AUTH=open"):
        Settings(env="production", auth="open", pseudonym_key="s3cret-0123456789abcdef",
                 model_signing_key="sign-0123456789abcdef", _env_file=None)


def test_serve_refuses_to_start_open_in_production() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RISKENGINE_")}
    env = {**clean, "RISKENGINE_AUTH": "open",
           "RISKENGINE_PSEUDONYM_KEY": "ci-key-0123456789abcdef",
           "RISKENGINE_MODEL_SIGNING_KEY": "ci-signing-key-0123456789"}
    proc = subprocess.run([sys.executable, "-m", "riskengine.tools.cli", "serve", "--port", "1"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)

    assert proc.returncode == 2
    assert "RISKENGINE_AUTH=open" in proc.stderr


def test_development_start_makes_and_logs_one_key_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(env="development", auth="keys", store=f"sqlite:{tmp_path / 're.db'}",
                        api_keys=tmp_path / "keys.json", model_dir=None, _env_file=None)
    caplog.set_level(logging.INFO)

    with TestClient(create_app(settings)) as client:
        logged = [r for r in caplog.records if KEY_RE.search(r.getMessage())]
        assert len(logged) == 1 and logged[0].levelno == logging.WARNING
        key = KEY_RE.findall(logged[0].getMessage())[0]
        answer = client.post("/v1/score", json=LOGIN, headers=bearer(key))
        assert answer.status_code == 200
        assert client.get("/metrics", headers=bearer(key)).status_code == 200  # every scope
    caplog.clear()

    with TestClient(create_app(settings)) as client:  # the next start: the same key, unlogged
        assert not [r for r in caplog.records if KEY_RE.search(r.getMessage())]
        assert client.post("/v1/score", json=LOGIN, headers=bearer(key)).status_code == 200
    (record,) = KeyStore(settings.api_keys).list()
    assert record.name == "development" and record.scopes == set(Scope)
    assert key not in settings.api_keys.read_text()


def test_no_key_is_made_outside_development(secured: TestClient, keys: KeyStore,
                                            caplog: pytest.LogCaptureFixture) -> None:
    assert keys.list() == []
    assert not [r for r in caplog.records if KEY_RE.search(r.getMessage())]
    assert secured.post("/v1/score", json=LOGIN).status_code == 401


def test_open_mode_needs_no_key(tmp_path: Path) -> None:
    settings = Settings(env="development", auth="open", store=f"sqlite:{tmp_path / 're.db'}",
                        api_keys=tmp_path / "keys.json", model_dir=None, _env_file=None)

    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/score", json=LOGIN).status_code == 200
        assert client.get("/metrics").status_code == 200
        assert client.get("/v1/admin/nothing-here").status_code == 404  # not 401
    assert not (tmp_path / "keys.json").exists()  # open mode makes no key
