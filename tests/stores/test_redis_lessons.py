"""The lesson a login teaches the shared model, written by the Redis store's ``record`` in
the round trip that records the login, on the tenant's slot: written with the decision or
not at all, found and erased with the user, and read by the learner with the shared stream."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from models.outcome import OutcomeModel
from riskengine.adapters.learner import Learner, RedisLessons
from riskengine.adapters.stores import Attempt, RedisStore, StoredDecision
from riskengine.adapters.stores.redis import lessons_key

from . import test_redis as _redis_tests
from .test_contract import REDIS_URL, T0, bump

KEY = b"lessons-test-signing-key-0123456789"


# The Redis store tests' own fixtures: an emptied database, and a store on it.
client = _redis_tests.client
store = _redis_tests.store


def lesson_of(user: str, n: int) -> dict[str, Any]:
    return {"values": {"ip_users_10m": n, "geo_velocity_kmh": None}, "user": user,
            "block": "b1", "asn": 64500, "ts": T0 + n, "score": 0.25 + n / 100}


def record(store: RedisStore, event_id: str, *, user: str = "u1", tenant: str = "t1",
           lesson: Mapping[str, Any] | None = None) -> StoredDecision:
    decision = StoredDecision(event_id=event_id, tenant=tenant, user_key=user, ts=T0,
                              decision={"action": "allow"}, features={"ip_users_10m": 0},
                              learned=lesson is not None)
    attempt = Attempt(tenant=tenant, user_key=user, ip_key="ip1", asn=64500, device_key="d1",
                      ts=T0, failed=False, ip_prefix_key="p1")
    return store.record(decision, attempt, bump, lesson=lesson)


def stream(client: redis.Redis, key: str) -> list[dict[str, Any]]:
    return [json.loads(fields["lesson"]) for _, fields in client.xrange(key)]


def test_the_lesson_is_written_with_the_decision_on_the_tenants_slot(
    client: redis.Redis, store: RedisStore
) -> None:
    record(store, "e1", lesson=lesson_of("u1", 1))
    record(store, "e1", lesson=lesson_of("u1", 1))  # the same event again: recorded once
    record(store, "e2")  # nothing to teach

    key = lessons_key("re", "t1")
    assert stream(client, key) == [lesson_of("u1", 1)]
    assert key_slot(key.encode()) == key_slot(b"re:{t:t1}:u:u1:profile")
    assert client.smembers("re:lessons:streams") == {key}
    assert client.xlen("re:lessons") == 0  # the shared stream is not written


def test_a_record_that_fails_writes_no_lesson(client: redis.Redis, store: RedisStore) -> None:
    decision = StoredDecision(event_id="e1", tenant="t1", user_key="u1", ts=T0,
                              decision={"action": "allow"}, features={"bad": object()})
    attempt = Attempt(tenant="t1", user_key="u1", ip_key="ip1", asn=None, device_key=None,
                      ts=T0, failed=False)

    with pytest.raises(TypeError):  # not JSON: refused before any write
        store.record(decision, attempt, None, lesson=lesson_of("u1", 1))

    assert client.exists(lessons_key("re", "t1")) == 0


def test_access_and_erasure_reach_the_tenants_streams(
    client: redis.Redis, store: RedisStore
) -> None:
    lessons = RedisLessons(REDIS_URL, timeout_s=1.0)
    lessons.publish(lesson_of("u1", 0))  # a feedback's lesson: the shared stream
    record(store, "e1", lesson=lesson_of("u1", 1))
    record(store, "e2", tenant="t2", lesson=lesson_of("u1", 2))
    record(store, "e3", user="u2", lesson=lesson_of("u2", 3))

    found = [lesson for _, lesson in lessons.of_users({"u1"})]

    assert sorted(found, key=lambda lesson: lesson["ts"]) == [
        lesson_of("u1", n) for n in range(3)]
    assert lessons.forget({"u1"}) == 3
    assert lessons.of_users({"u1"}) == []
    assert stream(client, lessons_key("re", "t1")) == [lesson_of("u2", 3)]


def test_a_store_carries_the_lessons_of_a_sink_on_its_own_database_and_prefix() -> None:
    sink = RedisLessons(REDIS_URL)

    assert sink.carried_by(RedisStore(REDIS_URL))
    assert not sink.carried_by(RedisStore(REDIS_URL, prefix="other"))
    assert not sink.carried_by(RedisStore(REDIS_URL.rsplit("/", 1)[0] + "/14"))
    assert not RedisLessons(REDIS_URL, prefix="re:outcome").carried_by(RedisStore(REDIS_URL))


def test_the_learner_reads_every_stream_and_resumes_where_the_snapshot_left_off(
    client: redis.Redis, store: RedisStore, tmp_path: Path
) -> None:
    taught: list[dict[str, Any]] = []

    def teach(model: Any, lesson: Mapping[str, Any]) -> bool:
        taught.append(dict(lesson))
        return True

    def learner() -> Learner:
        return Learner(REDIS_URL, model=OutcomeModel(), version="v0", key=KEY,
                       folder=tmp_path / "snapshots", teach=teach, outcome=False)

    RedisLessons(REDIS_URL, timeout_s=1.0).publish(lesson_of("u0", 0))
    record(store, "e1", lesson=lesson_of("u1", 1))
    record(store, "e2", tenant="t2", lesson=lesson_of("u2", 2))
    first = learner()

    assert first.step(block_ms=None) == 3
    first.publish()
    assert sorted(lesson["user"] for lesson in taught) == ["u0", "u1", "u2"]

    client.delete("re:learner:lock")  # the first learner dies; another takes over
    record(store, "e3", tenant="t2", lesson=lesson_of("u3", 3))
    taught.clear()
    second = learner()

    assert second.step(block_ms=None) == 1
    assert taught == [lesson_of("u3", 3)]  # nothing the published snapshot had learned
