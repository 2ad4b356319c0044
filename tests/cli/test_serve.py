"""`riskengine serve` for real: starts, answers the README example, refuses bad input."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from riskengine.service.settings import Settings
from tests.servers import free_port, riskengine_piped, wait_until_up

README_EXAMPLE = {
    "user_id": "+8613800138000",
    "ip": "123.120.5.9",
    "device": {"id": "490154203237518", "model": "HUAWEI Mate 60", "os_name": "HarmonyOS",
               "os_version": "4.2"},
    "network": {"type": "wifi", "ssid": "Zhang-Home"},
    "phone": "+8613800138000",
}


def _get(url: str, body: dict | None = None, key: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body else None,
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_serve_answers_the_readme_example(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    made = riskengine_piped("keys", "create", "--name", "ci", "--scope", "score", "--tenant",
                            "default", "--file", str(keys))
    key = made.communicate(timeout=60)[0].strip().splitlines()[-1]
    assert made.returncode == 0 and key.startswith("rk_")
    port = free_port()
    proc = riskengine_piped(
        "serve", "--port", str(port), "--store", f"sqlite:{tmp_path / 'r.db'}",
        env={"RISKENGINE_PSEUDONYM_KEY": "ci-key-0123456789abcdef",
             "RISKENGINE_MODEL_SIGNING_KEY": "ci-signing-key-0123456789",
             "RISKENGINE_MODEL_DIR": str(tmp_path / "snapshots"),
             "RISKENGINE_API_KEYS": str(keys)})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, proc)
        status, ready = _get(f"{base}/readyz")
        assert status == 200 and ready["status"] == "ready"
        status, body = _get(f"{base}/v1/score", README_EXAMPLE)
        assert status == 401
        status, body = _get(f"{base}/v1/score", README_EXAMPLE, key=key)
        assert status == 200
        assert body["decision"] in ("allow", "challenge", "deny")
        assert body["reasons"] is not None and body["model_version"]
        status, body = _get(f"{base}/v1/score", {**README_EXAMPLE, "ip": "not-an-ip"}, key=key)
        assert status == 422 and body["fields"] == ["ip"]
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0]
    assert "490154203237518" not in output
    assert key not in output and key.split("_", 2)[2] not in output
    assert '"event": "decision"' in output
    # The first login of a new account taught the model; shutdown saved a signed snapshot.
    assert (tmp_path / "snapshots" / "ACTIVE").exists()
    assert list((tmp_path / "snapshots").glob("*.sig"))


def test_serve_refuses_an_invalid_ruleset(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: x\nthresholds: {challenge: 0.5, deny: 0.9}\nrules:\n"
                   "  - {id: broken_rule, name: B, description: B, score: 0.2,\n"
                   "     when: {feature: nope, op: is_true}}\n")
    proc = riskengine_piped("serve", "--rules", str(bad), "--env", "development")
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 2
    assert "broken_rule" in out and "nope" in out


def test_production_refuses_to_start_without_a_key() -> None:
    proc = riskengine_piped("serve", "--port", str(free_port()))
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 2
    assert "RISKENGINE_PSEUDONYM_KEY" in out


def test_settings_key_rules() -> None:
    with pytest.raises(ValueError, match="PSEUDONYM_KEY"):
        Settings(env="production", _env_file=None)
    assert Settings(env="development", _env_file=None).key_bytes()
    with pytest.raises(ValueError, match="MODEL_SIGNING_KEY"):
        Settings(env="production", pseudonym_key="s3cret-0123456789abcdef", _env_file=None)
    key = Settings(env="production", pseudonym_key="s3cret-0123456789abcdef",
                   model_signing_key="sign-0123456789abcdef", _env_file=None)
    assert key.key_bytes() == b"s3cret-0123456789abcdef"
    assert key.signing_key() == b"sign-0123456789abcdef"
    assert Settings(env="test", _env_file=None).model_dir is None
