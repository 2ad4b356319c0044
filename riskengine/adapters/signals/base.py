"""The seam for external signals: providers, and the guard every lookup runs behind.

A **provider** answers one kind of question about a login (the phone number's risk level,
whether the number was recycled, the IP's reputation) from somewhere outside the engine: a
file an operator refreshes, or a carrier's HTTP service. Providers may be slow, down or
wrong; so each runs behind a :class:`Guard`:

- a **deadline**: the provider's own ``timeout_s``; a lookup that takes longer counts as a
  failure for the breaker (its answer, when one comes, is still cached);
- a **TTL cache** keyed by the *pseudonym* of what was looked up (never the raw number);
- a **circuit breaker** (``riskengine.adapters.breaker.CircuitBreaker``): after a run of
  failures the provider is not called for a while;
- a cap on lookups **in flight**: a hung service can hold at most that many threads, and the
  next lookups take the fallback at once instead of queueing.

Whatever goes wrong, the guard answers None and the engine takes the documented fallback,
the feature value ``"unknown"``; nothing here raises into the scoring path.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Protocol

from riskengine.adapters.breaker import CircuitBreaker

log = logging.getLogger("riskengine.signals")

UNKNOWN = "unknown"
"""The fallback feature value: the lookup was asked and did not answer in time."""
UNLISTED = "unlisted"
"""The provider answered, and has no entry for it."""

RISK_LEVELS: tuple[str, ...] = ("low", "medium", "high")
# Most severe first: when two entries or two providers disagree, the worse one counts.
IP_CATEGORIES: tuple[str, ...] = ("botnet", "abuse", "proxy", "tor", "vpn", "hosting")

Subject = Literal["phone", "ip"]


class Signal(StrEnum):
    """What a provider can answer; each becomes one or two features."""

    PHONE_RISK = "phone_risk_level"
    PHONE_RECYCLED = "phone_recycled"
    IP_REPUTATION = "ip_reputation"


@dataclass(frozen=True, slots=True)
class Query:
    """What a provider may look up. ``phone`` is the raw E.164 number: it exists only in
    memory, for the lookup, and is never stored, cached or logged (caches use the keyed
    pseudonyms ``phone_key`` and ``ip_key``)."""

    phone: str | None
    phone_key: str | None
    ip: str
    ip_key: str
    asn: int | None = None

    def __repr__(self) -> str:  # keeps the raw number out of tracebacks and debug logs
        return f"Query(phone_key={self.phone_key!r}, ip_key={self.ip_key!r}, asn={self.asn!r})"


@dataclass(frozen=True, slots=True)
class Answer:
    """One provider's answer; only the fields of the signals it ``provides`` count.

    ``phone_risk_level``: low, medium, high or ``unlisted``. ``phone_recycled_at``: epoch
    seconds of the number's latest reassignment to a new subscriber, None when it is not
    listed. ``ip_reputation``: a category of ``IP_CATEGORIES`` or ``unlisted``.
    """

    phone_risk_level: str | None = None
    phone_recycled_at: float | None = None
    ip_reputation: str | None = None


class Provider(Protocol):
    """An external lookup.

    ``name`` names it in logs and status; ``subject`` says what it looks up (``phone``:
    asked only when the event carries a number; ``ip``: always); ``provides`` the signals
    its answers carry; ``timeout_s`` its own deadline. ``lookup`` may block and may raise:
    the guard turns both into the fallback. A provider may set ``inline = True`` when its
    lookup never blocks (a table in memory): the guard then calls it in the scoring thread.
    """

    name: str
    subject: Subject
    provides: tuple[Signal, ...]
    timeout_s: float

    def lookup(self, query: Query) -> Answer: ...


class Guard:
    """Runs one provider's lookups on its own small thread pool, behind a TTL cache, a
    circuit breaker and a cap on lookups in flight.

    Parameters
    ----------
    provider
        The lookup to guard.
    cache_ttl_s
        How long an answer is reused for the same pseudonym (0: no cache; file providers
        are their own cache and want changes seen at once).
    cache_size
        Most answers kept (least recently used go first).
    breaker
        Stops calling a failing provider; the default opens after 5 consecutive failures
        for 10 s.
    max_in_flight
        Lookups running at once; more take the fallback at once (counted as ``busy``).
    clock
        Monotonic seconds, injected for tests.
    """

    def __init__(
        self,
        provider: Provider,
        *,
        cache_ttl_s: float = 0.0,
        cache_size: int = 10_000,
        breaker: CircuitBreaker | None = None,
        max_in_flight: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self.provider = provider
        self.cache_ttl_s = cache_ttl_s
        self.cache_size = cache_size
        self.breaker = breaker or CircuitBreaker(failure_threshold=5, reset_after_s=10.0)
        self.max_in_flight = max_in_flight
        self.clock = clock
        self.stats: Counter[str] = Counter()
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._cache: OrderedDict[str, tuple[float, Answer]] = OrderedDict()
        self._lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max_in_flight,
                                        thread_name_prefix=f"signal-{provider.name}")

    @property
    def name(self) -> str:
        return self.provider.name

    def applies(self, query: Query) -> bool:
        return self.provider.subject == "ip" or query.phone is not None

    def begin(self, query: Query) -> Answer | Future[Answer | None] | None:
        """A cached answer, a lookup under way, or None (breaker open, too many in flight).

        An ``inline`` provider (an in-memory table) answers here, in the caller's thread:
        handing a dictionary lookup to another thread would cost more than the lookup.
        """
        key = self._key(query)
        if key is not None and self.cache_ttl_s > 0:
            with self._lock:
                hit = self._cache.get(key)
                if hit is not None and hit[0] > self.clock():
                    self._cache.move_to_end(key)
                    self.note("cached")
                    return hit[1]
        inline = getattr(self.provider, "inline", False)
        if not inline and not self._slots.acquire(blocking=False):
            self.note("busy")
            return None
        if not self.breaker.allow():
            if not inline:
                self._slots.release()
            self.note("breaker_open")
            return None
        if inline:
            return self._call(query, key)
        try:
            return self._pool.submit(self._run, query, key)
        except RuntimeError:  # the pool was shut down
            self._slots.release()
            self.breaker.failure()
            self.note("failed")
            return None

    def _run(self, query: Query, key: str | None) -> Answer | None:
        try:
            return self._call(query, key)
        finally:
            self._slots.release()

    def _call(self, query: Query, key: str | None) -> Answer | None:
        started = self.clock()
        try:
            answer = self.provider.lookup(query)
            if not isinstance(answer, Answer):
                raise TypeError(f"{self.name} answered a {type(answer).__name__}")
        except Exception as exc:
            self.breaker.failure()
            self.note("failed")
            # The type only: a message could quote what the service sent back.
            log.warning(json.dumps({"event": "signal_error", "provider": self.name,
                                    "error": type(exc).__name__}))
            return None
        if self.clock() - started > self.provider.timeout_s:
            self.breaker.failure()  # a service that is always too slow gets its breaker opened
            self.note("slow")
        else:
            self.breaker.success()
            self.note("answered")
        if key is not None and self.cache_ttl_s > 0:
            with self._lock:
                self._cache[key] = (self.clock() + self.cache_ttl_s, answer)
                self._cache.move_to_end(key)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return answer

    def _key(self, query: Query) -> str | None:
        return query.phone_key if self.provider.subject == "phone" else query.ip_key

    def note(self, what: str) -> None:
        """Count an outcome: answered, cached, slow, failed, busy, breaker_open, late."""
        with self._stats_lock:
            self.stats[what] += 1

    def status(self) -> dict[str, Any]:
        with self._stats_lock:
            counts = dict(self.stats)
        extra = getattr(self.provider, "status", None)
        return {"name": self.name, "subject": self.provider.subject,
                "provides": [s.value for s in self.provider.provides],
                "breaker": self.breaker.state.value, "counts": counts,
                **(extra() if callable(extra) else {})}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class PhoneAccounts:
    """Distinct accounts seen with each phone number (by pseudonym) in a sliding window.

    In memory and per instance: the store has no such window, and the count only has to
    catch one number behind many accounts (sign-up farms). Bounded: at most ``max_phones``
    numbers (least recently seen go first) and ``max_accounts`` accounts per number.
    Time is the event's.

    >>> counts = PhoneAccounts()
    >>> [counts.add("p1", user, ts=float(t)) for t, user in enumerate(["a", "b", "a", "c"])]
    [1, 2, 2, 3]
    """

    def __init__(self, *, window_s: float = 30 * 86_400.0, max_phones: int = 100_000,
                 max_accounts: int = 64) -> None:
        self.window_s = window_s
        self.max_phones = max_phones
        self.max_accounts = max_accounts
        self._seen: OrderedDict[str, dict[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, phone_key: str, user_key: str, *, ts: float) -> int:
        """Note ``user_key`` with this number at ``ts``; the accounts in the window."""
        with self._lock:
            users = self._seen.pop(phone_key, None) or {}
            users[user_key] = max(ts, users.get(user_key, ts))
            since = ts - self.window_s
            for old in [u for u, t in users.items() if t <= since]:
                del users[old]
            while len(users) > self.max_accounts:
                del users[min(users, key=users.__getitem__)]
            self._seen[phone_key] = users
            while len(self._seen) > self.max_phones:
                self._seen.popitem(last=False)
            return sum(1 for t in users.values() if t > since)

    def __len__(self) -> int:
        return len(self._seen)
