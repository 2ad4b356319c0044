"""Issue #18, item 9: every subcommand, run as the README shows it, works or says in one line
what to set (exit 2); none ends in a traceback, and no secret is printed but a new key, once."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.servers import free_port, riskengine


def run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """``riskengine *args`` in ``cwd`` with no RISKENGINE_ setting but ``env``: exit status
    and its output (stdout and stderr)."""
    proc = riskengine(*args, env=env, cwd=cwd, stdout=subprocess.PIPE,
                      stderr=subprocess.STDOUT, text=True)
    out = proc.communicate(timeout=120)[0]
    return proc.returncode, out


def one_line_or_none(status: int, out: str) -> None:
    assert "Traceback" not in out, out
    if status != 0:
        assert status in (1, 2), out  # 1: nothing to do (no such key), 2: what to set
        assert len(out.strip().splitlines()) == 1, out


@pytest.mark.parametrize("args", [("models", "list"), ("purge",), ("keys", "list")],
                         ids=["models list", "purge", "keys list"])
def test_commands_that_need_no_secret_work_with_the_readme_setup(tmp_path: Path, args) -> None:
    """``make run`` serves in development mode; these crashed with a pydantic traceback
    because the CLI defaulted to production."""
    status, out = run(tmp_path, *args)
    assert status == 0, out
    assert "Traceback" not in out


@pytest.mark.parametrize("args", [
    ("models", "rollback", "v1"),
    ("models", "promote", "nothing.joblib"),
    ("learner", "--store", "redis://127.0.0.1:6379/9"),
    ("serve", "--port", "0"),
], ids=["rollback", "promote", "learner", "serve"])
def test_commands_that_need_a_secret_say_in_one_line_what_to_set(tmp_path: Path, args) -> None:
    status, out = run(tmp_path, *args)
    assert status == 2, out
    one_line_or_none(status, out)
    assert "RISKENGINE_" in out  # names what to set


@pytest.mark.parametrize("args", [
    ("purge", "--store", "redis://127.0.0.1:{port}/0"),
    ("purge", "--store", "nosuchstore:x"),
    ("keys", "list", "--file", "{tmp}/broken.json"),
    ("replay", "{tmp}/missing.jsonl"),
    ("backtest", "{tmp}/missing.jsonl", "--rules", "{tmp}/missing.yaml"),
], ids=["store down", "unknown store", "broken key file", "missing events", "missing rules"])
def test_failures_are_one_line_never_a_traceback(tmp_path: Path, args) -> None:
    (tmp_path / "broken.json").write_text("{not json")
    filled = [a.format(port=free_port(), tmp=tmp_path) for a in args]
    status, out = run(tmp_path, *filled)
    assert status != 0, out
    one_line_or_none(status, out)


def test_keys_revoke_with_the_whole_key_does_not_print_it(tmp_path: Path) -> None:
    """``riskengine keys revoke <whole key>`` printed the secret back."""
    made = riskengine("keys", "create", "--name", "leaked", "--scope", "score", "--tenant",
                      "default", cwd=tmp_path, stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE, text=True)
    key, errors = made.communicate(timeout=60)
    key = key.strip()
    assert made.returncode == 0 and key.startswith("rk_"), errors
    secret = key.split("_", 2)[2]

    for attempt in (key, key + "x"):  # the key, and a mistyped one
        status, out = run(tmp_path, "keys", "revoke", attempt)
        assert secret not in out and secret[:12] not in out, out
        one_line_or_none(status, out)
    status, out = run(tmp_path, "keys", "list")
    assert status == 0 and secret not in out and " yes" in out


SECRETS = {"RISKENGINE_MODEL_SIGNING_KEY": "0123456789abcdef0123",
           "RISKENGINE_PSEUDONYM_KEY": "fedcba9876543210fedc"}


@pytest.mark.parametrize("setting", [
    {"RISKENGINE_PSEUDONYM_KEY": "short"},
    {"RISKENGINE_API_KEYS": "{tmp}/broken.json"},
    {"RISKENGINE_MODEL": "{tmp}/no-card.joblib"},
    {"RISKENGINE_STORE": "sqlite:///{tmp}/not-a-dir/here.db"},
], ids=["short pseudonym key", "broken key file", "model without card", "store path"])
def test_serve_that_cannot_start_says_why_in_one_line_before_binding(
        tmp_path: Path, setting: dict[str, str]) -> None:
    """These failed inside the server's start-up: exit 3 and 43-75 lines of uvicorn's and
    Starlette's traceback. The service is now prepared before the port is bound."""
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "no-card.joblib").write_bytes(b"not a model")
    (tmp_path / "not-a-dir").write_text("a file where a folder should be")
    env = {**SECRETS, **{k: v.format(tmp=tmp_path) for k, v in setting.items()}}
    status, out = run(tmp_path, "serve", "--port", str(free_port()), env=env)
    assert status == 2, out
    assert "Traceback" not in out and "Uvicorn running" not in out, out
    assert out.strip().splitlines()[-1].startswith("riskengine: cannot start: "), out
