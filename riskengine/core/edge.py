"""The edge: a validated wire request into a pseudonymous ``LoginEvent``. Raw identifiers
stop here; everything after sees keyed pseudonyms only."""

from __future__ import annotations

from datetime import datetime

from features import identifiers as ids
from features.event import AuthResult, EventType, LoginEvent, LoginMethod, NetworkType
from features.extract import ip_prefix
from riskengine.core.privacy import Kind, Pseudonymizer
from riskengine.core.wire import ScoreRequest, parse_timestamp


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
             received_at: datetime) -> LoginEvent:
    """``req`` as a ``LoginEvent`` under ``event_id``, timed by its own timestamp or, when it
    sent none, by ``received_at``."""
    scope = req.tenant

    def key(kind: Kind, value: str | None) -> str | None:
        return p(kind, value, scope=scope) if value else None

    device, network, sim = req.device, req.network, req.sim
    return LoginEvent(
        event_id=event_id,
        tenant=req.tenant,
        user_key=p(Kind.USER, req.user_id, scope=scope),
        timestamp=parse_timestamp(req.timestamp) if req.timestamp else received_at,
        ip=req.ip,
        ip_key=p(Kind.IP, req.ip, scope=scope),
        ip_prefix_key=p(Kind.IP_PREFIX, ip_prefix(req.ip), scope=scope),
        event_type=EventType(req.event_type),
        auth_result=AuthResult(req.auth_result),
        login_method=LoginMethod(req.login_method),
        account_kind=ids.account_kind(req.user_id),
        user_agent=req.user_agent,
        device_key=key(Kind.DEVICE, device.id if device else None),
        device_model=device.model if device else None,
        os_name=device.os_name if device else None,
        os_version=device.os_version if device else None,
        bluetooth_key=key(Kind.BLUETOOTH, device.bluetooth_mac if device else None),
        network_type=NetworkType(network.type) if network else NetworkType.UNKNOWN,
        ssid_key=key(Kind.SSID, _ssid(req)),
        imsi_key=key(Kind.IMSI, sim.imsi if sim else None),
        iccid_key=key(Kind.ICCID, sim.iccid if sim else None),
        phone_key=key(Kind.PHONE, req.phone),
    )


def aliases(req: ScoreRequest, p: Pseudonymizer) -> dict[str, tuple[str, ...]]:
    """Each of the request's pseudonyms -> the same identifier's under retired keys (empty
    unless a key rotation is under way): the store resolves them when it loads."""
    if not p.rotating:
        return {}
    scope = req.tenant
    return {p(kind, value, scope=scope): p.previous(kind, value, scope=scope)
            for kind, value in _identifiers(req) if value}
