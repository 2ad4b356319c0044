"""The wire contract as it was written before its per-field checks moved into pydantic-core:
``riskengine/core/wire.py`` at 9bdb02a, its request models and ``parse_timestamp`` copied
as they were (one Python ``mode="before"`` validator on every field, then each field's
type and validators). The reference ``tests/core/test_wire.py`` holds the package's wire
contract to: the same values accepted, the same errors for what is refused, the same JSON
schema, the same times.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from features import identifiers as ids


def _strict(max_length: int, min_length: int = 0) -> StringConstraints:
    """A strict string (no numbers or booleans coerced) of bounded length."""
    return StringConstraints(strict=True, min_length=min_length, max_length=max_length)


Text16 = Annotated[str, _strict(16)]
Text17 = Annotated[str, _strict(17)]
Text20 = Annotated[str, _strict(20)]
Text64 = Annotated[str, _strict(64)]
Text128 = Annotated[str, _strict(128)]
Text1024 = Annotated[str, _strict(1024)]
EventIdText = Annotated[str, _strict(128, 1)]
UserIdText = Annotated[str, _strict(256, 1)]


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_control_characters(cls, v: Any, info: ValidationInfo) -> Any:
        # CR/LF and other control characters have no business in any field, and are how
        # log injection starts.
        if isinstance(v, str) and _CONTROL.search(v):
            raise ValueError("must not contain control characters (CR, LF, NUL, ...)")
        # An SDK sends "" for what it could not read: for an optional field that is absence.
        if isinstance(v, str) and not v.strip() and info.field_name is not None \
                and cls.model_fields[info.field_name].default is None:
            return None
        return v


class Device(_Strict):
    id: Text64 | None = Field(
        default=None,
        description="IMEI (15 digits, Luhn), MEID, Android id, IDFV/IDFA, OAID or a vendor "
        "id; placeholders (all zeros, 'unknown', empty) mean none",
    )
    model: Text128 | None = None
    os_name: Text64 | None = None
    os_version: Text64 | None = None
    bluetooth_mac: Text17 | None = None

    @field_validator("id")
    @classmethod
    def _device_id(cls, v: str | None) -> str | None:
        if v is None:
            return None
        try:
            found = ids.normalize_device_id(v)
        except ids.DeviceIdError as e:
            raise ValueError(str(e)) from None
        return found[0] if found else None

    @property
    def id_kind(self) -> str | None:
        """What kind of id ``id`` is (``features.identifiers.device_id_kind``)."""
        return ids.device_id_kind(self.id) if self.id else None

    @field_validator("bluetooth_mac")
    @classmethod
    def _mac(cls, v: str | None) -> str | None:
        if v is None:
            return None
        mac = ids.normalize_mac(v)
        if mac is None:
            raise ValueError("must be a MAC address like 3c:22:fb:12:34:56")
        return None if ids.is_placeholder_mac(mac) else mac


# What SDKs report as the network type, by the four the engine tells apart.
_NETWORK_TYPES = {
    "wifi": "wifi", "wlan": "wifi", "wi-fi": "wifi",
    "cellular": "cellular", "mobile": "cellular", "2g": "cellular", "3g": "cellular",
    "4g": "cellular", "5g": "cellular", "lte": "cellular", "nr": "cellular",
    "wwan": "cellular", "ethernet": "ethernet", "lan": "ethernet", "wired": "ethernet",
}


class Network(_Strict):
    type: Literal["wifi", "cellular", "ethernet", "unknown"] = Field(
        default="unknown",
        description="wifi, cellular, ethernet or unknown; common SDK spellings (WIFI, 4G, 5G, "
        "LTE, mobile, none) are mapped, anything else is unknown",
    )
    ssid: Text64 | None = None

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, v: Any) -> Any:
        if isinstance(v, str):
            return _NETWORK_TYPES.get(v.strip().lower(), "unknown")
        return v

    @field_validator("ssid")
    @classmethod
    def _ssid(cls, v: str | None) -> str | None:
        return ids.normalize_ssid(v) if v is not None else None


class Sim(_Strict):
    imsi: Text16 | None = None
    iccid: Text20 | None = None

    @field_validator("imsi")
    @classmethod
    def _imsi(cls, v: str | None) -> str | None:
        if v is None or ids.is_placeholder_id(v):
            return None
        v = v.strip()
        if not ids.is_imsi(v):
            raise ValueError("an IMSI is 14 or 15 digits")
        return v

    @field_validator("iccid")
    @classmethod
    def _iccid(cls, v: str | None) -> str | None:
        if v is None or ids.is_placeholder_id(v):
            return None
        v = ids.normalize_iccid(v)
        if not ids.is_iccid(v):
            raise ValueError("an ICCID is 18 to 20 digits starting with 89")
        return v


class ScoreRequest(_Strict):
    """A login or registration attempt, as the auth service reports it."""

    event_id: EventIdText | None = Field(
        default=None, description="Idempotency key; the server makes a UUID when absent"
    )
    tenant: Annotated[
        str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    ] = "default"
    user_id: UserIdText
    timestamp: Text64 | None = Field(
        default=None, description="RFC 3339 with an offset; the server's receive time if absent"
    )
    event_type: Literal["login", "registration"] = "login"
    auth_result: Literal["success", "failure"] = "success"
    login_method: Literal["password", "sms_otp", "email_otp", "oauth"] = "password"
    ip: Text64
    user_agent: Text1024 | None = None
    device: Device | None = None
    network: Network | None = None
    sim: Sim | None = None
    phone: Text16 | None = None

    @field_validator("ip")
    @classmethod
    def _ip(cls, v: str) -> str:
        try:
            addr = ipaddress.ip_address(v.strip())
        except ValueError:
            raise ValueError("must be an IPv4 or IPv6 address") from None
        if "%" in v:  # an IPv6 zone id names a local interface, never a client on the internet
            raise ValueError("must be an IPv4 or IPv6 address without a zone id")
        return str(addr)

    @field_validator("timestamp")
    @classmethod
    def _timestamp(cls, v: str | None) -> str | None:
        if v is None:
            return None
        parse_timestamp(v)
        return v

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        v = v.strip()
        if not ids.is_e164(v):
            raise ValueError("must be an E.164 number like +8613800138000")
        return v


_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_TS_HINT = "must be an RFC 3339 date-time with offset, like 2026-11-28T09:30:00+08:00"
# What a clock can mean: a time outside is a broken or a forged clock, whatever the settings
# (a trusted replay included). The service bounds it further around its own receive time
# (``riskengine.core.edge.TimePolicy``).
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2101, 1, 1, tzinfo=UTC)
_TS_RANGE_HINT = "must be a date-time between the years 2000 and 2100"


def parse_timestamp(value: str) -> datetime:
    """An RFC 3339 date-time with a time zone offset (``Z`` or ``+08:00``), in the years
    2000 to 2100."""
    text = value.strip()
    if not _RFC3339.fullmatch(text):
        raise ValueError(_TS_HINT)
    if text[-1] in "Zz":
        text = text[:-1] + "+00:00"
    frac = re.search(r"\.([0-9]+)", text)
    if frac and len(frac.group(1)) > 6:  # Python keeps microseconds; drop finer digits
        text = text.replace(frac.group(0), frac.group(0)[:7])
    try:
        when = datetime.fromisoformat(text)
    except ValueError:  # 2026-02-30 and the like
        raise ValueError("is not a valid date and time") from None
    # The local year first: year 1 or 9999 with an offset cannot even be compared in UTC.
    if not EARLIEST_TIME.year <= when.year < LATEST_TIME.year \
            or not EARLIEST_TIME <= when < LATEST_TIME:
        raise ValueError(_TS_RANGE_HINT)
    return when


class FeedbackRequest(_Strict):
    """An outcome of a scored login, learned afterwards (possibly days later)."""

    event_id: EventIdText
    tenant: Annotated[
        str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    ] = "default"
    label: Literal["legit", "fraud"]
    source: Literal["challenge_passed", "challenge_failed", "user_report", "analyst"]
    challenge: Literal["sms_otp", "email_otp", "captcha"] | None = Field(
        default=None,
        description="For a step-up result: the step-up the customer took. It must be the one "
        "the score answer asked for (else 409); a step-up result for a login that was not "
        "challenged is a 409 too",
    )
