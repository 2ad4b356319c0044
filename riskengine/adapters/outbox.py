"""The outbox: writes the shared store could not take, kept on local disk until it is back.

While the shared store is down the engine still answers, and what it would have written is
queued here under a key; once the store recovers, :meth:`Outbox.drain` replays the queue in
the order it was written.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from riskengine.adapters.sqlite_erasure import empty_log, wipe_deleted

SCHEMA_VERSION = 2

# The item count is kept by triggers in a one-row table: COUNT(*) scans the table, which
# costs a millisecond per put near a full queue, just when the store is down and puts pour
# in. The triggers keep it right for every connection that writes the file.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    queued_at REAL NOT NULL,
    tenant TEXT,
    user_key TEXT,
    event_id TEXT,
    UNIQUE (kind, key)
);
CREATE INDEX IF NOT EXISTS outbox_user ON outbox (user_key);
CREATE INDEX IF NOT EXISTS outbox_event ON outbox (tenant, event_id);
CREATE TABLE IF NOT EXISTS outbox_size (
    only INTEGER PRIMARY KEY CHECK (only = 0),
    items INTEGER NOT NULL
);
INSERT OR IGNORE INTO outbox_size (only, items) VALUES (0, 0);
CREATE TRIGGER IF NOT EXISTS outbox_size_insert AFTER INSERT ON outbox
BEGIN UPDATE outbox_size SET items = items + 1; END;
CREATE TRIGGER IF NOT EXISTS outbox_size_delete AFTER DELETE ON outbox
BEGIN UPDATE outbox_size SET items = items - 1; END;
"""

_USER_VERSION = "PRAGMA user_version"
_SIZE = "SELECT items FROM outbox_size"
_EXISTS = "SELECT 1 FROM outbox WHERE kind = ? AND key = ?"
_INSERT = ("INSERT INTO outbox (kind, key, payload, queued_at, tenant, user_key, event_id) "
           "VALUES (?, ?, ?, ?, ?, ?, ?)")
# Version 1 files had no owner columns: they are added, and filled from the payloads of the
# kinds that version wrote.
_MIGRATE_1 = """
ALTER TABLE outbox ADD COLUMN tenant TEXT;
ALTER TABLE outbox ADD COLUMN user_key TEXT;
ALTER TABLE outbox ADD COLUMN event_id TEXT;
UPDATE outbox SET tenant = json_extract(payload, '$.decision.tenant'),
    user_key = json_extract(payload, '$.decision.user_key'),
    event_id = json_extract(payload, '$.decision.event_id') WHERE kind = 'record';
UPDATE outbox SET tenant = json_extract(payload, '$.tenant'),
    event_id = json_extract(payload, '$.event_id') WHERE kind = 'feedback';
UPDATE outbox SET user_key = json_extract(payload, '$.user') WHERE kind = 'lesson';
CREATE INDEX IF NOT EXISTS outbox_user ON outbox (user_key);
CREATE INDEX IF NOT EXISTS outbox_event ON outbox (tenant, event_id);
"""
_PENDING = "SELECT id, kind, key, payload, attempts, queued_at FROM outbox ORDER BY id LIMIT ?"
_DELETE = "DELETE FROM outbox WHERE id = ?"
_BUMP = "UPDATE outbox SET attempts = attempts + 1 WHERE id = ?"


class OutboxError(RuntimeError):
    """The outbox file could not be read or written."""


class OutboxFull(OutboxError):
    """The outbox holds ``max_items`` items and refuses more."""


@dataclass(frozen=True, slots=True)
class Owner:
    """Whom a queued item concerns, as far as it says: kept beside the payload so that a
    user's erasure finds the user's items by key."""

    tenant: str | None = None
    user_key: str | None = None
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One queued operation: what to do (``kind``), its idempotency ``key``, the JSON
    ``payload``, how many replays have failed so far, and when it was queued (seconds since
    the epoch)."""

    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    attempts: int
    queued_at: float


@dataclass(frozen=True, slots=True)
class DrainResult:
    """What one :meth:`Outbox.drain` did: items applied and removed, items that failed (0 or
    1, as a drain stops at the first failure), items left in the outbox, and the exception
    that stopped it, if one did."""

    applied: int
    failed: int
    left: int
    error: Exception | None = field(default=None, compare=False, repr=False)


def _open(path: str) -> sqlite3.Connection:
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # check_same_thread=False: callers come from a thread pool; the outbox's lock serializes
    # use of the one connection. isolation_level=None: transactions are begun explicitly.
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        # Survives a crash of the process; a power loss can drop the last few puts only.
        conn.execute("PRAGMA synchronous = NORMAL")
        # An erased user's items must not survive in the file's bytes (``forget`` also
        # empties the log).
        wipe_deleted(conn)
        version = conn.execute(_USER_VERSION).fetchone()[0]
        if version == 0:
            conn.executescript(
                f"BEGIN IMMEDIATE; {_SCHEMA} {_USER_VERSION} = {SCHEMA_VERSION}; COMMIT;"
            )
        elif version == 1:
            conn.executescript(
                f"BEGIN IMMEDIATE; {_MIGRATE_1} {_USER_VERSION} = {SCHEMA_VERSION}; COMMIT;"
            )
        elif version != SCHEMA_VERSION:
            raise OutboxError(
                f"outbox {path} has schema version {version}; "
                f"this riskengine reads version {SCHEMA_VERSION}"
            )
    except BaseException:
        conn.close()
        raise
    return conn


def _owned(user_keys: Iterable[str], tenant: str | None, event_ids: Iterable[str],
           head: str) -> Iterator[tuple[str, list[Any]]]:
    """``head`` (a DELETE or SELECT of the outbox) over the items of these user pseudonyms
    and of these events of ``tenant``, 500 keys a statement."""
    users, events = list(user_keys), list(event_ids)
    for i in range(0, len(users), 500):
        part = users[i:i + 500]
        yield f"{head} WHERE user_key IN ({','.join('?' * len(part))})", part
    for i in range(0, len(events), 500):
        part = events[i:i + 500]
        yield (f"{head} WHERE tenant = ? AND event_id IN ({','.join('?' * len(part))})",
               [tenant, *part])


class Outbox:
    """A durable local queue of store writes, replayed in order and idempotent by key.

    Each item is kept under ``(kind, key)``: putting the same pair again while it is queued
    changes nothing, so an event queued twice is applied once. Once an item is applied and
    removed the pair is forgotten; a later put queues it anew, and the store's own
    idempotency (``record`` by ``event_id``) makes that second write harmless.

    Payloads must hold pseudonymous keys only, never a raw personal identifier (user name,
    e-mail, IP address): the file outlives the request and is not covered by the store's
    retention. The outbox never logs payloads, and its errors name neither payloads nor keys.

    One SQLite file (WAL mode) behind one connection and a lock, so it is safe across the
    API's threads; ``":memory:"`` gives a queue that dies with the process, for tests.

    Parameters
    ----------
    path
        Database file, created with its parent folders when missing, or ``":memory:"``.
    max_items
        Items held at most; :meth:`put` raises :class:`OutboxFull` beyond that, so an outage
        that lasts cannot fill the disk.
    clock
        Seconds since the epoch, stamped on items as ``queued_at``.

    Examples
    --------
    >>> outbox = Outbox(":memory:")
    >>> outbox.put("record", "evt-1", {"user_key": "u_9f2c"}), outbox.put("record", "evt-1", {})
    (True, False)
    >>> outbox.drain(lambda item: None)
    DrainResult(applied=1, failed=0, left=0)
    >>> outbox.close()
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_items: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_items < 1:
            raise ValueError(f"max_items must be at least 1, got {max_items}")
        self.path = path
        self.max_items = max_items
        self.clock = clock
        self._lock = threading.Lock()
        # Held for a whole drain, apart from the connection lock, so that puts go on while
        # a drain waits on the store.
        self._draining = threading.Lock()
        with self._errors("open"):
            self._conn = _open(str(path))

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise OutboxError(f"outbox {self.path}: {action} failed: {exc}") from exc

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        # BEGIN IMMEDIATE takes the write lock first, so a check and the write that depends on
        # it cannot be split by another process sharing the file.
        with self._lock, self._errors(action):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.rollback()
                raise
            self._conn.commit()

    def put(self, kind: str, key: str, payload: dict[str, Any], owner: Owner | None = None
            ) -> bool:
        """Queue ``payload`` under ``(kind, key)``, concerning ``owner``.

        Returns
        -------
        bool
            True when queued, False when that pair is already queued (nothing changes).

        Raises
        ------
        OutboxFull
            When the outbox holds ``max_items`` items; a pair already queued is not refused.
        """
        if not kind or not key:
            raise ValueError("put needs a non-empty kind and key")
        text = json.dumps(payload, separators=(",", ":"))
        with self._transaction("put") as conn:
            if conn.execute(_EXISTS, (kind, key)).fetchone() is not None:
                return False
            (items,) = conn.execute(_SIZE).fetchone()
            if items >= self.max_items:
                raise OutboxFull(
                    f"outbox {self.path} is full ({self.max_items} items); "
                    f"refused an item of kind {kind!r}"
                )
            who = owner or Owner()
            conn.execute(_INSERT, (kind, key, text, self.clock(), who.tenant, who.user_key,
                                   who.event_id))
        return True

    def pending(self, limit: int = 500) -> list[OutboxItem]:
        """The oldest ``limit`` items, in the order they were queued."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        with self._lock, self._errors("pending"):
            rows = self._conn.execute(_PENDING, (limit,)).fetchall()
        items = []
        for item_id, kind, key, payload, attempts, queued_at in rows:
            try:
                decoded = json.loads(payload)
            except ValueError as exc:
                # Names the row only: the text may hold what the caller queued.
                raise OutboxError(f"outbox {self.path}: item {item_id} is corrupt") from exc
            items.append(OutboxItem(item_id, kind, key, decoded, attempts, queued_at))
        return items

    def done(self, item_id: int) -> None:
        """Remove an applied item; an id already removed is ignored."""
        with self._transaction("done") as conn:
            conn.execute(_DELETE, (item_id,))

    def retry_later(self, item_id: int) -> None:
        """Count one more failed attempt for an item, which stays queued in its place."""
        with self._transaction("retry_later") as conn:
            conn.execute(_BUMP, (item_id,))

    def drain(self, apply: Callable[[OutboxItem], None], *, limit: int = 500) -> DrainResult:
        """Replay up to ``limit`` items in order, removing each one ``apply`` accepts.

        On the first exception from ``apply`` the drain stops, as the store is most likely
        still down: that item's attempts go up and it, and every later item, stays queued in
        order for the next drain. The exception is not raised; it shows as ``failed=1`` and
        ``error``.

        One drain runs at a time: a call made while another drain runs returns at once with
        nothing applied, so replays cannot overtake one another.
        """
        if not self._draining.acquire(blocking=False):
            return DrainResult(applied=0, failed=0, left=len(self))
        try:
            applied = 0
            for item in self.pending(limit):
                try:
                    apply(item)
                except Exception as exc:
                    self.retry_later(item.id)
                    return DrainResult(applied=applied, failed=1, left=len(self), error=exc)
                self.done(item.id)
                applied += 1
            return DrainResult(applied=applied, failed=0, left=len(self))
        finally:
            self._draining.release()

    def forget(self, *, user_keys: Iterable[str], tenant: str | None = None,
               event_ids: Iterable[str] = ()) -> int:
        """Remove every pending item of these user pseudonyms, and of these events of
        ``tenant`` (a user's erasure reaches the outbox too); returns how many went.

        The deleted rows are zeroed in the file (``secure_delete``) and the write-ahead log,
        which still holds their earlier pages, is copied back and emptied."""
        gone = 0
        with self._transaction("forget") as conn:
            for sql, params in _owned(user_keys, tenant, event_ids, "DELETE FROM outbox"):
                gone += conn.execute(sql, params).rowcount
        if gone:
            with self._lock, self._errors("forget"):
                empty_log(self._conn)
        return gone

    def of_user(self, *, user_keys: Iterable[str], tenant: str | None = None,
                event_ids: Iterable[str] = ()) -> list[OutboxItem]:
        """The pending items ``forget`` would remove, oldest first (the user's right of
        access reaches the outbox too)."""
        rows: dict[int, tuple[Any, ...]] = {}
        with self._lock, self._errors("of_user"):
            for sql, params in _owned(user_keys, tenant, event_ids,
                                      "SELECT id, kind, key, payload, attempts, queued_at"
                                      " FROM outbox"):
                rows.update((row[0], row) for row in self._conn.execute(sql, params))
        items = []
        for item_id, kind, key, payload, attempts, queued_at in sorted(rows.values()):
            try:
                decoded = json.loads(payload)
            except ValueError as exc:
                raise OutboxError(f"outbox {self.path}: item {item_id} is corrupt") from exc
            items.append(OutboxItem(item_id, kind, key, decoded, attempts, queued_at))
        return items

    def __len__(self) -> int:
        with self._lock, self._errors("len"):
            (items,) = self._conn.execute(_SIZE).fetchone()
        return int(items)

    def close(self) -> None:
        with self._lock, self._errors("close"):
            self._conn.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
