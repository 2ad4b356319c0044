"""The in-process store: plain dicts behind one lock, for tests and single-process replays."""

from __future__ import annotations

import json
import threading
from bisect import bisect_right, insort
from collections import defaultdict
from operator import itemgetter
from typing import Any

import orjson

from features.profile import (
    ABUSE_BUCKET_S,
    AbuseBucket,
    UserProfile,
    Velocity,
    abuse_bucket,
    account_bit,
)
from riskengine.adapters.stores.base import (
    DECISION_RETENTION_S,
    DEVICE_WINDOW_S,
    IP_WINDOW_S,
    MINUTE_S,
    WINDOW_SCAN_MAX,
    Attempt,
    FeedbackOutcome,
    FeedbackPlan,
    Loaded,
    LoadQuery,
    ProfileUpdate,
    StoredDecision,
    UserData,
    abuse_filter,
    abuse_since,
    minute_window,
    resolve_rotation,
)

# What the store keeps by the ten thousand is held in plain tuples of strings, numbers and
# bytes: the cyclic garbage collector stops tracking such tuples (not NamedTuples or
# dataclass instances), so a full collection does not walk every decision and hit kept.

# A velocity hit: (ts, user_key, failed).
_Hit = tuple[float, str, bool]
_ts, _user, _failed = itemgetter(0), itemgetter(1), itemgetter(2)
PRUNE_EVERY = 10_000


def _window(hits: list[_Hit], user_key: str, now: float) -> tuple[int, int]:
    """Other users and failures among time-sorted ``hits`` after ``now - IP_WINDOW_S``, the
    latest ``WINDOW_SCAN_MAX`` of them. No upper end: a window ends at its latest hit when
    that is later than ``now`` (a login stamped in the past cannot see an emptier one)."""
    end = len(hits)
    start = max(bisect_right(hits, now - IP_WINDOW_S, key=_ts), end - WINDOW_SCAN_MAX)
    if start >= end:
        return 0, 0
    inside = hits[start:end]
    users = set(map(_user, inside))
    users.discard(user_key)
    return len(users), sum(map(_failed, inside))


# A network's sustained-abuse buckets: bucket -> [attempts, failures, sketch].
_Buckets = dict[int, list[int]]


def _abuse(buckets: _Buckets | None, now: float) -> tuple[AbuseBucket, ...]:
    if not buckets:
        return ()
    first, recent, least, share = abuse_filter(now)
    # ``can_count`` written out (as the SQLite and Redis stores write it in their queries):
    # a Python call per bucket was most of a load's cost on a busy network. ``recent`` is
    # never before ``first``.
    return tuple(sorted(
        (b, a, f, s) for b, (a, f, s) in buckets.items()
        if b >= recent or (b >= first and f >= least and f >= share * a)))


def _drop_before(buckets: _Buckets, first: int) -> int:
    old = [b for b in buckets if b < first]
    for b in old:
        del buckets[b]
    return len(old)


# A stored decision: (event_id, tenant, user_key, ts, learned, feedback, JSON of
# [decision, features, sighting]). Serialized, it is cheap to keep, copied on the way
# out, and held to the same JSON-only rule as the SQLite store.
_Frozen = tuple[str, str, str, float, bool, str | None, bytes]
_USER, _TS, _LEARNED, _FEEDBACK, _JSON = 2, 3, 4, 5, 6


def _dumps(value: Any) -> bytes:
    """JSON as the SQLite store writes it: orjson, and ``json`` for what orjson refuses,
    so that exactly what ``json`` accepts is accepted."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value).encode()


def _loads(text: bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # NaN or Infinity, which only ``json`` writes
        return json.loads(text)


def _freeze(d: StoredDecision) -> _Frozen:
    parts = (d.decision, d.features, d.sighting)
    try:  # one call for the three parts
        blob = orjson.dumps(parts)
    except TypeError:  # part by part, so that each is accepted or refused as alone
        blob = b"[%s,%s,%s]" % tuple(_dumps(part) for part in parts)
    return (d.event_id, d.tenant, d.user_key, d.ts, d.learned, d.feedback, blob)


def _thaw(f: _Frozen | None) -> StoredDecision | None:
    if f is None:
        return None
    event_id, tenant, user_key, ts, learned, feedback, blob = f
    decision, features, sighting = _loads(blob)
    return StoredDecision(event_id, tenant, user_key, ts, decision, features, sighting,
                          feedback, learned)


def _copy(profile: UserProfile | None) -> UserProfile | None:
    return None if profile is None else profile.copy()


class MemoryStore:
    """A :class:`~riskengine.adapters.stores.base.Store` held in process memory.

    Nothing is shared between processes. Decisions older than ``retention_s`` (in event
    time, 30 days by default) and velocity hits past their windows are dropped now and then,
    so a long replay's memory grows with its users, not its events.
    Profiles and decisions are copied in and out, so mutating what a call returned (or what
    an update was given) never changes the stored state.
    """

    embedded = True  # calls take microseconds: the API scores on its event loop

    def __init__(self, *, retention_s: float = DECISION_RETENTION_S) -> None:
        self.retention_s = retention_s
        self._lock = threading.Lock()
        self._records = 0
        self._profiles: dict[tuple[str, str], UserProfile] = {}
        # when each profile was last updated, in event time (what profile retention counts)
        self._updated: dict[tuple[str, str], float] = {}
        self._decisions: dict[tuple[str, str], _Frozen] = {}
        # Hits stay sorted by event time, so a window is two bisections even when events
        # arrive out of order.
        self._ip_hits: defaultdict[tuple[str, str], list[_Hit]] = defaultdict(list)
        self._asn_hits: defaultdict[tuple[str, int], list[_Hit]] = defaultdict(list)
        # (tenant, minute) -> [attempts, failures]
        self._minutes: defaultdict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
        # (tenant, device_key) -> user_key -> latest time seen on that device
        self._device_users: defaultdict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        # (tenant, "prefix" or "asn", network) -> its sustained-abuse buckets: counts only
        self._abuse: defaultdict[tuple[str, str, str], _Buckets] = defaultdict(dict)

    def load(self, query: LoadQuery) -> Loaded:
        return resolve_rotation(self._load(query), query, self.get_profile)

    def _load(self, query: LoadQuery) -> Loaded:
        tenant, user_key, now = query.tenant, query.user_key, query.now
        with self._lock:
            ip_hits = self._ip_hits.get((tenant, query.ip_key), [])
            asn_hits = [] if query.asn is None else self._asn_hits.get((tenant, query.asn), [])
            device_users = (
                {}
                if query.device_key is None
                else self._device_users.get((tenant, query.device_key), {})
            )
            ip_users, ip_failures = _window(ip_hits, user_key, now)
            asn_users, asn_failures = _window(asn_hits, user_key, now)
            device_accounts = sum(
                user != user_key and now - DEVICE_WINDOW_S < last_ts
                for user, last_ts in device_users.items()
            )
            first, last = minute_window(now)
            tenant_attempts = tenant_failures = 0
            minutes = self._minutes
            for m in range(first, last + 1):
                counts = minutes.get((tenant, m))
                if counts:
                    tenant_attempts += counts[0]
                    tenant_failures += counts[1]
            prefix_abuse = (() if query.ip_prefix_key is None else
                            _abuse(self._abuse.get((tenant, "prefix", query.ip_prefix_key)), now))
            asn_abuse = (() if query.asn is None else
                         _abuse(self._abuse.get((tenant, "asn", str(query.asn))), now))
            return Loaded(
                profile=_copy(self._profiles.get((tenant, user_key))),
                velocity=Velocity(
                    ip_users_10m=ip_users,
                    ip_failures_10m=ip_failures,
                    asn_users_10m=asn_users,
                    asn_failures_10m=asn_failures,
                    device_accounts_30d=device_accounts,
                    tenant_attempts_10m=tenant_attempts,
                    tenant_failures_10m=tenant_failures,
                    ip_prefix_abuse=prefix_abuse,
                    asn_abuse=asn_abuse,
                ),
                previous=_thaw(self._decisions.get((tenant, query.event_id))),
            )

    def record(
        self, decision: StoredDecision, attempt: Attempt, update: ProfileUpdate | None
    ) -> StoredDecision:
        user = (decision.tenant, decision.user_key)
        with self._lock:
            stored = self._decisions.get((decision.tenant, decision.event_id))
            if stored is not None:
                return _thaw(stored)
            if update is not None:
                # Run first: an update that raises leaves nothing half-recorded.
                self._update_profile(user, update, decision.ts)
            self._decisions[(decision.tenant, decision.event_id)] = _freeze(decision)
            bucket = self._minutes[(attempt.tenant, int(attempt.ts // MINUTE_S))]
            bucket[0] += 1
            bucket[1] += int(attempt.failed)
            hit = (attempt.ts, attempt.user_key, attempt.failed)
            insort(self._ip_hits[(attempt.tenant, attempt.ip_key)], hit, key=_ts)
            if attempt.asn is not None:
                insort(self._asn_hits[(attempt.tenant, attempt.asn)], hit, key=_ts)
            if attempt.device_key is not None:
                users = self._device_users[(attempt.tenant, attempt.device_key)]
                users[attempt.user_key] = max(attempt.ts, users.get(attempt.user_key, attempt.ts))
            self._count_abuse(attempt)
            self._records += 1
            if self._records % PRUNE_EVERY == 0:
                self._prune(attempt.ts)
            return decision

    def _count_abuse(self, attempt: Attempt) -> None:
        """Count the attempt in its block's and ASN's bucket (called under the lock); each
        network keeps its last 6 hours of buckets, however long it stays busy."""
        bucket = abuse_bucket(attempt.ts)
        bit = account_bit(attempt.user_key) if attempt.failed else 0
        for kind, network in (("prefix", attempt.ip_prefix_key),
                              ("asn", None if attempt.asn is None else str(attempt.asn))):
            if network is None:
                continue
            buckets = self._abuse[(attempt.tenant, kind, network)]
            counts = buckets.get(bucket)
            if counts is None:
                buckets[bucket] = [1, int(attempt.failed), bit]
                _drop_before(buckets, abuse_since(max(buckets) * ABUSE_BUCKET_S))
            else:
                counts[0] += 1
                counts[1] += attempt.failed
                counts[2] |= bit

    def _prune(self, now: float) -> None:
        """Forget what no window or retention needs any more (called under the lock).

        Keys to drop are gathered first rather than iterating over a copy of each map: a
        copy of every decision's key and record is a burst of allocations that sets off
        the garbage collector's full passes."""
        horizon = now - self.retention_s
        # Decisions arrive roughly in time order, so the oldest are first in the dict.
        stale = []
        for key, frozen in self._decisions.items():
            if frozen[_TS] >= horizon:
                break
            stale.append(key)
        for key in stale:
            del self._decisions[key]
        self._prune_counters(now)

    def _prune_counters(self, now: float) -> int:
        """Drop counter entries past their windows; returns how many abuse buckets went."""
        for hits_by_key in (self._ip_hits, self._asn_hits):
            emptied = []
            for key, hits in hits_by_key.items():
                del hits[: bisect_right(hits, now - IP_WINDOW_S, key=_ts)]
                if not hits:
                    emptied.append(key)
            for key in emptied:
                del hits_by_key[key]
        first_minute = minute_window(now)[0]
        for key in [k for k in self._minutes if k[1] < first_minute]:
            del self._minutes[key]
        unused = []
        for key, users in self._device_users.items():
            for user in [u for u, ts in users.items() if ts <= now - DEVICE_WINDOW_S]:
                del users[user]
            if not users:
                unused.append(key)
        for key in unused:
            del self._device_users[key]
        first_bucket, dropped, gone = abuse_since(now), 0, []
        for key, buckets in self._abuse.items():
            dropped += _drop_before(buckets, first_bucket)
            if not buckets:
                gone.append(key)
        for key in gone:
            del self._abuse[key]
        return dropped

    def _update_profile(self, user: tuple[str, str], update: ProfileUpdate, ts: float) -> None:
        current = self._profiles.get(user)
        given = UserProfile() if current is None else current.copy()
        updated = update(given)
        # What the update was given may still be held by it: copied again when it comes
        # back as the result. A new profile (``learn``, ``note_failure`` make one) is the
        # store's own from here on.
        self._profiles[user] = updated.copy() if updated is given else updated
        self._updated[user] = max(ts, self._updated.get(user, ts))

    def apply_feedback(
        self, tenant: str, event_id: str, label: str, plan: FeedbackPlan
    ) -> tuple[FeedbackOutcome, StoredDecision | None]:
        with self._lock:
            frozen = self._decisions.get((tenant, event_id))
            if frozen is None:
                return FeedbackOutcome.UNKNOWN_EVENT, None
            before = _thaw(frozen)
            assert before is not None
            if frozen[_FEEDBACK] == label:
                return FeedbackOutcome.DUPLICATE, before
            update, learned = plan(before)
            if update is not None:
                self._update_profile((tenant, before.user_key), update, before.ts)
            # The same JSON, with the new flag and label.
            self._decisions[(tenant, event_id)] = (*frozen[:_LEARNED], learned, label,
                                                   frozen[_JSON])
            return FeedbackOutcome.APPLIED, before

    def export_user(self, tenant: str, user_key: str) -> UserData:
        with self._lock:
            mine = [f for (t, _), f in self._decisions.items()
                    if t == tenant and f[_USER] == user_key]
            mine.sort(key=lambda f: (f[_TS], f[0]))
            decisions = tuple(d for f in mine if (d := _thaw(f)) is not None)
            return UserData(_copy(self._profiles.get((tenant, user_key))), decisions)

    def erase_user(self, tenant: str, user_key: str) -> int:
        with self._lock:
            gone = int(self._profiles.pop((tenant, user_key), None) is not None)
            self._updated.pop((tenant, user_key), None)
            for key in [k for k, f in self._decisions.items()
                        if k[0] == tenant and f[_USER] == user_key]:
                del self._decisions[key]
                gone += 1
            for hits_by_key in (self._ip_hits, self._asn_hits):
                for key, hits in hits_by_key.items():
                    if key[0] == tenant:
                        before = len(hits)
                        hits[:] = [h for h in hits if h[1] != user_key]
                        gone += before - len(hits)
            for key, users in self._device_users.items():
                if key[0] == tenant and users.pop(user_key, None) is not None:
                    gone += 1
            return gone

    def purge(self, *, now: float, profile_retention_s: float) -> dict[str, int]:
        with self._lock:
            old = [k for k, ts in self._updated.items() if ts <= now - profile_retention_s]
            for k in old:
                del self._profiles[k], self._updated[k]
            stale = [k for k, f in self._decisions.items()
                     if f[_TS] <= now - self.retention_s]
            for k in stale:
                del self._decisions[k]
            counters = sum(len(h) for m in (self._ip_hits, self._asn_hits) for h in m.values())
            buckets = self._prune_counters(now)
            after = sum(len(h) for m in (self._ip_hits, self._asn_hits) for h in m.values())
            return {"profiles": len(old), "decisions": len(stale), "attempts": counters - after,
                    "abuse_buckets": buckets}

    def get_decision(self, tenant: str, event_id: str) -> StoredDecision | None:
        with self._lock:
            return _thaw(self._decisions.get((tenant, event_id)))

    def get_profile(self, tenant: str, user_key: str) -> UserProfile | None:
        with self._lock:
            return _copy(self._profiles.get((tenant, user_key)))

    def ping(self) -> None:
        """Always ready: there is nothing to reach."""

    def close(self) -> None:
        """Nothing to release; the data lives as long as the object."""
