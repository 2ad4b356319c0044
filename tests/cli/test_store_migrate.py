"""`riskengine store migrate`: a store left by an earlier release, moved by the real command
against the real Redis (and a SQLite file of an earlier schema), twice."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from features.profile import UserProfile
from riskengine.adapters.stores import RedisStore, SqliteStore
from riskengine.adapters.stores.sqlite import SCHEMA_VERSION
from tests.stores.test_sqlite import _SCHEMA_1

# A database of this module's own, emptied before and after.
REDIS_URL = "redis://127.0.0.1:6379/15"


def migrate(*args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RISKENGINE_")}
    return subprocess.run([sys.executable, "-m", "riskengine.tools.cli", "store", "migrate",
                           *args], env=clean, capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    opened = redis.Redis.from_url(REDIS_URL, socket_timeout=5.0, decode_responses=True)
    try:
        opened.flushdb()
    except redis.ConnectionError as exc:
        opened.close()
        pytest.fail(f"no Redis at {REDIS_URL} ({exc})", pytrace=False)
    yield opened
    opened.flushdb()
    opened.close()


def test_the_per_user_layout_moves_once_and_the_store_reads_it(client: redis.Redis) -> None:
    # What a release before the tenant hash tag left: a profile, a decision and its index,
    # a device's accounts and the list of the user's windows.
    client.set("re:{t:t1:u:u1}:profile", '{"logins": 3, "_updated": 1700000000.0}', ex=3600)
    client.set("re:{t:t1:u:u1}:decision:e1", '{"ts": 1700000000.0, "decision": {"action":'
               ' "allow"}, "features": {}, "sighting": null, "feedback": null, "learned": false}',
               ex=3600)
    client.set("re:{t:t1:event:e1}", "u1", ex=3600)
    client.zadd("re:{t:t1:device:d1}", {"u1": 1_700_000_000.0})
    client.zadd("re:{t:t1:u:u1}:touched", {"re:{t:t1:device:d1}": 1_700_000_000.0})
    client.set("re:{t:t2}:u:u2:profile", '{"logins": 1}')  # already the new layout

    first = migrate("--store", REDIS_URL)
    again = migrate("--store", REDIS_URL)

    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"store": "redis", "keys_moved": 5}
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {"store": "redis", "keys_moved": 0}
    store = RedisStore(REDIS_URL, timeout_s=1.0)
    try:
        assert store.get_profile("t1", "u1") == UserProfile(logins=3)
        moved = store.get_decision("t1", "e1")
        assert moved is not None and moved.decision == {"action": "allow"}
        assert store.get_profile("t2", "u2") == UserProfile(logins=1)
    finally:
        store.close()
    assert not [k for k in client.scan_iter("re:{t:t1:*")]  # no key of the old layout left
    assert 0 < client.ttl("re:{t:t1}:u:u1:profile") <= 3600  # moved with its TTL


def test_a_sqlite_file_of_schema_1_is_migrated_once(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(_SCHEMA_1)
    conn.close()

    first = migrate("--store", f"sqlite:{path}")
    again = migrate("--store", f"sqlite:{path}")

    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"store": "sqlite", "schema_before": 1,
                                        "schema": SCHEMA_VERSION}
    assert json.loads(again.stdout) == {"store": "sqlite", "schema_before": SCHEMA_VERSION,
                                        "schema": SCHEMA_VERSION}
    store = SqliteStore(path)
    try:
        assert store.get_profile("t1", "u1") == UserProfile(logins=4)
        kept = store.get_decision("t1", "e1")
        assert kept is not None and (kept.feedback, kept.learned) == ("legit", True)
    finally:
        store.close()


@pytest.mark.parametrize(("store", "says"), [
    ("memory:", "nothing to migrate"),
    ("sqlite:{tmp}/missing.db", "no SQLite file"),
    ("nosuchstore:x", "unsupported store url"),
], ids=["memory", "missing file", "unknown store"])
def test_what_cannot_be_migrated_is_one_line_with_exit_2(tmp_path: Path, store: str,
                                                          says: str) -> None:
    done = migrate("--store", store.format(tmp=tmp_path))

    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and says in done.stderr, done.stderr
    assert not (tmp_path / "missing.db").exists()  # never created by trying
