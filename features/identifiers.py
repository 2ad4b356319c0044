"""Validation and normalisation of the personal identifiers a login carries.

Pure functions: the API edge uses them to refuse malformed values (422) and to
treat placeholder values that operating systems hand out to apps (Android's
``02:00:00:00:00:00`` Bluetooth address, an all-zero OAID) as absent.
"""

from __future__ import annotations

import re

# fullmatch and [0-9]: `$` would accept a trailing newline and `\d` other scripts' digits,
# and either would give the same SIM or phone a second pseudonym.
_IMEI = re.compile(r"[0-9]{15}")
_IMSI = re.compile(r"[0-9]{14,15}")
_ICCID = re.compile(r"89[0-9]{16,18}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# An OAID is a UUID-like string of hex digits and dashes (MSA SDK); vendors differ in length.
_OAID = re.compile(r"[0-9A-Fa-f-]{16,64}")
_MAC = re.compile(r"[0-9A-Fa-f]{2}([:-]?)[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}")

PLACEHOLDER_BLUETOOTH = "02:00:00:00:00:00"


def luhn_ok(digits: str) -> bool:
    """True when ``digits`` ends with a valid Luhn check digit."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def is_imei(value: str) -> bool:
    """15 digits with a valid Luhn check digit (3GPP TS 23.003)."""
    return bool(_IMEI.fullmatch(value)) and luhn_ok(value)


def is_oaid(value: str) -> bool:
    """An Open Anonymous Device Identifier: hex digits and dashes."""
    return bool(_OAID.fullmatch(value)) and any(c.isalnum() for c in value)


def is_placeholder_oaid(value: str) -> bool:
    """An all-zero OAID, which is what a device returns when the user limited tracking."""
    return bool(_OAID.fullmatch(value)) and set(value.replace("-", "")) == {"0"}


def looks_like_imei(value: str) -> bool:
    """A device id made only of digits is meant as an IMEI and is held to its rules."""
    return value.isascii() and value.isdigit()


def is_imsi(value: str) -> bool:
    """14 or 15 digits (MCC + MNC + MSIN)."""
    return bool(_IMSI.fullmatch(value))


def is_iccid(value: str) -> bool:
    """18 to 20 digits starting with the telecom industry prefix 89 (ITU-T E.118)."""
    return bool(_ICCID.fullmatch(value))


def is_e164(value: str) -> bool:
    """``+`` then a country code and subscriber number, at most 15 digits in all."""
    return bool(_E164.fullmatch(value))


def normalize_mac(value: str) -> str | None:
    """Lower-case colon form of a MAC address, or None when it is not one."""
    if not _MAC.fullmatch(value):
        return None
    hexdigits = re.sub(r"[:-]", "", value).lower()
    return ":".join(hexdigits[i : i + 2] for i in range(0, 12, 2))


def is_placeholder_mac(normalized: str) -> bool:
    """Android returns this constant to apps without the Bluetooth permission."""
    return normalized == PLACEHOLDER_BLUETOOTH or normalized == "00:00:00:00:00:00"


def account_kind(user_id: str) -> str:
    """What the account name is: ``phone``, ``email`` or ``other``; it picks the step-up."""
    if "@" in user_id:
        return "email"
    if is_e164(user_id) or (looks_like_imei(user_id) and 7 <= len(user_id) <= 15):
        return "phone"
    return "other"
