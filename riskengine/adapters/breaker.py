"""A circuit breaker for the shared store: stop calling a dependency that keeps failing.

When Redis is down every store call still costs its socket deadline before it fails. After a
run of consecutive failures the breaker opens, and callers take the failover answer at once
without touching the dependency. After a pause it lets one trial call through; the trial's
outcome closes the breaker or opens it again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Closed, open and half-open, driven by the outcomes its callers report.

    The caller asks :meth:`allow` before each call to the dependency; when it gets True it
    makes the call and reports :meth:`success` or :meth:`failure`; when it gets False it
    answers without the dependency.

    - **closed**: every call is allowed; ``failure_threshold`` consecutive failures open it,
      and any success resets the run.
    - **open**: every call is refused, until ``reset_after_s`` has passed; it then reports
      half-open.
    - **half-open**: one trial call is allowed at a time, the others are refused. The trial's
      success closes the breaker; its failure opens it for another ``reset_after_s``.

    Outcomes reported while open come from calls allowed before it opened: they are ignored,
    so late failures do not push recovery out. A trial that never reports (its caller died
    or forgot) would hold the breaker half-open for good; after ``reset_after_s`` it counts as
    lost and the next caller gets a new trial.

    Safe to share between threads. Counts outcomes, not error rates: it suits a dependency
    that fails fast and all at once (a store behind a short socket deadline), not one that
    fails a small share of calls.

    Parameters
    ----------
    failure_threshold
        Consecutive failures that open the breaker (default 5).
    reset_after_s
        Seconds the breaker stays open before it allows a trial (default 2.0).
    clock
        Monotonic seconds; injected so that tests control time.

    Examples
    --------
    >>> now = [0.0]
    >>> breaker = CircuitBreaker(failure_threshold=2, reset_after_s=1.0, clock=lambda: now[0])
    >>> breaker.failure(); breaker.failure()
    >>> breaker.state, breaker.allow()
    (<BreakerState.OPEN: 'open'>, False)
    >>> now[0] = 1.0
    >>> breaker.allow(), breaker.allow()
    (True, False)
    >>> breaker.success()
    >>> breaker.state
    <BreakerState.CLOSED: 'closed'>
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_after_s: float = 2.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, got {failure_threshold}")
        if reset_after_s <= 0:
            raise ValueError(f"reset_after_s must be positive, got {reset_after_s}")
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self.clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_started_at: float | None = None
        self._opened_count = 0
        self._rejected_count = 0

    @property
    def state(self) -> BreakerState:
        """The current state; an open breaker whose pause has passed reports half-open."""
        with self._lock:
            self._advance(self.clock())
            return self._state

    @property
    def opened_count(self) -> int:
        """How many times the breaker has opened, re-openings after a failed trial included."""
        with self._lock:
            return self._opened_count

    @property
    def rejected_count(self) -> int:
        """How many calls :meth:`allow` has refused."""
        with self._lock:
            return self._rejected_count

    def allow(self) -> bool:
        """Whether the caller may call the dependency now; it must then report the outcome."""
        with self._lock:
            now = self.clock()
            self._advance(now)
            if self._state is BreakerState.CLOSED:
                return True
            if self._state is BreakerState.HALF_OPEN and (
                self._trial_started_at is None or now - self._trial_started_at >= self.reset_after_s
            ):
                self._trial_started_at = now
                return True
            self._rejected_count += 1
            return False

    def success(self) -> None:
        """Report that an allowed call succeeded."""
        with self._lock:
            self._advance(self.clock())
            if self._state is not BreakerState.OPEN:
                self._state = BreakerState.CLOSED
                self._failures = 0
                self._trial_started_at = None

    def failure(self) -> None:
        """Report that an allowed call failed."""
        with self._lock:
            now = self.clock()
            self._advance(now)
            if self._state is BreakerState.CLOSED:
                self._failures += 1
                if self._failures >= self.failure_threshold:
                    self._open(now)
            elif self._state is BreakerState.HALF_OPEN:
                self._open(now)

    def _advance(self, now: float) -> None:
        # Half-open is entered lazily, on the first look after the pause: no timer thread.
        if self._state is BreakerState.OPEN and now - self._opened_at >= self.reset_after_s:
            self._state = BreakerState.HALF_OPEN
            self._trial_started_at = None

    def _open(self, now: float) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = now
        self._failures = 0
        self._trial_started_at = None
        self._opened_count += 1

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(state={self.state.value}, failure_threshold={self.failure_threshold},"
            f" reset_after_s={self.reset_after_s})"
        )
