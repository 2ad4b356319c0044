"""The Redis store's hot path: what one login costs in round trips, and that the shortcuts
taking it there keep ``record`` atomic and idempotent when instances race."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
import redis
import redis.connection

import riskengine.adapters.stores.redis as redis_store
from features.profile import Seen, UserProfile
from riskengine.adapters.stores import MINUTE_S, WINDOW_SCAN_MAX, RedisStore

from .test_contract import REDIS_URL, T0, bump, empty_redis, load, record

# What a login costs with a warm store: one round trip to load, one to record (one script
# each on the tenant's slot), two to record when no load came first and the profile is
# updated (the script sends the stored profile back to start from).
LOAD_ROUND_TRIPS = 1
RECORD_ROUND_TRIPS = 1
RECORD_UNLOADED_ROUND_TRIPS = 2


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    with empty_redis() as opened:
        yield opened


def _open() -> RedisStore:
    return RedisStore(REDIS_URL, timeout_s=1.0)


@pytest.fixture
def store(client: redis.Redis) -> Iterator[RedisStore]:
    opened = _open()
    yield opened
    opened.close()


@dataclass
class Sent:
    n: int = 0


@contextmanager
def round_trips() -> Iterator[Sent]:
    """Counts the requests written to any Redis connection while the block runs; a
    pipeline is one, as its commands go out together and their replies come back together."""
    sent = Sent()
    send = redis.connection.AbstractConnection.send_packed_command

    def counted(self: redis.connection.AbstractConnection, *args: Any, **kwargs: Any) -> Any:
        sent.n += 1
        return send(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
        yield sent


def _warm(store: RedisStore) -> None:
    """One login of another tenant: the connection is open and the server knows the
    script."""
    load(store, tenant="warm", event_id="warm")
    record(store, "warm", tenant="warm", update=bump)


@pytest.mark.parametrize("update", [bump, None])
def test_a_login_takes_one_round_trip_to_load_and_one_to_record(
    store: RedisStore, update: Any
) -> None:
    _warm(store)
    for i in range(3):  # a new user, then a known one
        with round_trips() as loading:
            loaded = load(store, event_id=f"e{i}", now=T0 + i)
        with round_trips() as recording:
            record(store, f"e{i}", ts=T0 + i, failed=i == 1, update=update)

        assert loaded.previous is None
        assert loading.n == LOAD_ROUND_TRIPS
        assert recording.n == RECORD_ROUND_TRIPS
    assert store.get_profile("t1", "u1") == (UserProfile(logins=3) if update else None)
    velocity = load(store, user="u2", now=T0 + 2).velocity
    assert (velocity.ip_users_10m, velocity.ip_failures_10m) == (1, 1)
    assert velocity.tenant_attempts_10m == 3


def test_a_record_without_a_load_reads_first(store: RedisStore) -> None:
    _warm(store)
    with round_trips() as recording:
        record(store, "e1", update=bump)
    with round_trips() as replaying:
        again = record(store, "e1", update=bump, action="deny")

    assert recording.n <= RECORD_UNLOADED_ROUND_TRIPS
    assert replaying.n == 1  # found recorded by the script
    assert again.decision["action"] == "allow"
    assert store.get_profile("t1", "u1") == UserProfile(logins=1)


def test_loads_never_followed_by_a_record_are_not_kept_for_long(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_store, "LOADED_KEEP", 2)
    _warm(store)
    for i in range(3):
        load(store, event_id=f"e{i}")

    with round_trips() as newest:
        record(store, "e2", update=bump)
    with round_trips() as oldest:
        record(store, "e0", update=bump)  # forgotten: read again

    assert oldest.n == RECORD_UNLOADED_ROUND_TRIPS
    assert newest.n == RECORD_ROUND_TRIPS
    assert store.get_profile("t1", "u1") == UserProfile(logins=2)


# -- the parse kept beside its text --------------------------------------------------------


def test_a_record_without_an_update_keeps_loads_true_to_the_stored_profile(
    client: redis.Redis,
) -> None:
    """A record that updates no profile (a login the engine does not learn from) leaves the
    stored profile, and the parse kept beside its text, as they were; a write by another
    instance after it is still read."""
    mine, theirs = _open(), _open()
    record(mine, "e1", update=bump)
    assert load(mine, event_id="e2").profile == UserProfile(logins=1)
    record(mine, "e2", update=None)

    assert load(mine, event_id="e3").profile == UserProfile(logins=1)
    record(theirs, "e3", update=bump)
    assert load(mine, event_id="e4").profile == UserProfile(logins=2)
    record(mine, "e4", update=bump)
    assert theirs.get_profile("t1", "u1") == UserProfile(logins=3)
    mine.close()
    theirs.close()


def test_a_loaded_profile_changed_by_its_caller_changes_neither_the_store_nor_later_loads(
    store: RedisStore,
) -> None:
    record(store, "e1", update=bump)
    for event, update in (("e2", None), ("e3", bump)):
        loaded = load(store, event_id=event).profile
        assert loaded is not None
        loaded.logins = 99
        loaded.devices["x"] = Seen(1, T0, T0)
        record(store, event, update=update)

    assert load(store, event_id="e4").profile == UserProfile(logins=2)
    assert store.get_profile("t1", "u1") == UserProfile(logins=2)


def test_each_load_counts_its_own_ten_minutes_of_the_tenant(store: RedisStore) -> None:
    """The keys of a tenant's minutes are kept from one load to the next: a login in
    another minute, later or earlier, still counts its own window, in every tenant."""
    start = (T0 // MINUTE_S) * MINUTE_S
    record(store, "e1", ts=start + 5, failed=True)
    record(store, "e2", user="u2", ts=start + 30)
    record(store, "e3", tenant="t2", ts=start + 30, failed=True)

    for minutes_later, counted in [(0, 2), (11, 0), (10, 2), (-1, 0), (0, 2), (11, 0)]:
        for tenant, n in (("t1", counted), ("t2", counted // 2)):
            velocity = load(store, tenant=tenant, now=start + 30 + minutes_later * MINUTE_S,
                            event_id=f"q{minutes_later}").velocity
            assert (velocity.tenant_attempts_10m, velocity.tenant_failures_10m) == (
                n, min(n, 1)), (tenant, minutes_later)


# -- two instances (two stores, two connection pools) racing ----------------------------


def test_an_update_between_load_and_record_is_not_lost(client: redis.Redis) -> None:
    a, b = _open(), _open()
    seen: list[int] = []

    def counted(profile: UserProfile) -> UserProfile:
        seen.append(profile.logins)
        return bump(profile)

    load(a, event_id="e1")  # a reads the profile ...
    load(b, event_id="e2")
    record(b, "e2", update=bump)  # ... b changes it ...
    record(a, "e1", update=counted)  # ... a's update must start again from b's

    assert seen[-1] == 1  # the update stored is the one that started from b's profile
    assert a.get_profile("t1", "u1") == UserProfile(logins=2)
    load(a, event_id="e3")
    b.erase_user("t1", "u1")  # gone meanwhile: a's update starts from no profile
    record(a, "e3", update=counted)
    assert seen[-1] == 0
    assert a.get_profile("t1", "u1") == UserProfile(logins=1)
    a.close()
    b.close()


def test_one_event_recorded_by_two_instances_counts_once(client: redis.Redis) -> None:
    a, b = _open(), _open()
    assert load(a, event_id="e1").previous is None
    assert load(b, event_id="e1").previous is None  # both score it

    first = record(a, "e1", failed=True, update=bump, action="allow")
    second = record(b, "e1", failed=True, update=bump, action="deny")

    assert second == first == a.get_decision("t1", "e1")
    assert a.get_profile("t1", "u1") == UserProfile(logins=1)
    velocity = load(a, user="u2").velocity
    assert (velocity.ip_users_10m, velocity.ip_failures_10m) == (1, 1)
    assert (velocity.tenant_attempts_10m, velocity.tenant_failures_10m) == (1, 1)
    a.close()
    b.close()


def test_instances_racing_on_one_user_and_the_same_events_lose_and_double_nothing(
    client: redis.Redis,
) -> None:
    instances, events = 6, 24
    # Every attempt stays in the IP window's view, so its count is exact: counted once each.
    assert (instances + 1) * events <= WINDOW_SCAN_MAX
    stores = [_open() for _ in range(instances)]
    start = threading.Barrier(instances)

    def login(store: RedisStore, event_id: str, i: int, action: str) -> str:
        load(store, event_id=event_id, now=T0 + i)
        stored = record(store, event_id, ts=T0 + i, failed=i % 3 == 0, update=bump,
                        action=action)
        return str(stored.decision["action"])

    def work(w: int) -> list[str]:
        store = stores[w]
        start.wait()
        winners = []
        for i in range(events):
            # Every instance scores the shared event, each with an answer of its own ...
            winners.append(login(store, f"s{i}", i, f"w{w}"))
            login(store, f"w{w}-{i}", i, "allow")  # ... and one event of its own.
        return winners

    with ThreadPoolExecutor(max_workers=instances) as pool:
        winners = list(pool.map(work, range(instances)))

    for i in range(events):  # every instance got back the one decision stored
        stored = stores[0].get_decision("t1", f"s{i}")
        assert stored is not None
        assert {w[i] for w in winners} == {stored.decision["action"]}
    profile = stores[0].get_profile("t1", "u1")
    assert profile is not None and profile.logins == events * (instances + 1)
    velocity = load(stores[0], user="u2", now=T0 + events - 1).velocity
    assert velocity.ip_users_10m == 1
    assert velocity.ip_failures_10m == (instances + 1) * (events // 3)
    assert velocity.tenant_attempts_10m == (instances + 1) * events
    for store in stores:
        store.close()


def test_a_profile_too_contended_to_write_fails_cleanly(
    store: RedisStore, client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_store, "WATCH_TRIES", 3)
    key = "re:{t:t1}:u:u1:profile"

    def meddling(profile: UserProfile) -> UserProfile:
        # Another client writes the profile every time this one has read it.
        client.set(key, f'{{"logins": {profile.logins + 10}}}')
        return bump(profile)

    load(store)
    with pytest.raises(redis_store.StoreContended, match="gave up after 3 tries"):
        record(store, "query", update=meddling)
    assert store.get_decision("t1", "query") is None
    assert load(store, user="u2").velocity.tenant_attempts_10m == 0
    assert store.get_profile("t1", "u1") == UserProfile(logins=30)  # the other's writes


def test_one_instances_burst_on_one_user_takes_turns_instead_of_racing(store: RedisStore) -> None:
    threads, each = 16, 8
    start = threading.Barrier(threads)
    updates: list[str] = []

    def slow(name: str, profile: UserProfile) -> UserProfile:
        updates.append(name)
        end = time.perf_counter() + 0.002  # a profile update costs Python time, GIL held
        while time.perf_counter() < end:
            pass
        return bump(profile)

    def work(w: int) -> None:
        start.wait()
        for i in range(each):
            name = f"w{w}-{i}"
            load(store, event_id=name, now=T0 + i)
            record(store, name, ts=T0 + i, update=partial(slow, name))

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(work, range(threads)))

    profile = store.get_profile("t1", "u1")
    assert profile is not None and profile.logins == threads * each
    # Each write starts at most twice: from the profile its load read, and once more from
    # the one its turn finds. Racing, a burst like this took ~15 tries a write (and, now and
    # then, all 50: a failover answer).
    assert max(Counter(updates).values()) <= 2


def test_a_write_waits_for_its_turn_only_so_long(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_store, "TURN_WAIT_CALLS", 1)
    store = RedisStore(REDIS_URL, timeout_s=0.1)  # a turn is waited for 0.1 s at most
    inside, leave = threading.Event(), threading.Event()

    def holding(profile: UserProfile) -> UserProfile:
        inside.set()
        leave.wait(5)
        return bump(profile)

    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(record, store, "first", update=holding)
        assert inside.wait(5)
        started = time.monotonic()
        with pytest.raises(redis_store.StoreContended, match="waited 0.1 s"):
            record(store, "second", update=bump)
        assert time.monotonic() - started < 1.0
        assert redis_store._stripe("t1", "u9") != redis_store._stripe("t1", "u1")
        record(store, "other", user="u9", update=bump)  # another user does not wait
        leave.set()
        first.result(timeout=5)

    assert store.get_decision("t1", "second") is None  # refused before writing anything
    assert store.get_profile("t1", "u1") == UserProfile(logins=1)
    store.close()


def test_replies_are_parsed_by_hiredis(store: RedisStore) -> None:
    _warm(store)
    connection = store._redis.connection_pool.get_connection()
    try:
        assert type(connection._parser).__name__ == "_HiredisParser"
    finally:
        store._redis.connection_pool.release(connection)


def test_a_record_is_atomic_with_its_counts(store: RedisStore, client: redis.Redis) -> None:
    """The decision and the windows are one script: a record refused for contention leaves
    no count behind, and one that went through left every count."""
    _warm(store)
    load(store, event_id="e1")
    record(store, "e1", failed=True, update=bump)
    velocity = load(store, user="u2").velocity
    assert (velocity.ip_users_10m, velocity.ip_failures_10m, velocity.asn_failures_10m,
            velocity.device_accounts_30d, velocity.tenant_attempts_10m) == (1, 1, 1, 1, 1)
    assert len(velocity.ip_prefix_abuse) == len(velocity.asn_abuse) == 1
