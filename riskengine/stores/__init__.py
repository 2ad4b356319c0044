"""Where profiles, velocity counters and decisions live: one Protocol, several stores.

Pick one with :func:`open_store` and the store URL from the settings.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from riskengine.stores.base import (
    DEVICE_WINDOW_S,
    IP_WINDOW_S,
    MINUTE_S,
    Attempt,
    FeedbackOutcome,
    Loaded,
    LoadQuery,
    ProfileUpdate,
    Store,
    StoredDecision,
    StoreError,
)
from riskengine.stores.memory import MemoryStore
from riskengine.stores.sqlite import SqliteStore

__all__ = [
    "DEVICE_WINDOW_S",
    "IP_WINDOW_S",
    "MINUTE_S",
    "Attempt",
    "FeedbackOutcome",
    "LoadQuery",
    "Loaded",
    "MemoryStore",
    "ProfileUpdate",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoredDecision",
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


def open_store(url: str) -> Store:
    """The store a URL names.

    ``memory:`` or ``memory://`` is a fresh in-process store (``memory:?retention_s=N``
    forgets decisions N seconds old). ``sqlite:PATH`` and
    ``sqlite://PATH`` open a SQLite file (``sqlite:///abs/path`` for an absolute path,
    ``sqlite::memory:`` for a private in-memory database), as does a bare path ending in
    ``.db``, ``.sqlite`` or ``.sqlite3``.

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
            return SqliteStore(path)
    if "://" not in url and url.lower().endswith(_SQLITE_SUFFIXES):
        return SqliteStore(url)
    if url.startswith(("redis://", "rediss://")):
        raise ValueError(f"store url {_redacted(url)!r}: the Redis store is not available yet")
    raise ValueError(
        f"unsupported store url {_redacted(url)!r}: "
        "expected memory:, sqlite:PATH or a path ending in .db, .sqlite or .sqlite3"
    )
