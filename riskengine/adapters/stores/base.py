"""The store seam: one Protocol that the memory, SQLite (and later Redis) stores implement.

Every call takes pseudonymous keys only; a store never sees a raw identifier. ``record`` is
the one write of a scoring pass and is atomic: the decision, the velocity hit and the
profile update land together or not at all, and a second ``record`` with the same
``event_id`` changes nothing (idempotent replays count nothing twice).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from enum import StrEnum
from typing import Protocol

from features.extract import ABUSE_ACCOUNTS, ABUSE_FAILURE_SHARE
from features.profile import ABUSE_BUCKETS, AbuseBucket, UserProfile, abuse_bucket, resolved
from riskengine.core.records import (
    Attempt,
    FeedbackPlan,
    Loaded,
    LoadQuery,
    ProfileUpdate,
    StoredDecision,
    UserData,
    carry_over,
)

# Sliding windows of the shared velocity counters.
IP_WINDOW_S = 600.0
# The IP and ASN windows count users and failures among at most this many of their latest
# attempts: exact below it, and a login's cost stays bounded however busy its network is (a
# large carrier's ASN sees tens of thousands of logins in ten minutes; counting them all at
# every login slowed a server at 350 logins/s from 3 ms to timeouts within a minute, and
# counting the latest 1,000 still cost the SQLite store 2 ms of its ~3 ms a login on a slow
# day). The rules' thresholds (10 and 30 users, 10 and 50 failures) are far below it, and a
# count is never more than the truth, so the rules' messages stay true. On a network busier
# than this in ten minutes the ASN rule reads "50 of its latest 200 attempts failed", a
# quarter of its recent traffic, which typing errors alone do not reach; the IP rule's 10
# failures are 5 % of 200, which a busy carrier-NAT address can reach that way, so that rule
# also asks for a failure per two accounts (ip_failures_per_user_10m).
WINDOW_SCAN_MAX = 200
# Decisions are kept this long by default, so that labels arriving late still find them.
DECISION_RETENTION_S = 30 * 86_400.0
DEVICE_WINDOW_S = 30 * 86_400.0
# Tenant-wide counts are kept per minute: the window is the ten whole minutes before the
# current one plus the current one, so it spans 10 to 11 minutes.
MINUTE_S = 60


def abuse_since(now: float) -> int:
    """The first sustained-abuse bucket that ``load`` at event time ``now`` returns (the
    last ``ABUSE_BUCKETS``, 6 hours; no upper end, as for every window) and that retention
    keeps."""
    return abuse_bucket(now) - ABUSE_BUCKETS + 1


def abuse_filter(now: float) -> tuple[int, int, int, float]:
    """Which sustained-abuse buckets ``load`` at ``now`` returns: from the first (
    ``abuse_since``) on, every bucket from the recent one on (the current and the previous
    one: what ``features.extract.sustained_abuse`` reads as failing now, and where it
    counts the login), and an older one only when it has the failures and the failed share
    that an abusive bucket needs (its sketch cannot hold more accounts than failures). The
    features are the same as from every bucket; a busy network's quiet hours are not read.
    Returns (first, recent, least failures, failed share)."""
    first = abuse_since(now)
    return first, abuse_bucket(now) - 1, ABUSE_ACCOUNTS, ABUSE_FAILURE_SHARE


def can_count(bucket: AbuseBucket, recent: int, least: int, share: float) -> bool:
    """Whether ``abuse_filter`` keeps ``bucket`` (first checked apart)."""
    number, attempts, failures, _ = bucket
    return number >= recent or (failures >= least and failures >= share * attempts)


def minute_window(now: float) -> tuple[int, int]:
    """First and last minute bucket (inclusive) of the tenant window ending at ``now``."""
    last = int(now // MINUTE_S)
    return last - int(IP_WINDOW_S // MINUTE_S), last

class StoreError(RuntimeError):
    """The store could not answer (unreachable, corrupt, timed out)."""


class StoreContended(StoreError):
    """The store answered, but one user's data had too many writers at once to take this
    write: a matter of that user, not a failing store."""


class FeedbackOutcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    UNKNOWN_EVENT = "unknown_event"
    QUEUED = "queued"  # the store was unavailable: kept in the outbox, applied on recovery


def resolve_rotation(
    loaded: Loaded, query: LoadQuery, get_profile: Callable[[str, str], UserProfile | None]
) -> Loaded:
    """``loaded`` in the current pseudonyms only: during a key rotation, the user's history
    under a retired pseudonym when the current one has none, and the entries the profile
    keeps under the login's retired pseudonyms read as the current ones. Every store's
    ``load`` ends here, so features never see a retired key."""
    if not query.aliases:
        return loaded
    profile, inherited = loaded.profile, None
    if profile is None:
        for old in query.aliases.get(query.user_key, ()):
            inherited = get_profile(query.tenant, old)
            if inherited is not None:
                profile = inherited
                break
    if profile is None:
        return loaded
    return replace(loaded, profile=resolved(profile, query.aliases), inherited=inherited)


class Store(Protocol):
    # True for a store in this process or on its disk (memory, SQLite), whose calls take
    # microseconds; False for one across the network (Redis).
    embedded: bool

    def load(self, query: LoadQuery) -> Loaded:
        """Profile, velocity counts and any decision already recorded under
        ``query.event_id`` for this tenant. The ``*_users_*`` and ``device_accounts_*``
        counts leave this user out; the failure counts include this user's failures; the
        ``tenant_*`` counts cover ``minute_window(now)``."""
        ...

    def record(
        self, decision: StoredDecision, attempt: Attempt, update: ProfileUpdate | None
    ) -> StoredDecision:
        """Atomically store the decision, count the attempt and apply ``update`` to the
        user's current profile (an empty profile when there is none). When a decision with
        the same tenant and event_id exists, nothing changes and that one is returned."""
        ...

    def apply_feedback(
        self, tenant: str, event_id: str, label: str, plan: FeedbackPlan
    ) -> tuple[FeedbackOutcome, StoredDecision | None]:
        """Atomically: set the decision's ``feedback`` to ``label``, apply the update that
        ``plan(decision)`` returns to its user's profile and store its ``learned`` flag.
        The same label twice is a duplicate and changes nothing. Returns the outcome and
        the decision as it was before."""
        ...

    def get_decision(self, tenant: str, event_id: str) -> StoredDecision | None: ...

    def export_user(self, tenant: str, user_key: str) -> UserData:
        """The user's profile and every decision kept about the user, oldest first."""
        ...

    def erase_user(self, tenant: str, user_key: str) -> int:
        """Remove the user's profile, decisions and every counter entry of the user;
        returns how many records went. The user's next login is a new user's."""
        ...

    def purge(self, *, now: float, profile_retention_s: float) -> dict[str, int]:
        """Drop what retention no longer allows at event time ``now``: profiles not updated
        for ``profile_retention_s``, decisions older than the store's decision retention,
        counter entries past their windows. Returns how many of each went."""
        ...

    def get_profile(self, tenant: str, user_key: str) -> UserProfile | None: ...

    def ping(self) -> None:
        """Raise ``StoreError`` when the store cannot serve."""
        ...

    def close(self) -> None: ...


__all__ = [
    "Attempt", "FeedbackOutcome", "FeedbackPlan", "LoadQuery", "Loaded", "ProfileUpdate",
    "Store", "StoreContended", "StoreError", "StoredDecision", "UserData", "carry_over",
    "resolve_rotation",
]
