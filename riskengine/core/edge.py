"""The edge: a validated wire request into a pseudonymous ``LoginEvent``. Raw identifiers
stop here; everything after sees keyed pseudonyms only.

It also decides the login's time. The caller's timestamp is what the caller says it
observed, and the caller may lie: the engine's clock is the server's receive time, handed
in as ``received_at`` (the core reads no clock). A timestamp too far ahead of it or too old
is refused (``TimestampOutOfRange``). Only an operator replaying recorded traffic trusts the
callers' times (``TimePolicy.trust_event_time``); even then a user's time never runs
backwards (``not_before``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from features import identifiers as ids
from features.event import AuthResult, EventType, LoginEvent, LoginMethod, NetworkType
from features.extract import ip_prefix
from features.profile import UserProfile
from riskengine.core.privacy import Kind, Pseudonymizer
from riskengine.core.wire import ScoreRequest, parse_timestamp


class Refused(ValueError):
    """A request the engine refuses because of one field (``field``), with ``status`` the
    HTTP status that says why. The message names no value the caller sent."""

    status = 422
    field = "body"


class TimestampOutOfRange(Refused):
    """``timestamp`` is further ahead of the server's clock, or older, than allowed."""

    field = "timestamp"


class EventIdConflict(Refused):
    """``event_id`` was already used for another login (another request body)."""

    status = 409
    field = "event_id"


@dataclass(frozen=True, slots=True)
class TimePolicy:
    """How far a caller's timestamp may stray from the server's receive time.

    Parameters
    ----------
    max_ahead_s
        How far ahead of the receive time a timestamp may be (clock skew).
    max_age_s
        How old it may be (an auth service's retries, its outbox).
    trust_event_time
        Run the windows and caps on the caller's timestamp, with no age limit: for replaying
        recorded traffic over HTTP, never for callers that may lie.
    """

    max_ahead_s: float = 300.0
    max_age_s: float = 86_400.0
    trust_event_time: bool = False

    def clock(self, observed: datetime | None, received_at: datetime) -> datetime:
        """The engine's time for a login the caller stamped ``observed`` (None: not at all)
        and the server received at ``received_at``; raises ``TimestampOutOfRange``.

        The receive time, told in the caller's UTC offset: the offset is the one part of a
        caller's timestamp that is safe to believe (it places the local hour when the IP
        databases know no time zone), the instant is not."""
        if observed is None:
            return received_at
        if self.trust_event_time:
            return observed
        if observed > received_at + timedelta(seconds=self.max_ahead_s):
            raise TimestampOutOfRange(
                f"timestamp is more than {self.max_ahead_s:g} s ahead of the server's clock")
        if observed < received_at - timedelta(seconds=self.max_age_s):
            raise TimestampOutOfRange(
                f"timestamp is more than {self.max_age_s:g} s older than the server's clock")
        return received_at.astimezone(observed.tzinfo)


DEFAULT_TIME_POLICY = TimePolicy()

# The wire's values -> the event's enums: a dict lookup, where calling the enum by value
# goes through ``EnumType.__call__`` (ten times the cost, four times a login). A value the
# dicts lack (the wire contract allows none) still goes to the enum, and fails there.
_EVENT_TYPES = {m.value: m for m in EventType}
_AUTH_RESULTS = {m.value: m for m in AuthResult}
_LOGIN_METHODS = {m.value: m for m in LoginMethod}
_NETWORK_TYPES = {m.value: m for m in NetworkType}


def _identifiers(req: ScoreRequest) -> tuple[tuple[Kind, str | None], ...]:
    device, sim = req.device, req.sim
    return (
        (Kind.USER, req.user_id), (Kind.IP_PREFIX, ip_prefix(req.ip)),
        (Kind.DEVICE, device.id if device else None),
        (Kind.BLUETOOTH, device.bluetooth_mac if device else None),
        (Kind.SSID, _ssid(req)), (Kind.IMSI, sim.imsi if sim else None),
        (Kind.ICCID, sim.iccid if sim else None), (Kind.PHONE, req.phone),
    )


def _ssid(req: ScoreRequest) -> str | None:
    network = req.network
    return network.ssid.strip() if network and network.ssid else None


def to_event(req: ScoreRequest, p: Pseudonymizer, *, event_id: str,
             received_at: datetime, time_policy: TimePolicy = DEFAULT_TIME_POLICY
             ) -> LoginEvent:
    """``req`` as a ``LoginEvent`` under the pseudonym of ``event_id``, on the engine's
    clock (``time_policy.clock``: the receive time ``received_at`` unless the policy trusts the
    caller's timestamp). Raises ``TimestampOutOfRange`` for a timestamp out of bounds."""
    scope = req.tenant
    # The bound method, called ~9 times: calling the instance goes through its type's
    # ``__call__`` slot, which packs every call's arguments into a new tuple and dict.
    pseudonym = p.__call__

    def key(kind: Kind, value: str | None) -> str | None:
        return pseudonym(kind, value, scope=scope) if value else None

    observed = parse_timestamp(req.timestamp) if req.timestamp else None
    device, network, sim = req.device, req.network, req.sim
    return LoginEvent(
        event_id=pseudonym(Kind.EVENT_ID, event_id, scope=scope),
        tenant=req.tenant,
        user_key=pseudonym(Kind.USER, req.user_id, scope=scope),
        timestamp=time_policy.clock(observed, received_at),
        ip=req.ip,
        ip_key=pseudonym(Kind.IP, req.ip, scope=scope),
        ip_prefix_key=pseudonym(Kind.IP_PREFIX, ip_prefix(req.ip), scope=scope),
        event_type=_EVENT_TYPES.get(req.event_type) or EventType(req.event_type),
        auth_result=_AUTH_RESULTS.get(req.auth_result) or AuthResult(req.auth_result),
        login_method=_LOGIN_METHODS.get(req.login_method) or LoginMethod(req.login_method),
        account_kind=ids.account_kind(req.user_id),
        user_agent=req.user_agent,
        device_key=key(Kind.DEVICE, device.id if device else None),
        device_id_kind=device.id_kind if device else None,
        device_model=device.model if device else None,
        os_name=device.os_name if device else None,
        os_version=device.os_version if device else None,
        bluetooth_key=key(Kind.BLUETOOTH, device.bluetooth_mac if device else None),
        network_type=(_NETWORK_TYPES.get(network.type) or NetworkType(network.type))
        if network else NetworkType.UNKNOWN,
        ssid_key=key(Kind.SSID, _ssid(req)),
        imsi_key=key(Kind.IMSI, sim.imsi if sim else None),
        iccid_key=key(Kind.ICCID, sim.iccid if sim else None),
        phone_key=key(Kind.PHONE, req.phone),
        observed_at=observed,
        caller_event_id=event_id,
        digest=request_digest(req, p),
    )


def event_key(p: Pseudonymizer, tenant: str, event_id: str) -> str:
    """The pseudonym a caller's ``event_id`` is stored and logged under."""
    return p(Kind.EVENT_ID, event_id, scope=tenant)


_NOT_DIGESTED = {"event_id"}


def request_digest(req: ScoreRequest, p: Pseudonymizer) -> str:
    """A keyed digest of the request as validated (defaults filled in, addresses in their
    canonical form; the event id left out): the same login sent again has the same digest,
    another login reusing the event id another. Keyed, as the body holds identifiers."""
    # pydantic's own serializer (in Rust), fields in the model's fixed order: canonical for
    # a validated request, a fifth of the cost of sorting a dict through json.dumps. Its
    # bytes are ``model_dump_json``'s text in UTF-8, hashed as they come (the digests the
    # stores hold are of that text); called directly, it spares model_dump_json's ~1.4 us
    # of passing on its fifteen keyword arguments.
    canonical = req.__pydantic_serializer__.to_json(req, exclude=_NOT_DIGESTED)
    return p.of_utf8(Kind.REQUEST, canonical, scope=req.tenant)


def latest_seen(profile: UserProfile | None) -> float | None:
    """The latest time the user's profile has seen (a learned login, a failure)."""
    if profile is None:
        return None
    times = [t for t in (profile.last_login, *profile.failures) if t is not None]
    return max(times) if times else None


def not_before(event: LoginEvent, latest: float | None) -> LoginEvent:
    """``event`` with its clock moved up to ``latest`` when it is earlier: a user's time
    only moves forward, so a login stamped before the user's latest one (only a trusted
    replay can stamp one) cannot rewind the user's windows."""
    if latest is None or event.ts >= latest:
        return event
    return replace(event, timestamp=datetime.fromtimestamp(latest, UTC))


def aliases(req: ScoreRequest, p: Pseudonymizer) -> dict[str, tuple[str, ...]]:
    """Each of the request's pseudonyms -> the same identifier's under retired keys (empty
    unless a key rotation is under way): the store resolves them when it loads."""
    if not p.rotating:
        return {}
    scope = req.tenant
    every = (p.under_every_key(kind, value, scope=scope)
             for kind, value in _identifiers(req) if value)
    return {keys[0]: keys[1:] for keys in every}
