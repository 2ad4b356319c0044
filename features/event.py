"""The login event as the engine sees it: validated, with identifiers already pseudonymized.

The wire schema (``riskengine.api.schemas``) validates a request and turns it into this
value; replays and notebooks build the same value from files. Raw device ids, SIM ids,
Bluetooth addresses, SSIDs, phone numbers and account names never reach this type: they
are replaced by keyed pseudonyms at the edge, so nothing downstream can leak them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class EventType(StrEnum):
    LOGIN = "login"
    REGISTRATION = "registration"


class AuthResult(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


class LoginMethod(StrEnum):
    PASSWORD = "password"
    SMS_OTP = "sms_otp"
    EMAIL_OTP = "email_otp"
    OAUTH = "oauth"


class NetworkType(StrEnum):
    WIFI = "wifi"
    CELLULAR = "cellular"
    ETHERNET = "ethernet"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class LoginEvent:
    """One login or registration attempt.

    ``*_key`` fields are keyed pseudonyms (None when the client sent nothing usable);
    ``ip_key`` pseudonymizes ``ip`` and ``ip_prefix_key`` its /24 (IPv4) or /48 (IPv6).
    ``event_id`` is the pseudonym of the caller's event id too.

    Two times, both timezone-aware: ``timestamp`` is the engine's clock for this login (the
    server's receive time in the caller's UTC offset; the caller's own time only when the
    operator trusts it, for replays), which every window, cap, travel speed, "last login"
    and retention runs on, and whose offset places the local hour when the IP's time zone
    is unknown; ``observed_at`` is what the caller said (None when it said nothing),
    bounded at the edge and kept for the record.

    ``caller_event_id`` (echoed in the answer, never stored or logged) and ``digest`` (a
    keyed digest of the whole request, telling a retry from another login that reuses the
    event id) are the edge's, for the shell: the core reads neither.
    """

    event_id: str
    tenant: str
    user_key: str
    timestamp: datetime
    ip: str
    ip_key: str
    ip_prefix_key: str
    event_type: EventType = EventType.LOGIN
    auth_result: AuthResult = AuthResult.SUCCESS
    login_method: LoginMethod = LoginMethod.PASSWORD
    account_kind: str = "other"
    user_agent: str | None = None
    device_key: str | None = None
    device_id_kind: str | None = None
    device_model: str | None = None
    os_name: str | None = None
    os_version: str | None = None
    bluetooth_key: str | None = None
    network_type: NetworkType = NetworkType.UNKNOWN
    ssid_key: str | None = None
    imsi_key: str | None = None
    iccid_key: str | None = None
    phone_key: str | None = None
    observed_at: datetime | None = None
    caller_event_id: str | None = None
    digest: str | None = None
    # ``timestamp`` in epoch seconds, worked out once: windows, caps, features and records
    # read it about eight times a login, and an aware datetime's ``timestamp()`` is not free.
    _ts: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ts", self.timestamp.timestamp())

    @property
    def ts(self) -> float:
        """The engine's clock for this login (``timestamp``), in epoch seconds."""
        return self._ts

    @property
    def sim_key(self) -> str | None:
        """The SIM card as one pseudonym: ICCID identifies the card, IMSI the subscription."""
        return self.iccid_key or self.imsi_key

    @property
    def failed(self) -> bool:
        return self.auth_result is AuthResult.FAILURE
