"""The contract every store keeps: one suite, run over each store."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from features.extract import ABUSE_ACCOUNTS
from features.profile import (
    ABUSE_BUCKET_S,
    ABUSE_BUCKETS,
    Seen,
    UserProfile,
    Velocity,
    abuse_bucket,
    account_bit,
)
from riskengine.adapters.stores import (
    DEVICE_WINDOW_S,
    IP_WINDOW_S,
    MINUTE_S,
    WINDOW_SCAN_MAX,
    Attempt,
    FeedbackOutcome,
    Loaded,
    LoadQuery,
    MemoryStore,
    ProfileUpdate,
    RedisStore,
    SqliteStore,
    Store,
    StoredDecision,
    UserData,
)

T0 = 1_700_000_000.0
REDIS_URL = "redis://127.0.0.1:6379/13"  # a database the tests empty before and after use


@contextmanager
def empty_redis() -> Iterator[redis.Redis]:
    """A client on the emptied test database. Fails rather than skips when Redis is down:
    CI starts it, and a silently skipped store is an untested one."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5.0, decode_responses=True)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        client.close()
        pytest.fail(
            f"no Redis at {REDIS_URL} ({exc}): start one with "
            "`redis-server --daemonize yes --bind 127.0.0.1 --port 6379` (.ci/run does)",
            pytrace=False,
        )
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with ExitStack() as stack:
        opened: Store
        if request.param == "memory":
            opened = MemoryStore()
        elif request.param == "sqlite":
            opened = SqliteStore(tmp_path / "s.db")
        else:
            stack.enter_context(empty_redis())
            # A generous timeout: a busy CI host must not fail the contract by being slow.
            opened = RedisStore(REDIS_URL, timeout_s=1.0)
        yield opened
        opened.close()


def bump(profile: UserProfile) -> UserProfile:
    return replace(profile, logins=profile.logins + 1)


def record(
    store: Store,
    event_id: str,
    *,
    user: str = "u1",
    ip: str = "ip1",
    asn: int | None = 64500,
    device: str | None = "d1",
    ts: float = T0,
    failed: bool = False,
    prefix: str | None = "p1",
    tenant: str = "t1",
    update: ProfileUpdate | None = None,
    action: str = "allow",
) -> StoredDecision:
    decision = StoredDecision(
        event_id=event_id,
        tenant=tenant,
        user_key=user,
        ts=ts,
        decision={"action": action, "score": 0.25, "reasons": [{"rule": "R1", "hit": False}]},
        features={"ip_users_10m": 0, "geo_velocity_kmh": None},
    )
    attempt = Attempt(
        tenant=tenant, user_key=user, ip_key=ip, asn=asn, device_key=device, ts=ts, failed=failed,
        ip_prefix_key=prefix,
    )
    return store.record(decision, attempt, update)


def load(
    store: Store,
    *,
    user: str = "u1",
    ip: str = "ip1",
    asn: int | None = 64500,
    device: str | None = "d1",
    now: float = T0,
    tenant: str = "t1",
    event_id: str = "query",
    prefix: str | None = "p1",
) -> Loaded:
    return store.load(
        LoadQuery(
            tenant=tenant,
            user_key=user,
            ip_key=ip,
            asn=asn,
            device_key=device,
            event_id=event_id,
            now=now,
            ip_prefix_key=prefix,
        )
    )


def windows(velocity: Velocity) -> Velocity:
    """The sliding windows' counts alone, without the sustained-abuse buckets."""
    return replace(velocity, ip_prefix_abuse=(), asn_abuse=())


def test_empty_store_loads_nothing(store: Store) -> None:
    assert load(store) == Loaded(profile=None, velocity=Velocity(), previous=None)
    assert store.get_profile("t1", "u1") is None
    assert store.get_decision("t1", "e1") is None


def test_record_applies_update_to_an_empty_profile_first(store: Store) -> None:
    given: list[UserProfile] = []

    def learn(profile: UserProfile) -> UserProfile:
        given.append(profile)
        out = replace(profile, logins=1, last_country="SE", first_seen=T0)
        out.devices = {"d1": Seen(1, T0, T0)}
        return out

    record(store, "e1", update=learn)

    assert given == [UserProfile()]
    expected = UserProfile(logins=1, last_country="SE", first_seen=T0)
    expected.devices = {"d1": Seen(1, T0, T0)}
    assert load(store).profile == expected
    assert store.get_profile("t1", "u1") == expected


def test_record_returns_and_keeps_the_decision(store: Store) -> None:
    stored = record(store, "e1")

    assert stored.event_id == "e1"
    assert store.get_decision("t1", "e1") == stored
    assert load(store, event_id="e1").previous == stored


def test_update_none_stores_decision_and_attempt_but_no_profile(store: Store) -> None:
    record(store, "e1", failed=True)

    assert store.get_profile("t1", "u1") is None
    assert store.get_decision("t1", "e1") is not None
    assert load(store, user="u2").velocity.ip_users_10m == 1
    assert load(store, user="u2").velocity.ip_failures_10m == 1


def test_update_none_leaves_an_existing_profile_alone(store: Store) -> None:
    record(store, "e1", update=bump)
    record(store, "e2")

    profile = store.get_profile("t1", "u1")
    assert profile is not None and profile.logins == 1


def test_velocity_counts_other_users_and_all_failures(store: Store) -> None:
    record(store, "e1", user="u1", failed=True)  # this user's own failure counts as a failure
    record(store, "e2", user="u2", failed=True, device="d1")
    record(store, "e3", user="u3", failed=True, device="d2")
    record(store, "e4", user="u3", failed=False, device="d2")  # a user counts once
    record(store, "e5", user="u4", ip="ip2", failed=True, device="d1")  # same ASN, other IP
    record(store, "e6", user="u5", ip="ip3", asn=64501, failed=True, device="d3")  # elsewhere

    velocity = windows(load(store, user="u1").velocity)

    assert velocity == Velocity(
        ip_users_10m=2,
        ip_failures_10m=3,
        asn_users_10m=3,
        asn_failures_10m=4,
        device_accounts_30d=2,
        tenant_attempts_10m=6,
        tenant_failures_10m=5,
    )
    assert load(store, user="nobody").velocity.device_accounts_30d == 3


def test_a_busy_window_counts_among_its_latest_attempts_only(store: Store) -> None:
    """However busy a network, a login reads at most WINDOW_SCAN_MAX of its attempts: the
    latest ones, exactly."""
    for n in range(200):  # older attempts, each a different user's failure
        record(store, f"old{n}", user=f"old{n}", failed=True, ts=T0 - 300 + n * 0.5)
    for n in range(WINDOW_SCAN_MAX):  # then one busy user, succeeding
        record(store, f"new{n}", user="busy", failed=False, ts=T0 - 100 + n * 0.05)
    velocity = load(store, user="u1").velocity
    assert (velocity.ip_users_10m, velocity.ip_failures_10m) == (1, 0)
    assert (velocity.asn_users_10m, velocity.asn_failures_10m) == (1, 0)
    # Below the cap the count is exact: 100 more failures from other users come into view.
    later = load(store, user="u1", now=T0 - 100 + (WINDOW_SCAN_MAX - 1) * 0.05)
    assert later.velocity.ip_users_10m == 1
    for n in range(100):
        record(store, f"late{n}", user=f"late{n}", failed=True, ts=T0 + 1 + n * 0.01)
    velocity = load(store, user="u1", now=T0 + 2).velocity
    assert (velocity.ip_users_10m, velocity.ip_failures_10m) == (101, 100)
    assert velocity.tenant_attempts_10m == 200 + WINDOW_SCAN_MAX + 100  # not capped


def test_velocity_without_asn_or_device_is_zero_for_those(store: Store) -> None:
    record(store, "e1", user="u2", failed=True)

    velocity = windows(load(store, asn=None, device=None).velocity)

    assert velocity == Velocity(ip_users_10m=1, ip_failures_10m=1, tenant_attempts_10m=1,
                                tenant_failures_10m=1)


def test_attempts_without_asn_or_device_count_by_ip_only(store: Store) -> None:
    record(store, "e1", user="u2", asn=None, device=None, failed=True)

    assert windows(load(store).velocity) == Velocity(ip_users_10m=1, ip_failures_10m=1,
                                            tenant_attempts_10m=1, tenant_failures_10m=1)


@pytest.mark.parametrize(
    ("now", "counted"),
    [
        # A login stamped before the window's latest attempt (only a trusted replay can
        # stamp one) still sees that attempt: time only moves forward per network.
        (T0 - 1.0, True),
        (T0, True),
        (T0 + IP_WINDOW_S - 0.5, True),
        (T0 + IP_WINDOW_S, False),  # the window start is exclusive
    ],
)
def test_ip_and_asn_windows_slide_with_event_time(store: Store, now: float, counted: bool) -> None:
    record(store, "e1", user="u2", failed=True, device=None)

    hits = int(counted)
    velocity = replace(windows(load(store, now=now).velocity), tenant_attempts_10m=0,
                       tenant_failures_10m=0)
    assert velocity == Velocity(hits, hits, hits, hits, 0)


@pytest.mark.parametrize(
    ("minutes_later", "counted"),
    [(-1, False), (0, True), (10, True), (11, False)],
)
def test_tenant_counts_cover_the_last_ten_whole_minutes(
    store: Store, minutes_later: int, counted: bool
) -> None:
    start = (T0 // MINUTE_S) * MINUTE_S  # the start of a minute
    record(store, "e1", ts=start + 5, failed=True)
    record(store, "e2", user="u2", ts=start + 30, failed=False)
    record(store, "e3", tenant="t2", ts=start + 30, failed=True)  # another tenant's

    velocity = load(store, now=start + 30 + minutes_later * MINUTE_S).velocity

    n = int(counted)
    assert (velocity.tenant_attempts_10m, velocity.tenant_failures_10m) == (2 * n, n)


@pytest.mark.parametrize(
    ("now", "counted"),
    [
        (T0 - 1.0, True),  # time only moves forward per device, as per network
        (T0, True),
        (T0 + DEVICE_WINDOW_S - 1.0, True),
        (T0 + DEVICE_WINDOW_S, False),
    ],
)
def test_device_window_slides_with_event_time(store: Store, now: float, counted: bool) -> None:
    record(store, "e1", user="u2")

    assert load(store, now=now).velocity.device_accounts_30d == int(counted)


def test_device_window_follows_the_latest_sighting(store: Store) -> None:
    record(store, "e2", user="u2", ts=T0 + 100.0)
    record(store, "e1", user="u2", ts=T0)  # late arrival must not move the sighting back

    assert load(store, now=T0 + 100.0 + DEVICE_WINDOW_S - 1.0).velocity.device_accounts_30d == 1


def test_a_login_stamped_in_the_past_cannot_rewind_a_window(store: Store) -> None:
    # Issue #18: with windows ending at the login's own time, a caller stamping each
    # failure earlier than the last saw an empty window every time.
    record(store, "e1", user="u2", ts=T0 + 300.0, failed=True)
    record(store, "e2", user="u3", ts=T0, failed=True)
    record(store, "e3", user="u4", ts=T0 - 700.0, failed=True)  # before the window

    velocity = load(store, now=T0 + 100.0).velocity

    assert (velocity.ip_users_10m, velocity.ip_failures_10m) == (2, 2)


def test_record_is_idempotent_by_event_id(store: Store) -> None:
    first = record(store, "e1", failed=True, update=bump, action="allow")

    again = record(store, "e1", failed=True, update=bump, action="deny", ts=T0 + 1.0)

    assert again == first
    assert store.get_decision("t1", "e1") == first
    profile = store.get_profile("t1", "u1")
    assert profile is not None and profile.logins == 1
    assert load(store, user="u2", now=T0 + 1.0).velocity.ip_failures_10m == 1


def test_an_event_id_replayed_for_another_user_returns_the_first(store: Store) -> None:
    first = record(store, "e1", user="u1", update=bump)

    again = record(store, "e1", user="u2", update=bump, action="deny")

    assert again == first
    assert store.get_profile("t1", "u2") is None
    assert load(store, user="u2", event_id="e1").previous == first
    assert load(store, user="u3").velocity.ip_users_10m == 1


def test_failing_update_records_nothing(store: Store) -> None:
    def broken(profile: UserProfile) -> UserProfile:
        raise RuntimeError("model exploded")

    with pytest.raises(RuntimeError, match="model exploded"):
        record(store, "e1", failed=True, update=broken)

    assert store.get_decision("t1", "e1") is None
    assert store.get_profile("t1", "u1") is None
    assert load(store, user="u2") == Loaded(None, Velocity(), None)
    record(store, "e1", update=bump)  # the event id is still free
    assert store.get_profile("t1", "u1") == UserProfile(logins=1)


def test_tenants_are_isolated(store: Store) -> None:
    record(store, "e1", user="u2", failed=True, update=bump)

    assert load(store, tenant="t2", user="u2", event_id="e1") == Loaded(None, Velocity(), None)
    assert load(store, tenant="t2", user="u1") == Loaded(None, Velocity(), None)
    assert store.get_profile("t2", "u2") is None
    assert store.get_decision("t2", "e1") is None
    # The same event id under another tenant is a new event, not a replay.
    other = record(store, "e1", tenant="t2", user="u2", action="deny", update=bump)
    assert store.get_decision("t2", "e1") == other
    assert store.get_decision("t1", "e1") != other


def test_mutating_returned_values_does_not_change_the_store(store: Store) -> None:
    record(store, "e1", update=bump)
    profile = store.get_profile("t1", "u1")
    decision = store.get_decision("t1", "e1")
    assert profile is not None and decision is not None

    profile.logins = 99
    profile.devices["x"] = Seen(1, T0, T0)
    decision.decision["action"] = "deny"

    assert store.get_profile("t1", "u1") == UserProfile(logins=1)
    again = store.get_decision("t1", "e1")
    assert again is not None and again.decision["action"] == "allow"


def test_ping_succeeds(store: Store) -> None:
    store.ping()


def test_concurrent_updates_of_one_user_are_not_lost(store: Store) -> None:
    threads, per_thread = 8, 25

    def work(worker: int) -> None:
        for i in range(per_thread):
            record(store, f"e{worker}-{i}", ts=T0 + i, update=bump)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for done in [pool.submit(work, w) for w in range(threads)]:
            done.result()  # re-raises a worker's error here

    profile = store.get_profile("t1", "u1")
    assert profile is not None and profile.logins == threads * per_thread
    stored = [
        store.get_decision("t1", f"e{w}-{i}") for w in range(threads) for i in range(per_thread)
    ]
    assert len({d.event_id for d in stored if d is not None}) == threads * per_thread


# -- feedback ---------------------------------------------------------------------------


def test_sighting_and_feedback_round_trip(store: Store) -> None:
    decision = StoredDecision(
        event_id="e-seen", tenant="t1", user_key="u1", ts=T0, decision={"decision": "challenge"},
        features={"new_device": True}, sighting={"ts": T0, "device_key": "d9"},
    )
    store.record(decision, Attempt("t1", "u1", "ip1", None, "d9", T0, False), None)
    got = store.get_decision("t1", "e-seen")
    assert got is not None
    assert got.sighting == {"ts": T0, "device_key": "d9"}
    assert got.feedback is None


def learn_it(decision: StoredDecision) -> tuple[ProfileUpdate | None, bool]:
    return (None, True) if decision.learned else (bump, True)


def test_feedback_applies_once_and_only_to_known_events(store: Store) -> None:
    record(store, "e1", update=bump)
    outcome, before = store.apply_feedback("t1", "e1", "legit", learn_it)
    assert outcome is FeedbackOutcome.APPLIED
    assert before is not None and before.learned is False and before.feedback is None
    outcome, before = store.apply_feedback("t1", "e1", "legit", learn_it)
    assert outcome is FeedbackOutcome.DUPLICATE
    assert before is not None and before.learned is True
    profile = store.get_profile("t1", "u1")
    assert profile is not None and profile.logins == 2
    stored = store.get_decision("t1", "e1")
    assert stored is not None and stored.feedback == "legit" and stored.learned
    assert store.apply_feedback("t1", "nope", "x", learn_it) == (
        FeedbackOutcome.UNKNOWN_EVENT, None)
    assert store.apply_feedback("t2", "e1", "x", learn_it)[0] is FeedbackOutcome.UNKNOWN_EVENT


def test_a_new_label_replaces_the_old_one(store: Store) -> None:
    record(store, "e1")
    store.apply_feedback("t1", "e1", "fraud", lambda d: (None, False))
    outcome, _ = store.apply_feedback("t1", "e1", "legit", learn_it)
    assert outcome is FeedbackOutcome.APPLIED
    stored = store.get_decision("t1", "e1")
    assert stored is not None and stored.feedback == "legit" and stored.learned
    assert store.get_profile("t1", "u1") == UserProfile(logins=1)


def test_the_learned_flag_is_stored_with_the_decision(store: Store) -> None:
    decision = StoredDecision(event_id="e-l", tenant="t1", user_key="u1", ts=T0, decision={},
                              features={}, learned=True)
    store.record(decision, Attempt("t1", "u1", "ip1", None, None, T0, False), None)
    got = store.get_decision("t1", "e-l")
    assert got is not None and got.learned is True


def test_memory_store_with_retention_forgets_old_decisions_and_hits() -> None:
    from riskengine.adapters.stores import open_store
    from riskengine.adapters.stores.memory import PRUNE_EVERY

    store = open_store("memory:?retention_s=3600")
    assert isinstance(store, MemoryStore)
    for i in range(PRUNE_EVERY):
        record(store, f"e{i}", user=f"u{i % 7}", ts=T0 + i)  # ~2.8 hours of events
    last = T0 + PRUNE_EVERY - 1
    assert store.get_decision("t1", "e0") is None  # older than an hour: forgotten
    assert store.get_decision("t1", f"e{PRUNE_EVERY - 1}") is not None
    velocity = load(store, user="other", now=last).velocity
    assert velocity.ip_users_10m == 7  # the 10-minute window still counts correctly


# -- the user's rights and retention ---------------------------------------------------


def test_export_holds_the_profile_and_every_decision(store: Store) -> None:
    record(store, "e2", ts=T0 + 10, update=bump)
    record(store, "e1", ts=T0, update=bump)
    record(store, "x1", user="u2", ts=T0 + 5, update=bump)
    data = store.export_user("t1", "u1")
    assert data.profile is not None and data.profile.logins == 2
    assert [d.event_id for d in data.decisions] == ["e1", "e2"]
    assert store.export_user("t2", "u1").decisions == ()


def test_erase_removes_the_user_everywhere(store: Store) -> None:
    record(store, "e1", update=bump, failed=True)
    record(store, "e2", update=bump, device="d1")
    record(store, "o1", user="u2", update=bump, device="d1")
    assert store.erase_user("t1", "u1") >= 3
    assert store.get_profile("t1", "u1") is None
    assert store.get_decision("t1", "e1") is None and store.get_decision("t1", "e2") is None
    assert store.export_user("t1", "u1") == UserData(None, ())
    velocity = load(store, user="u2").velocity
    assert velocity.ip_users_10m == 0 and velocity.ip_failures_10m == 0  # u1's hits are gone
    assert velocity.device_accounts_30d == 0
    assert store.get_profile("t1", "u2") is not None  # nobody else is touched
    # the same event id may now be scored afresh: the next login is a new user's
    record(store, "e1", update=bump)
    assert store.get_profile("t1", "u1") == UserProfile(logins=1)


def test_purge_applies_retention_at_event_time(store: Store) -> None:
    record(store, "old", user="u-old", ts=T0, update=bump)
    record(store, "new", user="u-new", ts=T0 + 200 * 86_400.0, update=bump)
    now = T0 + 200 * 86_400.0 + 1
    report = store.purge(now=now, profile_retention_s=100 * 86_400.0)
    assert report["profiles"] == 1
    assert store.get_profile("t1", "u-old") is None
    assert store.get_profile("t1", "u-new") is not None
    assert store.get_decision("t1", "old") is None  # older than 30 days of decisions
    assert store.get_decision("t1", "new") is not None


# -- the sustained-abuse buckets (issue #18): counts per network and 10-minute bucket


def test_abuse_buckets_count_attempts_failures_and_failing_accounts(store: Store) -> None:
    record(store, "e1", user="u1", failed=True)
    record(store, "e2", user="u2", failed=True, ip="ip2")  # another address, the same block
    record(store, "e3", user="u2", failed=True, ip="ip3")  # an account counts once
    record(store, "e4", user="u3", failed=False)  # a success counts as an attempt only
    record(store, "e5", user="u4", failed=True, prefix="p2", asn=64501)  # elsewhere
    record(store, "e6", user="u5", failed=True, tenant="t2")  # another tenant's

    velocity = load(store, user="u9").velocity

    bucket = abuse_bucket(T0)
    sketch = account_bit("u1") | account_bit("u2")
    assert velocity.ip_prefix_abuse == ((bucket, 4, 3, sketch),)
    assert velocity.asn_abuse == ((bucket, 4, 3, sketch),)
    assert load(store, prefix="p2", asn=64501).velocity.ip_prefix_abuse == (
        (bucket, 1, 1, account_bit("u4")),)
    assert load(store, prefix=None, asn=None).velocity.ip_prefix_abuse == ()


def test_abuse_buckets_are_kept_per_bucket_oldest_first(store: Store) -> None:
    for n in range(3):
        record(store, f"e{n}", user=f"u{n}", failed=True, ts=T0 + n * ABUSE_BUCKET_S)
    record(store, "late", user="u9", failed=False, ts=T0)  # late, into its own bucket

    buckets = load(store, now=T0).velocity.ip_prefix_abuse

    first = abuse_bucket(T0)
    assert buckets == ((first, 2, 1, account_bit("u0")),
                       (first + 1, 1, 1, account_bit("u1")),
                       (first + 2, 1, 1, account_bit("u2")))


def test_older_buckets_come_only_when_they_can_be_abusive(store: Store) -> None:
    """Before the previous bucket, only a bucket with ABUSE_ACCOUNTS failures, half its
    attempts or more, can count: the others are not read (the features are the same)."""
    for n in range(ABUSE_ACCOUNTS):  # bucket 0: 8 failures of 16 attempts
        record(store, f"f{n}", user=f"u{n}", failed=True, ts=T0 + n)
        record(store, f"s{n}", user=f"v{n}", failed=False, ts=T0 + n)
    for n in range(ABUSE_ACCOUNTS):  # bucket 1: 8 failures of 17 attempts
        record(store, f"g{n}", user=f"u{n}", failed=True, ts=T0 + ABUSE_BUCKET_S + n)
        record(store, f"t{n}", user=f"v{n}", failed=False, ts=T0 + ABUSE_BUCKET_S + n)
    record(store, "t9", user="v9", failed=False, ts=T0 + ABUSE_BUCKET_S + 9)
    record(store, "h1", user="u1", failed=True, ts=T0 + 2 * ABUSE_BUCKET_S)  # bucket 2

    def numbers(now: float) -> list[int]:
        return [b[0] - abuse_bucket(T0) for b in load(store, now=now).velocity.ip_prefix_abuse]

    assert numbers(T0 + 3 * ABUSE_BUCKET_S) == [0, 2]  # bucket 2 is the previous one
    assert numbers(T0 + 4 * ABUSE_BUCKET_S) == [0]
    assert numbers(T0 + 2 * ABUSE_BUCKET_S) == [0, 1, 2]


@pytest.mark.parametrize(
    ("buckets_later", "counted"),
    [
        (-3, True),  # a login stamped in the past still sees them: no upper end
        (0, True),
        (ABUSE_BUCKETS - 1, True),  # the last 6 hours' buckets, the current one included
        (ABUSE_BUCKETS, False),
    ],
)
def test_abuse_buckets_cover_the_last_six_hours(
    store: Store, buckets_later: int, counted: bool
) -> None:
    for n in range(ABUSE_ACCOUNTS):  # a bucket that can count however old
        record(store, f"e{n}", user=f"u{n}", failed=True)

    velocity = load(store, now=T0 + buckets_later * ABUSE_BUCKET_S).velocity

    assert len(velocity.ip_prefix_abuse) == len(velocity.asn_abuse) == int(counted)


def test_abuse_buckets_hold_counts_that_an_erasure_leaves(store: Store) -> None:
    record(store, "e1", user="u1", failed=True)
    record(store, "e2", user="u2", failed=True)
    before = load(store, user="u3").velocity

    store.erase_user("t1", "u1")

    # Counts and a 64-bit sketch hold no pseudonym: nothing of u1 is left to erase there.
    after = load(store, user="u3").velocity
    assert (after.ip_prefix_abuse, after.asn_abuse) == (before.ip_prefix_abuse,
                                                        before.asn_abuse)
    assert after.ip_users_10m == 1  # while the windows, which name users, let u1 go


def test_purge_drops_abuse_buckets_past_six_hours(store: Store) -> None:
    later = T0 + ABUSE_BUCKETS * ABUSE_BUCKET_S
    record(store, "old", user="u1", failed=True, ts=T0)
    record(store, "new", user="u2", failed=True, ts=later, prefix="p2", asn=64501)

    report = store.purge(now=later, profile_retention_s=1e9)

    assert report["abuse_buckets"] == 2  # the first block's and the first ASN's bucket
    early = load(store, now=T0).velocity  # would see them, had they been kept
    assert (early.ip_prefix_abuse, early.asn_abuse) == ((), ())
    kept = load(store, now=later, prefix="p2", asn=64501).velocity
    assert [b[0] for b in kept.ip_prefix_abuse] == [abuse_bucket(later)]


def test_a_busy_network_keeps_six_hours_of_buckets_however_long_it_stays_busy(
        store: Store) -> None:
    for n in range(2 * ABUSE_BUCKETS):  # 12 hours, one failure a bucket
        record(store, f"e{n}", user=f"u{n}", failed=True, ts=T0 + n * ABUSE_BUCKET_S)
    last = T0 + (2 * ABUSE_BUCKETS - 1) * ABUSE_BUCKET_S

    report = store.purge(now=last, profile_retention_s=1e9)

    assert report["abuse_buckets"] <= 2 * ABUSE_BUCKETS  # what a store had not dropped yet
    assert len(load(store, now=T0).velocity.ip_prefix_abuse) == ABUSE_BUCKETS
