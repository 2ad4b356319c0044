"""The Redis store: one state shared by every API instance pointed at the same Redis."""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TypeVar
from urllib.parse import quote, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from features.profile import (
    ABUSE_BUCKET_S,
    ABUSE_BUCKETS,
    AbuseBucket,
    UserProfile,
    Velocity,
    abuse_bucket,
    account_bit,
)
from riskengine.adapters.stores.base import (
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
    StoreContended,
    StoredDecision,
    StoreError,
    UserData,
    abuse_since,
    minute_window,
    resolve_rotation,
)

T = TypeVar("T")
# (key, value, TTL in seconds); a None TTL keeps the key's current one.
Write = tuple[str, str, int | None]

# Tries of an optimistic write (a WATCH transaction, or the check-and-set of ``record``)
# before giving up: each failed try means another client's write went through.
WATCH_TRIES = 50
# Writes of one user from this instance's threads take turns (a lock per stripe of users):
# left to race, a burst of them all read one profile and retry each other's check-and-set,
# each try a profile update in Python, and the unlucky ones run out of tries. Taking turns,
# instances contend with one writer each. A turn is waited for at most TURN_WAIT_CALLS
# socket timeouts, a bound that follows the operator's one deadline knob.
USER_STRIPES = 256
TURN_WAIT_CALLS = 5
# Raw profiles that ``load`` read, kept for the ``record`` of the same event that follows
# it; the oldest go first, so loads never followed by a record cannot pile up.
LOADED_KEEP = 1024
# Attempts stay twice as long as their window: an event arriving up to ten minutes late
# still finds the attempts of its own window. TTLs run on the wall clock, trimming on event
# time.
ATTEMPT_KEEP_S = int(2 * IP_WINDOW_S)
DEVICE_KEEP_S = int(DEVICE_WINDOW_S + 86_400)
# Keys asked for per SCAN/ZSCAN round trip, and per MGET or DEL: small enough that every
# reply comes well within the socket timeout, on any database size.
SCAN_COUNT = 500
# A profile's value holds, beside UserProfile's own fields, the event time of its last
# update under this name: readers that predate it ignore it (``from_dict`` skips unknown
# fields), and a value without it (written before it existed) is left to its TTL.
UPDATED = "_updated"
# Deletes KEYS[1] only while it still holds ARGV[1]: a purge or an erasure never drops a
# value that a concurrent write has just replaced. One key, so one slot.
_DELETE_IF_SAME = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end "
    "return 0"
)
# The write of ``record``, over the user's profile (KEYS[1]) and decision (KEYS[2]): one
# slot. When the decision exists, replies {"recorded", decision} and writes nothing. Else,
# when ARGV[4] is "1" (a profile update), checks that the profile still has the SHA-1
# ARGV[1] ("-": no profile) that the new profile ARGV[5] was computed from: if not, replies
# {"changed", profile} (nil when gone) and writes nothing, so that the caller computes
# again. Then writes the decision ARGV[2] (and the profile), both expiring in ARGV[3] s.
_RECORD = """
local decision = redis.call('get', KEYS[2])
if decision then return {'recorded', decision} end
if ARGV[4] == '1' then
  local profile = redis.call('get', KEYS[1])
  if (profile and redis.sha1hex(profile) or '-') ~= ARGV[1] then
    return {'changed', profile}
  end
  redis.call('set', KEYS[1], ARGV[5], 'EX', ARGV[3])
end
redis.call('set', KEYS[2], ARGV[2], 'EX', ARGV[3])
return {'stored'}
"""

# Counts an attempt in a network's sustained-abuse hash (KEYS[1]: field, the bucket
# number ARGV[1]; value, "attempts failures sketch" with the failing accounts' 64-bit
# sketch in 16 hex digits). ARGV[2]: 1 when the attempt failed, ARGV[3] its account's
# sketch bit (0-63, from the right), ARGV[4] the first bucket kept (a new bucket drops
# the older ones), ARGV[5] the hash's TTL. One key, so one slot; counts only.
_COUNT_ABUSE = """
local v = redis.call('hget', KEYS[1], ARGV[1])
local a, f, s = 0, 0, '0000000000000000'
if v then
  local x, y, z = string.match(v, '^(%d+) (%d+) (%x+)$')
  a, f, s = tonumber(x), tonumber(y), z
end
a = a + 1
if ARGV[2] == '1' then
  f = f + 1
  local bit = tonumber(ARGV[3])
  local i = 16 - math.floor(bit / 4)
  local d = tonumber(string.sub(s, i, i), 16)
  local m = 2 ^ (bit % 4)
  if math.floor(d / m) % 2 == 0 then
    s = string.sub(s, 1, i - 1) .. string.format('%x', d + m) .. string.sub(s, i + 1)
  end
end
redis.call('hset', KEYS[1], ARGV[1], a .. ' ' .. f .. ' ' .. s)
if not v then
  for _, field in ipairs(redis.call('hkeys', KEYS[1])) do
    if tonumber(field) < tonumber(ARGV[4]) then redis.call('hdel', KEYS[1], field) end
  end
end
redis.call('expire', KEYS[1], ARGV[5])
return a
"""
# Drops the buckets before ARGV[1] from a network's abuse hash (KEYS[1]); replies how many.
_PRUNE_ABUSE = """
local n = 0
for _, field in ipairs(redis.call('hkeys', KEYS[1])) do
  if tonumber(field) < tonumber(ARGV[1]) then n = n + redis.call('hdel', KEYS[1], field) end
end
return n
"""
# The abuse hashes' kinds in keys, by the network they count, and how long one outlives
# its last attempt (its buckets' 6 hours and one bucket more; trimming is by event time).
ABUSE_KINDS = {"prefix": "abuse-p", "asn": "abuse-a"}
ABUSE_KEEP_S = (ABUSE_BUCKETS + 1) * ABUSE_BUCKET_S


def _abuse(fields: dict[str, str], now: float) -> tuple[AbuseBucket, ...]:
    """A network's buckets from ``abuse_since(now)`` on, oldest first."""
    first, out = abuse_since(now), []
    for name, value in fields.items():
        bucket = int(name)
        if bucket >= first:
            attempts, failures, sketch = value.split()
            out.append((bucket, int(attempts), int(failures), int(sketch, 16)))
    out.sort()
    return tuple(out)


def _stripe(tenant: str, user_key: str) -> int:
    """The user's stripe of turns: the same in every process and run (unlike ``hash``)."""
    return zlib.crc32(f"{tenant}\0{user_key}".encode()) % USER_STRIPES


def _part(value: object) -> str:
    """``value`` escaped for a key: no ``:``, ``|`` or brace of its own can make two keys
    collide or move the Cluster hash tag."""
    return quote(str(value), safe="")


def _glob(literal: str) -> str:
    """A SCAN/ZSCAN MATCH pattern matching exactly ``literal``. Escaped parts never hold a
    glob character (``_part`` leaves only letters, digits, ``%`` and ``-._~``); this
    covers the prefix, which is not escaped."""
    return "".join("\\" + c if c in "\\*?[]" else c for c in literal)


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), SCAN_COUNT):
        yield items[start : start + SCAN_COUNT]


def _decoded(what: str, build: Callable[[], T]) -> T:
    """``build()``, with a malformed stored value reported as ``StoreError``."""
    try:
        return build()
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise StoreError(f"corrupt {what}: {exc}") from exc


def _profile(raw: str | None, tenant: str, user_key: str) -> UserProfile | None:
    if raw is None:
        return None

    def build() -> UserProfile:
        data = json.loads(raw)
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k != UPDATED}
        return UserProfile.from_dict(data)

    return _decoded(f"profile {tenant}/{user_key}", build)


def _updated(raw: str | None) -> float | None:
    """The event time of the last update kept in a profile value; None when the value has
    none (or is not readable: ``_profile`` reports that)."""
    try:
        data = json.loads(raw) if raw is not None else None
        return float(data[UPDATED]) if isinstance(data, dict) and UPDATED in data else None
    except (ValueError, TypeError):
        return None


def _digest(raw: str | None) -> str:
    """What ``_RECORD`` compares a stored profile by: its SHA-1, or "-" when there is none."""
    if raw is None:
        return "-"
    return hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()


def _dump_profile(profile: UserProfile, raw_before: str | None, ts: float) -> str:
    """``profile`` as stored, last updated at event time ``ts`` (or later, if it was)."""
    before = _updated(raw_before)
    return json.dumps({**profile.to_dict(), UPDATED: ts if before is None else max(before, ts)})


def _dump_decision(d: StoredDecision) -> str:
    return json.dumps(
        {
            "ts": d.ts,
            "decision": d.decision,
            "features": d.features,
            "sighting": d.sighting,
            "feedback": d.feedback,
            "learned": d.learned,
        }
    )


def _decision(raw: str | None, tenant: str, user_key: str, event_id: str) -> StoredDecision | None:
    if raw is None:
        return None

    def build() -> StoredDecision:
        data = json.loads(raw)
        return StoredDecision(
            event_id,
            tenant,
            user_key,
            float(data["ts"]),
            data["decision"],
            data["features"],
            data["sighting"],
            data["feedback"],
            bool(data["learned"]),
        )

    return _decoded(f"decision {tenant}/{event_id}", build)


def _decision_ts(raw: str | None) -> float | None:
    """The event time of a stored decision; None when it is gone or not readable."""
    try:
        return float(json.loads(raw)["ts"]) if raw is not None else None
    except (ValueError, TypeError, KeyError):
        return None


def _minute(name: str) -> float:
    """The minute of a tenant-minute key's escaped name; +inf (never old) if not a number."""
    try:
        return int(unquote(name))
    except ValueError:
        return math.inf


def _window(members: list[str], user_key: str) -> tuple[int, int]:
    """Other users and failures among ``event_id|user_key|failed`` members."""
    hits = [m.split("|") for m in members]
    return len({user for _, user, _ in hits} - {_part(user_key)}), sum(f == "1" for *_, f in hits)


class RedisStore:
    """A :class:`~riskengine.adapters.stores.base.Store` on Redis, shared by any number of processes
    and hosts.

    Everything about one user (profile, decisions) shares one Cluster hash tag, so the
    user's part of ``record`` is one single-slot Lua check-and-set and ``apply_feedback`` a
    single-slot WATCH/MULTI transaction; both compute again when another client changed the
    profile in between: concurrent updates are never lost, and ``update`` (or a feedback
    ``plan``) may run more than once, so it must be pure. The velocity windows are shared
    keys in other slots, written in a pipeline once the user's write went through: a
    process dying between the two keeps the decision but not the count.
    Every key expires: a profile ``retention_s`` after its last update, a decision that long
    after it was recorded, the windows soon after they stop counting. ``purge`` applies
    retention at event time on top of these wall-clock TTLs.

    One login costs three round trips: ``load`` one, ``record`` two (the check-and-set,
    then the windows' pipeline), as ``record`` starts from the profile that ``load`` read
    for the same event, and computes again only if it changed since. A ``record`` with no
    such ``load`` before it (an outbox replay) reads first, so takes three. The windows
    cannot ride along with the check-and-set, as they are written only once it has stored
    the decision: an event recorded twice, even by two clients at once, counts once.

    The user's slot also holds the list of the windows that count the user's attempts, so
    ``erase_user`` finds them without walking the tenant's windows; the user's decisions
    are found by SCAN, so ``export_user`` and ``erase_user`` cost one round trip per
    ``SCAN_COUNT`` keys of the database. Conditional deletes (``purge``, the event index
    in ``erase_user``) are one-key Lua scripts, so they stay single-slot too.

    Parameters
    ----------
    url
        ``redis://`` or ``rediss://`` URL, with the database number as its path.
    timeout_s
        Socket connect and read timeout of every round trip; calls are never retried, so a
        dead or stalled server fails a call within a few timeouts.
    retention_s
        How long (wall clock) a profile outlives its last update and a decision its record.
    prefix
        First part of every key, to share a database with other applications.
    """

    embedded = False  # every call crosses the network: the API scores in its thread pool

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        timeout_s: float = 0.05,
        retention_s: float = 30 * 86400,
        prefix: str = "re",
    ) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError(f"prefix {prefix!r} must not contain braces (Cluster hash tags)")
        self.url = url
        self.timeout_s = timeout_s
        self.retention_s = retention_s
        self.prefix = prefix
        parts = urlsplit(url)
        self._where = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        self._password = unquote(parts.password) if parts.password else None
        self._retention = max(1, math.ceil(retention_s))
        # Connects lazily. Retry(NoBackoff(), 0): redis-py >= 6 retries with backoff by
        # default, which would turn the timeout into seconds.
        self._redis = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        self._delete_if_same = self._redis.register_script(_DELETE_IF_SAME)
        self._record = self._redis.register_script(_RECORD)
        self._prune_abuse = self._redis.register_script(_PRUNE_ABUSE)
        # (tenant, user_key, event_id) -> (raw profile,) as ``load`` read it; scoring runs
        # in a thread pool, hence the lock.
        self._loaded: dict[tuple[str, str, str], tuple[str | None]] = {}
        self._loaded_lock = threading.Lock()
        self._turns = [threading.Lock() for _ in range(USER_STRIPES)]

    def _key(self, tenant: str, kind: str, name: object, *rest: object) -> str:
        """``prefix:{t:tenant:kind:name}:rest...``; the braces are the Cluster hash tag."""
        return ":".join(
            [self.prefix, f"{{t:{_part(tenant)}:{kind}:{_part(name)}}}", *map(_part, rest)]
        )

    def _profile_key(self, tenant: str, user_key: str) -> str:
        return self._key(tenant, "u", user_key, "profile")

    def _user_keys(self, tenant: str, user_key: str, event_id: str) -> list[str]:
        """The user's profile key and the key of its decision ``event_id``: one slot."""
        return [
            self._profile_key(tenant, user_key),
            self._key(tenant, "u", user_key, "decision", event_id),
        ]

    def _touched_key(self, tenant: str, user_key: str) -> str:
        """The sorted set of the window keys holding attempts of the user (its own slot)."""
        return self._key(tenant, "u", user_key, "touched")

    def _parse(self, key: str) -> tuple[str, str, str, list[str]] | None:
        """Tenant, kind, name and the parts after the hash tag of one of this store's keys,
        all still escaped; None for a key of any other shape."""
        head = f"{self.prefix}:{{t:"
        if not key.startswith(head):
            return None
        tag, closed, rest = key[len(head) :].partition("}")
        fields = tag.split(":")
        if not closed or len(fields) != 3 or (rest and not rest.startswith(":")):
            return None
        tenant, kind, name = fields
        return tenant, kind, name, rest.split(":")[1:]

    def _index_key(self, tenant: str, event_id: str) -> str:
        """Where the user key of decision ``event_id`` is kept (a slot of its own)."""
        return self._key(tenant, "event", event_id)

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except (redis.RedisError, OSError) as exc:
            message = f"{type(exc).__name__}: {exc}"
            if self._password:
                message = message.replace(self._password, "***")
            # from None: the chained original would print its text unmasked.
            raise StoreError(f"redis store {self._where}: {action} failed: {message}") from None

    @contextmanager
    def _turn(self, action: str, tenant: str, user_key: str) -> Iterator[None]:
        """Wait for this instance's other writes of the user to finish (bounded)."""
        turn = self._turns[_stripe(tenant, user_key)]
        wait_s = TURN_WAIT_CALLS * self.timeout_s
        if not turn.acquire(timeout=wait_s):
            raise StoreContended(f"redis store {self._where}: {action} waited {wait_s:g} s "
                                 "for this instance's other writes of the user: the user is "
                                 "updated too often at once")
        try:
            yield
        finally:
            turn.release()

    def _transact(
        self,
        action: str,
        keys: list[str],
        step: Callable[[list[str | None]], tuple[T, list[Write]]],
    ) -> T:
        """Run ``step`` on the values of ``keys`` and write what it returns in one
        MULTI/EXEC, again from the start whenever another client changed one of the keys
        in between. ``step`` may run several times, so it must not have side effects."""
        with self._errors(action), self._redis.pipeline() as pipe:
            for _ in range(WATCH_TRIES):
                try:
                    pipe.watch(*keys)
                    result, writes = step(pipe.mget(keys))
                    if writes:
                        pipe.multi()
                        for key, value, ttl in writes:
                            pipe.set(key, value, ex=ttl, keepttl=ttl is None)
                        pipe.execute()
                    return result
                except redis.WatchError:
                    # Jitter: contenders that collided once should not collide again.
                    time.sleep(random.uniform(0.0, 0.005))
        raise StoreContended(f"redis store {self._where}: {action} gave up after "
                             f"{WATCH_TRIES} tries: the user is updated too often at once")

    def _read_decision(
        self, action: str, tenant: str, event_id: str, owner: str
    ) -> StoredDecision | None:
        key = self._user_keys(tenant, owner, event_id)[1]
        with self._errors(action):
            raw = self._redis.get(key)
        return _decision(raw, tenant, owner, event_id)

    def load(self, query: LoadQuery) -> Loaded:
        return resolve_rotation(self._load(query), query, self.get_profile)

    def _load(self, query: LoadQuery) -> Loaded:
        tenant, user_key, now = query.tenant, query.user_key, query.now
        since = f"({now - IP_WINDOW_S!r}"  # "(" makes the window start exclusive
        first, last = minute_window(now)
        with self._errors("load"), self._redis.pipeline(transaction=False) as pipe:
            # Not MULTI: the keys span slots. The counts may straddle a concurrent write.
            for key in self._user_keys(tenant, user_key, query.event_id):
                pipe.get(key)
            pipe.get(self._index_key(tenant, query.event_id))
            # The window's latest WINDOW_SCAN_MAX members (newest first). No upper end: a
            # window ends at its latest member when that is later than the login, so a
            # login stamped in the past cannot see an emptier window.
            pipe.zrevrangebyscore(self._key(tenant, "ip", query.ip_key), "+inf", since,
                                  start=0, num=WINDOW_SCAN_MAX)
            if query.asn is not None:
                pipe.zrevrangebyscore(self._key(tenant, "asn", query.asn), "+inf", since,
                                      start=0, num=WINDOW_SCAN_MAX)
            if query.device_key is not None:
                device = self._key(tenant, "device", query.device_key)
                pipe.zcount(device, f"({now - DEVICE_WINDOW_S!r}", "+inf")
                pipe.zscore(device, user_key)
            for minute in range(first, last + 1):
                pipe.hmget(self._key(tenant, "minute", minute), "attempts", "failures")
            if query.ip_prefix_key is not None:
                pipe.hgetall(self._key(tenant, ABUSE_KINDS["prefix"], query.ip_prefix_key))
            if query.asn is not None:
                pipe.hgetall(self._key(tenant, ABUSE_KINDS["asn"], query.asn))
            replies = iter(pipe.execute())
        raw_profile, raw_decision, owner, ip_members = (next(replies) for _ in range(4))
        asn_users, asn_failures = (
            (0, 0) if query.asn is None else _window(next(replies), user_key)
        )
        device_accounts = 0
        if query.device_key is not None:
            device_accounts, own_ts = next(replies), next(replies)
            device_accounts -= own_ts is not None and now - DEVICE_WINDOW_S < own_ts
        buckets = [next(replies) for _ in range(first, last + 1)]
        prefix_abuse = (() if query.ip_prefix_key is None else
                        _decoded("abuse buckets", lambda: _abuse(next(replies), now)))
        asn_abuse = (() if query.asn is None else
                     _decoded("abuse buckets", lambda: _abuse(next(replies), now)))
        if owner is None or owner == user_key:
            previous = _decision(raw_decision, tenant, user_key, query.event_id)
        else:  # the event was recorded for another user
            previous = self._read_decision("load", tenant, query.event_id, owner)
        if previous is None:  # a record follows: it may start from this profile
            with self._loaded_lock:
                self._loaded[(tenant, user_key, query.event_id)] = (raw_profile,)
                if len(self._loaded) > LOADED_KEEP:
                    del self._loaded[next(iter(self._loaded))]
        ip_users, ip_failures = _window(ip_members, user_key)
        return Loaded(
            profile=_profile(raw_profile, tenant, user_key),
            velocity=Velocity(
                ip_users_10m=ip_users,
                ip_failures_10m=ip_failures,
                asn_users_10m=asn_users,
                asn_failures_10m=asn_failures,
                device_accounts_30d=int(device_accounts),
                tenant_attempts_10m=sum(int(a or 0) for a, _ in buckets),
                tenant_failures_10m=sum(int(f or 0) for _, f in buckets),
                ip_prefix_abuse=prefix_abuse,
                asn_abuse=asn_abuse,
            ),
            previous=previous,
        )

    def record(
        self, decision: StoredDecision, attempt: Attempt, update: ProfileUpdate | None
    ) -> StoredDecision:
        tenant, user_key, event_id = decision.tenant, decision.user_key, decision.event_id
        index = self._index_key(tenant, event_id)
        keys = self._user_keys(tenant, user_key, event_id)
        body = _dump_decision(decision)  # a decision that is not JSON fails before any write
        with self._loaded_lock:
            loaded = self._loaded.pop((tenant, user_key, event_id), None)
        if loaded is not None:
            # ``load`` found the event unrecorded a moment ago; the check-and-set catches a
            # record of it for this user since. One for another user in that moment is
            # not looked for again: look and write are in different slots, so that race
            # was never closed, only narrower.
            [raw_profile] = loaded
        else:  # not scored by this instance: read what ``load`` would have
            with self._errors("record"), self._redis.pipeline(transaction=False) as pipe:
                pipe.get(index)
                for key in keys:
                    pipe.get(key)
                owner, raw_profile, raw_decision = pipe.execute()
            if owner is not None and owner != user_key:
                stored = self._read_decision("record", tenant, event_id, owner)
                if stored is not None:
                    return stored
            elif raw_decision is not None:
                return self._recorded(raw_decision, index, decision, set_index=owner is None)
        with self._turn("record", tenant, user_key):
            for _ in range(WATCH_TRIES):
                profile = ""
                if update is not None:
                    current = _profile(raw_profile, tenant, user_key) or UserProfile()
                    profile = _dump_profile(update(current), raw_profile, decision.ts)
                with self._errors("record"):
                    verdict, *value = self._record(
                        keys=keys,
                        args=[_digest(raw_profile), body, self._retention,
                              int(update is not None), profile],
                    )
                if verdict == "stored":
                    break
                if verdict == "recorded":  # by another client, with this event id and user
                    return self._recorded(value[0], index, decision, set_index=True)
                # "changed": another client updated the profile since it was read.
                raw_profile = value[0] if value else None
            else:
                raise StoreContended(f"redis store {self._where}: record gave up after "
                                     f"{WATCH_TRIES} tries: the user is updated too often "
                                     "at once")
        # The shared windows are not the user's: counting them needs no turn.
        self._count(event_id, attempt, index)
        return decision

    def _recorded(
        self, raw: str, index: str, decision: StoredDecision, *, set_index: bool
    ) -> StoredDecision:
        """The decision ``raw`` found recorded under ``decision``'s event id and user."""
        stored = _decision(raw, decision.tenant, decision.user_key, decision.event_id)
        assert stored is not None  # raw is not None
        if set_index:  # whoever recorded it sets the index too, unless it died in between
            with self._errors("record"):
                self._redis.set(index, decision.user_key, ex=self._retention, nx=True)
        return stored

    def _count(self, event_id: str, attempt: Attempt, index: str) -> None:
        """Index the decision, count the attempt in the shared windows and note in the
        user's own slot which windows now hold the user (what ``erase_user`` clears)."""
        tenant, ts = attempt.tenant, attempt.ts
        # Event time drives trimming so replays of old data keep their windows; the wall
        # clock caps it so one event stamped far ahead cannot wipe them.
        horizon = min(ts, time.time())
        member = f"{_part(event_id)}|{_part(attempt.user_key)}|{int(attempt.failed)}"
        networks = [self._key(tenant, "ip", attempt.ip_key)]
        if attempt.asn is not None:
            networks.append(self._key(tenant, "asn", attempt.asn))
        minute = self._key(tenant, "minute", int(ts // MINUTE_S))
        device = (
            None if attempt.device_key is None else self._key(tenant, "device", attempt.device_key)
        )
        windows = networks if device is None else [*networks, device]
        touched = self._touched_key(tenant, attempt.user_key)
        with self._errors("record"), self._redis.pipeline(transaction=False) as pipe:
            pipe.set(index, attempt.user_key, ex=self._retention)
            # Noted before the windows are written: a window never holds the user unnoted.
            # Scored by the user's latest event on each window, and dropped only a day past
            # the longest window, long after the window itself let go of the user.
            pipe.zadd(touched, dict.fromkeys(windows, ts), gt=True)
            pipe.zremrangebyscore(touched, "-inf", f"({horizon - DEVICE_KEEP_S!r}")
            pipe.expire(touched, DEVICE_KEEP_S)
            for key in networks:
                pipe.zadd(key, {member: ts})
                pipe.zremrangebyscore(key, "-inf", horizon - ATTEMPT_KEEP_S)
                pipe.expire(key, ATTEMPT_KEEP_S)
            if device is not None:
                # GT: a late event never moves the user's latest sighting back.
                pipe.zadd(device, {attempt.user_key: ts}, gt=True)
                pipe.zremrangebyscore(device, "-inf", horizon - DEVICE_WINDOW_S)
                pipe.expire(device, DEVICE_KEEP_S)
            pipe.hincrby(minute, "attempts", 1)
            pipe.hincrby(minute, "failures", int(attempt.failed))
            pipe.expire(minute, ATTEMPT_KEEP_S)
            bit = account_bit(attempt.user_key).bit_length() - 1
            for kind, network in (("prefix", attempt.ip_prefix_key), ("asn", attempt.asn)):
                if network is not None:
                    # EVAL, not the registered script: a pipeline holding a Script asks
                    # the server whether it knows it first, one more round trip.
                    pipe.eval(_COUNT_ABUSE, 1, self._key(tenant, ABUSE_KINDS[kind], network),
                              abuse_bucket(ts), int(attempt.failed), bit, abuse_since(ts),
                              ABUSE_KEEP_S)
            pipe.execute()

    def apply_feedback(
        self, tenant: str, event_id: str, label: str, plan: FeedbackPlan
    ) -> tuple[FeedbackOutcome, StoredDecision | None]:
        with self._errors("apply_feedback"):
            owner = self._redis.get(self._index_key(tenant, event_id))
        if owner is None:
            return FeedbackOutcome.UNKNOWN_EVENT, None
        keys = self._user_keys(tenant, owner, event_id)

        def step(
            values: list[str | None],
        ) -> tuple[tuple[FeedbackOutcome, StoredDecision | None], list[Write]]:
            raw_profile, raw_decision = values
            before = _decision(raw_decision, tenant, owner, event_id)
            if before is None:
                return (FeedbackOutcome.UNKNOWN_EVENT, None), []
            if before.feedback == label:
                return (FeedbackOutcome.DUPLICATE, before), []
            update, learned = plan(before)
            after = _dump_decision(replace(before, feedback=label, learned=learned))
            # None: the decision keeps the TTL it got when recorded.
            writes: list[Write] = [(keys[1], after, None)]
            if update is not None:
                current = _profile(raw_profile, tenant, owner) or UserProfile()
                profile = _dump_profile(update(current), raw_profile, before.ts)
                writes.append((keys[0], profile, self._retention))
            return (FeedbackOutcome.APPLIED, before), writes

        with self._turn("apply_feedback", tenant, owner):
            return self._transact("apply_feedback", keys, step)

    def get_decision(self, tenant: str, event_id: str) -> StoredDecision | None:
        with self._errors("get_decision"):
            owner = self._redis.get(self._index_key(tenant, event_id))
        if owner is None:
            return None
        return self._read_decision("get_decision", tenant, event_id, owner)

    def _user_decisions(self, tenant: str, user_key: str) -> dict[str, str]:
        """Event id of every decision key of the user, found by SCAN (call under
        ``_errors``). Each round trip reads ``SCAN_COUNT`` keys, so the whole walk costs
        one round trip per ``SCAN_COUNT`` keys of the database."""
        pattern = _glob(self._key(tenant, "u", user_key, "decision")) + ":*"
        found: dict[str, str] = {}
        for key in self._redis.scan_iter(match=pattern, count=SCAN_COUNT):
            parsed = self._parse(key)
            if parsed is not None and len(parsed[3]) == 2 and parsed[3][0] == "decision":
                found[key] = unquote(parsed[3][1])
        return found

    def export_user(self, tenant: str, user_key: str) -> UserData:
        with self._errors("export_user"):
            found = self._user_decisions(tenant, user_key)
            keys = list(found)
            raw_profile = self._redis.get(self._profile_key(tenant, user_key))
            values: list[str | None] = []
            for chunk in _chunks(keys):  # one slot: MGET is Cluster-safe
                values.extend(self._redis.mget(chunk))
        decisions = [
            d
            for key, raw in zip(keys, values, strict=True)
            if (d := _decision(raw, tenant, user_key, found[key])) is not None
        ]
        decisions.sort(key=lambda d: (d.ts, d.event_id))
        return UserData(_profile(raw_profile, tenant, user_key), tuple(decisions))

    def erase_user(self, tenant: str, user_key: str) -> int:
        """Not atomic: a login of the user recorded while the erasure runs may survive it.
        Safe to repeat after a failure: the list of the user's windows goes last."""
        touched_key = self._touched_key(tenant, user_key)
        own = f"*|{_glob(_part(user_key))}|*"  # event ids are escaped: no "|" of their own
        gone = 0
        with self._errors("erase_user"):
            found = self._user_decisions(tenant, user_key)
            touched = self._redis.zrange(touched_key, 0, -1)
            devices: list[str] = []
            for key in touched:
                parsed = self._parse(key)
                kind = None if parsed is None else parsed[1]
                if kind == "device":
                    devices.append(key)
                elif kind in ("ip", "asn"):
                    members = [
                        m for m, _ in self._redis.zscan_iter(key, match=own, count=SCAN_COUNT)
                    ]
                    for chunk in _chunks(members):
                        gone += self._redis.zrem(key, *chunk)
            with self._redis.pipeline(transaction=False) as pipe:
                counted: list[bool] = []  # per command: does its reply count what went
                for key in devices:
                    pipe.zrem(key, user_key)
                    counted.append(True)
                # The index before the decisions: with them gone, nothing leads to it.
                for event_id in found.values():
                    index = self._index_key(tenant, event_id)
                    self._delete_if_same(keys=[index], args=[user_key], client=pipe)
                    counted.append(False)
                for chunk in _chunks([self._profile_key(tenant, user_key), *found]):
                    pipe.delete(*chunk)  # one slot: a multi-key DEL is Cluster-safe
                    counted.append(True)
                for chunk in _chunks(touched):
                    pipe.zrem(touched_key, *chunk)
                    counted.append(False)
                replies = pipe.execute()
            gone += sum(int(r) for r, c in zip(replies, counted, strict=True) if c)
        return gone

    def purge(self, *, now: float, profile_retention_s: float) -> dict[str, int]:
        """Walks every key under the prefix with SCAN, ``SCAN_COUNT`` keys per round trip
        and two pipelines per page, so it is never one long command however big the
        database. Attempts and tenant minutes are kept as long as ``record`` keeps them
        (``ATTEMPT_KEEP_S``, twice their window, so late events still find their windows).
        A profile or decision changed while the purge runs is left alone; one that is not
        readable, or a profile stored before its update time was kept, is left to its TTL.
        """
        report = dict.fromkeys(
            ("profiles", "decisions", "attempts", "device_accounts", "tenant_minutes",
             "abuse_buckets"), 0
        )
        pattern = _glob(self.prefix) + ":{t:*"
        with self._errors("purge"):
            cursor = 0
            while True:
                cursor, keys = self._redis.scan(cursor, match=pattern, count=SCAN_COUNT)
                for what, n in self._purge_keys(keys, now, profile_retention_s).items():
                    report[what] += n
                if cursor == 0:
                    return report

    def _purge_keys(
        self, keys: list[str], now: float, profile_retention_s: float
    ) -> dict[str, int]:
        """``purge`` of one SCAN page (call under ``_errors``); a key SCAN repeats is
        harmless, as the second pass finds nothing left to drop."""
        parsed = [(key, p) for key in keys if (p := self._parse(key)) is not None]
        valued = [
            key
            for key, (_, kind, _, rest) in parsed
            if kind == "u" and rest[:1] in (["profile"], ["decision"])
        ]
        with self._redis.pipeline(transaction=False) as pipe:
            for key in valued:
                pipe.get(key)
            raw_of: dict[str, str | None] = dict(zip(valued, pipe.execute(), strict=True))
        first_minute = int((now - ATTEMPT_KEEP_S) // MINUTE_S)
        tags: list[str | None] = []  # per command: what its reply counts, if anything
        with self._redis.pipeline(transaction=False) as pipe:
            for key, (tenant, kind, name, rest) in parsed:
                raw = raw_of.get(key)
                if kind == "u" and rest == ["profile"]:
                    updated = _updated(raw)
                    if updated is not None and updated <= now - profile_retention_s:
                        self._delete_if_same(keys=[key], args=[raw], client=pipe)
                        tags.append("profiles")
                elif kind == "u" and len(rest) == 2 and rest[0] == "decision":
                    ts = _decision_ts(raw)
                    if ts is not None and ts <= now - self.retention_s:
                        self._delete_if_same(keys=[key], args=[raw], client=pipe)
                        index = self._index_key(unquote(tenant), unquote(rest[1]))
                        self._delete_if_same(keys=[index], args=[unquote(name)], client=pipe)
                        tags += ["decisions", None]
                elif kind == "u" and rest == ["touched"]:
                    pipe.zremrangebyscore(key, "-inf", f"({now - DEVICE_KEEP_S!r}")
                    tags.append(None)
                elif kind in ("ip", "asn") and not rest:
                    pipe.zremrangebyscore(key, "-inf", now - ATTEMPT_KEEP_S)
                    tags.append("attempts")
                elif kind == "device" and not rest:
                    pipe.zremrangebyscore(key, "-inf", now - DEVICE_WINDOW_S)
                    tags.append("device_accounts")
                elif kind in ABUSE_KINDS.values() and not rest:
                    self._prune_abuse(keys=[key], args=[abuse_since(now)], client=pipe)
                    tags.append("abuse_buckets")
                elif kind == "minute" and not rest and _minute(name) < first_minute:
                    pipe.delete(key)
                    tags.append("tenant_minutes")
            replies = pipe.execute()
        counts: dict[str, int] = {}
        for tag, reply in zip(tags, replies, strict=True):
            if tag is not None:
                counts[tag] = counts.get(tag, 0) + int(reply)
        return counts

    def get_profile(self, tenant: str, user_key: str) -> UserProfile | None:
        with self._errors("get_profile"):
            raw = self._redis.get(self._profile_key(tenant, user_key))
        return _profile(raw, tenant, user_key)

    def ping(self) -> None:
        with self._errors("ping"):
            self._redis.ping()

    def close(self) -> None:
        with self._errors("close"):
            self._redis.close()
