"""`riskengine keys create | list | revoke`: a round trip through real processes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from riskengine.adapters.auth import KeyStore, Scope

KEY_RE = re.compile(r"^rk_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$")


def keys(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RISKENGINE_")}
    return subprocess.run([sys.executable, "-m", "riskengine.tools.cli", "keys", *args],
                          env={**clean, **(env or {})}, capture_output=True, text=True,
                          timeout=60, check=False)


def test_create_list_revoke_round_trip(tmp_path: Path) -> None:
    file = str(tmp_path / "keys.json")

    made = keys("create", "--name", "checkout", "--scope", "score", "--scope", "feedback",
                "--tenant", "shop", "--tenant", "bank", "--file", file)
    other = keys("create", "--name", "ops", "--scope", "admin", "--tenant", "*", "--file", file)

    assert made.returncode == other.returncode == 0, made.stderr + other.stderr
    key = made.stdout.strip()  # the key alone on stdout, for KEY=$(riskengine keys create …)
    match = KEY_RE.match(key)
    assert match, made.stdout
    key_id = match[1]
    assert "only this once" in made.stderr
    record = KeyStore(file).verify(key)
    assert record is not None and record.scopes == {Scope.SCORE, Scope.FEEDBACK}
    assert record.tenants == {"shop", "bank"} and not record.all_tenants

    listed = keys("list", "--file", file)

    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["id", "name", "scopes", "tenants", "created", "revoked"]
    row = next(line for line in lines if line.startswith(key_id)).split()
    assert row[1:4] == ["checkout", "feedback,score", "bank,shop"] and row[-1] == "no"
    assert any(line.split()[1:4] == ["ops", "admin", "*"] for line in lines[1:])

    revoked = keys("revoke", key_id, "--file", file)

    assert revoked.returncode == 0, revoked.stderr
    assert KeyStore(file).verify(key) is None
    after = keys("list", "--file", file).stdout.splitlines()
    assert next(line for line in after if line.startswith(key_id)).split()[-1] == "yes"
    assert len(after) == 3  # a revoked key keeps its record


def test_list_never_prints_a_secret_or_its_hash(tmp_path: Path) -> None:
    file = tmp_path / "keys.json"
    made = [keys("create", "--name", f"k{n}", "--scope", "score", "--tenant", "default",
                 "--file", str(file)).stdout
            .strip() for n in range(3)]
    hashes = [k["secret_sha256"] for k in json.loads(file.read_text())["keys"]]

    listed = keys("list", "--file", str(file))

    output = listed.stdout + listed.stderr
    for key in made:
        assert key.split("_", 2)[2] not in output
    for digest in hashes:
        assert digest not in output
    assert "rk_" not in output


def test_the_key_file_comes_from_the_environment(tmp_path: Path) -> None:
    file = tmp_path / "from-env.json"
    env = {"RISKENGINE_API_KEYS": str(file)}

    made = keys("create", "--name", "svc", "--scope", "score", "--tenant", "default", env=env)

    assert made.returncode == 0, made.stderr
    assert KeyStore(file).verify(made.stdout.strip()) is not None
    assert "svc" in keys("list", env=env).stdout


def test_bad_requests_are_refused(tmp_path: Path) -> None:
    file = str(tmp_path / "keys.json")

    def create(*args: str) -> int:
        return keys("create", "--name", "x", *args, "--file", file).returncode

    assert create("--scope", "root", "--tenant", "t") == 2
    assert create("--tenant", "t") == 2  # a scope is needed
    assert create("--scope", "score") == 2  # and a tenant, or '*'
    assert create("--scope", "score", "--tenant", "a b") == 2
    assert keys("create", "--name", " ", "--scope", "score", "--tenant", "t", "--file",
                file).returncode == 2
    unknown = keys("revoke", "0123456789ab", "--file", file)
    assert unknown.returncode == 1 and "no key 0123456789ab" in unknown.stderr
    assert "no API keys" in keys("list", "--file", file).stdout


def test_revoking_by_the_whole_key_never_prints_it(tmp_path: Path) -> None:
    """A leaked key is what an operator has at hand: revoking by it works, and neither the
    key nor its secret is echoed, on success or on a typo."""
    file = str(tmp_path / "keys.json")
    key = keys("create", "--name", "leaked", "--scope", "score", "--tenant", "t", "--file",
               file).stdout.strip()
    key_id, secret = KEY_RE.match(key)[1], key.split("_", 2)[2]

    typo = keys("revoke", key[:-1] + ("A" if key[-1] != "A" else "B") + "x", "--file", file)
    revoked = keys("revoke", key, "--file", file)

    assert typo.returncode == 1 and revoked.returncode == 0, revoked.stderr
    for run in (typo, revoked):
        assert secret[:8] not in run.stdout + run.stderr
    assert key_id in revoked.stdout
    assert KeyStore(file).verify(key) is None
