"""The hot path's shortcuts (issue #19) against the plain definitions they stand in for."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from features.event import LoginEvent
from features.profile import ABUSE_BUCKET_S, UserProfile
from riskengine.adapters.stores.base import Attempt, StoredDecision, abuse_filter, can_count
from riskengine.adapters.stores.memory import MemoryStore, _abuse


def _event(at: datetime) -> LoginEvent:
    return LoginEvent(event_id="e", tenant="t", user_key="u", timestamp=at, ip="1.2.3.4",
                      ip_key="i", ip_prefix_key="p")


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)),
                                               timezone(timedelta(hours=-5, minutes=-30))])))
def test_an_events_ts_is_its_timestamp_in_epoch_seconds(at: datetime) -> None:
    event = _event(at)
    later = replace(event, timestamp=at + timedelta(seconds=90))

    assert event.ts == at.timestamp()
    assert later.ts == at.timestamp() + 90
    # The worked-out seconds are no field of the value: equality and repr as before.
    assert event == _event(at) and "_ts" not in repr(event)


_BUCKET = st.tuples(st.integers(0, 40), st.integers(0, 30), st.integers(0, 2 ** 64 - 1))


@given(st.dictionaries(st.integers(-40, 5), _BUCKET, max_size=40), st.integers(0, 599))
def test_the_memory_stores_abuse_buckets_are_those_can_count_keeps(
    offsets: dict[int, tuple[int, int, int]], second: int,
) -> None:
    now = 1_800_000_000.0 + second
    current = int(now // ABUSE_BUCKET_S)
    buckets = {current + k: [attempts, min(failures, attempts), sketch]
               for k, (attempts, failures, sketch) in offsets.items()}
    first, recent, least, share = abuse_filter(now)

    expected = tuple(sorted((b, a, f, s) for b, (a, f, s) in buckets.items()
                            if b >= first and can_count((b, a, f, s), recent, least, share)))

    assert _abuse(buckets, now) == expected


class _KeepsWhatItWasGiven:
    """A profile update that mutates and returns the profile it was given, and keeps it."""

    def __init__(self) -> None:
        self.given: UserProfile | None = None

    def __call__(self, profile: UserProfile) -> UserProfile:
        profile.logins += 1
        self.given = profile
        return profile


def test_what_an_update_was_given_never_becomes_the_stored_profile() -> None:
    store, update = MemoryStore(), _KeepsWhatItWasGiven()
    store.record(StoredDecision(event_id="e1", tenant="t", user_key="u", ts=1.0,
                                decision={"decision": "allow"}, features={}),
                 Attempt(tenant="t", user_key="u", ip_key="i", asn=None, device_key=None,
                         ts=1.0, failed=False), update)
    assert update.given is not None
    update.given.logins = 99

    stored = store.get_profile("t", "u")
    assert stored is not None and stored.logins == 1
