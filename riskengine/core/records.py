"""What the core reads from a store and what it hands back to be written: plain values.

The store seam (``riskengine.adapters.stores.base.Store``) moves these; the core builds and
reads them without knowing which store is behind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from features.profile import UserProfile, Velocity

ProfileUpdate = Callable[[UserProfile], UserProfile]
# Given the stored decision, what a feedback does: the profile update (or None) and
# whether the profile has learned the event afterwards.
FeedbackPlan = Callable[["StoredDecision"], tuple[ProfileUpdate | None, bool]]


@dataclass(frozen=True, slots=True)
class LoadQuery:
    """What one scoring pass needs to read, in one round trip.

    ``aliases`` maps each of the login's pseudonyms to the same identifier's pseudonyms
    under retired keys, while a key rotation is under way: the store resolves them, so what
    it returns speaks the current pseudonyms only.
    """

    tenant: str
    user_key: str
    ip_key: str
    asn: int | None
    device_key: str | None
    event_id: str
    now: float
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The address block's pseudonym (the event's ``ip_prefix_key``), whose sustained-abuse
    # buckets are read; None reads none.
    ip_prefix_key: str | None = None


@dataclass(frozen=True, slots=True)
class StoredDecision:
    """A decision as kept by ``event_id``: the answer given, the features it was based on,
    what the login would teach the profile (``Sighting.to_dict()``), whether the profile has
    learned it, and the latest outcome fed back for it (None until one arrives). All JSON."""

    event_id: str
    tenant: str
    user_key: str
    ts: float
    decision: dict[str, Any]
    features: dict[str, Any]
    sighting: dict[str, Any] | None = None
    feedback: str | None = None
    learned: bool = False


@dataclass(frozen=True, slots=True)
class Loaded:
    """What ``Store.load`` returns: everything one scoring pass reads.

    ``inherited`` is the user's history found under a retired pseudonym when the current
    one has none (a key rotation): ``profile`` is built from it, and the next write starts
    from it (``carry_over``).
    """

    profile: UserProfile | None
    velocity: Velocity
    previous: StoredDecision | None = None
    inherited: UserProfile | None = None


@dataclass(frozen=True, slots=True)
class UserData:
    """Everything held about one user pseudonym, for the user's right of access: what the
    store holds (profile, decisions), and what waits to be written or learned: the outbox's
    items (``queued``: kind and payload) and the shared learner's lessons (``lessons``)."""

    profile: UserProfile | None
    decisions: tuple[StoredDecision, ...]
    queued: tuple[dict[str, Any], ...] = ()
    lessons: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Attempt:
    """One login attempt as counted by the sliding windows and the sustained-abuse
    buckets."""

    tenant: str
    user_key: str
    ip_key: str
    asn: int | None
    device_key: str | None
    ts: float
    failed: bool
    # Counted in the address block's sustained-abuse buckets when given.
    ip_prefix_key: str | None = None


def carry_over(inherited: UserProfile | None, update: ProfileUpdate | None
               ) -> ProfileUpdate | None:
    """``update``, started from the profile found under a retired pseudonym when the
    current one is still empty (see ``Loaded.inherited``)."""
    if inherited is None:
        return update

    def start(profile: UserProfile) -> UserProfile:
        base = inherited.copy() if profile.logins == 0 and not profile.failures else profile
        return update(base) if update is not None else base

    return start
