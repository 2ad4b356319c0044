"""The Redis store: one state shared by every API instance pointed at the same Redis."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TypeVar
from urllib.parse import quote, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from features.profile import UserProfile, Velocity
from riskengine.stores.base import (
    DEVICE_WINDOW_S,
    IP_WINDOW_S,
    MINUTE_S,
    Attempt,
    FeedbackOutcome,
    FeedbackPlan,
    Loaded,
    LoadQuery,
    ProfileUpdate,
    StoredDecision,
    StoreError,
    minute_window,
)

T = TypeVar("T")
# (key, value, TTL in seconds); a None TTL keeps the key's current one.
Write = tuple[str, str, int | None]

WATCH_TRIES = 50
# Attempts stay twice as long as their window: an event arriving up to ten minutes late
# still finds the attempts of its own window. TTLs run on the wall clock, trimming on event
# time.
ATTEMPT_KEEP_S = int(2 * IP_WINDOW_S)
DEVICE_KEEP_S = int(DEVICE_WINDOW_S + 86_400)


def _part(value: object) -> str:
    """``value`` escaped for a key: no ``:``, ``|`` or brace of its own can make two keys
    collide or move the Cluster hash tag."""
    return quote(str(value), safe="")


def _decoded(what: str, build: Callable[[], T]) -> T:
    """``build()``, with a malformed stored value reported as ``StoreError``."""
    try:
        return build()
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise StoreError(f"corrupt {what}: {exc}") from exc


def _profile(raw: str | None, tenant: str, user_key: str) -> UserProfile | None:
    if raw is None:
        return None
    return _decoded(
        f"profile {tenant}/{user_key}", lambda: UserProfile.from_dict(json.loads(raw))
    )


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


def _window(members: list[str], user_key: str) -> tuple[int, int]:
    """Other users and failures among ``event_id|user_key|failed`` members."""
    hits = [m.split("|") for m in members]
    return len({user for _, user, _ in hits} - {_part(user_key)}), sum(f == "1" for *_, f in hits)


class RedisStore:
    """A :class:`~riskengine.stores.base.Store` on Redis, shared by any number of processes
    and hosts.

    Everything about one user (profile, decisions) shares one Cluster hash tag, so ``record``
    and ``apply_feedback`` are single-slot WATCH/MULTI transactions that retry when another
    client touched the user in between: concurrent updates are never lost, and ``update``
    (or a feedback ``plan``) may run more than once, so it must be pure. The velocity
    windows are shared keys in other slots, written in a pipeline after the user's
    transaction: a process dying between the two keeps the decision but not the count.
    Every key expires: a profile ``retention_s`` after its last update, a decision that long
    after it was recorded, the windows soon after they stop counting.

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
        raise StoreError(f"redis store {self._where}: {action} gave up after {WATCH_TRIES} "
                         "tries: the user is updated too often at once")

    def _read_decision(
        self, action: str, tenant: str, event_id: str, owner: str
    ) -> StoredDecision | None:
        key = self._user_keys(tenant, owner, event_id)[1]
        with self._errors(action):
            raw = self._redis.get(key)
        return _decision(raw, tenant, owner, event_id)

    def load(self, query: LoadQuery) -> Loaded:
        tenant, user_key, now = query.tenant, query.user_key, query.now
        since = f"({now - IP_WINDOW_S!r}"  # "(" makes the window start exclusive
        first, last = minute_window(now)
        with self._errors("load"), self._redis.pipeline(transaction=False) as pipe:
            # Not MULTI: the keys span slots. The counts may straddle a concurrent write.
            for key in self._user_keys(tenant, user_key, query.event_id):
                pipe.get(key)
            pipe.get(self._index_key(tenant, query.event_id))
            pipe.zrangebyscore(self._key(tenant, "ip", query.ip_key), since, now)
            if query.asn is not None:
                pipe.zrangebyscore(self._key(tenant, "asn", query.asn), since, now)
            if query.device_key is not None:
                device = self._key(tenant, "device", query.device_key)
                pipe.zcount(device, f"({now - DEVICE_WINDOW_S!r}", now)
                pipe.zscore(device, user_key)
            for minute in range(first, last + 1):
                pipe.hmget(self._key(tenant, "minute", minute), "attempts", "failures")
            replies = iter(pipe.execute())
        raw_profile, raw_decision, owner, ip_members = (next(replies) for _ in range(4))
        asn_users, asn_failures = (
            (0, 0) if query.asn is None else _window(next(replies), user_key)
        )
        device_accounts = 0
        if query.device_key is not None:
            device_accounts, own_ts = next(replies), next(replies)
            device_accounts -= own_ts is not None and now - DEVICE_WINDOW_S < own_ts <= now
        buckets = list(replies)
        if owner is None or owner == user_key:
            previous = _decision(raw_decision, tenant, user_key, query.event_id)
        else:  # the event was recorded for another user
            previous = self._read_decision("load", tenant, query.event_id, owner)
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
        with self._errors("record"):
            owner = self._redis.get(index)
        if owner is not None:
            stored = self._read_decision("record", tenant, event_id, owner)
            if stored is not None:
                return stored

        def step(values: list[str | None]) -> tuple[StoredDecision, list[Write]]:
            raw_profile, raw_decision = values
            stored = _decision(raw_decision, tenant, user_key, event_id)
            if stored is not None:  # recorded meanwhile by another client
                return stored, []
            writes: list[Write] = [(keys[1], body, self._retention)]
            if update is not None:
                current = _profile(raw_profile, tenant, user_key) or UserProfile()
                profile = json.dumps(update(current).to_dict())
                writes.append((keys[0], profile, self._retention))
            return decision, writes

        stored = self._transact("record", keys, step)
        if stored is not decision:
            # Whoever recorded it sets the index too, unless it died in between.
            with self._errors("record"):
                self._redis.set(index, user_key, ex=self._retention, nx=True)
            return stored
        self._count(event_id, attempt, index)
        return decision

    def _count(self, event_id: str, attempt: Attempt, index: str) -> None:
        """Index the decision and count the attempt in the shared windows."""
        tenant, ts = attempt.tenant, attempt.ts
        # Event time drives trimming so replays of old data keep their windows; the wall
        # clock caps it so one event stamped far ahead cannot wipe them.
        horizon = min(ts, time.time())
        member = f"{_part(event_id)}|{_part(attempt.user_key)}|{int(attempt.failed)}"
        networks = [self._key(tenant, "ip", attempt.ip_key)]
        if attempt.asn is not None:
            networks.append(self._key(tenant, "asn", attempt.asn))
        minute = self._key(tenant, "minute", int(ts // MINUTE_S))
        with self._errors("record"), self._redis.pipeline(transaction=False) as pipe:
            pipe.set(index, attempt.user_key, ex=self._retention)
            for key in networks:
                pipe.zadd(key, {member: ts})
                pipe.zremrangebyscore(key, "-inf", horizon - ATTEMPT_KEEP_S)
                pipe.expire(key, ATTEMPT_KEEP_S)
            if attempt.device_key is not None:
                device = self._key(tenant, "device", attempt.device_key)
                # GT: a late event never moves the user's latest sighting back.
                pipe.zadd(device, {attempt.user_key: ts}, gt=True)
                pipe.zremrangebyscore(device, "-inf", horizon - DEVICE_WINDOW_S)
                pipe.expire(device, DEVICE_KEEP_S)
            pipe.hincrby(minute, "attempts", 1)
            pipe.hincrby(minute, "failures", int(attempt.failed))
            pipe.expire(minute, ATTEMPT_KEEP_S)
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
                writes.append((keys[0], json.dumps(update(current).to_dict()), self._retention))
            return (FeedbackOutcome.APPLIED, before), writes

        return self._transact("apply_feedback", keys, step)

    def get_decision(self, tenant: str, event_id: str) -> StoredDecision | None:
        with self._errors("get_decision"):
            owner = self._redis.get(self._index_key(tenant, event_id))
        if owner is None:
            return None
        return self._read_decision("get_decision", tenant, event_id, owner)

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
