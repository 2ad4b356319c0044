"""Keyed pseudonyms for personal identifiers.

Every identifier (account name, device id, IMSI, ICCID, Bluetooth address, SSID, phone
number, IP) is replaced by HMAC-SHA256 under a secret key before anything stores or logs
it. A plain hash would not do: IMEIs and phone numbers are few enough to enumerate. Each
kind of identifier has its own domain, so the same string as a device id and as an SSID
gives unrelated pseudonyms, and account pseudonyms also bind the tenant.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from enum import StrEnum


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


class Pseudonymizer:
    """Turns identifiers into ``<key_id>.<22 url-safe chars>`` (128 bits of HMAC-SHA256).

    The key id prefix lets a later key rotation tell which key made a stored pseudonym.

    >>> p = Pseudonymizer(b"k" * 32, key_id="k1")
    >>> p(Kind.DEVICE, "490154203237518").startswith("k1.")
    True
    """

    def __init__(
        self, key: bytes, *, key_id: str = "k1", previous: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        for k in (key, *(k for _, k in previous)):
            if len(k) < 16:
                raise ValueError("a pseudonymization key must be at least 16 bytes")
        self._key = key
        self.key_id = key_id
        self._previous = tuple(previous)

    def __call__(self, kind: Kind, value: str, *, scope: str = "") -> str:
        return _pseudonym(self._key, self.key_id, kind, value, scope)

    def previous(self, kind: Kind, value: str, *, scope: str = "") -> tuple[str, ...]:
        """The same identifier's pseudonyms under the retired keys, newest first: history
        written before a rotation stays readable until it ages out."""
        return tuple(_pseudonym(k, kid, kind, value, scope) for kid, k in self._previous)

    @property
    def rotating(self) -> bool:
        return bool(self._previous)

    def __repr__(self) -> str:  # never show the key
        return f"Pseudonymizer(key_id={self.key_id!r})"


def _pseudonym(key: bytes, key_id: str, kind: Kind, value: str, scope: str) -> str:
    msg = f"{kind.value}\x00{scope}\x00{value}".encode()
    digest = hmac.new(key, msg, hashlib.sha256).digest()[:16]
    return f"{key_id}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"


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
