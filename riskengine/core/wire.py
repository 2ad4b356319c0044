"""Wire contract v1 of ``POST /v1/score``: the request and response bodies.

The one definition of a login on the wire, shared by the HTTP API and every file-based
tool (replay, backtest, notebooks). Validation is strict (``false`` is not a number, a
number is not a string), unknown fields are ignored, and placeholder identifiers that
operating systems hand out (Bluetooth ``02:00:00:00:00:00``, an all-zero OAID) are
treated as absent.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema as cs

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
TenantText = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


# Two checks every field of the wire's models takes before its own type's (``Clean`` and
# ``OrNone`` below). CR/LF and other control characters have no business in any field, and
# are how log injection starts; an SDK sends "" for what it could not read, which for an
# optional field is absence. Each check is a pydantic-core union tried left to right: a
# string the check passes (by a regular expression), None and an object (a nested model's)
# go through in compiled code, and only what is left (a string it refuses or changes, another
# value, a string that is not valid UTF-8) reaches the Python definition of the check, so
# that a valid login's fields cost no Python call here.
_CONTROLS = r"\x00-\x1f\x7f"
_CONTROL = re.compile(f"[{_CONTROLS}]")
_CONTROL_MESSAGE = "must not contain control characters (CR, LF, NUL, ...)"
# What ``str.strip()`` removes, less the control characters refused before: a string of
# these alone is blank (the tests compare the set with ``str.isspace``).
_SPACES = " \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def _no_control_characters(v: Any) -> Any:
    """``v``; a string holding a control character is refused (the check's definition)."""
    if isinstance(v, str) and _CONTROL.search(v):
        raise ValueError(_CONTROL_MESSAGE)
    return v


def _no_control_characters_blank_is_none(v: Any) -> Any:
    """``v``, None for a blank string; a string holding a control character is refused
    first (the check's definition)."""
    v = _no_control_characters(v)
    return None if isinstance(v, str) and not v.strip() else v


def _check(passes: str, definition: Callable[[Any], Any]) -> cs.CoreSchema:
    """``definition`` as a pydantic-core union: a string matching ``passes`` (which
    ``definition`` returns as it is), None and a dict pass in compiled code, anything else is
    ``definition``'s to judge; what it refuses is a control character's error."""
    return cs.custom_error_schema(
        cs.union_schema([
            cs.str_schema(strict=True, pattern=passes),
            cs.none_schema(),
            cs.json_or_python_schema(json_schema=cs.dict_schema(),
                                     python_schema=cs.is_instance_schema(dict)),
            cs.no_info_plain_validator_function(definition),
        ], mode="left_to_right"),
        custom_error_type="value_error", custom_error_context={"error": _CONTROL_MESSAGE})


_NO_CONTROL = _check(f"^[^{_CONTROLS}]*$", _no_control_characters)
_NO_CONTROL_BLANK_IS_NONE = _check(
    f"^[^{_CONTROLS}]*[^{_CONTROLS}{_SPACES}][^{_CONTROLS}]*$",
    _no_control_characters_blank_is_none)


class _Before:
    """An ``Annotated`` marker: ``check`` runs before the annotated type's own validation,
    which alone is documented (the JSON schema is the type's)."""

    __slots__ = ("check",)

    def __init__(self, check: cs.CoreSchema) -> None:
        self.check = check

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> cs.CoreSchema:
        own = handler(source)

        def documented(_: cs.CoreSchema, to_json: GetJsonSchemaHandler) -> JsonSchemaValue:
            return to_json(own)

        return cs.chain_schema([self.check, own],
                               metadata={"pydantic_js_functions": [documented]})


T = TypeVar("T")
# A required field, or one with a default other than None: no control characters.
Clean = Annotated[T, _Before(_NO_CONTROL)]
# An optional field: no control characters, and a blank string means None.
OrNone = Annotated[T | None, _Before(_NO_CONTROL_BLANK_IS_NONE)]


def _untitled_models(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """A field holding a model has no title of its own in pydantic's JSON schema, which
    cannot tell one behind ``OrNone``'s checks: its title is taken out again."""
    for name, field in model.model_fields.items():
        if any(isinstance(t, type) and issubclass(t, BaseModel)
               for t in get_args(field.annotation)):
            schema["properties"][name].pop("title", None)


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True,
                              json_schema_extra=_untitled_models)


# A MAC address in lower-case colon form (``features.identifiers.normalize_mac``'s): matched
# in C at a tenth of normalizing it again.
_NORMAL_MAC = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")


class Device(_Strict):
    id: OrNone[Text64] = Field(
        default=None,
        description="IMEI (15 digits, Luhn), MEID, Android id, IDFV/IDFA, OAID or a vendor "
        "id; placeholders (all zeros, 'unknown', empty) mean none",
    )
    model: OrNone[Text128] = None
    os_name: OrNone[Text64] = None
    os_version: OrNone[Text64] = None
    bluetooth_mac: OrNone[Text17] = None

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
        # Already in the form ids.normalize_mac gives (most are): kept as it is.
        mac = v if _NORMAL_MAC.fullmatch(v) else ids.normalize_mac(v)
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
    # Any string is mapped to one of the four (``_type``, which runs first): control
    # characters included, and nothing is absent.
    type: Literal["wifi", "cellular", "ethernet", "unknown"] = Field(
        default="unknown",
        description="wifi, cellular, ethernet or unknown; common SDK spellings (WIFI, 4G, 5G, "
        "LTE, mobile, none) are mapped, anything else is unknown",
    )
    ssid: OrNone[Text64] = None

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
    imsi: OrNone[Text16] = None
    iccid: OrNone[Text20] = None

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


# An IPv4 address in its canonical text: four decimal octets, no leading zeros. Most logins'
# addresses are; matching them in C costs a tenth of parsing them with ``ipaddress``.
_CANONICAL_IPV4 = re.compile(
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])")


class ScoreRequest(_Strict):
    """A login or registration attempt, as the auth service reports it."""

    event_id: OrNone[EventIdText] = Field(
        default=None, description="Idempotency key; the server makes a UUID when absent"
    )
    tenant: Clean[TenantText] = "default"
    user_id: Clean[UserIdText]
    timestamp: OrNone[Text64] = Field(
        default=None, description="RFC 3339 with an offset; the server's receive time if absent"
    )
    event_type: Clean[Literal["login", "registration"]] = "login"
    auth_result: Clean[Literal["success", "failure"]] = "success"
    login_method: Clean[Literal["password", "sms_otp", "email_otp", "oauth"]] = "password"
    ip: Clean[Text64]
    user_agent: OrNone[Text1024] = None
    device: OrNone[Device] = None
    network: OrNone[Network] = None
    sim: OrNone[Sim] = None
    phone: OrNone[Text16] = None

    @field_validator("ip")
    @classmethod
    def _ip(cls, v: str) -> str:
        if _CANONICAL_IPV4.fullmatch(v):  # what ipaddress would give back as it is
            return v
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
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
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
    # Python's reader takes the rest as RFC 3339 writes it (any separator, "Z"), and drops
    # the digits of a second past the sixth (it keeps microseconds).
    if text[-1] == "z":
        text = text[:-1] + "Z"
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

    event_id: Clean[EventIdText]
    tenant: Clean[TenantText] = "default"
    label: Clean[Literal["legit", "fraud"]]
    source: Clean[Literal["challenge_passed", "challenge_failed", "user_report", "analyst"]]
    challenge: OrNone[Literal["sms_otp", "email_otp", "captcha"]] = Field(
        default=None,
        description="For a step-up result: the step-up the customer took. It must be the one "
        "the score answer asked for (else 409); a step-up result for a login that was not "
        "challenged is a 409 too",
    )


class FeedbackResponse(BaseModel):
    event_id: str
    status: Literal["applied", "duplicate", "queued"]


class ReasonOut(BaseModel):
    code: str
    message: str
    contribution: float
    observed: dict[str, Any]


class ScoreResponse(BaseModel):
    event_id: str
    decision: Literal["allow", "challenge", "deny"]
    score: float = Field(ge=0.0, le=1.0)
    challenge: Literal["sms_otp", "email_otp", "captcha"] | None
    reasons: list[ReasonOut]
    rules_version: str
    model_version: str
    latency_ms: float
    failover: bool = Field(
        default=False, description="True when a dependency failed and this is the fallback"
    )
    user_message: str | None = Field(
        default=None,
        description="For a deny: a message the auth service can show the customer, with the "
        "reference that human review starts from",
    )


class FieldError(BaseModel):
    field: str
    message: str
    type: str


class InvalidRequest(BaseModel):
    """The 422 body: every bad field named; the offending values are not echoed."""

    error: str
    fields: list[str]
    detail: list[FieldError]


# Every route documents this instead of FastAPI's default validation error body.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is not valid JSON (or not UTF-8)"},
    413: {"description": "The body is over the size limit (64 KiB)"},
    422: {"model": InvalidRequest, "description": "A field is missing or malformed"},
}
