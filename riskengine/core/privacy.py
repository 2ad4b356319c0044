"""Keyed pseudonyms for personal identifiers.

Every identifier (account name, device id, IMSI, ICCID, Bluetooth address, SSID, phone
number, IP) is replaced by HMAC-SHA256 under a secret key before anything stores or logs
it. A plain hash would not do: IMEIs and phone numbers are few enough to enumerate. Each
kind of identifier has its own domain, so the same string as a device id and as an SSID
gives unrelated pseudonyms, and account pseudonyms also bind the tenant.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Sequence
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    USER = "user"
    DEVICE = "device"
    BLUETOOTH = "bluetooth"
    SSID = "ssid"
    IMSI = "imsi"
    ICCID = "iccid"
    PHONE = "phone"
    IP = "ip"
    IP_PREFIX = "ip_prefix"
    # A caller's event id may carry a phone number or an account name.
    EVENT_ID = "event_id"
    # A keyed digest of a whole request (which holds identifiers), for idempotency checks.
    REQUEST = "request"


# HMAC's inner and outer pads (RFC 2104) as byte translation tables, as ``hmac`` makes them.
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))
_URLSAFE = bytes.maketrans(b"+/", b"-_")


class _KeyedHash:
    """One key's pseudonyms: HMAC-SHA256 of ``<kind>\\0<scope>\\0<value>``, the first 16
    bytes in unpadded url-safe base64 behind ``<key_id>.``.

    The bytes of ``hmac.new(key, msg, hashlib.sha256)`` at under half its cost: the padded
    key blocks are hashed once here, the inner one already followed by each kind's domain
    (``<kind>\\0``), so that a call resumes from copies of two states and hashes only
    ``<scope>\\0<value>`` (``hmac.digest`` is no faster: it sets the key up again on every
    call).
    """

    __slots__ = ("_inner", "_outer", "_prefix")

    def __init__(self, key: bytes, key_id: str) -> None:
        block_size = hashlib.sha256().block_size
        if len(key) > block_size:  # HMAC hashes a long key first
            key = hashlib.sha256(key).digest()
        key = key.ljust(block_size, b"\0")
        inner = hashlib.sha256(key.translate(_IPAD))
        self._inner = {kind: _then(inner, f"{kind.value}\x00".encode()) for kind in Kind}
        self._outer = hashlib.sha256(key.translate(_OPAD))
        self._prefix = f"{key_id}."

    def __call__(self, kind: Kind, value: str, *, scope: str = "") -> str:
        # ``_of`` written out: this is called ~10 times a login.
        inner = self._inner[kind].copy()
        inner.update(f"{scope}\x00{value}".encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        text = binascii.b2a_base64(outer.digest()[:16], newline=False)[:22]
        return self._prefix + text.translate(_URLSAFE).decode()

    def of_utf8(self, kind: Kind, value: bytes, *, scope: str = "") -> str:
        """``self(kind, value.decode(), scope=scope)`` for a ``value`` that is already UTF-8
        (a serializer's output), without decoding it and encoding it again."""
        return self._of(kind, f"{scope}\x00".encode() + value)

    def _of(self, kind: Kind, scoped: bytes) -> str:
        """The pseudonym of ``<scope>\\0<value>`` (``scoped``) of ``kind``."""
        inner = self._inner[kind].copy()
        inner.update(scoped)
        outer = self._outer.copy()
        outer.update(inner.digest())
        # 16 bytes are 22 base64 characters and two "=" of padding, which are dropped.
        text = binascii.b2a_base64(outer.digest()[:16], newline=False)[:22]
        return self._prefix + text.translate(_URLSAFE).decode()


def _then(state: Any, data: bytes) -> Any:
    """A copy of the hash ``state`` that has also taken ``data``."""
    state = state.copy()
    state.update(data)
    return state


class Pseudonymizer(_KeyedHash):
    """Turns identifiers into ``<key_id>.<22 url-safe chars>`` (128 bits of HMAC-SHA256).

    The key id prefix lets a later key rotation tell which key made a stored pseudonym.

    >>> p = Pseudonymizer(b"k" * 32, key_id="k1")
    >>> p(Kind.DEVICE, "490154203237518").startswith("k1.")
    True
    """

    __slots__ = ("_key_id", "_previous")

    def __init__(
        self, key: bytes, *, key_id: str = "k1", previous: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        for k in (key, *(k for _, k in previous)):
            if len(k) < 16:
                raise ValueError("a pseudonymization key must be at least 16 bytes")
        # Only the keys' hashed pad blocks are kept (calling is inherited from _KeyedHash).
        super().__init__(key, key_id)
        self._key_id = key_id
        self._previous = tuple(_KeyedHash(k, kid) for kid, k in previous)

    def previous(self, kind: Kind, value: str, *, scope: str = "") -> tuple[str, ...]:
        """The same identifier's pseudonyms under the retired keys, newest first: history
        written before a rotation stays readable until it ages out."""
        scoped = f"{scope}\x00{value}".encode()
        return tuple(keyed._of(kind, scoped) for keyed in self._previous)

    def under_every_key(self, kind: Kind, value: str, *, scope: str = "") -> tuple[str, ...]:
        """The identifier's pseudonym under the current key, then under each retired one
        (``(self(...), *self.previous(...))``), its message encoded once for all keys."""
        scoped = f"{scope}\x00{value}".encode()
        return (self._of(kind, scoped), *(keyed._of(kind, scoped) for keyed in self._previous))

    @property
    def key_id(self) -> str:
        """The current key's id (read-only: the pseudonyms are made with it)."""
        return self._key_id

    @property
    def rotating(self) -> bool:
        return bool(self._previous)

    def __repr__(self) -> str:  # never show the key
        return f"Pseudonymizer(key_id={self.key_id!r})"


def parse_key_file(text: str) -> list[tuple[str, bytes]]:
    """Keys from a key file: one ``<key id> <secret>`` per line, the current key first,
    then the retired ones still needed to read older history. ``#`` starts a comment; a
    file holding only a secret is one key with id ``k1``."""
    keys: list[tuple[str, bytes]] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 1)
        keys.append(("k1", parts[0].encode()) if len(parts) == 1 else
                    (parts[0], parts[1].strip().encode()))
    if not keys:
        raise ValueError("the pseudonymization key file holds no key")
    if len({kid for kid, _ in keys}) != len(keys):
        raise ValueError("the pseudonymization key file repeats a key id")
    return keys
