"""API keys of the service's callers: who may score, send feedback, administer.

A key is ``rk_<id>_<secret>``: ``id`` names the record (it is shown by ``riskengine keys
list`` and is not secret), ``secret`` is 256 random bits. The key is shown once, when it is
made; the store keeps only a hash of the secret. Keys live in a small JSON file of their own
(``RISKENGINE_API_KEYS``), rewritten atomically on every change, which a running service
picks up at its next request (``riskengine keys revoke`` needs no restart).

A key names the tenants it acts for: one, several, or all (``*``). A key file written before
keys named tenants (no ``tenants`` entry) gives its keys every tenant, as they had then.

>>> import tempfile, pathlib
>>> store = KeyStore(pathlib.Path(tempfile.mkdtemp()) / "keys.json")
>>> record, key = store.create("checkout", [Scope.SCORE], tenants=["shop"])
>>> store.verify(key) == record and record.allows(Scope.SCORE)
True
>>> record.allows(Scope.FEEDBACK), record.serves("shop"), record.serves("bank")
(False, True, False)
>>> store.revoke(record.id) and store.verify(key) is None
True
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

log = logging.getLogger("riskengine.auth")

FORMAT_VERSION = 1
KEY_PREFIX = "rk"
_ID_BYTES = 6
# rk_<12 hex>_<43 urlsafe base64 chars: token_urlsafe(32)>; the secret may hold "_" and "-".
_KEY_RE = re.compile(r"rk_(?P<id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})")
_NAME_MAX_CHARS = 64
ALL_TENANTS = "*"
# the wire's tenant pattern (riskengine.core.wire)
_TENANT_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class Scope(StrEnum):
    """What a key may do. ``admin`` implies every other scope.

    - ``score``: ``POST /v1/score``.
    - ``feedback``: ``POST /v1/feedback`` with a step-up result or a user's report.
    - ``analyst``: ``POST /v1/feedback`` with ``source: analyst`` (a verdict that may
      override what the engine decided).
    - ``metrics``: ``GET /metrics`` only (read-only, for the Prometheus scraper).
    - ``admin``: everything, the user-data and ``/v1/admin`` routes included.
    """

    SCORE = "score"
    FEEDBACK = "feedback"
    ANALYST = "analyst"
    METRICS = "metrics"
    ADMIN = "admin"


class KeyStoreError(RuntimeError):
    """The key file cannot be read, or holds something that is not a key list."""


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One caller's key as stored, without its secret or the secret's hash."""

    id: str
    name: str
    scopes: frozenset[Scope]
    created: str  # ISO 8601, UTC
    revoked: bool = False
    tenants: frozenset[str] = frozenset({ALL_TENANTS})  # ``*``: every tenant

    def allows(self, scope: Scope) -> bool:
        """True when this (unrevoked) key may act in ``scope``; ``admin`` may do anything."""
        return not self.revoked and (Scope.ADMIN in self.scopes or scope in self.scopes)

    @property
    def all_tenants(self) -> bool:
        return ALL_TENANTS in self.tenants

    def serves(self, tenant: str) -> bool:
        """True when this key may act for ``tenant``."""
        return ALL_TENANTS in self.tenants or tenant in self.tenants


def parse_tenants(tenants: Iterable[str]) -> frozenset[str]:
    """The tenants a key names, checked: tenant names as on the wire, or ``*`` for all."""
    wanted = frozenset(t.strip() for t in tenants)
    if not wanted:
        raise ValueError("a key needs at least one tenant (or '*' for all)")
    for tenant in wanted:
        if tenant != ALL_TENANTS and not _TENANT_RE.fullmatch(tenant):
            raise ValueError("a tenant is 1 to 64 letters, digits, '_', '.' or '-' "
                             "(or '*' for all tenants)")
    return frozenset({ALL_TENANTS}) if ALL_TENANTS in wanted else wanted


def _hash_secret(secret: str) -> str:
    # A plain SHA-256 is enough here, unlike for passwords: slow, salted hashes (bcrypt,
    # argon2) exist to make guessing low-entropy human passwords expensive. This secret is
    # 256 random bits from `secrets`, which no amount of guessing can find, fast hash or
    # not; and a fast hash keeps checking a key on every request at about a microsecond.
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


# Compared against when the presented id is unknown, so that an unknown id costs the same
# as a wrong secret.
_NO_SUCH_HASH = _hash_secret("no-such-key")


class KeyStore:
    """API keys in a JSON file: create, list, revoke, verify.

    Parameters
    ----------
    path
        The key file. A missing file is an empty store; it is created by the first
        ``create``.

    Verification reads memory only: the file is re-read when its modification time, size or
    inode changed since it was last read (one ``stat`` per call), so that a key revoked by
    another process (``riskengine keys revoke``) is refused from the next request on. A
    file that turns unreadable while serving is logged and the keys read last stay in
    force; one that is unreadable at start raises ``KeyStoreError``.

    Writes replace the whole file atomically (temporary file, then ``os.replace``), so a
    reader never sees half a file. Two processes changing keys at the same instant are not
    serialized: the last writer wins (keys are changed by hand, one operator at a time).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        # records and secret hashes by key id, swapped together so that a reader never
        # pairs the records of one version of the file with the hashes of another
        self._state: tuple[dict[str, KeyRecord], dict[str, str]] = ({}, {})
        self._signature: tuple[int, ...] | None = None
        with self._lock:
            self._load()

    # -- reading -------------------------------------------------------------------------

    def _stat_signature(self) -> tuple[int, ...] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)

    def _load(self) -> None:
        """Read the file into memory (the caller holds the lock)."""
        signature = self._stat_signature()
        records: dict[str, KeyRecord] = {}
        hashes: dict[str, str] = {}
        if signature is not None:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                for item in data["keys"]:
                    record = KeyRecord(
                        id=str(item["id"]), name=str(item["name"]),
                        scopes=frozenset(Scope(s) for s in item["scopes"]),
                        created=str(item["created"]), revoked=bool(item["revoked"]),
                        tenants=parse_tenants(item.get("tenants", [ALL_TENANTS])))
                    records[record.id] = record
                    hashes[record.id] = str(item["secret_sha256"])
            except FileNotFoundError:
                signature = None  # removed between stat and read: an empty store
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise KeyStoreError(f"{self.path}: not a readable API key file "
                                    f"({type(exc).__name__}: {exc})") from exc
        self._state, self._signature = (records, hashes), signature

    def _refresh(self) -> None:
        if self._stat_signature() == self._signature:
            return
        with self._lock:
            if self._stat_signature() == self._signature:
                return  # another thread reloaded it meanwhile
            try:
                self._load()
            except KeyStoreError:
                log.exception("API key file changed but cannot be read; keeping the keys "
                              "read before")
            else:
                log.info("API key file %s reloaded: %d keys", self.path, len(self._state[0]))

    def list(self) -> builtins.list[KeyRecord]:  # builtins: this method shadows `list`
        """Every key, revoked ones included, oldest first."""
        self._refresh()
        return sorted(self._state[0].values(), key=lambda r: (r.created, r.id))

    def verify(self, presented: str) -> KeyRecord | None:
        """The record of a valid key; None for a malformed, unknown or revoked one."""
        self._refresh()
        match = _KEY_RE.fullmatch(presented.strip())
        if match is None:
            return None
        key_id = match["id"]
        records, hashes = self._state
        expected = hashes.get(key_id, _NO_SUCH_HASH)
        good = hmac.compare_digest(_hash_secret(match["secret"]), expected)
        record = records.get(key_id)
        if not good or record is None or record.revoked:
            return None
        return record

    # -- writing -------------------------------------------------------------------------

    def create(self, name: str, scopes: Iterable[Scope | str], *,
               tenants: Iterable[str] = (ALL_TENANTS,),
               now: datetime | None = None) -> tuple[KeyRecord, str]:
        """Make a key for ``tenants`` (``*``: all); returns its record and the key itself,
        which is never shown again."""
        name = name.strip()
        if not name or len(name) > _NAME_MAX_CHARS:
            raise ValueError(f"a key's name is 1 to {_NAME_MAX_CHARS} characters")
        wanted = frozenset(Scope(s) for s in scopes)  # ValueError for an unknown scope
        if not wanted:
            raise ValueError("a key needs at least one scope")
        served = parse_tenants(tenants)
        secret = secrets.token_urlsafe(32)
        created = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
        with self._lock:
            self._load()  # start from the file as it is now, not as it was read
            records, hashes = self._state
            key_id = secrets.token_hex(_ID_BYTES)
            while key_id in records:
                key_id = secrets.token_hex(_ID_BYTES)
            record = KeyRecord(id=key_id, name=name, scopes=wanted, created=created,
                               tenants=served)
            records = {**records, key_id: record}
            hashes = {**hashes, key_id: _hash_secret(secret)}
            self._write(records, hashes)
        return record, f"{KEY_PREFIX}_{key_id}_{secret}"

    def revoke(self, key_id: str) -> bool:
        """Revoke a key, keeping its record; False when there is no key of that id.
        ``key_id`` may be the whole key: only its id part is used."""
        key_id = key_id_of(key_id)
        with self._lock:
            self._load()
            records, hashes = self._state
            record = records.get(key_id)
            if record is None:
                return False
            if not record.revoked:
                revoked = dataclasses.replace(record, revoked=True)
                self._write({**records, key_id: revoked}, hashes)
        return True

    def _write(self, records: dict[str, KeyRecord], hashes: dict[str, str]) -> None:
        """Replace the file atomically and adopt what was written (the caller holds the lock)."""
        data: dict[str, Any] = {
            "version": FORMAT_VERSION,
            "keys": [
                {"id": r.id, "name": r.name, "scopes": sorted(s.value for s in r.scopes),
                 "tenants": sorted(r.tenants), "created": r.created, "revoked": r.revoked,
                 "secret_sha256": hashes[r.id]}
                for r in sorted(records.values(), key=lambda r: (r.created, r.id))
            ],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # mkstemp makes the file readable by its owner only; os.replace keeps that mode.
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                   dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=2)
                out.write("\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._state = (records, hashes)
        self._signature = self._stat_signature()


def key_id_of(text: str) -> str:
    """The id part of a whole key (``rk_<id>_<secret>``), or ``text`` itself."""
    match = _KEY_RE.fullmatch(text.strip())
    return match["id"] if match is not None else text.strip()


def looks_like_key_id(text: str) -> bool:
    """True for a key id (12 hex digits): safe to print, unlike a whole key or a typo of one."""
    return re.fullmatch(r"[0-9a-f]{12}", text) is not None


__all__ = ["ALL_TENANTS", "KeyRecord", "KeyStore", "KeyStoreError", "Scope", "key_id_of",
           "looks_like_key_id", "parse_tenants"]
