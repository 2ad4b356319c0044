"""The SQLite store: one file, safe across the API's threads and across processes on one host."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson

from features.profile import AbuseBucket, UserProfile, Velocity, abuse_bucket, account_bit
from riskengine.adapters.sqlite_erasure import empty_log, wipe_deleted
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
    StoreError,
    UserData,
    abuse_filter,
    abuse_since,
    minute_window,
    resolve_rotation,
)
from riskengine.adapters.stores.jsontext import profile_round_trips

T = TypeVar("T")

SCHEMA_VERSION = 4
# The longest attempt window is IP_WINDOW_S (10 min); keeping an hour still counts events
# that arrive late, and the table stays small.
ATTEMPT_RETENTION_S = 3600.0
PRUNE_EVERY_RECORDS = 1000
# A background thread copies the write-ahead log into the database file this often, so the
# scoring thread seldom waits for the copy and its two fsyncs (SQLite's automatic
# checkpoint runs inside the commit that crosses 1,000 pages of log: a login writes about
# 19 pages, so one in ~60 logins waited several milliseconds). Each checkpoint is also
# when the log reaches the disk (``synchronous=NORMAL`` syncs it there, not at commit), so
# this is the most a power cut can lose: the logins of the last quarter of a second. Every
# 10 ms, as before, the process spent ~11 % more CPU a login (the thread's copies and
# syncs, on 2 shared cores; bench/README, "The SQLite store, third pass"): a page written
# again before the next checkpoint is copied once, and the longer the interval the more
# of a login's pages are.
CHECKPOINT_EVERY_S = 0.25
# The log can only start over from its beginning once a commit finds it entirely copied,
# which steady writes beside the background thread rarely allow: at this many pages of log
# (4 KiB each, 256 MiB) the committing thread checkpoints the little that is left itself and
# the log restarts. One login in a few thousand pays that (the fsyncs, a few milliseconds).
WAL_AUTOCHECKPOINT_PAGES = 65_536
# Profiles kept by user beside the text they were read or written as: a ``load`` that finds
# the same text (the user's last login was scored here) and a ``record`` whose transaction
# reads it again skip parsing it. Holds the users active in the last few thousand logins
# (a few kilobytes each); the text is compared every time, so another process's writes
# are never missed.
PARSED_PROFILES = 4096
# Rows one purge transaction deletes at most: each holds the file's write lock (and this
# store's lock) for milliseconds, so scoring on the same file goes on between them.
PURGE_CHUNK_ROWS = 2000
# Reads go through a memory map of the file (no system call per page read) and a page cache
# of this many KiB: a login reads and writes a few dozen pages, spread over the file.
MMAP_BYTES = 256 * 2**20
CACHE_KIB = 16 * 1024
# A feature vector of at least this many values is stored as a JSON array of its values
# with the id of its list of names (``feature_names``): about a third of the text, and
# rows small enough that a page holds two decisions without overflow pages.
COMPACT_MIN_FEATURES = 8

_SCHEMA = """
{profiles}
{attempts}
CREATE TABLE IF NOT EXISTS device_accounts (
    tenant TEXT NOT NULL,
    device_key TEXT NOT NULL,
    user_key TEXT NOT NULL,
    last_ts REAL NOT NULL,
    PRIMARY KEY (tenant, device_key, user_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tenant_minutes (
    tenant TEXT NOT NULL,
    minute INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    PRIMARY KEY (tenant, minute)
) WITHOUT ROWID;
{decisions}
CREATE INDEX IF NOT EXISTS device_accounts_by_user ON device_accounts (tenant, user_key);
{abuse}
"""
# The sustained-abuse buckets (schema version 2): per network (kind 'p', an address block;
# 'a', an ASN) and 10-minute bucket, counts and the failing accounts' 64-bit sketch (as
# SQLite's signed integer). No user's pseudonym.
_ABUSE_SCHEMA = """
CREATE TABLE IF NOT EXISTS abuse_buckets (
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    network TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    sketch INTEGER NOT NULL,
    PRIMARY KEY (tenant, kind, network, bucket)
) WITHOUT ROWID;
"""
# Schema version 3 writes as few pages a login as it can (each page written is a 4 KiB
# frame of the write-ahead log at commit; a login wrote ~20, now ~15, this machine's
# simulation). Profiles and decisions are tables with a rowid and a unique index on their
# key, not WITHOUT ROWID tables: there a row over ~1,000 bytes (a profile, a decision)
# spills into overflow pages, each another page written. Decisions and attempts are
# appended in the order they arrive, which is the order of their times (the server's
# clock, or a replay's), so they age out from the start of their tables by rowid, with no
# index on time to keep up at every login; device sightings and abuse buckets age out in
# ``purge`` (and a network's old buckets whenever it is counted). Feature vectors are
# stored compactly (``COMPACT_MIN_FEATURES``): their lists of names are kept once.
_PROFILES_SCHEMA = """
CREATE TABLE IF NOT EXISTS profiles (
    tenant TEXT NOT NULL,
    user_key TEXT NOT NULL,
    updated_ts REAL NOT NULL,
    profile TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS profiles_by_user ON profiles (tenant, user_key);
"""
_DECISIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS feature_names (
    id INTEGER PRIMARY KEY,
    names TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS decisions (
    tenant TEXT NOT NULL,
    event_id TEXT NOT NULL,
    user_key TEXT NOT NULL,
    ts REAL NOT NULL,
    learned INTEGER NOT NULL DEFAULT 0,
    feedback TEXT,
    names_id INTEGER REFERENCES feature_names (id),
    decision TEXT NOT NULL,
    features TEXT NOT NULL,
    sighting TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS decisions_by_event ON decisions (tenant, event_id);
CREATE INDEX IF NOT EXISTS decisions_by_user ON decisions (tenant, user_key, ts);
"""
# Schema version 4: an attempt is stored under the rowid of its decision (the same login's),
# so that the user's attempts are found through the decisions' index by user, and the
# attempts need no index by user of their own (one b-tree fewer written at every login,
# ~1.2 pages of log); an attempt goes when its decision goes (erasure, retention), never
# after. The windows' indexes cover what load counts, so that counting reads no table
# rows (they replaced the narrower attempts_by_ip / attempts_by_asn of earlier files).
_ATTEMPTS_TABLE = """
CREATE TABLE IF NOT EXISTS attempts (
    tenant TEXT NOT NULL,
    ip_key TEXT NOT NULL,
    asn INTEGER,
    user_key TEXT NOT NULL,
    ts REAL NOT NULL,
    failed INTEGER NOT NULL
);
"""
_ATTEMPTS_INDEXES = """
DROP INDEX IF EXISTS attempts_by_ip;
DROP INDEX IF EXISTS attempts_by_asn;
CREATE INDEX IF NOT EXISTS attempts_ip_window ON attempts (tenant, ip_key, ts, user_key, failed);
CREATE INDEX IF NOT EXISTS attempts_asn_window ON attempts (tenant, asn, ts, user_key, failed);
"""
_SCHEMA = _SCHEMA.format(abuse=_ABUSE_SCHEMA, profiles=_PROFILES_SCHEMA,
                         decisions=_DECISIONS_SCHEMA,
                         attempts=_ATTEMPTS_TABLE + _ATTEMPTS_INDEXES)
# What a file of an earlier schema version lacks, by version: run in order on open, in one
# transaction. Version 3 copies profiles and decisions into their new tables (a large file
# takes a while, once).
_MIGRATIONS = {
    1: _ABUSE_SCHEMA,
    2: f"""
ALTER TABLE profiles RENAME TO profiles_v2;
{_PROFILES_SCHEMA}
INSERT INTO profiles (tenant, user_key, updated_ts, profile)
  SELECT tenant, user_key, updated_ts, profile FROM profiles_v2;
DROP TABLE profiles_v2;
DROP INDEX IF EXISTS decisions_by_ts;
DROP INDEX IF EXISTS decisions_by_user;
ALTER TABLE decisions RENAME TO decisions_v2;
{_DECISIONS_SCHEMA}
INSERT INTO decisions
    (tenant, event_id, user_key, ts, learned, feedback, decision, features, sighting)
  SELECT tenant, event_id, user_key, ts, learned, feedback, decision, features, sighting
    FROM decisions_v2 ORDER BY ts;
DROP TABLE decisions_v2;
DROP INDEX IF EXISTS attempts_by_ts;
DROP INDEX IF EXISTS device_accounts_by_ts;
""",
    # Each attempt moves under the rowid of its decision: the same tenant, user and time,
    # paired in order of arrival when a user has several at one time. An attempt without
    # its decision (none is written so) is dropped: it is an hour's window count at most.
    3: f"""
DROP INDEX IF EXISTS attempts_by_user;
DROP INDEX IF EXISTS attempts_ip_window;
DROP INDEX IF EXISTS attempts_asn_window;
ALTER TABLE attempts RENAME TO attempts_v3;
{_ATTEMPTS_TABLE}
INSERT INTO attempts (rowid, tenant, ip_key, asn, user_key, ts, failed)
  SELECT d.id, a.tenant, a.ip_key, a.asn, a.user_key, a.ts, a.failed
    FROM (SELECT tenant, ip_key, asn, user_key, ts, failed, ROW_NUMBER() OVER
            (PARTITION BY tenant, user_key, ts ORDER BY rowid) AS nth FROM attempts_v3) AS a
    JOIN (SELECT rowid AS id, tenant, user_key, ts, ROW_NUMBER() OVER
            (PARTITION BY tenant, user_key, ts ORDER BY rowid) AS nth FROM decisions
           WHERE (tenant, user_key, ts) IN (SELECT tenant, user_key, ts FROM attempts_v3)
         ) AS d
      ON d.tenant = a.tenant AND d.user_key = a.user_key AND d.ts = a.ts AND d.nth = a.nth
   ORDER BY d.id;
DROP TABLE attempts_v3;
{_ATTEMPTS_INDEXES}
""",
}

_USER_VERSION = "PRAGMA user_version"
# One velocity window (the IP's or the ASN's, by the column that is also the parameter's
# name): users and failures among its latest ``scan_max`` attempts. A window has no upper
# end: it ends at the latest attempt it holds when that is later than the login (time only
# moves forward, so a login stamped in the past cannot look at an emptier window).
_WINDOW = """(SELECT COUNT(DISTINCT NULLIF(user_key, :user_key)) AS users,
          COALESCE(SUM(failed), 0) AS failures
     FROM (SELECT user_key, failed FROM attempts
            WHERE tenant = :tenant AND {column} = :{column} AND ts > :start
            ORDER BY ts DESC LIMIT :scan_max)
  )"""
# A network's sustained-abuse buckets that can count (``abuse_filter``), as "bucket
# attempts failures sketch" joined by commas (NULL when none): one value of the one-row load.
_ABUSE = """(SELECT group_concat(bucket || ' ' || attempts || ' ' || failures || ' ' || sketch, ',')
     FROM abuse_buckets
    WHERE tenant = :tenant AND kind = '{kind}' AND network = {network}
      AND bucket >= :abuse_first
      AND (bucket >= :abuse_recent
           OR (failures >= :abuse_least AND failures >= :abuse_share * attempts)))"""
# Everything ``load`` reads, in one statement: one step of the SQLite engine, one read
# snapshot, and no BEGIN / COMMIT of its own. NULLIF drops the asking user from the distinct
# count; failures count everyone's. A NULL ASN or device matches nothing, counting 0.
_LOAD = """
SELECT
  (SELECT profile FROM profiles WHERE tenant = :tenant AND user_key = :user_key),
  ip.users, ip.failures, asn.users, asn.failures,
  (SELECT COUNT(*) FROM device_accounts
    WHERE tenant = :tenant AND device_key = :device_key AND user_key != :user_key
      AND last_ts > :device_start),
  tm.attempts, tm.failures,
  {abuse_prefix}, {abuse_asn},
  d.user_key, d.ts, d.decision, d.features, d.sighting, d.feedback, d.learned, d.names_id
FROM
  {window_ip} AS ip,
  {window_asn} AS asn,
  (SELECT COALESCE(SUM(attempts), 0) AS attempts, COALESCE(SUM(failures), 0) AS failures
     FROM tenant_minutes WHERE tenant = :tenant AND minute BETWEEN :first AND :last
  ) AS tm
  LEFT JOIN decisions AS d ON d.tenant = :tenant AND d.event_id = :event_id
""".format(window_ip=_WINDOW.format(column="ip_key"), window_asn=_WINDOW.format(column="asn"),
           abuse_prefix=_ABUSE.format(kind="p", network=":prefix"),
           abuse_asn=_ABUSE.format(kind="a", network=":asn_text"))
_SELECT_PROFILE = "SELECT profile FROM profiles WHERE tenant = ? AND user_key = ?"
_SELECT_DECISION = (
    "SELECT user_key, ts, decision, features, sighting, feedback, learned, names_id"
    " FROM decisions WHERE tenant = ? AND event_id = ?"
)
_UPSERT_PROFILE = (
    "INSERT INTO profiles (tenant, user_key, profile, updated_ts) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (tenant, user_key)"
    " DO UPDATE SET profile = excluded.profile, updated_ts = excluded.updated_ts"
)
_INSERT_DECISION = (
    "INSERT INTO decisions"
    " (tenant, event_id, user_key, ts, decision, features, sighting, learned, names_id)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, event_id) DO NOTHING"
)
_ADD_NAMES = "INSERT INTO feature_names (names) VALUES (?) ON CONFLICT (names) DO NOTHING"
_NAMES_ID = "SELECT id FROM feature_names WHERE names = ?"
_NAMES_OF = "SELECT names FROM feature_names WHERE id = ?"
# Under its decision's rowid (schema 4). OR REPLACE: an attempt goes whenever its decision
# does, so a rowid SQLite gives a decision again (after the newest was erased) holds none.
_INSERT_ATTEMPT = (
    "INSERT OR REPLACE INTO attempts (rowid, tenant, ip_key, asn, user_key, ts, failed)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_DEVICE = (
    "INSERT INTO device_accounts (tenant, device_key, user_key, last_ts) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (tenant, device_key, user_key)"
    " DO UPDATE SET last_ts = MAX(last_ts, excluded.last_ts)"
)
_COUNT_ABUSE = (
    "INSERT INTO abuse_buckets (tenant, kind, network, bucket, attempts, failures, sketch)"
    " VALUES (?, ?, ?, ?, 1, ?, ?) ON CONFLICT (tenant, kind, network, bucket)"
    " DO UPDATE SET attempts = attempts + 1, failures = failures + excluded.failures,"
    " sketch = sketch | excluded.sketch"
)
# A network's buckets past the 6 hours go whenever it is counted (same page, no index).
# Only when it opens a new bucket would do (``RETURNING attempts``), but with most logins
# on a network opening its bucket (a home's block, a few logins a day) the RETURNING cost
# more than the deletes it spared (thread CPU, this machine: 22.6 + 7.0 us against 11.8 +
# 8.0 us a login).
_DROP_OLD_ABUSE = (
    "DELETE FROM abuse_buckets WHERE tenant = ? AND kind = ? AND network = ? AND bucket < ?"
)
_SET_FEEDBACK = (
    "UPDATE decisions SET feedback = ?, learned = ? WHERE tenant = ? AND event_id = ?"
)
_BUMP_MINUTE = (
    "INSERT INTO tenant_minutes (tenant, minute, attempts, failures) VALUES (?, ?, 1, ?)"
    " ON CONFLICT (tenant, minute)"
    " DO UPDATE SET attempts = attempts + 1, failures = failures + excluded.failures"
)
_PRUNE_MINUTES = "DELETE FROM tenant_minutes WHERE minute <= ?"


def _aged_prefix(table: str, column: str) -> str:
    """The rowid of the first row of ``table`` (in order of arrival) whose ``column`` is past
    the horizon ``:horizon``: every row before it is old (rows that arrived out of order
    after it wait until it ages out too). Past the last row when all are old."""
    return (f"COALESCE((SELECT rowid FROM {table} WHERE {column} > :horizon ORDER BY rowid"
            f" LIMIT 1), (SELECT MAX(rowid) + 1 FROM {table}))")


_PRUNE_DECISIONS = f"DELETE FROM decisions WHERE rowid < {_aged_prefix('decisions', 'ts')}"
_USER_DECISIONS = (
    "SELECT event_id FROM decisions WHERE tenant = ? AND user_key = ? ORDER BY ts, event_id"
)
_ERASE = (
    # The attempts first: they are found by their decisions' rowids (schema 4).
    "DELETE FROM attempts WHERE rowid IN"
    " (SELECT rowid FROM decisions WHERE tenant = ? AND user_key = ?)",
    *(f"DELETE FROM {table} WHERE tenant = ? AND user_key = ?"
      for table in ("profiles", "decisions", "device_accounts")),
)
# The attempts whose decision has gone by age (a decision retention shorter than the
# attempts' hour): an attempt never outlives its decision, or an erasure could miss it.
_ORPHANS_END = ("SELECT COALESCE((SELECT MIN(rowid) FROM decisions),"
                " (SELECT MAX(rowid) + 1 FROM attempts))")
_PRUNE_ORPHANS = f"DELETE FROM attempts WHERE rowid < ({_ORPHANS_END})"
_PRUNE_ATTEMPTS = f"DELETE FROM attempts WHERE rowid < {_aged_prefix('attempts', 'ts')}"
# A purge of a table kept in order of arrival: the old prefix found once, then deleted a
# chunk a transaction from the start.
_AGED_PREFIX = {table: f"SELECT {_aged_prefix(table, 'ts')}" for table in ("decisions", "attempts")}
_PURGE_PREFIX = {
    table: f"DELETE FROM {table} WHERE rowid IN"
           f" (SELECT rowid FROM {table} WHERE rowid < ? ORDER BY rowid LIMIT ?)"
    for table in ("decisions", "attempts")
}
# A purge of a table without an index on its time column: read in key order, a chunk a
# transaction, and its old rows deleted (as profiles are).
_PURGE_SCAN = {
    table: (f"SELECT {key}, {column} FROM {table} ORDER BY {key} LIMIT ?",
            f"SELECT {key}, {column} FROM {table} WHERE ({key}) > ({', '.join('?' * n)})"
            f" ORDER BY {key} LIMIT ?",
            f"DELETE FROM {table} WHERE ({key}) = ({', '.join('?' * n)})")
    for table, key, n, column in (
        ("device_accounts", "tenant, device_key, user_key", 3, "last_ts"),
        ("tenant_minutes", "tenant, minute", 2, "minute"),
        ("abuse_buckets", "tenant, kind, network, bucket", 4, "bucket"),
    )
}
_PROFILES_FIRST = (
    "SELECT tenant, user_key, updated_ts FROM profiles ORDER BY tenant, user_key LIMIT ?"
)
_PROFILES_AFTER = (
    "SELECT tenant, user_key, updated_ts FROM profiles WHERE (tenant, user_key) > (?, ?)"
    " ORDER BY tenant, user_key LIMIT ?"
)
_DELETE_PROFILE = "DELETE FROM profiles WHERE tenant = ? AND user_key = ?"


def _dumps(value: Any) -> str:
    """JSON text; orjson (several times faster than ``json`` on profiles and feature
    vectors), and ``json`` for what orjson refuses (integers past 64 bits, keys that are not
    strings), so that exactly what ``json`` accepts is accepted. Unlike ``json``, orjson
    writes a NaN or an infinity as null; no stored value takes one."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def _loads(text: str | bytes) -> Any:
    """Parse JSON text; ``json`` reads what orjson does not (NaN and Infinity literals,
    which rows written by ``json.dumps`` may hold)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _decoded(what: str, build: Callable[[], T]) -> T:
    """``build()``, with a malformed stored row reported as ``StoreError``."""
    try:
        return build()
    except (ValueError, TypeError, AttributeError) as exc:
        raise StoreError(f"corrupt {what}: {exc}") from exc


def _parse_profile(text: str, tenant: str, user_key: str) -> UserProfile:
    return _decoded(
        f"profile row {tenant}/{user_key}", lambda: UserProfile.from_dict(_loads(text))
    )


def _read_profile(conn: sqlite3.Connection, tenant: str, user_key: str) -> UserProfile | None:
    row = conn.execute(_SELECT_PROFILE, (tenant, user_key)).fetchone()
    if row is None:
        return None
    return _parse_profile(row[0], tenant, user_key)


Names = Callable[[int], tuple[str, ...]]


def _decision_of(
    tenant: str, event_id: str, row: tuple[Any, ...], names: Names
) -> StoredDecision:
    """The decision a row holds; ``names`` gives a compact feature vector's names."""
    user_key, ts, decision, features, seen, feedback, learned, names_id = row

    def vector() -> dict[str, Any]:
        values = _loads(features)
        if names_id is None:
            return dict(values)
        return dict(zip(names(names_id), values, strict=True))

    return _decoded(
        f"decision row {tenant}/{event_id}",
        lambda: StoredDecision(
            event_id,
            tenant,
            user_key,
            ts,
            _loads(decision),
            vector(),
            None if seen is None else _loads(seen),
            feedback,
            bool(learned),
        ),
    )


def _read_decision(
    conn: sqlite3.Connection, tenant: str, event_id: str, names: Names
) -> StoredDecision | None:
    row = conn.execute(_SELECT_DECISION, (tenant, event_id)).fetchone()
    return None if row is None else _decision_of(tenant, event_id, row, names)


def _update_profile(
    conn: sqlite3.Connection,
    tenant: str,
    user_key: str,
    update: ProfileUpdate,
    ts: float,
    parsed: tuple[str, UserProfile] | None = None,
) -> tuple[str, UserProfile]:
    """Apply ``update`` to the stored profile; returns the text written and the profile.
    ``parsed`` is a text and its parse, used when the stored text is still the same."""
    row = conn.execute(_SELECT_PROFILE, (tenant, user_key)).fetchone()
    if row is None:
        current = UserProfile()
    elif parsed is not None and parsed[0] == row[0]:
        current = parsed[1]
    else:
        current = _parse_profile(row[0], tenant, user_key)
    profile = update(current)
    text = _dumps(profile.to_dict())
    conn.execute(_UPSERT_PROFILE, (tenant, user_key, text, ts))
    return text, profile


_SIGNED = 1 << 63
_UNSIGNED = (1 << 64) - 1


def _abuse(text: str | None) -> tuple[AbuseBucket, ...]:
    """The buckets ``_ABUSE`` joined, oldest first, sketches unsigned again."""
    if not text:
        return ()
    out = []
    for item in text.split(","):
        bucket, attempts, failures, sketch = map(int, item.split())
        out.append((bucket, attempts, failures, sketch & _UNSIGNED))
    out.sort()
    return tuple(out)


def _abuse_rows(attempt: Attempt) -> list[tuple[str, str, str, int, int, int]]:
    """The rows ``_COUNT_ABUSE`` adds for an attempt: its block's and its ASN's."""
    bit = account_bit(attempt.user_key) if attempt.failed else 0
    signed = bit - (1 << 64) if bit >= _SIGNED else bit
    bucket, failed = abuse_bucket(attempt.ts), int(attempt.failed)
    rows = []
    if attempt.ip_prefix_key is not None:
        rows.append((attempt.tenant, "p", attempt.ip_prefix_key, bucket, failed, signed))
    if attempt.asn is not None:
        rows.append((attempt.tenant, "a", str(attempt.asn), bucket, failed, signed))
    return rows


def schema_version(path: str | Path) -> int:
    """The schema version of the SQLite file at ``path`` as it is (0: no riskengine schema
    yet), read without migrating it."""
    try:
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"sqlite store {path}: open failed: {exc}") from exc
    try:
        return int(conn.execute(_USER_VERSION).fetchone()[0])
    except sqlite3.Error as exc:
        raise StoreError(f"sqlite store {path}: reading its schema version failed: {exc}"
                         ) from exc
    finally:
        conn.close()


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
        # An erased user must not survive in free pages (``erase_user`` empties the log too).
        wipe_deleted(conn)
        conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        # Checkpoints run in the store's own thread (``_Checkpointer``); this is the limit
        # at which a commit still does one itself.
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
        version = conn.execute(_USER_VERSION).fetchone()[0]
        if version == 0:
            conn.executescript(
                f"BEGIN IMMEDIATE; {_SCHEMA} {_USER_VERSION} = {SCHEMA_VERSION}; COMMIT;"
            )
        elif version in _MIGRATIONS:
            steps = " ".join(_MIGRATIONS[v] for v in range(version, SCHEMA_VERSION))
            conn.executescript(
                f"BEGIN IMMEDIATE; {steps} {_USER_VERSION} = {SCHEMA_VERSION}; COMMIT;"
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
    """A :class:`~riskengine.adapters.stores.base.Store` in one SQLite file (or ``":memory:"``).

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

    embedded = True  # a local file, calls take microseconds: the API scores on its loop

    def __init__(
        self, path: str | Path, *, timeout_s: float = 5.0, retention_s: float = DECISION_RETENTION_S
    ) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self.retention_s = retention_s
        self._lock = threading.Lock()
        self._records = 0
        self._parsed: OrderedDict[tuple[str, str], tuple[str, UserProfile]] = OrderedDict()
        # The lists of feature names of compact vectors, both ways (see ``_pack``).
        self._names_ids: dict[tuple[str, ...], int] = {}
        self._names: dict[int, tuple[str, ...]] = {}
        with self._errors("open"):
            self._conn = _open(str(path), timeout_s)
        self._checkpointer = (
            None if str(path) == ":memory:" else _Checkpointer(str(path), timeout_s)
        )
        if self._checkpointer is not None:
            # A store dropped without close() must not leave its thread running.
            weakref.finalize(self, self._checkpointer.stop_soon)

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
        return resolve_rotation(self._load(query), query, self.get_profile)

    def _load(self, query: LoadQuery) -> Loaded:
        # One statement: every count comes from the same snapshot.
        params = {
            "tenant": query.tenant,
            "user_key": query.user_key,
            "ip_key": query.ip_key,
            "asn": query.asn,
            "device_key": query.device_key,
            "event_id": query.event_id,
            "now": query.now,
            "start": query.now - IP_WINDOW_S,
            "scan_max": WINDOW_SCAN_MAX,
            "device_start": query.now - DEVICE_WINDOW_S,
            "prefix": query.ip_prefix_key,
            "asn_text": None if query.asn is None else str(query.asn),
        }
        (params["abuse_first"], params["abuse_recent"], params["abuse_least"],
         params["abuse_share"]) = abuse_filter(query.now)
        params["first"], params["last"] = minute_window(query.now)
        with self._lock, self._errors("load"):
            row = self._conn.execute(_LOAD, params).fetchone()
        (raw_profile, ip_users, ip_failures, asn_users, asn_failures, device_accounts,
         tenant_attempts, tenant_failures, prefix_abuse, asn_abuse) = row[:10]
        profile = None
        if raw_profile is not None:
            user = (query.tenant, query.user_key)
            parsed = self._kept(user, raw_profile)
            if parsed is None:
                parsed = _parse_profile(raw_profile, query.tenant, query.user_key)
                self._keep_parsed(user, raw_profile, parsed)
            profile = parsed.copy()  # the kept parse stays the store's own
        previous = (None if row[10] is None
                    else _decision_of(query.tenant, query.event_id, row[10:], self._names_of))
        return Loaded(
            profile=profile,
            velocity=Velocity(
                ip_users_10m=int(ip_users),
                ip_failures_10m=int(ip_failures),
                asn_users_10m=int(asn_users),
                asn_failures_10m=int(asn_failures),
                device_accounts_30d=int(device_accounts),
                tenant_attempts_10m=int(tenant_attempts),
                tenant_failures_10m=int(tenant_failures),
                ip_prefix_abuse=_decoded("abuse buckets", lambda: _abuse(prefix_abuse)),
                asn_abuse=_decoded("abuse buckets", lambda: _abuse(asn_abuse)),
            ),
            previous=previous,
        )

    def _pack(self, features: dict[str, Any]) -> tuple[str, int | None]:
        """The text of a feature vector and the id of its list of names: a JSON array of
        its values when it has ``COMPACT_MIN_FEATURES`` or more (the names kept once, in
        ``feature_names``), else the JSON object and None. A list of names not seen before
        is added in a transaction of its own (once per list, per process)."""
        if len(features) < COMPACT_MIN_FEATURES:
            return _dumps(features), None
        names = tuple(features)
        names_id = self._names_ids.get(names)
        if names_id is None:
            text = _dumps(list(names))  # serialized first: keys that are not text fail here
            with self._transaction("record", "BEGIN IMMEDIATE") as conn:
                conn.execute(_ADD_NAMES, (text,))
                names_id = int(conn.execute(_NAMES_ID, (text,)).fetchone()[0])
            self._names_ids[names] = names_id
            self._names[names_id] = names
        return _dumps(list(features.values())), names_id

    def _names_of(self, names_id: int) -> tuple[str, ...]:
        """The list of feature names ``names_id`` stands for (call under the lock)."""
        names = self._names.get(names_id)
        if names is None:
            row = self._conn.execute(_NAMES_OF, (names_id,)).fetchone()
            if row is None:
                raise ValueError(f"no feature names {names_id}")
            names = self._names[names_id] = tuple(_loads(row[0]))
        return names

    def _kept(self, user: tuple[str, str], text: str) -> UserProfile | None:
        """The kept parse of ``text`` for this user, if it is the text kept."""
        with self._lock:
            kept = self._parsed.get(user)
            if kept is None or kept[0] != text:
                return None
            self._parsed.move_to_end(user)
            return kept[1]

    def _keep_parsed(self, user: tuple[str, str], text: str, profile: UserProfile) -> None:
        with self._lock:
            self._parsed[user] = (text, profile)
            self._parsed.move_to_end(user)
            while len(self._parsed) > PARSED_PROFILES:
                self._parsed.popitem(last=False)

    def record(
        self, decision: StoredDecision, attempt: Attempt, update: ProfileUpdate | None
    ) -> StoredDecision:
        tenant, user_key = decision.tenant, decision.user_key
        # Serialized before the write lock is taken: a decision that is not JSON fails here.
        features, names_id = self._pack(decision.features)
        row = (
            tenant,
            decision.event_id,
            user_key,
            decision.ts,
            _dumps(decision.decision),
            features,
            None if decision.sighting is None else _dumps(decision.sighting),
            int(decision.learned),
            names_id,
        )
        written = None
        with self._transaction("record", "BEGIN IMMEDIATE") as conn:
            # Taken out: the update may change what it is given, and it is kept again
            # below only as the profile now written.
            parsed = self._parsed.pop((tenant, user_key), None)
            # The insert is the duplicate check: nothing inserted, the event was recorded.
            inserted = conn.execute(_INSERT_DECISION, row)
            if inserted.rowcount == 0:
                stored = _read_decision(conn, tenant, decision.event_id, self._names_of)
                conn.rollback()
                if stored is None:  # cannot be: the insert met it under the write lock
                    raise StoreError(f"sqlite store {self.path}: decision {decision.event_id}"
                                     " both exists and does not")
                return stored
            if update is not None:
                written = _update_profile(conn, tenant, user_key, update, decision.ts, parsed)
            conn.execute(
                _INSERT_ATTEMPT,
                (
                    inserted.lastrowid,
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
            abuse = _abuse_rows(attempt)
            conn.executemany(_COUNT_ABUSE, abuse)
            first = abuse_since(attempt.ts)
            conn.executemany(_DROP_OLD_ABUSE, [(*r[:3], first) for r in abuse])
            self._records += 1
            if self._records % PRUNE_EVERY_RECORDS == 0:
                # Event time drives pruning so replays of old data keep their windows; the
                # wall clock caps it so one event stamped far ahead cannot wipe the counters.
                horizon = min(attempt.ts, time.time())
                conn.execute(_PRUNE_ATTEMPTS, {"horizon": horizon - ATTEMPT_RETENTION_S})
                conn.execute(_PRUNE_MINUTES, ((horizon - ATTEMPT_RETENTION_S) // MINUTE_S,))
                conn.execute(_PRUNE_DECISIONS, {"horizon": horizon - self.retention_s})
                conn.execute(_PRUNE_ORPHANS)
        if written is not None and profile_round_trips(written[1]):
            # Committed: the user's next load finds this text and skips parsing it. A copy,
            # since whoever made the update may still hold what it returned.
            self._keep_parsed((tenant, user_key), written[0], written[1].copy())
        elif parsed is not None and update is None:
            self._keep_parsed((tenant, user_key), *parsed)  # unchanged: still good
        return decision

    def apply_feedback(
        self, tenant: str, event_id: str, label: str, plan: FeedbackPlan
    ) -> tuple[FeedbackOutcome, StoredDecision | None]:
        with self._transaction("apply_feedback", "BEGIN IMMEDIATE") as conn:
            stored = _read_decision(conn, tenant, event_id, self._names_of)
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
            decisions = tuple(
                d for i in ids if (d := _read_decision(conn, tenant, i, self._names_of)))
            return UserData(_read_profile(conn, tenant, user_key), decisions)

    def erase_user(self, tenant: str, user_key: str) -> int:
        """Deletes the user's rows, zeroed in the file (``secure_delete``), then copies the
        write-ahead log back into the file and truncates it: the log still holds the pages
        as they were before. A reader holding the log for long (another process's) leaves
        it to the next checkpoint, which the store runs four times a second."""
        with self._transaction("erase_user", "BEGIN IMMEDIATE") as conn:
            self._parsed.pop((tenant, user_key), None)  # nothing of the user stays in memory
            gone = sum(conn.execute(sql, (tenant, user_key)).rowcount for sql in _ERASE)
        if str(self.path) != ":memory:":
            with self._lock, self._errors("erase_user"):
                empty_log(self._conn)
        return gone

    def purge(self, *, now: float, profile_retention_s: float) -> dict[str, int]:
        """Delete what retention no longer allows, ``PURGE_CHUNK_ROWS`` rows a transaction:
        a purge of millions of rows never holds up scoring on the same file for long. A
        purge cut short leaves only whole chunks done; running it again finishes it."""
        report = {"profiles": self._purge_profiles(now - profile_retention_s)}
        for table, horizon in (("decisions", now - self.retention_s),
                               ("attempts", now - ATTEMPT_RETENTION_S)):
            with self._lock, self._errors("purge"):
                end = self._conn.execute(_AGED_PREFIX[table], {"horizon": horizon}).fetchone()[0]
                if table == "attempts":  # and those whose decisions went (``_ORPHANS_END``)
                    orphans = self._conn.execute(_ORPHANS_END).fetchone()[0]
                    end = max((e for e in (end, orphans) if e is not None), default=None)
            report[table] = 0
            while end is not None:
                with self._transaction("purge", "BEGIN IMMEDIATE") as conn:
                    deleted = conn.execute(_PURGE_PREFIX[table], (end, PURGE_CHUNK_ROWS)).rowcount
                report[table] += deleted
                if deleted < PURGE_CHUNK_ROWS:
                    break
        for table, limit in (("device_accounts", now - DEVICE_WINDOW_S),
                             ("tenant_minutes", (now - ATTEMPT_RETENTION_S) // MINUTE_S),
                             ("abuse_buckets", abuse_since(now) - 1)):
            report[table] = self._purge_scan(table, limit)
        return report

    def _purge_scan(self, table: str, limit: float) -> int:
        """Delete the rows of ``table`` whose time column is at most ``limit``, reading it
        in key order ``PURGE_CHUNK_ROWS`` rows a transaction."""
        first, after_sql, delete = _PURGE_SCAN[table]
        purged, after = 0, None
        while True:
            with self._transaction("purge", "BEGIN IMMEDIATE") as conn:
                page = conn.execute(first if after is None else after_sql,
                                    (PURGE_CHUNK_ROWS,) if after is None
                                    else (*after, PURGE_CHUNK_ROWS)).fetchall()
                old = [row[:-1] for row in page if row[-1] <= limit]
                conn.executemany(delete, old)
            purged += len(old)
            if len(page) < PURGE_CHUNK_ROWS:
                return purged
            after = page[-1][:-1]

    def _purge_profiles(self, horizon: float) -> int:
        purged = 0
        after: tuple[str, str] | None = None
        while True:
            with self._transaction("purge", "BEGIN IMMEDIATE") as conn:
                page = conn.execute(
                    _PROFILES_FIRST if after is None else _PROFILES_AFTER,
                    (PURGE_CHUNK_ROWS,) if after is None else (*after, PURGE_CHUNK_ROWS),
                ).fetchall()
                expired = [(tenant, user) for tenant, user, ts in page if ts <= horizon]
                conn.executemany(_DELETE_PROFILE, expired)
                for user in expired:  # purged profiles must not live on in memory
                    self._parsed.pop(user, None)
            purged += len(expired)
            if len(page) < PURGE_CHUNK_ROWS:
                return purged
            after = (page[-1][0], page[-1][1])

    def get_decision(self, tenant: str, event_id: str) -> StoredDecision | None:
        with self._lock, self._errors("get_decision"):
            return _read_decision(self._conn, tenant, event_id, self._names_of)

    def get_profile(self, tenant: str, user_key: str) -> UserProfile | None:
        with self._lock, self._errors("get_profile"):
            return _read_profile(self._conn, tenant, user_key)

    def ping(self) -> None:
        with self._lock, self._errors("ping"):
            self._conn.execute(_USER_VERSION).fetchone()

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        with self._lock, self._errors("close"):
            self._parsed.clear()
            self._conn.close()


class _Checkpointer:
    """Copies the write-ahead log into the database file from a thread of its own.

    A PASSIVE checkpoint never blocks readers or writers, and the sqlite3 module lets go of
    the GIL while SQLite works, so scoring goes on while pages are copied and synced. It
    uses its own connection; a failed round (the file busy with another process's
    checkpoint, a full disk) is simply tried again at the next one.
    """

    def __init__(self, path: str, timeout_s: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(path, timeout_s), name="sqlite-checkpoint", daemon=True
        )
        self._thread.start()

    def _run(self, path: str, timeout_s: float) -> None:
        try:
            conn = sqlite3.connect(path, timeout=timeout_s, check_same_thread=False,
                                   isolation_level=None)
        except sqlite3.Error:
            return  # the committing thread's own checkpoints still bound the log
        try:
            while not self._stop.wait(CHECKPOINT_EVERY_S):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:
                    continue
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)

    def stop_soon(self) -> None:
        """Stop at the thread's next wake-up, without waiting for it."""
        self._stop.set()
