"""Issue #18, item 5: after a user's erasure, nothing anywhere holds the user's pseudonym(s)
or raw id, and before it the export shows everything that does.

Every store is scanned byte by byte: the SQLite file and its write-ahead log; every Redis key
of the database with its value (strings, hashes, sorted sets, the lessons stream); the outbox
file and its log.

Not scanned: Redis's memory below what reads return. XDEL only marks a stream entry deleted
inside its block of entries (a DUMP, compression off, still holds it) until every entry of
the block is deleted or trimmed away; see ``RedisLessons.forget``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from riskengine.api import create_app
from riskengine.service.settings import Settings

USER = "+8613800138000"
OTHER = "+8613900139000"
LOGIN = {"ip": "123.120.5.9", "device": {"id": "490154203237518", "model": "Xiaomi 14"},
         "network": {"type": "wifi", "ssid": "Zhang-Home"}}
REDIS_URL = "redis://127.0.0.1:6379/13"


def logins(client: TestClient, user: str, n: int, prefix: str) -> None:
    for k in range(n):
        response = client.post("/v1/score", json={**LOGIN, "user_id": user,
                                                  "event_id": f"{prefix}-{k}"})
        assert response.status_code == 200, response.text


def needles(engine: Any, user: str) -> list[bytes]:
    """What must be gone: the user's pseudonyms (under every key) and the raw id, as
    written (the phone number with and without its +)."""
    return [*(k.encode() for k in engine.user_keys("default", user)), user.encode(),
            user.lstrip("+").encode()]


def found(blobs: dict[str, bytes], what: list[bytes]) -> list[str]:
    return [f"{needle.decode()} in {name}" for name, blob in blobs.items()
            for needle in what if needle in blob]


def files(folder: Path, pattern: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.glob(pattern)}


def redis_contents(client: redis.Redis) -> dict[str, bytes]:
    """Every key of the database with its value as read."""
    out: dict[str, bytes] = {}
    for key in client.scan_iter(count=500):
        kind = client.type(key)
        if kind == b"string":
            value: Any = client.get(key)
        elif kind == b"hash":
            value = client.hgetall(key)
        elif kind == b"zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == b"stream":
            value = client.xrange(key)
        else:
            value = None
        out[key.decode(errors="replace")] = key + repr(value).encode()
    return out


def test_sqlite_erasure_leaves_nothing_in_the_file_or_its_log(tmp_path: Path) -> None:
    settings = Settings(env="test", auth="open", store=f"sqlite:{tmp_path / 'r.db'}",
                        _env_file=None)
    with TestClient(create_app(settings)) as client:
        engine = client.app.state.built.engine
        logins(client, USER, 6, "u")
        logins(client, OTHER, 3, "o")
        gone = needles(engine, USER)
        assert found(files(tmp_path, "r.db*"), gone[:1])  # the user's data did land

        erased = engine.erase_user("default", USER)
        while_running = files(tmp_path, "r.db*")
        assert erased > 0
        # The other user is still there.
        assert engine.store.get_profile("default", engine.user_keys("default", OTHER)[0])
    closed = {f"{name} (closed)": blob for name, blob in files(tmp_path, "r.db*").items()}

    assert found({**while_running, **closed}, gone) == []


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[tuple[TestClient, redis.Redis, Path]]:
    r = redis.Redis.from_url(REDIS_URL)
    r.flushdb()
    settings = Settings(env="test", auth="open", store=REDIS_URL,
                        outbox=tmp_path / "outbox.db", _env_file=None)
    try:
        with TestClient(create_app(settings)) as client:
            yield client, r, tmp_path
    finally:
        r.flushdb()


def test_redis_erasure_reaches_the_lessons_stream_and_the_outbox(
        shared: tuple[TestClient, redis.Redis, Path]) -> None:
    client, r, folder = shared
    engine = client.app.state.built.engine
    logins(client, USER, 5, "u")  # learned: each one a lesson for the shared learner
    logins(client, OTHER, 3, "o")
    # While the store is taken for down (its breaker open), logins go to the outbox.
    while engine.breaker.allow():
        engine.breaker.failure()
    logins(client, USER, 2, "q")
    gone = needles(engine, USER)
    assert found(redis_contents(r), gone[:1]), "the user's lessons and data did land"
    assert len(engine.outbox) == 2

    [exported] = engine.export_user("default", USER)
    assert len(exported.lessons) >= 1 and all(
        lesson["user"] == gone[0].decode() for lesson in exported.lessons)
    assert len(exported.queued) == 2  # the export shows what waits in the outbox too

    erased = engine.erase_user("default", USER)

    assert erased > 0 and len(engine.outbox) == 0
    assert found(redis_contents(r), gone) == []
    assert found(files(folder, "outbox.db*"), gone) == []
    # The other user's lessons are still there (on the tenant's stream, where the store's
    # record writes them, or the shared one).
    stream = [*r.xrange("re:{t:default}:lessons"), *r.xrange("re:lessons")]
    others = engine.user_keys("default", OTHER)[0]
    assert any(json.loads(fields[b"lesson"])["user"] == others for _, fields in stream)
