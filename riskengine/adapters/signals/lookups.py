"""All the signals of one login: started at the edge, collected within a budget.

``Signals.start`` runs where the raw phone number still exists (``Engine.to_event``): it
derives the number's own facts (``features.phone``), counts the accounts behind the number,
and starts every provider's lookup on the providers' threads. The engine then loads the
profile from the store while the lookups run, and ``Signals.collect`` waits for what is
still out only until the budget, counted from ``start``, is spent: what has not answered by
then is ``"unknown"``. A slow provider therefore costs the scoring answer at most the
budget, and usually nothing, since the store load overlaps it.

Only derived values leave: levels, categories, dates, booleans and counts. The raw number
is dropped when ``start`` returns (its lookups hold it until they end); the number's facts
are remembered by its pseudonym, never by the number.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from typing import Any

from features.event import LoginEvent
from features.ipintel import IpInfo
from features.phone import PhoneFacts, country_mismatch, phone_facts, recycled_since
from features.profile import UserProfile
from riskengine.adapters.signals.base import (
    IP_CATEGORIES,
    RISK_LEVELS,
    UNKNOWN,
    UNLISTED,
    Answer,
    Guard,
    PhoneAccounts,
    Query,
    Signal,
)

Value = bool | int | float | str | None
log = logging.getLogger("riskengine.signals")

_RISK_ORDER = {UNLISTED: 0, **{level: i + 1 for i, level in enumerate(RISK_LEVELS)}}
_IP_ORDER = {UNLISTED: 0, **{c: len(IP_CATEGORIES) - i for i, c in enumerate(IP_CATEGORIES)}}


@dataclass(slots=True)
class _Pending:
    deadline: float
    values: dict[str, Value]
    parts: list[tuple[Guard, Answer | Future[Answer | None] | None]] = field(
        default_factory=list)


class Signals:
    """The phone facts and the providers' lookups for each login, within a time budget.

    Parameters
    ----------
    guards
        The providers, each behind its ``Guard`` (deadline, cache, breaker).
    budget_s
        The most that waiting for lookups may add to a scoring answer, counted from the
        start of the lookups (default 30 ms).
    phone_facts
        Derive the number's validity, type, region and carrier with ``phonenumbers``.
    phone_accounts
        The in-memory count of accounts per number (None: not counted).
    phone_facts_max
        Numbers whose facts are remembered (``PhoneFactsCache``), by pseudonym.
    clock
        Monotonic seconds, injected for tests.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> signals = Signals(phone_accounts=PhoneAccounts())
    >>> event = LoginEvent(event_id="e1", tenant="t", user_key="u1", ip="123.120.5.9",
    ...                    ip_key="ip1", ip_prefix_key="n1", phone_key="p1",
    ...                    timestamp=datetime(2026, 11, 2, tzinfo=UTC))
    >>> signals.start(event, phone="+8613800138000")
    >>> values = signals.collect(event, None, None)
    >>> values["phone_type"], values["phone_carrier"], values["phone_accounts_30d"]
    ('mobile', 'China Mobile', 1)
    """

    def __init__(
        self,
        guards: Sequence[Guard] = (),
        *,
        budget_s: float = 0.03,
        phone_facts: bool = True,
        phone_accounts: PhoneAccounts | None = None,
        clock: Callable[[], float] = time.monotonic,
        pending_max: int = 4096,
        phone_facts_max: int = 65_536,
    ) -> None:
        if budget_s <= 0:
            raise ValueError(f"budget_s must be positive, got {budget_s}")
        self.guards = tuple(guards)
        self.budget_s = budget_s
        self.phone_facts = phone_facts
        self.phone_accounts = phone_accounts
        self.clock = clock
        self.pending_max = pending_max
        self._pending: OrderedDict[tuple[str, str], _Pending] = OrderedDict()
        self._lock = threading.Lock()
        self._facts = PhoneFactsCache(max_phones=phone_facts_max)

    def start(self, event: LoginEvent, *, phone: str | None, asn: int | None = None) -> None:
        """Derive what needs the raw ``phone`` and start the lookups; returns at once.

        Never raises: a fault here leaves the event's signal features None.
        """
        try:
            self._start(event, phone, asn)
        except Exception:
            log.exception(json.dumps({"event": "signals_error", "stage": "start",
                                      "event_id": event.event_id}))

    def _start(self, event: LoginEvent, phone: str | None, asn: int | None) -> None:
        values: dict[str, Value] = {}
        if phone is not None and self.phone_facts:
            # The event's phone_key is the pseudonym of this very number (Engine.to_event).
            facts = phone_facts(phone) if event.phone_key is None \
                else self._facts.get(event.phone_key, phone)
            values.update(phone_possible=facts.possible, phone_valid=facts.valid,
                          phone_type=facts.type, phone_region=facts.region,
                          phone_carrier=facts.carrier)
        if phone is not None and event.phone_key is not None \
                and self.phone_accounts is not None:
            values["phone_accounts_30d"] = self.phone_accounts.add(
                event.phone_key, event.user_key, ts=event.ts)
        pending = _Pending(self.clock() + self.budget_s, values)
        query = Query(phone=phone, phone_key=event.phone_key, ip=event.ip, ip_key=event.ip_key,
                      asn=asn)
        for guard in self.guards:
            if guard.applies(query):
                pending.parts.append((guard, guard.begin(query)))
        with self._lock:
            self._pending[(event.tenant, event.event_id)] = pending
            # Events started but never collected (a replayed event id, a store failover)
            # age out here.
            while len(self._pending) > self.pending_max:
                self._pending.popitem(last=False)

    def collect(
        self, event: LoginEvent, ip: IpInfo | None, profile: UserProfile | None
    ) -> dict[str, Value]:
        """The signal features of ``event``, waiting at most until its budget is spent.

        Never raises; an event that was never started (or a fault here) gives {}.
        """
        try:
            return self._collect(event, ip, profile)
        except Exception:
            log.exception(json.dumps({"event": "signals_error", "stage": "collect",
                                      "event_id": event.event_id}))
            return {}

    def _collect(
        self, event: LoginEvent, ip: IpInfo | None, profile: UserProfile | None
    ) -> dict[str, Value]:
        with self._lock:
            pending = self._pending.pop((event.tenant, event.event_id), None)
        if pending is None:
            return {}
        futures = [p for _, p in pending.parts if isinstance(p, Future)]
        if futures:
            wait(futures, timeout=max(0.0, pending.deadline - self.clock()))
        answers: dict[Signal, list[Answer]] = {}
        asked: set[Signal] = set()
        for guard, part in pending.parts:
            asked.update(guard.provider.provides)
            answer = _resolved(guard, part)
            if answer is not None:
                for signal in guard.provider.provides:
                    answers.setdefault(signal, []).append(answer)
        values = dict(pending.values)
        region = values.get("phone_region")
        if ip is not None and isinstance(region, str):
            values["phone_ip_country_mismatch"] = country_mismatch(
                region, ip.country, ip_locates_user=ip.locates_user)
        if Signal.PHONE_RISK in asked:
            levels = [a.phone_risk_level for a in answers.get(Signal.PHONE_RISK, ())
                      if a.phone_risk_level in _RISK_ORDER]
            values["phone_risk_level"] = max(levels, key=_RISK_ORDER.__getitem__) \
                if levels else UNKNOWN
        if Signal.PHONE_RECYCLED in asked:
            said = answers.get(Signal.PHONE_RECYCLED)
            if not said:
                values["phone_recycled_status"] = UNKNOWN
            else:
                # The latest reassignment known at event time is the one that matters.
                dates = [a.phone_recycled_at for a in said
                         if a.phone_recycled_at is not None and a.phone_recycled_at <= event.ts]
                latest = max(dates) if dates else None
                values["phone_recycled_status"] = "recycled" if latest is not None else UNLISTED
                values["phone_recycled_since_last_login"] = recycled_since(
                    latest, last_login=profile.last_login if profile is not None else None,
                    now=event.ts)
        if Signal.IP_REPUTATION in asked:
            found = [a.ip_reputation for a in answers.get(Signal.IP_REPUTATION, ())
                     if a.ip_reputation in _IP_ORDER]
            values["ip_reputation"] = max(found, key=_IP_ORDER.__getitem__) \
                if found else UNKNOWN
        return values

    def status(self) -> dict[str, Any]:
        """What each provider has been doing: counts, breaker state, file versions."""
        counted = len(self.phone_accounts) if self.phone_accounts is not None else 0
        return {"budget_s": self.budget_s, "phone_facts": self.phone_facts,
                "phones_counted": counted, "providers": [g.status() for g in self.guards]}

    def close(self) -> None:
        for guard in self.guards:
            guard.close()


class PhoneFactsCache:
    """``phone_facts`` remembered by the number's pseudonym, least recently used out first.

    The facts are a pure function of the number, and parsing and matching it against the
    numbering plans is the dearest step of a login's edge (about 30 µs, against 0.3 µs for
    a number remembered), while most logins come back with a number seen before. The key is
    the pseudonym (``LoginEvent.phone_key``), never the number, so no raw number outlives
    the call that brought it.

    Bounded at ``max_phones`` numbers: the numbers seen grow without end, while the ones
    that come back are the recently active. The default 65,536 (the IP cache's size) holds
    about 15 MB; a number that dropped out is parsed again, to the same facts.

    >>> cache = PhoneFactsCache(max_phones=2)
    >>> cache.get("p1", "+8613800138000").carrier
    'China Mobile'
    >>> cache.get("p1", "+8613800138000") is cache.get("p1", "+8613800138000")
    True
    """

    def __init__(self, *, max_phones: int = 65_536) -> None:
        if max_phones < 0:
            raise ValueError(f"max_phones must not be negative, got {max_phones}")
        self.max_phones = max_phones
        self._facts: OrderedDict[str, PhoneFacts] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, phone_key: str, phone: str) -> PhoneFacts:
        """The facts of ``phone``, whose pseudonym is ``phone_key``."""
        with self._lock:
            facts = self._facts.get(phone_key)
            if facts is not None:
                self._facts.move_to_end(phone_key)
                return facts
        facts = phone_facts(phone)  # outside the lock: other logins need not wait for it
        with self._lock:
            self._facts[phone_key] = facts
            while len(self._facts) > self.max_phones:
                self._facts.popitem(last=False)
        return facts

    def keys(self) -> tuple[str, ...]:
        """The pseudonyms remembered, least recently used first."""
        with self._lock:
            return tuple(self._facts)

    def __len__(self) -> int:
        return len(self._facts)


def _resolved(guard: Guard, part: Answer | Future[Answer | None] | None) -> Answer | None:
    if part is None or isinstance(part, Answer):
        return part
    if not part.done():
        guard.note("late")  # it goes on, and its answer fills the cache for next time
        return None
    try:
        return part.result()
    except BaseException:  # cancelled at shutdown; _run itself never raises
        return None
