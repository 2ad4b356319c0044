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

import riskengine.adapters.stores.redis as redis_store
from features.profile import Seen, UserProfile
from riskengine.adapters.stores import DEVICE_WINDOW_S, RedisStore, StoreError, open_store

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


def test_keys_of_one_tenant_share_a_slot_and_every_key_expires(
    client: redis.Redis, store: RedisStore
) -> None:
    record(store, "e1", update=bump)
    record(store, "e2", failed=True, update=bump)
    record(store, "e3", user="u2", ip="ip2", asn=None, device="d2", update=bump)
    record(store, "e4", tenant="t2", update=bump)
    store.apply_feedback("t1", "e1", "legit", lambda d: (bump, True))

    keys = list(client.scan_iter())
    own = [k for k in keys if "{t:t1}:u:u1:" in k]  # u1's profile, two decisions, windows
    assert len(own) == 4
    tenant = [k for k in keys if k.startswith("re:{t:t1}:")]
    assert len(tenant) == len(keys) - len([k for k in keys if k.startswith("re:{t:t2}:")])
    assert len({key_slot(k.encode()) for k in tenant}) == 1  # one script reaches them all
    assert {key_slot(k.encode()) for k in keys if "{t:t2}" in k} != {key_slot(own[0].encode())}
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
    "export_user": lambda s: s.export_user("t1", "u1"),
    "erase_user": lambda s: s.erase_user("t1", "u1"),
    "purge": lambda s: s.purge(now=T0, profile_retention_s=86_400.0),
}


@pytest.mark.parametrize("call", CALLS)
def test_a_dead_server_fails_fast(call: str) -> None:
    store = RedisStore("redis://127.0.0.1:1/0")  # nothing listens on port 1

    started = time.monotonic()
    with pytest.raises(StoreError, match=f"{call} failed"):
        CALLS[call](store)

    assert time.monotonic() - started < 1.0
    store.close()


@pytest.mark.parametrize("call", ["load", "record", "ping", "export_user", "erase_user", "purge"])
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


# -- the user's rights and retention ---------------------------------------------------


def _mentions(client: redis.Redis, needle: str) -> list[str]:
    """Every key whose name, or one of whose members, contains ``needle``."""
    found = []
    for key in client.scan_iter():
        members: list[str] = []
        if client.type(key) == "zset":
            members = [m for m, _ in client.zscan_iter(key)]
        if needle in key or any(needle in m for m in members):
            found.append(key)
    return found


@pytest.mark.parametrize("glob_chars", [False, True])
def test_erase_leaves_no_key_of_the_user_behind(
    client: redis.Redis, store: RedisStore, glob_chars: bool
) -> None:
    # "u*" escapes to "u%2A": unescaped, its patterns would also match "uu" and "u*x".
    user, others = ("u*", ["uu", "u*x", "u"]) if glob_chars else ("a", ["aa", "b", "a-"])
    for i in range(3):
        for j, other in enumerate(others):
            record(store, f"o{i}-{j}", user=other, ip=f"ip{i}", asn=64500 + i, device=f"d{i}",
                   failed=True, update=bump)
        record(store, f"e{i}", user=user, ip=f"ip{i}", asn=64500 + i, device=f"d{i}",
               failed=i == 1, update=bump)
    record(store, "e:|*?[x]", user=user, ip="ip9", asn=None, device=None)
    before = {o: load(store, user=o, ip="ip1", asn=64501, device="d1").velocity for o in others}

    # the profile, 4 decisions, 3 + 1 IP and 3 ASN memberships, 3 device memberships
    assert store.erase_user("t1", user) == 1 + 4 + 4 + 3 + 3

    escaped = redis_store._part(user)
    assert _mentions(client, f":{escaped}}}") == []  # no key of the user's own slot
    assert _mentions(client, f"|{escaped}|") == []  # no attempt in any window
    assert [k for k in client.scan_iter() if ":device:" in k and client.zscore(k, user)] == []
    assert [k for k in client.scan_iter() if ":event:" in k and client.get(k) == user] == []
    for other in others:  # everyone else keeps everything, less the user's share
        after = load(store, user=other, ip="ip1", asn=64501, device="d1").velocity
        assert after == replace(
            before[other],
            ip_users_10m=before[other].ip_users_10m - 1,
            ip_failures_10m=before[other].ip_failures_10m - 1,
            asn_users_10m=before[other].asn_users_10m - 1,
            asn_failures_10m=before[other].asn_failures_10m - 1,
            device_accounts_30d=before[other].device_accounts_30d - 1,
        )
        assert store.get_profile("t1", other) == UserProfile(logins=3)
        assert len(store.export_user("t1", other).decisions) == 3
    assert store.erase_user("t1", user) == 0  # erasing twice finds nothing more


def test_export_finds_decisions_by_escaped_keys_in_pages(
    client: redis.Redis, store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_store, "SCAN_COUNT", 7)  # many SCAN pages and MGET chunks
    ids = [f"e{i:02d}:|*?[]\\{{}}" for i in range(40)]
    for i, event_id in enumerate(reversed(ids)):
        record(store, event_id, user="u[1]", ts=T0 + 40 - i, update=bump)
    record(store, "x", user="u1", update=bump)
    record(store, "y", user="u[1]", tenant="t2")

    data = store.export_user("t1", "u[1]")

    assert data.profile is not None and data.profile.logins == 40
    assert [d.event_id for d in data.decisions] == ids
    assert all(d.user_key == "u[1]" and d.tenant == "t1" for d in data.decisions)
    assert data.decisions[0] == store.get_decision("t1", ids[0])


def test_escaped_parts_hold_no_glob_character() -> None:
    nasty = "*?[]\\^{}:|% é"
    assert not set(redis_store._part(nasty)) & set("*?[]\\{}:|")
    assert redis_store._glob("re*[x]?\\") == "re\\*\\[x\\]\\?\\\\"


def test_a_glob_prefix_purges_and_exports_only_its_own_keys(client: redis.Redis) -> None:
    ours, theirs = RedisStore(REDIS_URL, prefix="r*"), RedisStore(REDIS_URL, prefix="rx")
    for store in (ours, theirs):
        record(store, "e1", update=bump)
    assert ours.purge(now=T0 + 400 * 86_400.0, profile_retention_s=1.0)["profiles"] == 1
    assert ours.export_user("t1", "u1").decisions == ()
    assert len(theirs.export_user("t1", "u1").decisions) == 1
    assert theirs.get_profile("t1", "u1") is not None
    ours.close()
    theirs.close()


def test_purge_walks_many_keys_in_pages(
    client: redis.Redis, store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_store, "SCAN_COUNT", 50)
    new = T0 + 200 * 86_400.0
    n = 500
    # The new half first: recording at T0 afterwards trims nothing of it, and nothing of
    # the old half is trimmed by a later record, so purge finds all of it to drop.
    for i in [*range(1, n, 2), *range(0, n, 2)]:
        record(store, f"e{i}", user=f"u{i}", ip=f"ip{i % 10}", asn=64500 + i % 3,
               device=f"d{i % 7}", ts=T0 if i % 2 == 0 else new, update=bump)
    client.set("unrelated", "1")
    client.set("re:{t:t1}:minute:soon", "1")  # our shape, but no minute: left alone

    report = store.purge(now=new + 1, profile_retention_s=100 * 86_400.0)

    old = n // 2
    # abuse buckets: the old half's bucket of the block and of each of its 3 ASNs
    assert report == {"profiles": old, "decisions": old, "attempts": 2 * old,
                      "device_accounts": old, "tenant_minutes": 1, "abuse_buckets": 4}
    left = set(client.scan_iter())
    for i in range(n):
        mine = {k for k in left if f":u:u{i}:" in k or k.endswith(f":event:e{i}")}
        assert (mine == set()) == (i % 2 == 0), (i, mine)
    assert {"unrelated", "re:{t:t1}:minute:soon"} <= left
    assert all(store.get_profile("t1", f"u{i}") is not None for i in range(1, n, 2))
    assert all(store.get_decision("t1", f"e{i}") is not None for i in range(1, n, 2))
    velocity = load(store, user="nobody", ip="ip1", asn=64501, device="d1", now=new).velocity
    assert velocity.ip_users_10m == n // 10  # ip1 is used by the users i % 10 == 1: all kept
    assert store.purge(now=new + 1, profile_retention_s=100 * 86_400.0) == dict.fromkeys(
        report, 0)  # nothing is left to drop


def test_purge_keeps_the_windows_late_events_still_need(
    client: redis.Redis, store: RedisStore
) -> None:
    record(store, "e1", user="u2", ts=T0)
    report = store.purge(now=T0 + 300.0, profile_retention_s=86_400.0)
    assert report["attempts"] == report["tenant_minutes"] == 0
    assert load(store, now=T0 + 300.0).velocity.tenant_attempts_10m == 1
    assert store.purge(now=T0 + DEVICE_WINDOW_S, profile_retention_s=86_400.0) == {
        "profiles": 0, "decisions": 1, "attempts": 2, "device_accounts": 1,
        "tenant_minutes": 1, "abuse_buckets": 2}
    # Only the list of the user's windows is left, a day past the longest window.
    assert list(client.scan_iter()) == ["re:{t:t1}:u:u2:touched"]
    store.purge(now=T0 + DEVICE_WINDOW_S + 86_400.0 + 1.0, profile_retention_s=86_400.0)
    assert list(client.scan_iter()) == []


def test_profiles_stored_without_an_update_time_stay_readable(
    client: redis.Redis, store: RedisStore
) -> None:
    key = "re:{t:t1}:u:u1:profile"
    client.set(key, '{"logins": 3}', ex=3600)  # as written before update times were kept

    assert store.get_profile("t1", "u1") == UserProfile(logins=3)
    assert store.purge(now=T0 + 400 * 86_400.0, profile_retention_s=1.0)["profiles"] == 0
    record(store, "e1", update=bump)
    assert store.get_profile("t1", "u1") == UserProfile(logins=4)
    assert store.purge(now=T0 + 1.0, profile_retention_s=1.0)["profiles"] == 1


def test_the_update_time_follows_the_latest_event(client: redis.Redis, store: RedisStore) -> None:
    record(store, "late", ts=T0 + 100.0, update=bump)
    record(store, "early", ts=T0, update=bump)  # arriving late must not age the profile
    assert store.purge(now=T0 + 150.0, profile_retention_s=100.0)["profiles"] == 0
    store.apply_feedback("t1", "early", "legit", lambda d: (bump, True))
    assert store.purge(now=T0 + 200.0, profile_retention_s=100.0)["profiles"] == 1


def test_keys_of_the_per_user_layout_move_to_the_tenant_layout(
    client: redis.Redis, store: RedisStore
) -> None:
    # What a release before the tenant hash tag left: a profile, a decision and its index,
    # a device's accounts and the list of the user's windows, each with its TTL.
    client.set("re:{t:t1:u:u1}:profile", '{"logins": 3, "_updated": 1700000000.0}', ex=3600)
    client.set("re:{t:t1:u:u1}:decision:e1", '{"ts": 1700000000.0, "decision": {"action":'
               ' "allow"}, "features": {}, "sighting": null, "feedback": null, "learned": false}',
               ex=3600)
    client.set("re:{t:t1:event:e1}", "u1", ex=3600)
    client.zadd("re:{t:t1:device:d1}", {"u1": T0})
    client.zadd("re:{t:t1:u:u1}:touched", {"re:{t:t1:device:d1}": T0})
    client.set("re:{t:t1}:u:u2:profile", '{"logins": 1}')  # the new layout: left alone
    client.set("unrelated", "1")

    assert store.migrate_layout() == 5
    assert store.migrate_layout() == 0  # nothing left to move

    assert store.get_profile("t1", "u1") == UserProfile(logins=3)
    moved = store.get_decision("t1", "e1")
    assert moved is not None and moved.decision == {"action": "allow"}
    assert 0 < client.ttl("re:{t:t1}:u:u1:profile") <= 3600
    assert load(store, user="u9", device="d1", now=T0).velocity.device_accounts_30d == 1
    assert store.erase_user("t1", "u1") >= 2  # its windows are found by their new names
    assert load(store, user="u9", device="d1", now=T0).velocity.device_accounts_30d == 0
    assert set(client.scan_iter()) == {"re:{t:t1}:u:u2:profile", "unrelated"}
