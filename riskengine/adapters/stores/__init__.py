"""Where profiles, velocity counters and decisions live: one Protocol, several stores.

Pick one with :func:`open_store` and the store URL from the settings.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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
    Store,
    StoreContended,
    StoredDecision,
    StoreError,
    UserData,
)
from riskengine.adapters.stores.memory import MemoryStore
from riskengine.adapters.stores.redis import RedisStore
from riskengine.adapters.stores.sqlite import SqliteStore

__all__ = [
    "DEVICE_WINDOW_S",
    "IP_WINDOW_S",
    "MINUTE_S",
    "Attempt",
    "FeedbackOutcome",
    "FeedbackPlan",
    "LoadQuery",
    "Loaded",
    "MemoryStore",
    "ProfileUpdate",
    "RedisStore",
    "SqliteStore",
    "Store",
    "StoreContended",
    "StoreError",
    "StoredDecision",
    "UserData",
    "WINDOW_SCAN_MAX",
    "migrate_store",
    "open_store",
]

_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def _redacted(url: str) -> str:
    """``url`` with any password masked, fit for an error message that may reach a log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _retention(retention_s: float | None) -> dict[str, float]:
    return {} if retention_s is None else {"retention_s": retention_s}


def _sqlite_path(url: str) -> str | None:
    """The SQLite file a store URL names; None when it names no SQLite store."""
    for prefix in ("sqlite://", "sqlite:"):
        if url.startswith(prefix):
            path = url.removeprefix(prefix)
            if not path:
                raise ValueError(f"store url {url!r} names no SQLite file")
            return path
    if "://" not in url and url.lower().endswith(_SQLITE_SUFFIXES):
        return url
    return None


def open_store(
    url: str, *, retention_s: float | None = None, timeout_s: float | None = None
) -> Store:
    """The store a URL names.

    ``retention_s`` is how long decisions are kept (the stores' default: 30 days);
    ``timeout_s`` the deadline of each call to a network store.
    ``memory:`` or ``memory://`` is a fresh in-process store (``memory:?retention_s=N``
    forgets decisions N seconds old). ``sqlite:PATH`` and
    ``sqlite://PATH`` open a SQLite file (``sqlite:///abs/path`` for an absolute path,
    ``sqlite::memory:`` for a private in-memory database), as does a bare path ending in
    ``.db``, ``.sqlite`` or ``.sqlite3``. ``redis://`` and ``rediss://`` URLs
    (``redis://[:password@]host:port/db``) open a :class:`RedisStore`, which connects on
    first use.

    Raises
    ------
    ValueError
        When the URL names no store this build provides.
    StoreError
        When the SQLite file cannot be opened.
    """
    if url in ("memory:", "memory://"):
        return MemoryStore()
    if url.startswith(("memory:?retention_s=", "memory://?retention_s=")):
        try:
            return MemoryStore(retention_s=float(url.split("=", 1)[1]))
        except ValueError:
            raise ValueError(f"store url {url!r}: retention_s must be seconds") from None
    path = _sqlite_path(url)
    if path is not None:
        return SqliteStore(path, **_retention(retention_s))
    if url.startswith(("redis://", "rediss://")):
        deadline = {} if timeout_s is None else {"timeout_s": timeout_s}
        return RedisStore(url, **_retention(retention_s), **deadline)
    raise ValueError(
        f"unsupported store url {_redacted(url)!r}: expected memory:, sqlite:PATH, "
        "a path ending in .db, .sqlite or .sqlite3, redis:// or rediss://"
    )


def migrate_store(url: str, *, timeout_s: float | None = None) -> dict[str, object]:
    """Bring the store a URL names to the layout this release reads, once after an upgrade;
    safe to run again (a second run finds nothing to do) and while instances score.

    A Redis store moves the keys of the per-user layout of releases before the tenant hash
    tag (``RedisStore.migrate_layout``); a SQLite file is migrated to the current schema
    version, as opening it does (``SqliteStore`` runs the versioned migrations in one
    transaction). Returns what was done: ``{"store": "redis", "keys_moved": N}`` or
    ``{"store": "sqlite", "schema_before": V, "schema": SCHEMA_VERSION}``.

    Raises
    ------
    ValueError
        For a URL that names no store, a memory store (nothing kept to migrate) or a
        SQLite file that does not exist (migrating it would only create an empty one).
    StoreError
        When the store cannot be reached or read.
    """
    from riskengine.adapters.stores.sqlite import SCHEMA_VERSION, schema_version

    if url.startswith("memory:"):
        raise ValueError("a memory: store keeps nothing to migrate")
    path = _sqlite_path(url)
    if path is not None:
        if path == ":memory:" or not Path(path).is_file():
            raise ValueError(f"no SQLite file at {path!r} to migrate")
        before = schema_version(path)
        SqliteStore(path, **({} if timeout_s is None else {"timeout_s": timeout_s})).close()
        return {"store": "sqlite", "schema_before": before, "schema": SCHEMA_VERSION}
    store = open_store(url, timeout_s=timeout_s)
    if not isinstance(store, RedisStore):  # open_store refused every other kind above
        store.close()
        raise ValueError(f"store url {_redacted(url)!r} has no layout to migrate")
    try:
        return {"store": "redis", "keys_moved": store.migrate_layout()}
    finally:
        store.close()
