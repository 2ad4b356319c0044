"""The user's right of access: everything stored about a user, as a document that says what
each value means.

Identifiers appear as they are stored, as keyed pseudonyms; the document names the kind of
identifier behind each one, when it was first and last seen and how often, so that the user
(or an auditor) can check every item against the privacy notice without the store ever
holding the raw value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from features.profile import UserProfile
from riskengine.adapters.stores.base import UserData

MEANINGS = {
    "devices": "device id (IMEI, OAID or IDFV), as a keyed pseudonym",
    "bluetooth": "Bluetooth address, as a keyed pseudonym",
    "ip_prefixes": "IP address block (/24 or /48), as a keyed pseudonym",
    "ssids": "Wi-Fi network name, as a keyed pseudonym",
    "asns": "network operator (autonomous system number)",
    "countries": "country of the IP address",
    "cities": "city of the IP address (country/city)",
    "models": "device model",
    "os_families": "operating system",
}


def _when(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def _profile(p: UserProfile) -> dict[str, Any]:
    items = [
        {"kind": kind, "meaning": meaning, "value": value, "count": seen.count,
         "first_seen": _when(seen.first), "last_seen": _when(seen.last),
         **({"trusted_since": _when(p.trusted[value])} if value in p.trusted else {})}
        for kind, meaning in MEANINGS.items()
        for value, seen in getattr(p, kind).items()
    ]
    items += [
        {"kind": "sims", "meaning": "SIM card (ICCID or IMSI) seen with a phone number, both "
         "as keyed pseudonyms", "value": sim, "phone": phone, "count": seen.count,
         "first_seen": _when(seen.first), "last_seen": _when(seen.last)}
        for phone, sims in p.sims.items() for sim, seen in sims.items()
    ]
    return {
        "successful_logins_learned": p.logins,
        "of_them_through_hosting_or_vpn": p.anonymised,
        "first_seen": _when(p.first_seen),
        "last_login": _when(p.last_login),
        "last_location": {"country": p.last_country, "city": p.last_city,
                          "over_mobile_data": p.last_mobile},
        "items": items,
        "device_traits": {k: {"model": t.model, "os": t.os_family, "os_version": t.os_version,
                              "bluetooth": t.bluetooth, "sim": t.sim}
                          for k, t in p.device_traits.items()},
        "login_hours_histogram": [round(h, 3) for h in p.hours],
        "recent_failed_attempts": [_when(t) for t in p.failures],
        "marked_as_used_in_fraud": [{"value": k, "since": _when(t)} for k, t in p.bad.items()],
        "devices_reported_as_fraud": [{"value": k, "since": _when(t)}
                                      for k, t in p.reported.items()],
    }


def export_document(tenant: str, data: list[UserData], *, now: datetime) -> dict[str, Any]:
    """The machine-readable export of everything stored about one user."""
    profiles = [d.profile for d in data if d.profile is not None]
    decisions = sorted((x for d in data for x in d.decisions), key=lambda x: x.ts)
    return {
        "tenant": tenant,
        "generated_at": now.isoformat(),
        "format": "riskengine user data export v1",
        "profiles": [_profile(p) for p in profiles],
        "decisions": [
            {"event_id": d.event_id, "time": _when(d.ts),
             "decision": d.decision.get("decision"), "score": d.decision.get("score"),
             "challenge": d.decision.get("challenge"),
             "reasons": [{"code": r["code"], "message": r["message"]}
                         for r in d.decision.get("reasons", [])],
             "rules_version": d.decision.get("rules_version"),
             "model_version": d.decision.get("model_version"),
             "feedback": d.feedback, "learned": d.learned,
             "features": d.features}
            for d in decisions
        ],
        # Not yet in the store: writes kept while it was unavailable, and lessons the
        # shared model has still to learn (or has learned: they stay until trimmed).
        "queued_writes": [item for d in data for item in d.queued],
        "model_lessons": [lesson for d in data for lesson in d.lessons],
    }
