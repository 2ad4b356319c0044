"""Keyed pseudonyms: the exact bytes of HMAC-SHA256 under the key, whatever the key's length."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random

import pytest

from riskengine.core.privacy import Kind, Pseudonymizer

KEY = b"test-key-0123456789abcdef"


def reference(key: bytes, key_id: str, kind: Kind, value: str, scope: str) -> str:
    """The pseudonym as the standard library's ``hmac`` makes it."""
    msg = f"{kind.value}\x00{scope}\x00{value}".encode()
    digest = hmac.new(key, msg, hashlib.sha256).digest()[:16]
    return f"{key_id}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"


def test_known_pseudonyms_do_not_change() -> None:
    # Stored history is keyed by these: a different byte would orphan every profile.
    p = Pseudonymizer(KEY, key_id="k1")
    assert p(Kind.PHONE, "+8613800138000", scope="t") == "k1._1W8elBO5qwEB93PuUUWeQ"
    assert p(Kind.USER, "alice@example.com", scope="acme") == "k1.y6ceCCP0DCQRGtsQPxlSPw"


# Around SHA-256's 64-byte block: shorter keys are padded, longer ones hashed first.
@pytest.mark.parametrize("key_len", [16, 32, 63, 64, 65, 200])
def test_pseudonyms_are_hmac_sha256_for_every_key_length(key_len: int) -> None:
    rng = random.Random(key_len)
    key, old = rng.randbytes(key_len), rng.randbytes(key_len + 7)
    p = Pseudonymizer(key, key_id="k2", previous=[("k1", old)])
    for kind in Kind:
        for _ in range(20):
            value = "".join(rng.choice("09az+@. é中\x00") for _ in range(rng.randrange(40)))
            scope = rng.choice(["", "t", "tenant-é"])
            assert p(kind, value, scope=scope) == reference(key, "k2", kind, value, scope)
            assert p.of_utf8(kind, value.encode(), scope=scope) == p(kind, value, scope=scope)
            assert p.previous(kind, value, scope=scope) == (
                reference(old, "k1", kind, value, scope),)


def test_kinds_and_scopes_are_separate_domains() -> None:
    p = Pseudonymizer(KEY)
    assert p(Kind.DEVICE, "x") != p(Kind.SSID, "x")
    assert p(Kind.USER, "x", scope="a") != p(Kind.USER, "x", scope="b")


def test_the_key_stays_out_of_sight() -> None:
    p = Pseudonymizer(KEY, key_id="k9")
    assert repr(p) == "Pseudonymizer(key_id='k9')" and p.key_id == "k9"
    assert not p.rotating and Pseudonymizer(KEY, previous=[("k0", KEY)]).rotating


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        Pseudonymizer(b"short")
    with pytest.raises(ValueError, match="at least 16 bytes"):
        Pseudonymizer(KEY, previous=[("k0", b"short")])


def test_every_key_gives_the_current_pseudonym_then_the_retired_ones() -> None:
    rng = random.Random(7)
    keys = [("k3", rng.randbytes(32)), ("k2", rng.randbytes(70)), ("k1", rng.randbytes(16))]
    p = Pseudonymizer(keys[0][1], key_id="k3", previous=keys[1:])
    for kind in Kind:
        for value, scope in (("+8613800138000", "t"), ("", ""), ("é中\x00", "tenant-é")):
            expected = tuple(reference(key, kid, kind, value, scope) for kid, key in keys)
            assert p.under_every_key(kind, value, scope=scope) == expected
            assert (p(kind, value, scope=scope), *p.previous(kind, value, scope=scope)) \
                == expected
    assert Pseudonymizer(KEY).under_every_key(Kind.IP, "1.2.3.4") == (
        reference(KEY, "k1", Kind.IP, "1.2.3.4", ""),)
