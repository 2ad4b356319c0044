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

    def __init__(self, key: bytes, *, key_id: str = "k1") -> None:
        if len(key) < 16:
            raise ValueError("the pseudonymization key must be at least 16 bytes")
        self._key = key
        self.key_id = key_id

    def __call__(self, kind: Kind, value: str, *, scope: str = "") -> str:
        msg = f"{kind.value}\x00{scope}\x00{value}".encode()
        digest = hmac.new(self._key, msg, hashlib.sha256).digest()[:16]
        return f"{self.key_id}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"

    def __repr__(self) -> str:  # never show the key
        return f"Pseudonymizer(key_id={self.key_id!r})"
