"""The Redis store: one state shared by every API instance pointed at the same Redis."""

from __future__ import annotations

import hashlib
import math
import random
import re
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
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
from riskengine.adapters.stores import jsontext
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
    abuse_filter,
    abuse_since,
    minute_window,
    resolve_rotation,
)
from riskengine.adapters.stores.jsontext import profile_round_trips

T = TypeVar("T")
# (key, value, TTL in seconds); a None TTL keeps the key's current one.
Write = tuple[str, str | bytes, int | None]
# A profile as ``load`` read it: the raw value, its parse and the event time of its last
# update (the parse is the store's own: ``load`` hands out copies).
_Read = tuple[str | None, UserProfile | None, float | None]

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
# Profiles kept by user beside the text they were read or written as: a ``load`` that finds
# the same text (the user's last login was recorded here) skips parsing it. The users
# active in the last few thousand logins, a few kilobytes each; the text is compared every
# time, so another instance's writes are never missed.
PARSED_PROFILES = 4096
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
# Everything ``load`` reads, in one script on the tenant's slot. KEYS: 1 the user's profile,
# 2 its decision under the event id, 3 the event's index (whose user recorded it), 4 the
# address's window, 5 the ASN's, 6 the device's accounts, 7 and 8 the block's and the
# ASN's abuse buckets, 9... the tenant's minutes. ARGV: 1 the user as window members name
# it (escaped), 2 the user as the device set names it, 3 the IP/ASN window start
# (exclusive), 4 WINDOW_SCAN_MAX, 5 the device window start (exclusive), 6 which of ASN,
# device and block the login has ("1"/"0" each), 7-10 ``abuse_filter``. Replies the raw
# profile, the raw decision, the index, the windows' counts (other users and failures
# among each window's latest WINDOW_SCAN_MAX members, newest first; no upper end: a window
# ends at its latest member when that is later than the login, so a login stamped in the
# past cannot see an emptier window), the device's other accounts, the tenant's attempts
# and failures, and the abuse buckets that can count, as "bucket attempts failures
# sketch" joined by commas.
_LOAD = """
local function window(key)
  local members = redis.call('zrevrangebyscore', key, '+inf', '(' .. ARGV[3],
                             'LIMIT', 0, ARGV[4])
  -- Members are "event|user|failed" with escaped parts: the user lies between the first
  -- "|" and the last two characters, the flag is the last one (found, not matched: this
  -- runs for every member of two windows at every login).
  local seen, users, failures, find, sub, byte = {}, 0, 0, string.find, string.sub, string.byte
  for i = 1, #members do
    local member = members[i]
    local user = sub(member, find(member, '|', 1, true) + 1, -3)
    if user ~= ARGV[1] and not seen[user] then
      seen[user] = true
      users = users + 1
    end
    if byte(member, -1) == 49 then failures = failures + 1 end
  end
  return users, failures
end
local function abuse(key)
  local fields = redis.call('hgetall', key)
  local first, recent = tonumber(ARGV[7]), tonumber(ARGV[8])
  local least, share = tonumber(ARGV[9]), tonumber(ARGV[10])
  local out = {}
  for i = 1, #fields, 2 do
    local bucket = tonumber(fields[i])
    if bucket >= first then
      local keep = bucket >= recent
      if not keep then
        local a, f = string.match(fields[i + 1], '^(%d+) (%d+) ')
        a, f = tonumber(a), tonumber(f)
        keep = f >= least and f >= share * a
      end
      if keep then out[#out + 1] = fields[i] .. ' ' .. fields[i + 1] end
    end
  end
  return table.concat(out, ',')
end
local has_asn, has_device, has_prefix = string.byte(ARGV[6], 1, 3)
local one = string.byte('1')
local ip_users, ip_failures = window(KEYS[4])
local asn_users, asn_failures, accounts = 0, 0, 0
local prefix_abuse, asn_abuse = '', ''
if has_asn == one then
  asn_users, asn_failures = window(KEYS[5])
  asn_abuse = abuse(KEYS[8])
end
if has_device == one then
  accounts = redis.call('zcount', KEYS[6], '(' .. ARGV[5], '+inf')
  local own = redis.call('zscore', KEYS[6], ARGV[2])
  if own and tonumber(own) > tonumber(ARGV[5]) then accounts = accounts - 1 end
end
if has_prefix == one then prefix_abuse = abuse(KEYS[7]) end
local attempts, failures = 0, 0
for i = 9, #KEYS do
  local counts = redis.call('hmget', KEYS[i], 'attempts', 'failures')
  attempts = attempts + (tonumber(counts[1]) or 0)
  failures = failures + (tonumber(counts[2]) or 0)
end
return {redis.call('get', KEYS[1]), redis.call('get', KEYS[2]), redis.call('get', KEYS[3]),
        ip_users, ip_failures, asn_users, asn_failures, accounts, attempts, failures,
        prefix_abuse, asn_abuse}
"""
# Everything ``record`` writes, atomically, in one script on the tenant's slot. KEYS: 1 the
# user's profile, 2 its decision, 3 the event's index, 4 the user's touched windows, 5 the
# address's window, 6 the ASN's, 7 the device's accounts, 8 the tenant's minute, 9 and 10
# the block's and the ASN's abuse buckets, 11 the tenant's stream of lessons. ARGV: 1 the
# SHA-1 of the profile the new one was computed from ("-": none; "?": not read; unused
# without an update), 2 the decision, 3 their TTL, 4 "1" when the profile is updated, 5
# the new profile, 6 the user, 7 the window member, 8 the event time, 9 the IP/ASN trim
# score, 10 the touched windows' trim score, 11 the device trim score, 12 ATTEMPT_KEEP_S,
# 13 DEVICE_KEEP_S, 14 "1" when the attempt failed, 15 which of ASN, device and block it
# has, 16 its abuse bucket, 17 its account's sketch bit (0-63), 18 the first abuse bucket
# kept, 19 ABUSE_KEEP_S, 20 the lesson for the shared learner ("": none), 21
# LESSONS_MAX_LEN.
# Replies {"recorded", decision} when the event is recorded for this user, {"other",
# user} when for another, {"changed", profile} when the profile is no longer the one
# read (nothing written in these three cases: the caller computes again), else
# {"stored"}: the decision, the index, the profile, the windows, the minute, the abuse
# buckets and the lesson all written. Atomic, so an event recorded twice, even by two
# clients at once, counts once, and a decision is never kept without its counts.
_RECORD = """
local decision = redis.call('get', KEYS[2])
if decision then return {'recorded', decision} end
local owner = redis.call('get', KEYS[3])
if owner and owner ~= ARGV[6] then return {'other', owner} end
if ARGV[4] == '1' then
  local profile = redis.call('get', KEYS[1])
  if (profile and redis.sha1hex(profile) or '-') ~= ARGV[1] then
    return {'changed', profile}
  end
  redis.call('set', KEYS[1], ARGV[5], 'EX', ARGV[3])
end
redis.call('set', KEYS[2], ARGV[2], 'EX', ARGV[3])
redis.call('set', KEYS[3], ARGV[6], 'EX', ARGV[3])
local has_asn, has_device, has_prefix = string.byte(ARGV[15], 1, 3)
local one = string.byte('1')
local ts = ARGV[8]
-- Noted before the windows are written: a window never holds the user unnoted. Scored
-- by the user's latest event on each window, and dropped only a day past the longest
-- window, long after the window itself let go of the user.
redis.call('zadd', KEYS[4], 'GT', ts, KEYS[5])
if has_asn == one then redis.call('zadd', KEYS[4], 'GT', ts, KEYS[6]) end
if has_device == one then redis.call('zadd', KEYS[4], 'GT', ts, KEYS[7]) end
redis.call('zremrangebyscore', KEYS[4], '-inf', '(' .. ARGV[10])
redis.call('expire', KEYS[4], ARGV[13])
local function count(key)
  redis.call('zadd', key, ts, ARGV[7])
  redis.call('zremrangebyscore', key, '-inf', ARGV[9])
  redis.call('expire', key, ARGV[12])
end
count(KEYS[5])
if has_asn == one then count(KEYS[6]) end
if has_device == one then
  -- GT: a late event never moves the user's latest sighting back.
  redis.call('zadd', KEYS[7], 'GT', ts, ARGV[6])
  redis.call('zremrangebyscore', KEYS[7], '-inf', ARGV[11])
  redis.call('expire', KEYS[7], ARGV[13])
end
redis.call('hincrby', KEYS[8], 'attempts', 1)
redis.call('hincrby', KEYS[8], 'failures', tonumber(ARGV[14]))
redis.call('expire', KEYS[8], ARGV[12])
local function abuse(key)
  local v = redis.call('hget', key, ARGV[16])
  local a, f, s = 0, 0, '0000000000000000'
  if v then
    local x, y, z = string.match(v, '^(%d+) (%d+) (%x+)$')
    a, f, s = tonumber(x), tonumber(y), z
  end
  a = a + 1
  if ARGV[14] == '1' then
    f = f + 1
    local bit = tonumber(ARGV[17])
    local i = 16 - math.floor(bit / 4)
    local d = tonumber(string.sub(s, i, i), 16)
    local m = 2 ^ (bit % 4)
    if math.floor(d / m) % 2 == 0 then
      s = string.sub(s, 1, i - 1) .. string.format('%x', d + m) .. string.sub(s, i + 1)
    end
  end
  redis.call('hset', key, ARGV[16], a .. ' ' .. f .. ' ' .. s)
  if not v then  -- a new bucket: the network's buckets past 6 hours go
    for _, field in ipairs(redis.call('hkeys', key)) do
      if tonumber(field) < tonumber(ARGV[18]) then redis.call('hdel', key, field) end
    end
  end
  redis.call('expire', key, ARGV[19])
end
if has_prefix == one then abuse(KEYS[9]) end
if has_asn == one then abuse(KEYS[10]) end
if ARGV[20] ~= '' then
  redis.call('xadd', KEYS[11], 'MAXLEN', '~', ARGV[21], '*', 'lesson', ARGV[20])
end
return {'stored'}
"""

# Drops the buckets before ARGV[1] from a network's abuse hash (KEYS[1]); replies how many.
_PRUNE_ABUSE = """
local n = 0
for _, field in ipairs(redis.call('hkeys', KEYS[1])) do
  if tonumber(field) < tonumber(ARGV[1]) then n = n + redis.call('hdel', KEYS[1], field) end
end
return n
"""
# The lessons ``record`` carries go on a stream of the tenant's own (on its slot, so in the
# record's script: one round trip for both), at most about this many entries long (the
# shared stream's length, ``riskengine.adapters.learner.RedisLessons``). The names of the
# streams written are kept in a set that the learner and an erasure read
# (``lesson_streams_key``); an instance adds its tenant's once, before its first lesson.
LESSONS_MAX_LEN = 1_000_000


def lessons_key(prefix: str, tenant: str) -> str:
    """The stream of the lessons ``record`` carries for ``tenant`` (``prefix:{t:tenant}:
    lessons``, on the tenant's slot)."""
    return f"{prefix}:{{t:{_part(tenant)}}}:lessons"


def lesson_streams_key(prefix: str) -> str:
    """The set of the names of the tenants' streams of lessons under ``prefix``."""
    return f"{prefix}:lessons:streams"


# The abuse hashes' kinds in keys, by the network they count, and how long one outlives
# its last attempt (its buckets' 6 hours and one bucket more; trimming is by event time).
ABUSE_KINDS = {"prefix": "abuse-p", "asn": "abuse-a"}
ABUSE_KEEP_S = (ABUSE_BUCKETS + 1) * ABUSE_BUCKET_S


def _abuse(text: str) -> tuple[AbuseBucket, ...]:
    """The buckets ``_LOAD`` joined ("bucket attempts failures sketch", the sketch in hex),
    oldest first."""
    if not text:
        return ()
    out = []
    for item in text.split(","):
        bucket, attempts, failures, sketch = item.split()
        out.append((int(bucket), int(attempts), int(failures), int(sketch, 16)))
    out.sort()
    return tuple(out)


def _stripe(tenant: str, user_key: str) -> int:
    """The user's stripe of turns: the same in every process and run (unlike ``hash``)."""
    return zlib.crc32(f"{tenant}\0{user_key}".encode()) % USER_STRIPES


# What ``quote(..., safe="")`` leaves as it is: pseudonyms are made of these alone.
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")


def _part(value: object) -> str:
    """``value`` escaped for a key: no ``:``, ``|`` or brace of its own can make two keys
    collide or move the Cluster hash tag."""
    text = str(value)
    return text if _PLAIN.fullmatch(text) else quote(text, safe="")


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


def _read_profile(
    raw: str | None, tenant: str, user_key: str
) -> tuple[UserProfile | None, float | None]:
    """The profile a stored value holds and the event time of its last update (None when
    the value has none: written before it was kept)."""
    if raw is None:
        return None, None

    def build() -> tuple[UserProfile, float | None]:
        data = jsontext.loads(raw)
        updated = data.pop(UPDATED, None) if isinstance(data, dict) else None
        return UserProfile.from_dict(data), None if updated is None else float(updated)

    return _decoded(f"profile {tenant}/{user_key}", build)


def _profile(raw: str | None, tenant: str, user_key: str) -> UserProfile | None:
    return _read_profile(raw, tenant, user_key)[0]


def _updated(raw: str | None) -> float | None:
    """The event time of the last update kept in a profile value; None when the value has
    none (or is not readable: ``_profile`` reports that)."""
    try:
        data = jsontext.loads(raw) if raw is not None else None
        return float(data[UPDATED]) if isinstance(data, dict) and UPDATED in data else None
    except (ValueError, TypeError):
        return None


def _digest(raw: str | None) -> str:
    """What ``_RECORD`` compares a stored profile by: its SHA-1, or "-" when there is none."""
    if raw is None:
        return "-"
    return hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()


def _stamp(before: float | None, ts: float) -> float:
    """The update time a profile last updated at ``before`` has after an update at ``ts``:
    a late event never ages it."""
    return ts if before is None else max(before, ts)


def _dump_profile(profile: UserProfile, updated: float) -> bytes:
    """``profile`` as stored, last updated at event time ``updated``."""
    return jsontext.dumps({**profile.to_dict(), UPDATED: updated})


def _dump_decision(d: StoredDecision) -> bytes:
    return jsontext.dumps(
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
        data = jsontext.loads(raw)
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
        return float(jsontext.loads(raw)["ts"]) if raw is not None else None
    except (ValueError, TypeError, KeyError):
        return None


def _minute(name: str) -> float:
    """The minute of a tenant-minute key's escaped name; +inf (never old) if not a number."""
    try:
        return int(unquote(name))
    except ValueError:
        return math.inf


class _Errors:
    """``RedisStore._errors``: a Redis or socket error raised in the block becomes a
    ``StoreError`` naming the server and the action, the password masked. A class rather
    than a generator function (``contextlib``): it wraps both round trips of every login,
    and costs a third of it."""

    __slots__ = ("_action", "_store")

    def __init__(self, store: RedisStore, action: str) -> None:
        self._store, self._action = store, action

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        if isinstance(exc, (redis.RedisError, OSError)):
            # from None: the chained original would print its text unmasked.
            raise self._store._failed(self._action, exc) from None


class _Turn:
    """``RedisStore._turn``: holds the user's stripe of turns for the block, waiting for it
    at most ``TURN_WAIT_CALLS`` socket timeouts (then ``StoreContended``)."""

    __slots__ = ("_action", "_lock", "_store")

    def __init__(self, store: RedisStore, action: str, lock: threading.Lock) -> None:
        self._store, self._action, self._lock = store, action, lock

    def __enter__(self) -> None:
        store = self._store
        wait_s = TURN_WAIT_CALLS * store.timeout_s
        if not self._lock.acquire(timeout=wait_s):
            raise StoreContended(f"redis store {store._where}: {self._action} waited "
                                 f"{wait_s:g} s for this instance's other writes of the "
                                 "user: the user is updated too often at once")

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        self._lock.release()


class RedisStore:
    """A :class:`~riskengine.adapters.stores.base.Store` on Redis, shared by any number of processes
    and hosts.

    Every key of a tenant carries the tenant's Cluster hash tag (``{t:<tenant>}``), so one
    login is one server-side script for ``load`` and one for ``record`` (``_LOAD``,
    ``_RECORD``), each one round trip, and ``record`` is atomic: the decision, its index,
    the profile update, the velocity windows, the tenant's minute and the sustained-abuse
    buckets land together or not at all, and an event recorded twice, even by two clients
    at once, counts once. The windows are counted by the server (the scripts return
    counts, not members), and the replies are parsed by hiredis (redis-py uses it when it
    is installed; ``hiredis`` is a dependency). The trade: a tenant's data lives on one
    Cluster node, so a Cluster spreads tenants, not one tenant's users; that node runs the
    tenant's scripts one at a time (each a few tens of microseconds).

    ``record`` is a check-and-set: it starts from the profile that ``load`` read for the
    same event and writes only if it is still the one stored; else it computes again from
    the one the script sent back, so concurrent updates are never lost and ``update`` (or a
    feedback ``plan``, a WATCH/MULTI transaction) may run more than once: it must be pure.
    A ``record`` with no ``load`` before it (an outbox replay) takes two round trips when it
    updates the profile. Every key expires: a profile ``retention_s`` after its last
    update, a decision that long after it was recorded, the windows soon after they stop
    counting. ``purge`` applies retention at event time on top of these wall-clock TTLs.

    The user's keys include the list of the windows that count the user's attempts, so
    ``erase_user`` finds them without walking the tenant's windows; the user's decisions
    are found by SCAN, so ``export_user`` and ``erase_user`` cost one round trip per
    ``SCAN_COUNT`` keys of the database. The sustained-abuse buckets hold counts only.
    Keys written by releases before the tenant hash tag (``{t:<tenant>:u:<user>}``) are
    not read: ``migrate_layout`` moves them, once, after an upgrade.

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
        self._load_script = self._redis.register_script(_LOAD)
        self._record = self._redis.register_script(_RECORD)
        self._prune_abuse = self._redis.register_script(_PRUNE_ABUSE)
        # (tenant, user_key, event_id) -> (raw profile, its parse, its update time) as
        # ``load`` read it; scoring runs in a thread pool, hence the lock.
        self._loaded: dict[tuple[str, str, str], _Read] = {}
        self._parsed: OrderedDict[tuple[str, str], _Read] = OrderedDict()
        # Each scoring thread's own connection (see ``_run``), all closed by ``close``.
        self._own = threading.local()
        self._conns: list[redis.connection.AbstractConnection] = []
        self._tags: dict[str, str] = {}
        self._minutes: dict[str, tuple[int, list[str]]] = {}  # see ``_minute_keys``
        # Tenants whose stream of lessons this instance has listed (``record``).
        self._lesson_streams: set[str] = set()
        self._loaded_lock = threading.Lock()
        self._turns = [threading.Lock() for _ in range(USER_STRIPES)]

    def _tag(self, tenant: str) -> str:
        """``prefix:{t:tenant}``: every key of the tenant starts so; the braces are the
        Cluster hash tag."""
        tag = self._tags.get(tenant)
        if tag is None:
            tag = self._tags[tenant] = f"{self.prefix}:{{t:{_part(tenant)}}}"
        return tag

    def _minute_keys(self, tenant: str, now: float) -> list[str]:
        """The keys of the tenant's minutes in ``minute_window(now)``, oldest first. Each
        tenant's latest list is kept: logins a minute apart or less share it."""
        first, last = minute_window(now)
        kept = self._minutes.get(tenant)
        if kept is None or kept[0] != first:
            tag = self._tag(tenant)
            kept = first, [f"{tag}:minute:{minute}" for minute in range(first, last + 1)]
            self._minutes[tenant] = kept
        return kept[1]

    def _key(self, tenant: str, kind: str, name: object, *rest: object) -> str:
        """``prefix:{t:tenant}:kind:name:rest...``."""
        return ":".join([self._tag(tenant), kind, _part(name), *map(_part, rest)])

    def _profile_key(self, tenant: str, user_key: str) -> str:
        return self._key(tenant, "u", user_key, "profile")

    def _user_keys(self, tenant: str, user_key: str, event_id: str) -> list[str]:
        """The user's profile key and the key of its decision ``event_id``."""
        return [
            self._profile_key(tenant, user_key),
            self._key(tenant, "u", user_key, "decision", event_id),
        ]

    def _touched_key(self, tenant: str, user_key: str) -> str:
        """The sorted set of the window keys holding attempts of the user."""
        return self._key(tenant, "u", user_key, "touched")

    def _parse(self, key: str) -> tuple[str, str, str, list[str]] | None:
        """Tenant, kind, name and the parts after the hash tag of one of this store's keys,
        all still escaped; None for a key of any other shape."""
        head = f"{self.prefix}:{{t:"
        if not key.startswith(head):
            return None
        tenant, closed, rest = key[len(head) :].partition("}")
        fields = rest.split(":")
        if not closed or ":" in tenant or len(fields) < 3 or fields[0]:
            return None
        return tenant, fields[1], fields[2], fields[3:]

    def _index_key(self, tenant: str, event_id: str) -> str:
        """Where the user key of decision ``event_id`` is kept."""
        return self._key(tenant, "event", event_id)

    def _errors(self, action: str) -> _Errors:
        """A block whose Redis and socket errors become ``StoreError``."""
        return _Errors(self, action)

    def _failed(self, action: str, exc: BaseException) -> StoreError:
        message = f"{type(exc).__name__}: {exc}"
        if self._password:
            message = message.replace(self._password, "***")
        return StoreError(f"redis store {self._where}: {action} failed: {message}")

    def _turn(self, action: str, tenant: str, user_key: str) -> _Turn:
        """A block that waits for this instance's other writes of the user to finish
        (bounded)."""
        return _Turn(self, action, self._turns[_stripe(tenant, user_key)])

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
        tenant, user_key, now, event_id = query.tenant, query.user_key, query.now, query.event_id
        tag = self._tag(tenant)
        none = f"{tag}:none:-"  # a key never written, where the login has none
        asn, device, prefix = query.asn, query.device_key, query.ip_prefix_key
        user, event = _part(user_key), _part(event_id)
        keys = [
            f"{tag}:u:{user}:profile",
            f"{tag}:u:{user}:decision:{event}",
            f"{tag}:event:{event}",
            f"{tag}:ip:{_part(query.ip_key)}",
            none if asn is None else f"{tag}:asn:{asn}",
            none if device is None else f"{tag}:device:{_part(device)}",
            none if prefix is None else f"{tag}:{ABUSE_KINDS['prefix']}:{_part(prefix)}",
            none if asn is None else f"{tag}:{ABUSE_KINDS['asn']}:{asn}",
            *self._minute_keys(tenant, now),
        ]
        has = f"{int(asn is not None)}{int(device is not None)}{int(prefix is not None)}"
        with self._errors("load"):
            reply = self._run(self._load_script, keys, [
                user, user_key, repr(now - IP_WINDOW_S), WINDOW_SCAN_MAX,
                repr(now - DEVICE_WINDOW_S), has, *abuse_filter(now)])
        (raw_profile, raw_decision, owner, ip_users, ip_failures, asn_users, asn_failures,
         device_accounts, tenant_attempts, tenant_failures, prefix_abuse, asn_abuse) = reply
        if owner is None or owner == user_key:
            previous = _decision(raw_decision, tenant, user_key, event_id)
        else:  # the event was recorded for another user
            previous = self._read_decision("load", tenant, event_id, owner)
        profile, updated = self._parse_profile(raw_profile, tenant, user_key)
        if previous is None:  # a record follows: it may start from this profile
            with self._loaded_lock:
                self._loaded[(tenant, user_key, event_id)] = (raw_profile, profile, updated)
                if len(self._loaded) > LOADED_KEEP:
                    del self._loaded[next(iter(self._loaded))]
        return Loaded(
            profile=None if profile is None else profile.copy(),  # the parse stays ours
            velocity=Velocity(
                ip_users_10m=ip_users,
                ip_failures_10m=ip_failures,
                asn_users_10m=asn_users,
                asn_failures_10m=asn_failures,
                device_accounts_30d=device_accounts,
                tenant_attempts_10m=tenant_attempts,
                tenant_failures_10m=tenant_failures,
                ip_prefix_abuse=_decoded("abuse buckets", lambda: _abuse(prefix_abuse)),
                asn_abuse=_decoded("abuse buckets", lambda: _abuse(asn_abuse)),
            ),
            previous=previous,
        )

    def record(
        self, decision: StoredDecision, attempt: Attempt, update: ProfileUpdate | None, *,
        lesson: Mapping[str, Any] | None = None,
    ) -> StoredDecision:
        """``Store.record``; ``lesson`` (a ``Lesson.to_dict()``), when given, is written in
        the same script to the tenant's stream of lessons (``lessons_key``), which the
        shared learner reads (``riskengine.adapters.learner``): when, and only when, this
        call stores the decision (not for an event already recorded)."""
        tenant, user_key, event_id = decision.tenant, decision.user_key, decision.event_id
        body = _dump_decision(decision)  # a decision that is not JSON fails before any write
        taught = b"" if lesson is None else jsontext.dumps(lesson)
        if lesson is not None and tenant not in self._lesson_streams:
            stream = lessons_key(self.prefix, tenant)
            with self._errors("record"):  # once per tenant: the learner must find it
                self._redis.sadd(lesson_streams_key(self.prefix), stream)
            self._lesson_streams.add(tenant)
        with self._loaded_lock:
            loaded = self._loaded.pop((tenant, user_key, event_id), None)
            if update is not None:
                # Taken out: the update may change the parse it is given, which the load
                # kept. Without an update the profile stays as stored, and so does its
                # parse: the user's next load finds it (a quarter of this traffic's
                # logins update no profile; parsing one costs ~10-30 us).
                self._parsed.pop((tenant, user_key), None)
        # Not scored by this instance (an outbox replay): "?" matches no profile, so the
        # script sends the stored one back for the update to start from. Without an
        # update the script compares nothing.
        digest = "-" if update is None else "?" if loaded is None else _digest(loaded[0])
        current = None if loaded is None else loaded[1:]
        keys, args = self._record_call(decision, attempt)
        with self._turn("record", tenant, user_key):
            for _ in range(WATCH_TRIES):
                profile, new, stamp = b"", None, decision.ts
                if update is not None and current is not None:
                    parsed, updated = current
                    new, stamp = update(parsed or UserProfile()), _stamp(updated, decision.ts)
                    profile = _dump_profile(new, stamp)
                with self._errors("record"):
                    verdict, *value = self._run(self._record, keys, [
                        digest, body, self._retention, int(update is not None), profile, *args,
                        taught, LESSONS_MAX_LEN])
                if verdict == "stored":
                    if new is not None and profile_round_trips(new):
                        # The user's next load finds this text and skips parsing it. A copy:
                        # whoever made the update may still hold what it returned.
                        self._keep(tenant, user_key, (profile.decode(), new.copy(), stamp))
                    return decision
                if verdict == "recorded":  # by another client, with this event id and user
                    stored = _decision(value[0], tenant, user_key, event_id)
                    assert stored is not None  # the script found it
                    return stored
                if verdict == "other":  # recorded for another user
                    other = self._read_decision("record", tenant, event_id, value[0])
                    if other is not None:
                        return other
                    continue  # gone since (erased, expired): try again
                # "changed": another client updated the profile since it was read (or it
                # was not read): start from the one stored now.
                raw = value[0] if value else None
                digest, current = _digest(raw), _read_profile(raw, tenant, user_key)
        raise StoreContended(f"redis store {self._where}: record gave up after "
                             f"{WATCH_TRIES} tries: the user is updated too often at once")

    def _run(self, script: Script, keys: list[str], args: list[object]) -> Any:
        """``script`` by its SHA-1 in one round trip, loading it first if the server does
        not know it (started afresh, flushed). Call under ``_errors``.

        On a connection of the calling thread's own, kept open between calls: the client's
        pool, retry and observability wrappers cost about as much CPU as the round trip
        itself (~20 us a call, this machine), twice a login. A connection that failed is
        dropped; the next call opens another, with the same timeouts."""
        conn = getattr(self._own, "conn", None)
        if conn is None:
            conn = self._own.conn = self._redis.connection_pool.make_connection()
            with self._loaded_lock:
                self._conns.append(conn)
        try:
            conn.send_command("EVALSHA", script.sha, len(keys), *keys, *args)
            return conn.read_response()
        except redis.exceptions.NoScriptError:
            return script(keys=keys, args=args)
        except BaseException:
            conn.disconnect()  # whatever it was, the reply stream may be out of step
            raise

    def _parse_profile(
        self, raw: str | None, tenant: str, user_key: str
    ) -> tuple[UserProfile | None, float | None]:
        """``_read_profile``, from the kept parse when ``raw`` is the text kept."""
        if raw is None:
            return None, None
        user = (tenant, user_key)
        with self._loaded_lock:
            kept = self._parsed.get(user)
            if kept is not None and kept[0] == raw:
                self._parsed.move_to_end(user)
                return kept[1], kept[2]
        profile, updated = _read_profile(raw, tenant, user_key)
        if profile is not None and profile_round_trips(profile):
            self._keep(tenant, user_key, (raw, profile, updated))
        return profile, updated

    def _forget(self, which: Callable[[tuple[str, str]], bool]) -> None:
        """Drop the profiles kept in memory of the users ``which`` picks."""
        with self._loaded_lock:
            for user in [u for u in self._parsed if which(u)]:
                del self._parsed[user]
            for key in [k for k in self._loaded if which(k[:2])]:
                del self._loaded[key]

    def _keep(self, tenant: str, user_key: str, read: _Read) -> None:
        with self._loaded_lock:
            self._parsed[(tenant, user_key)] = read
            self._parsed.move_to_end((tenant, user_key))
            while len(self._parsed) > PARSED_PROFILES:
                self._parsed.popitem(last=False)

    def _record_call(self, decision: StoredDecision, attempt: Attempt
                     ) -> tuple[list[str], list[object]]:
        """The keys of ``_RECORD`` and its arguments from the sixth on (see ``_RECORD``)."""
        tenant, ts = attempt.tenant, attempt.ts
        # Event time drives trimming so replays of old data keep their windows; the wall
        # clock caps it so one event stamped far ahead cannot wipe them.
        horizon = min(ts, time.time())
        tag = self._tag(tenant)
        none = f"{tag}:none:-"
        asn, device, prefix = attempt.asn, attempt.device_key, attempt.ip_prefix_key
        user, event = _part(decision.user_key), _part(decision.event_id)
        keys = [  # as ``_key`` writes them (the ASN and the minute are numbers)
            f"{tag}:u:{user}:profile",
            f"{tag}:u:{user}:decision:{event}",
            f"{tag}:event:{event}",
            f"{tag}:u:{user}:touched",
            f"{tag}:ip:{_part(attempt.ip_key)}",
            none if asn is None else f"{tag}:asn:{asn}",
            none if device is None else f"{tag}:device:{_part(device)}",
            f"{tag}:minute:{int(ts // MINUTE_S)}",
            none if prefix is None else f"{tag}:{ABUSE_KINDS['prefix']}:{_part(prefix)}",
            none if asn is None else f"{tag}:{ABUSE_KINDS['asn']}:{asn}",
            f"{tag}:lessons",  # lessons_key
        ]
        args: list[object] = [
            decision.user_key,
            f"{event}|{user}|{int(attempt.failed)}",
            repr(ts),
            repr(horizon - ATTEMPT_KEEP_S),
            repr(horizon - DEVICE_KEEP_S),
            repr(horizon - DEVICE_WINDOW_S),
            ATTEMPT_KEEP_S,
            DEVICE_KEEP_S,
            int(attempt.failed),
            f"{int(asn is not None)}{int(device is not None)}{int(prefix is not None)}",
            abuse_bucket(ts),
            account_bit(attempt.user_key).bit_length() - 1,
            abuse_since(ts),
            ABUSE_KEEP_S,
        ]
        return keys, args

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
                current, updated = _read_profile(raw_profile, tenant, owner)
                profile = _dump_profile(update(current or UserProfile()),
                                        _stamp(updated, before.ts))
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
        self._forget(lambda user: user == (tenant, user_key))
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
        self._forget(lambda user: True)  # purged profiles must not live on in memory
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

    def migrate_layout(self) -> int:
        """Move what the per-user layout of earlier releases holds (keys
        ``prefix:{t:<tenant>:<kind>:<name>}:...``, a hash tag per user, network, device or
        minute) to the tenant layout this store reads, each key with its TTL; the lists of
        the users' windows are rewritten to the windows' new names. A key already written in
        the new layout is kept and the old one dropped. Walks the database with SCAN,
        ``SCAN_COUNT`` keys a round trip; safe to run again, and while instances score
        (a login between the copy of a profile and the drop of the old key is kept).
        Returns how many keys moved."""
        raw = redis.Redis(connection_pool=redis.ConnectionPool.from_url(
            self.url, socket_connect_timeout=self.timeout_s,
            socket_timeout=max(self.timeout_s, 1.0), retry=Retry(NoBackoff(), 0)))
        head = f"{self.prefix}:{{t:"
        moved = 0
        with self._errors("migrate_layout"):
            try:
                for key in raw.scan_iter(match=_glob(head) + "*", count=SCAN_COUNT):
                    old = key.decode()
                    tag, closed, rest = old[len(head):].partition("}")
                    parts = tag.split(":")
                    if not closed or len(parts) != 3:
                        continue  # the new layout, or not this store's
                    tenant, kind, name = parts
                    new = f"{head}{tenant}}}:{kind}:{name}{rest}"
                    if kind == "u" and rest == ":touched":
                        members = raw.zrange(old, 0, -1, withscores=True)
                        renamed = {self._renamed(m.decode()): score for m, score in members}
                        if renamed:
                            raw.zadd(new, renamed, gt=True)
                            raw.expire(new, DEVICE_KEEP_S)
                    else:
                        dumped, ttl = raw.dump(old), raw.pttl(old)
                        if dumped is None:
                            continue  # expired meanwhile
                        try:
                            raw.restore(new, max(ttl, 0), dumped)
                        except redis.ResponseError as exc:
                            if "BUSYKEY" not in str(exc):
                                raise
                    raw.delete(old)
                    moved += 1
            finally:
                raw.close()
        return moved

    def _renamed(self, key: str) -> str:
        """A window key of the per-user layout in the tenant layout (others as they are)."""
        head = f"{self.prefix}:{{t:"
        tag, closed, rest = key[len(head):].partition("}")
        parts = tag.split(":")
        if not key.startswith(head) or not closed or len(parts) != 3:
            return key
        return f"{head}{parts[0]}}}:{parts[1]}:{parts[2]}{rest}"

    def ping(self) -> None:
        with self._errors("ping"):
            self._redis.ping()

    def close(self) -> None:
        with self._loaded_lock:
            conns, self._conns = self._conns, []
        with self._errors("close"):
            for conn in conns:
                conn.disconnect()
            self._redis.close()
