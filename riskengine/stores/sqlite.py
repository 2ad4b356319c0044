"""The SQLite store: one file, safe across the API's threads and across processes on one host."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from features.profile import UserProfile, Velocity
from riskengine.stores.base import (
    DECISION_RETENTION_S,
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
    UserData,
    minute_window,
)

T = TypeVar("T")

SCHEMA_VERSION = 1
# The longest attempt window is IP_WINDOW_S (10 min); keeping an hour still counts events
# that arrive late, and the table stays small.
ATTEMPT_RETENTION_S = 3600.0
PRUNE_EVERY_RECORDS = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS profiles (
    tenant TEXT NOT NULL,
    user_key TEXT NOT NULL,
    profile TEXT NOT NULL,
    updated_ts REAL NOT NULL,
    PRIMARY KEY (tenant, user_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS attempts (
    tenant TEXT NOT NULL,
    ip_key TEXT NOT NULL,
    asn INTEGER,
    user_key TEXT NOT NULL,
    ts REAL NOT NULL,
    failed INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_by_ip ON attempts (tenant, ip_key, ts);
CREATE INDEX IF NOT EXISTS attempts_by_asn ON attempts (tenant, asn, ts);
CREATE INDEX IF NOT EXISTS attempts_by_ts ON attempts (ts);
CREATE TABLE IF NOT EXISTS device_accounts (
    tenant TEXT NOT NULL,
    device_key TEXT NOT NULL,
    user_key TEXT NOT NULL,
    last_ts REAL NOT NULL,
    PRIMARY KEY (tenant, device_key, user_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS device_accounts_by_ts ON device_accounts (last_ts);
CREATE TABLE IF NOT EXISTS tenant_minutes (
    tenant TEXT NOT NULL,
    minute INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    PRIMARY KEY (tenant, minute)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS decisions (
    tenant TEXT NOT NULL,
    event_id TEXT NOT NULL,
    user_key TEXT NOT NULL,
    ts REAL NOT NULL,
    decision TEXT NOT NULL,
    features TEXT NOT NULL,
    sighting TEXT,
    feedback TEXT,
    learned INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, event_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS decisions_by_ts ON decisions (ts);
CREATE INDEX IF NOT EXISTS decisions_by_user ON decisions (tenant, user_key, ts);
CREATE INDEX IF NOT EXISTS attempts_by_user ON attempts (tenant, user_key);
CREATE INDEX IF NOT EXISTS device_accounts_by_user ON device_accounts (tenant, user_key);
"""

_USER_VERSION = "PRAGMA user_version"
_SELECT_PROFILE = "SELECT profile FROM profiles WHERE tenant = ? AND user_key = ?"
_SELECT_DECISION = (
    "SELECT user_key, ts, decision, features, sighting, feedback, learned FROM decisions"
    " WHERE tenant = ? AND event_id = ?"
)
# NULLIF drops the asking user from the distinct count; failures count everyone's.
_WINDOW = (
    "SELECT COUNT(DISTINCT NULLIF(user_key, :user_key)), COALESCE(SUM(failed), 0)"
    " FROM attempts WHERE tenant = :tenant AND {column} = :key AND ts > :start AND ts <= :now"
)
_IP_WINDOW = _WINDOW.format(column="ip_key")
_ASN_WINDOW = _WINDOW.format(column="asn")
_DEVICE_ACCOUNTS = (
    "SELECT COUNT(*) FROM device_accounts WHERE tenant = ? AND device_key = ? AND user_key != ?"
    " AND last_ts > ? AND last_ts <= ?"
)
_UPSERT_PROFILE = (
    "INSERT INTO profiles (tenant, user_key, profile, updated_ts) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (tenant, user_key)"
    " DO UPDATE SET profile = excluded.profile, updated_ts = excluded.updated_ts"
)
_INSERT_DECISION = (
    "INSERT INTO decisions"
    " (tenant, event_id, user_key, ts, decision, features, sighting, learned)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_ATTEMPT = (
    "INSERT INTO attempts (tenant, ip_key, asn, user_key, ts, failed) VALUES (?, ?, ?, ?, ?, ?)"
)
_UPSERT_DEVICE = (
    "INSERT INTO device_accounts (tenant, device_key, user_key, last_ts) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (tenant, device_key, user_key)"
    " DO UPDATE SET last_ts = MAX(last_ts, excluded.last_ts)"
)
_SET_FEEDBACK = (
    "UPDATE decisions SET feedback = ?, learned = ? WHERE tenant = ? AND event_id = ?"
)
_TENANT_WINDOW = (
    "SELECT COALESCE(SUM(attempts), 0), COALESCE(SUM(failures), 0) FROM tenant_minutes"
    " WHERE tenant = ? AND minute BETWEEN ? AND ?"
)
_BUMP_MINUTE = (
    "INSERT INTO tenant_minutes (tenant, minute, attempts, failures) VALUES (?, ?, 1, ?)"
    " ON CONFLICT (tenant, minute)"
    " DO UPDATE SET attempts = attempts + 1, failures = failures + excluded.failures"
)
_PRUNE_MINUTES = "DELETE FROM tenant_minutes WHERE minute <= ?"
_PRUNE_DECISIONS = "DELETE FROM decisions WHERE ts <= ?"
_PRUNE_PROFILES = "DELETE FROM profiles WHERE updated_ts <= ?"
_USER_DECISIONS = (
    "SELECT event_id FROM decisions WHERE tenant = ? AND user_key = ? ORDER BY ts, event_id"
)
_ERASE = tuple(
    f"DELETE FROM {table} WHERE tenant = ? AND user_key = ?"
    for table in ("profiles", "decisions", "attempts", "device_accounts")
)
_PRUNE_ATTEMPTS = "DELETE FROM attempts WHERE ts <= ?"
_PRUNE_DEVICES = "DELETE FROM device_accounts WHERE last_ts <= ?"


def _decoded(what: str, build: Callable[[], T]) -> T:
    """``build()``, with a malformed stored row reported as ``StoreError``."""
    try:
        return build()
    except (ValueError, TypeError, AttributeError) as exc:
        raise StoreError(f"corrupt {what}: {exc}") from exc


def _read_profile(conn: sqlite3.Connection, tenant: str, user_key: str) -> UserProfile | None:
    row = conn.execute(_SELECT_PROFILE, (tenant, user_key)).fetchone()
    if row is None:
        return None
    return _decoded(
        f"profile row {tenant}/{user_key}", lambda: UserProfile.from_dict(json.loads(row[0]))
    )


def _read_decision(conn: sqlite3.Connection, tenant: str, event_id: str) -> StoredDecision | None:
    row = conn.execute(_SELECT_DECISION, (tenant, event_id)).fetchone()
    if row is None:
        return None
    user_key, ts, decision, features, seen, feedback, learned = row
    return _decoded(
        f"decision row {tenant}/{event_id}",
        lambda: StoredDecision(
            event_id,
            tenant,
            user_key,
            ts,
            json.loads(decision),
            json.loads(features),
            None if seen is None else json.loads(seen),
            feedback,
            bool(learned),
        ),
    )


def _update_profile(
    conn: sqlite3.Connection, tenant: str, user_key: str, update: ProfileUpdate, ts: float
) -> None:
    current = _read_profile(conn, tenant, user_key)
    profile = update(UserProfile() if current is None else current)
    conn.execute(_UPSERT_PROFILE, (tenant, user_key, json.dumps(profile.to_dict()), ts))


def _window(
    conn: sqlite3.Connection, sql: str, key: str | int, query: LoadQuery
) -> tuple[int, int]:
    """Other users and failures under ``key`` in ``(now - IP_WINDOW_S, now]``."""
    users, failures = conn.execute(
        sql,
        {
            "tenant": query.tenant,
            "key": key,
            "user_key": query.user_key,
            "start": query.now - IP_WINDOW_S,
            "now": query.now,
        },
    ).fetchone()
    return int(users), int(failures)


def _open(path: str, timeout_s: float) -> sqlite3.Connection:
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # check_same_thread=False: the API calls in from a thread pool, and the store's lock
    # serializes use. isolation_level=None: transactions are begun explicitly, so `record`
    # can take the write lock (BEGIN IMMEDIATE) before it reads the profile it will update.
    # `timeout` is SQLite's busy_timeout: wait that long for another process's write lock.
    conn = sqlite3.connect(path, timeout=timeout_s, check_same_thread=False, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        # Durable against process crashes; a power loss can drop the last commits only.
        conn.execute("PRAGMA synchronous = NORMAL")
        version = conn.execute(_USER_VERSION).fetchone()[0]
        if version == 0:
            conn.executescript(
                f"BEGIN IMMEDIATE; {_SCHEMA} {_USER_VERSION} = {SCHEMA_VERSION}; COMMIT;"
            )
        elif version != SCHEMA_VERSION:
            raise StoreError(
                f"sqlite store {path} has schema version {version}; "
                f"this riskengine reads version {SCHEMA_VERSION}"
            )
    except BaseException:
        conn.close()
        raise
    return conn


class SqliteStore:
    """A :class:`~riskengine.stores.base.Store` in one SQLite file (or ``":memory:"``).

    WAL mode lets reads run beside the one writer; ``record`` takes the write lock before it
    reads the profile, so concurrent updates of one user, from threads or from processes
    sharing the file, are never lost. Suits one host; several hosts need a network store.

    Parameters
    ----------
    path
        Database file, created with its parent folders when missing.
    timeout_s
        How long a call waits for another process's write lock before failing.
    retention_s
        How long decisions are kept for late labels, in event time (default 30 days).
    """

    def __init__(
        self, path: str | Path, *, timeout_s: float = 5.0, retention_s: float = DECISION_RETENTION_S
    ) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self.retention_s = retention_s
        self._lock = threading.Lock()
        self._records = 0
        with self._errors("open"):
            self._conn = _open(str(path), timeout_s)

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"sqlite store {self.path}: {action} failed: {exc}") from exc

    @contextmanager
    def _transaction(self, action: str, begin: str) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors(action):
            self._conn.execute(begin)
            try:
                yield self._conn
            except BaseException:
                self._conn.rollback()
                raise
            self._conn.commit()  # a no-op when the body already rolled back

    def load(self, query: LoadQuery) -> Loaded:
        # One read transaction: every count comes from the same snapshot.
        with self._transaction("load", "BEGIN") as conn:
            profile = _read_profile(conn, query.tenant, query.user_key)
            ip_users, ip_failures = _window(conn, _IP_WINDOW, query.ip_key, query)
            asn_users, asn_failures = (
                (0, 0) if query.asn is None else _window(conn, _ASN_WINDOW, query.asn, query)
            )
            device_accounts = (
                0
                if query.device_key is None
                else conn.execute(
                    _DEVICE_ACCOUNTS,
                    (
                        query.tenant,
                        query.device_key,
                        query.user_key,
                        query.now - DEVICE_WINDOW_S,
                        query.now,
                    ),
                ).fetchone()[0]
            )
            tenant_attempts, tenant_failures = conn.execute(
                _TENANT_WINDOW, (query.tenant, *minute_window(query.now))
            ).fetchone()
            previous = _read_decision(conn, query.tenant, query.event_id)
        return Loaded(
            profile=profile,
            velocity=Velocity(
                ip_users_10m=ip_users,
                ip_failures_10m=ip_failures,
                asn_users_10m=asn_users,
                asn_failures_10m=asn_failures,
                device_accounts_30d=device_accounts,
                tenant_attempts_10m=int(tenant_attempts),
                tenant_failures_10m=int(tenant_failures),
            ),
            previous=previous,
        )

    def record(
        self, decision: StoredDecision, attempt: Attempt, update: ProfileUpdate | None
    ) -> StoredDecision:
        tenant, user_key = decision.tenant, decision.user_key
        with self._transaction("record", "BEGIN IMMEDIATE") as conn:
            stored = _read_decision(conn, tenant, decision.event_id)
            if stored is not None:
                conn.rollback()
                return stored
            if update is not None:
                _update_profile(conn, tenant, user_key, update, decision.ts)
            conn.execute(
                _INSERT_DECISION,
                (
                    tenant,
                    decision.event_id,
                    user_key,
                    decision.ts,
                    json.dumps(decision.decision),
                    json.dumps(decision.features),
                    None if decision.sighting is None else json.dumps(decision.sighting),
                    int(decision.learned),
                ),
            )
            conn.execute(
                _INSERT_ATTEMPT,
                (
                    attempt.tenant,
                    attempt.ip_key,
                    attempt.asn,
                    attempt.user_key,
                    attempt.ts,
                    attempt.failed,
                ),
            )
            conn.execute(
                _BUMP_MINUTE, (attempt.tenant, int(attempt.ts // MINUTE_S), int(attempt.failed))
            )
            if attempt.device_key is not None:
                conn.execute(
                    _UPSERT_DEVICE,
                    (attempt.tenant, attempt.device_key, attempt.user_key, attempt.ts),
                )
            self._records += 1
            if self._records % PRUNE_EVERY_RECORDS == 0:
                # Event time drives pruning so replays of old data keep their windows; the
                # wall clock caps it so one event stamped far ahead cannot wipe the counters.
                horizon = min(attempt.ts, time.time())
                conn.execute(_PRUNE_ATTEMPTS, (horizon - ATTEMPT_RETENTION_S,))
                conn.execute(_PRUNE_DEVICES, (horizon - DEVICE_WINDOW_S,))
                conn.execute(_PRUNE_MINUTES, ((horizon - ATTEMPT_RETENTION_S) // MINUTE_S,))
                conn.execute(_PRUNE_DECISIONS, (horizon - self.retention_s,))
        return decision

    def apply_feedback(
        self, tenant: str, event_id: str, label: str, plan: FeedbackPlan
    ) -> tuple[FeedbackOutcome, StoredDecision | None]:
        with self._transaction("apply_feedback", "BEGIN IMMEDIATE") as conn:
            stored = _read_decision(conn, tenant, event_id)
            if stored is None:
                return FeedbackOutcome.UNKNOWN_EVENT, None
            if stored.feedback == label:
                return FeedbackOutcome.DUPLICATE, stored
            update, learned = plan(stored)
            conn.execute(_SET_FEEDBACK, (label, int(learned), tenant, event_id))
            if update is not None:
                _update_profile(conn, tenant, stored.user_key, update, stored.ts)
        return FeedbackOutcome.APPLIED, stored

    def export_user(self, tenant: str, user_key: str) -> UserData:
        with self._transaction("export_user", "BEGIN") as conn:
            ids = [r[0] for r in conn.execute(_USER_DECISIONS, (tenant, user_key))]
            decisions = tuple(d for i in ids if (d := _read_decision(conn, tenant, i)))
            return UserData(_read_profile(conn, tenant, user_key), decisions)

    def erase_user(self, tenant: str, user_key: str) -> int:
        with self._transaction("erase_user", "BEGIN IMMEDIATE") as conn:
            return sum(conn.execute(sql, (tenant, user_key)).rowcount for sql in _ERASE)

    def purge(self, *, now: float, profile_retention_s: float) -> dict[str, int]:
        with self._transaction("purge", "BEGIN IMMEDIATE") as conn:
            return {
                "profiles": conn.execute(_PRUNE_PROFILES, (now - profile_retention_s,)).rowcount,
                "decisions": conn.execute(_PRUNE_DECISIONS, (now - self.retention_s,)).rowcount,
                "attempts": conn.execute(_PRUNE_ATTEMPTS, (now - ATTEMPT_RETENTION_S,)).rowcount,
                "device_accounts": conn.execute(
                    _PRUNE_DEVICES, (now - DEVICE_WINDOW_S,)).rowcount,
                "tenant_minutes": conn.execute(
                    _PRUNE_MINUTES, ((now - ATTEMPT_RETENTION_S) // MINUTE_S,)).rowcount,
            }

    def get_decision(self, tenant: str, event_id: str) -> StoredDecision | None:
        with self._lock, self._errors("get_decision"):
            return _read_decision(self._conn, tenant, event_id)

    def get_profile(self, tenant: str, user_key: str) -> UserProfile | None:
        with self._lock, self._errors("get_profile"):
            return _read_profile(self._conn, tenant, user_key)

    def ping(self) -> None:
        with self._lock, self._errors("ping"):
            self._conn.execute(_USER_VERSION).fetchone()

    def close(self) -> None:
        with self._lock, self._errors("close"):
            self._conn.close()
