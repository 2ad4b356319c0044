"""Helpers of the security regression tests: key files written in their documented format
(so that a test reads as the attack it replays), apps with keys."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable
from pathlib import Path

from fastapi.testclient import TestClient

from riskengine.api import create_app
from riskengine.service.settings import Settings


def write_key(path: Path, name: str, scopes: Iterable[str], tenants: Iterable[str]) -> str:
    """Add a key to the key file at ``path`` (the format ``riskengine keys`` writes: hashes
    only) and return the key."""
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    data = json.loads(path.read_text()) if path.exists() else {"version": 1, "keys": []}
    data["keys"].append({"id": key_id, "name": name, "scopes": sorted(scopes),
                         "tenants": sorted(tenants), "created": "2026-11-01T00:00:00+00:00",
                         "revoked": False,
                         "secret_sha256": hashlib.sha256(secret.encode()).hexdigest()})
    path.write_text(json.dumps(data))
    path.chmod(0o600)
    return f"rk_{key_id}_{secret}"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def keyed_client(tmp_path: Path) -> TestClient:
    """An app checking keys from ``tmp_path/keys.json`` (write the keys first)."""
    settings = Settings(env="test", auth="keys", store=f"sqlite:{tmp_path / 'r.db'}",
                        api_keys=tmp_path / "keys.json", _env_file=None)
    return TestClient(create_app(settings), raise_server_exceptions=False)
