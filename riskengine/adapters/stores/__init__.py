"""Where profiles, velocity counters and decisions live: one Protocol, several stores.

Pick one with :func:`open_store` and the store URL from the settings.
"""

from __future__ import annotations

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
    for prefix in ("sqlite://", "sqlite:"):
        if url.startswith(prefix):
            path = url.removeprefix(prefix)
            if not path:
                raise ValueError(f"store url {url!r} names no SQLite file")
            return SqliteStore(path, **_retention(retention_s))
    if "://" not in url and url.lower().endswith(_SQLITE_SUFFIXES):
        return SqliteStore(url, **_retention(retention_s))
    if url.startswith(("redis://", "rediss://")):
        deadline = {} if timeout_s is None else {"timeout_s": timeout_s}
        return RedisStore(url, **_retention(retention_s), **deadline)
    raise ValueError(
        f"unsupported store url {_redacted(url)!r}: expected memory:, sqlite:PATH, "
        "a path ending in .db, .sqlite or .sqlite3, redis:// or rediss://"
    )
