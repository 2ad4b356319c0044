"""Validation and normalisation of the personal identifiers a login carries.

Pure functions: the API edge uses them to refuse only what cannot be any real identifier
(422) and to treat the placeholders operating systems hand out to apps as absent
(Android's ``02:00:00:00:00:00`` Bluetooth address, an all-zero OAID or IDFA when the user
limited ad tracking, ``<unknown ssid>`` without the location permission, empty strings).
"""

from __future__ import annotations

import re

# fullmatch and [0-9]: `$` would accept a trailing newline and `\d` other scripts' digits,
# and either would give the same SIM or phone a second pseudonym.
_IMEI = re.compile(r"[0-9]{15}")
_IMSI = re.compile(r"[0-9]{14,15}")
# Some readers append the SIM's filler nibble F; it is not part of the number.
_ICCID = re.compile(r"89[0-9]{16,18}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
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


class DeviceIdError(ValueError):
    """A device id that cannot be any real identifier."""


# What apps really send as a device id (kinds by shape; the kind is kept as a feature):
# IMEI (15 digits, Luhn), MEID (14 hex or 18 decimal digits), an IMEISV or an Android id
# (16 hex digits; leading zeros may be dropped), a UUID (IDFV, IDFA, Huawei's OAID), a longer
# hex OAID (Xiaomi, OPPO, vivo: up to 64), or another vendor's id.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEX = re.compile(r"[0-9a-f]+")
_HEXISH = re.compile(r"[0-9a-f-]{16,64}")
_VENDOR = re.compile(r"[A-Za-z0-9._:-]{6,64}")
# Values that name no device: SDKs' "no value" strings, Android's shared Android id from a
# 2.2-era bug, the emulator's IMEIs.
_NO_VALUE = frozenset({"unknown", "null", "none", "nil", "undefined", "n/a", "na", "default"})
_SHARED_IDS = frozenset({"9774d56d682e549c", "004999010640000", "358240051111110"})


def is_placeholder_id(value: str) -> bool:
    """A value that says "no id": empty, all zeros once dashes and colons are gone (the
    OAID, IDFA or IDFV of a user who limited ad tracking, of any length), one character
    repeated, a "no value" word, or an id shared by many devices."""
    text = value.strip().lower()
    bare = text.replace("-", "").replace(":", "")
    return (not bare.strip("0") or (len(bare) >= 8 and len(set(bare)) == 1)
            or text in _NO_VALUE or bare in _SHARED_IDS)


def device_id_kind(value: str) -> str:
    """The kind of a device id (``imei``, ``meid``, ``android_id``, ``uuid``, ``oaid`` or
    ``vendor``); raises ``DeviceIdError`` for what cannot be any real identifier."""
    text = value.strip()
    low = text.lower()
    if text.isascii() and text.isdigit():
        if len(text) == 15:
            if not luhn_ok(text):
                raise DeviceIdError("15 digits are an IMEI, whose Luhn check digit is wrong here")
            return "imei"
        if len(text) == 18:
            return "meid"
    if _UUID.fullmatch(low):
        return "uuid"
    if _HEX.fullmatch(low):
        if len(low) == 14:
            return "meid"
        if 13 <= len(low) <= 16:
            return "android_id"
    if _HEXISH.fullmatch(low):
        return "oaid"
    if _VENDOR.fullmatch(text) and any(c.isalnum() for c in text):
        return "vendor"
    raise DeviceIdError(
        "must be a device id: an IMEI, MEID, Android id, IDFV/IDFA, OAID or vendor id "
        "(6 to 64 letters, digits, '.', '_', ':' or '-')")


def normalize_device_id(value: str) -> tuple[str, str] | None:
    """``(id, kind)`` with hex ids in lower case (an IDFV in upper case is the same id), or
    None for a placeholder; raises ``DeviceIdError`` for what cannot be a real id."""
    if is_placeholder_id(value):
        return None
    kind = device_id_kind(value)
    text = value.strip()
    return (text if kind == "vendor" else text.lower()), kind


def looks_like_imei(value: str) -> bool:
    """Only digits: what a phone-number account name or an IMEI looks like."""
    return value.isascii() and value.isdigit()


def is_imsi(value: str) -> bool:
    """14 or 15 digits (MCC + MNC + MSIN)."""
    return bool(_IMSI.fullmatch(value))


def is_iccid(value: str) -> bool:
    """18 to 20 digits starting with the telecom industry prefix 89 (ITU-T E.118)."""
    return bool(_ICCID.fullmatch(value))


def normalize_iccid(value: str) -> str:
    """The ICCID without the filler ``F`` some SIM readers leave at its end."""
    return value.strip().rstrip("Ff")


PLACEHOLDER_SSIDS = frozenset({"<unknown ssid>", "0x", "unknown ssid", "<none>"})


def normalize_ssid(value: str) -> str | None:
    """The Wi-Fi name as the user sees it, or None when the app could not read it: Android
    quotes a readable SSID (``"HomeNet"``) and answers ``<unknown ssid>`` without the location
    permission, ``0x`` for a name that is not text."""
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    if not text or text.lower() in PLACEHOLDER_SSIDS:
        return None
    return text


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
