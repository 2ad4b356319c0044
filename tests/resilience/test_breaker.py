"""The circuit breaker's state machine, driven by a fake clock, and its behaviour under threads."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from riskengine.adapters.breaker import BreakerState, CircuitBreaker

THREADS = 8


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads as often as possible, so that races have a chance to show."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def make(clock: FakeClock, *, threshold: int = 3, reset_after_s: float = 2.0) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=threshold, reset_after_s=reset_after_s, clock=clock)


def guarded(breaker: CircuitBreaker, dependency: Callable[[], None]) -> bool:
    """Call ``dependency`` the way the engine will; True when it was called."""
    if not breaker.allow():
        return False
    try:
        dependency()
    except ConnectionError:
        breaker.failure()
    else:
        breaker.success()
    return True


def trip(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.failure_threshold):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state is BreakerState.OPEN


def test_states_are_plain_strings() -> None:
    assert [str(state) for state in BreakerState] == ["closed", "open", "half_open"]


def test_defaults() -> None:
    breaker = CircuitBreaker()

    assert (breaker.failure_threshold, breaker.reset_after_s) == (5, 2.0)
    assert breaker.state is BreakerState.CLOSED
    assert (breaker.opened_count, breaker.rejected_count) == (0, 0)


@pytest.mark.parametrize(("threshold", "reset_after_s"), [(0, 2.0), (-1, 2.0), (5, 0.0), (5, -1.0)])
def test_rejects_meaningless_settings(threshold: int, reset_after_s: float) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=threshold, reset_after_s=reset_after_s)


@pytest.mark.parametrize("threshold", [1, 3, 5])
def test_opens_after_threshold_consecutive_failures_and_not_before(
    clock: FakeClock, threshold: int
) -> None:
    breaker = make(clock, threshold=threshold)

    for _ in range(threshold - 1):
        assert breaker.allow()
        breaker.failure()
        assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    breaker.failure()

    assert breaker.state is BreakerState.OPEN
    assert breaker.opened_count == 1


def test_a_success_resets_the_run_of_failures(clock: FakeClock) -> None:
    breaker = make(clock, threshold=3)

    for _ in range(5):
        breaker.failure()
        breaker.failure()
        breaker.success()

    assert breaker.state is BreakerState.CLOSED
    breaker.failure()
    breaker.failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.failure()
    assert breaker.state is BreakerState.OPEN


def test_open_rejects_without_calling_the_dependency_and_counts(clock: FakeClock) -> None:
    breaker = make(clock, threshold=2)
    calls: list[float] = []

    def down() -> None:
        calls.append(clock())
        raise ConnectionError("redis down")

    results = [guarded(breaker, down) for _ in range(10)]

    assert results == [True, True] + [False] * 8
    assert len(calls) == 2
    assert breaker.rejected_count == 8
    assert breaker.opened_count == 1


def test_goes_half_open_after_the_pause_and_not_before(clock: FakeClock) -> None:
    breaker = make(clock, reset_after_s=2.0)
    trip(breaker)

    clock.advance(1.999)
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()

    clock.advance(0.001)
    assert breaker.state is BreakerState.HALF_OPEN


def test_half_open_lets_one_trial_through_at_a_time(clock: FakeClock) -> None:
    breaker = make(clock)
    trip(breaker)
    clock.advance(2.0)
    rejected_before = breaker.rejected_count

    assert breaker.allow()
    assert [breaker.allow() for _ in range(5)] == [False] * 5
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.rejected_count == rejected_before + 5


def test_trial_success_closes(clock: FakeClock) -> None:
    breaker = make(clock, threshold=3)
    trip(breaker)
    clock.advance(2.0)

    assert breaker.allow()
    breaker.success()

    assert breaker.state is BreakerState.CLOSED
    assert all(breaker.allow() for _ in range(10))
    # The run of failures starts over: it takes a full threshold to open again.
    breaker.failure()
    breaker.failure()
    assert breaker.state is BreakerState.CLOSED


def test_trial_failure_reopens_for_another_pause(clock: FakeClock) -> None:
    breaker = make(clock, reset_after_s=2.0)
    trip(breaker)
    clock.advance(2.0)

    assert breaker.allow()
    breaker.failure()

    assert breaker.state is BreakerState.OPEN
    assert breaker.opened_count == 2
    clock.advance(1.5)
    assert not breaker.allow()
    clock.advance(0.5)
    assert breaker.allow()


def test_late_failures_while_open_do_not_extend_the_pause(clock: FakeClock) -> None:
    breaker = make(clock, threshold=2, reset_after_s=2.0)
    # Four calls allowed while closed; two fail and open the breaker, two more fail late.
    assert all(breaker.allow() for _ in range(4))
    breaker.failure()
    breaker.failure()
    clock.advance(1.0)
    breaker.failure()
    breaker.failure()

    clock.advance(1.0)

    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.opened_count == 1


def test_late_success_while_open_does_not_close(clock: FakeClock) -> None:
    breaker = make(clock)
    trip(breaker)

    breaker.success()

    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()


def test_a_trial_that_never_reports_is_replaced_after_a_pause(clock: FakeClock) -> None:
    breaker = make(clock, reset_after_s=2.0)
    trip(breaker)
    clock.advance(2.0)
    assert breaker.allow()  # this trial's caller never reports

    clock.advance(1.0)
    assert not breaker.allow()
    clock.advance(1.0)
    assert breaker.allow()
    assert not breaker.allow()


def test_recovers_end_to_end(clock: FakeClock) -> None:
    breaker = make(clock, threshold=2, reset_after_s=2.0)
    up = False

    def dependency() -> None:
        if not up:
            raise ConnectionError("redis down")

    assert [guarded(breaker, dependency) for _ in range(4)] == [True, True, False, False]
    clock.advance(2.0)
    assert guarded(breaker, dependency)  # failed trial
    assert breaker.state is BreakerState.OPEN

    up = True
    clock.advance(2.0)
    assert guarded(breaker, dependency)  # trial succeeds

    assert breaker.state is BreakerState.CLOSED
    assert all(guarded(breaker, dependency) for _ in range(5))
    assert (breaker.opened_count, breaker.rejected_count) == (2, 2)


@pytest.mark.usefixtures("busy_switching")
def test_threads_hammering_failure_and_allow_end_consistent(clock: FakeClock) -> None:
    threshold, rounds = 5, 2_000
    breaker = make(clock, threshold=threshold)
    start = threading.Barrier(THREADS)

    def hammer() -> tuple[int, int]:
        allowed = rejected = 0
        start.wait()
        for _ in range(rounds):
            breaker.failure()
            if breaker.allow():
                allowed += 1
            else:
                rejected += 1
        return allowed, rejected

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda _: hammer(), range(THREADS)))

    allowed = sum(a for a, _ in results)
    rejected = sum(r for _, r in results)
    assert allowed + rejected == THREADS * rounds
    assert breaker.rejected_count == rejected
    # The clock stands still: the breaker opened once and stayed open.
    assert breaker.state is BreakerState.OPEN
    assert breaker.opened_count == 1
    # An allow that saw the breaker closed followed its own thread's failure, and only
    # threshold - 1 failures are seen while closed.
    assert allowed <= threshold - 1


@pytest.mark.usefixtures("busy_switching")
def test_concurrent_callers_in_half_open_get_exactly_one_trial(clock: FakeClock) -> None:
    breaker = make(clock)
    trip(breaker)
    clock.advance(2.0)
    start = threading.Barrier(THREADS)

    def ask() -> list[bool]:
        start.wait()
        return [breaker.allow() for _ in range(200)]

    with ThreadPoolExecutor(THREADS) as pool:
        answers = [
            answer for batch in pool.map(lambda _: ask(), range(THREADS)) for answer in batch
        ]

    assert answers.count(True) == 1
    assert breaker.rejected_count == THREADS * 200 - 1
    assert breaker.state is BreakerState.HALF_OPEN
