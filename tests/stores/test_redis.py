"""What only the Redis store promises: Cluster-ready keys that expire, no lost update across
processes, fast failure when the server is gone, and the URLs that open it."""

from __future__ import annotations

import multiprocessing
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial

import pytest
import redis
from redis.crc import key_slot

from features.profile import Seen, UserProfile
from riskengine.stores import RedisStore, StoreError, open_store

from .test_contract import REDIS_URL, T0, bump, empty_redis, load, record


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    with empty_redis() as opened:
        yield opened


@pytest.fixture
def store(client: redis.Redis) -> Iterator[RedisStore]:
    opened = RedisStore(REDIS_URL, timeout_s=1.0)
    yield opened
    opened.close()


def test_keys_of_one_user_share_a_slot_and_every_key_expires(
    client: redis.Redis, store: RedisStore
) -> None:
    record(store, "e1", update=bump)
    record(store, "e2", failed=True, update=bump)
    record(store, "e3", user="u2", ip="ip2", asn=None, device="d2", update=bump)
    store.apply_feedback("t1", "e1", "legit", lambda d: (bump, True))

    keys = list(client.scan_iter())
    own = [k for k in keys if ":u:u1}" in k]  # u1's profile and two decisions
    assert len(own) == 3
    assert len({key_slot(k.encode()) for k in own}) == 1
    assert {key_slot(k.encode()) for k in keys if ":u:u2}" in k} != {key_slot(own[0].encode())}
    assert all(client.ttl(k) > 0 for k in keys), {k: client.ttl(k) for k in keys}


def _record_many(worker: int, start: multiprocessing.synchronize.Event) -> None:
    """One OS process: 100 events for user u1, each learning a device of its own."""

    def learn(device: str, profile: UserProfile) -> UserProfile:
        out = replace(profile, logins=profile.logins + 1, devices=dict(profile.devices))
        out.devices[device] = Seen(1, T0, T0)
        return out

    store = RedisStore(REDIS_URL, timeout_s=1.0)
    start.wait()
    for i in range(100):
        name = f"w{worker}-{i}"
        record(store, name, ts=T0 + i, failed=i % 4 == 0, update=partial(learn, name))
    store.close()


def test_two_processes_updating_one_user_lose_nothing(
    client: redis.Redis, store: RedisStore
) -> None:
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Event()
    workers = [spawn.Process(target=_record_many, args=(w, start)) for w in range(2)]
    for worker in workers:
        worker.start()
    start.set()  # both begin together, so they really contend
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0]

    profile = store.get_profile("t1", "u1")
    assert profile is not None and profile.logins == 200 and len(profile.devices) == 200
    names = [f"w{w}-{i}" for w in range(2) for i in range(100)]
    assert all(store.get_decision("t1", name) is not None for name in names)
    velocity = load(store, user="u2", now=T0 + 99).velocity
    assert (velocity.ip_users_10m, velocity.ip_failures_10m) == (1, 50)
    assert (velocity.tenant_attempts_10m, velocity.tenant_failures_10m) == (200, 50)


CALLS: dict[str, Callable[[RedisStore], object]] = {
    "load": lambda s: load(s),
    "record": lambda s: record(s, "e1", update=bump),
    "apply_feedback": lambda s: s.apply_feedback("t1", "e1", "legit", lambda d: (None, True)),
    "get_decision": lambda s: s.get_decision("t1", "e1"),
    "get_profile": lambda s: s.get_profile("t1", "u1"),
    "ping": lambda s: s.ping(),
}


@pytest.mark.parametrize("call", CALLS)
def test_a_dead_server_fails_fast(call: str) -> None:
    store = RedisStore("redis://127.0.0.1:1/0")  # nothing listens on port 1

    started = time.monotonic()
    with pytest.raises(StoreError, match=f"{call} failed"):
        CALLS[call](store)

    assert time.monotonic() - started < 1.0
    store.close()


@pytest.mark.parametrize("call", ["load", "record", "ping"])
def test_a_server_that_never_answers_times_out(call: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never replies
        store = RedisStore(f"redis://127.0.0.1:{silent.getsockname()[1]}/0")

        started = time.monotonic()
        with pytest.raises(StoreError, match="Timeout"):
            CALLS[call](store)

        assert time.monotonic() - started < 1.0
        store.close()


def test_errors_never_show_the_password(client: redis.Redis) -> None:
    for url in ("redis://:s3cret@127.0.0.1:1/0", "redis://user:s3cret@127.0.0.1:6379/13"):
        store = RedisStore(url)
        with pytest.raises(StoreError) as raised:
            store.ping()
        assert "s3cret" not in str(raised.value)
        assert raised.value.__cause__ is None and raised.value.__suppress_context__
        store.close()


@pytest.mark.parametrize(
    "garbage", ["{not json", "[]", '{"hours": [1.0]}', '{"devices": {"d1": {"n": 1}}}']
)
def test_corrupt_profile_raises_store_error(
    client: redis.Redis, store: RedisStore, garbage: str
) -> None:
    record(store, "e1", update=bump)
    [key] = [k for k in client.scan_iter() if k.endswith(":profile")]
    client.set(key, garbage)

    with pytest.raises(StoreError, match="corrupt profile"):
        load(store)
    with pytest.raises(StoreError, match="corrupt profile"):
        store.get_profile("t1", "u1")
    with pytest.raises(StoreError, match="corrupt profile"):
        record(store, "e2", update=bump)
    assert store.get_decision("t1", "e2") is None


def test_corrupt_decision_raises_store_error(client: redis.Redis, store: RedisStore) -> None:
    record(store, "e1")
    [key] = [k for k in client.scan_iter() if ":decision:" in k]
    client.set(key, '{"ts": 1.0}')

    with pytest.raises(StoreError, match="corrupt decision"):
        store.get_decision("t1", "e1")
    with pytest.raises(StoreError, match="corrupt decision"):
        record(store, "e1")


def test_attempts_long_past_their_window_are_trimmed(
    client: redis.Redis, store: RedisStore
) -> None:
    record(store, "old", user="u2", ts=T0 - 7200.0)
    record(store, "new", user="u3", ts=T0)

    [ip_window] = [k for k in client.scan_iter() if ":ip:" in k]
    assert client.zcard(ip_window) == 1
    assert load(store, now=T0).velocity.ip_users_10m == 1


@pytest.mark.parametrize("url", ["redis://localhost:6379/0", "rediss://:pw@cache:6380/1"])
def test_open_store_redis_urls(url: str) -> None:
    store = open_store(url)  # connects on first use, so no server is needed here

    assert isinstance(store, RedisStore) and store.url == url
    store.close()


def test_a_prefix_with_braces_is_refused() -> None:
    with pytest.raises(ValueError, match="braces"):
        RedisStore(prefix="re{x}")
