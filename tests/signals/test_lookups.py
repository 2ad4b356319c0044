"""The guard (deadline, cache, breaker, cap in flight) and the budget of a login's lookups."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from features.event import LoginEvent
from features.profile import UserProfile
from riskengine.adapters.breaker import CircuitBreaker
from riskengine.adapters.signals import (
    UNKNOWN,
    UNLISTED,
    Answer,
    Guard,
    PhoneAccounts,
    Query,
    Signal,
    Signals,
)

T0 = datetime(2026, 11, 2, 1, 30, tzinfo=UTC)
PHONE = "+8613800138000"


class Fake:
    """A provider that answers what it is told, after a delay, or raises."""

    subject = "phone"
    provides = (Signal.PHONE_RISK,)

    def __init__(self, name: str = "fake", *, answer: Answer | None = None,
                 delay_s: float = 0.0, timeout_s: float = 1.0, fail: bool = False) -> None:
        self.name, self.answer, self.delay_s = name, answer or Answer("high"), delay_s
        self.timeout_s, self.fail = timeout_s, fail
        self.calls = 0
        self.release = threading.Event()

    def lookup(self, query: Query) -> Answer:
        self.calls += 1
        if self.delay_s:
            self.release.wait(self.delay_s)
        if self.fail:
            raise ConnectionError(f"refused for {query.phone}")
        return self.answer


def event(n: int = 1, *, phone_key: str | None = "p1", user: str = "u1",
          at: datetime = T0) -> LoginEvent:
    return LoginEvent(event_id=f"e{n}", tenant="t", user_key=user, timestamp=at,
                      ip="123.120.5.9", ip_key="ip1", ip_prefix_key="n1", phone_key=phone_key)


def query() -> Query:
    return Query(phone=PHONE, phone_key="p1", ip="123.120.5.9", ip_key="ip1")


def run(guard: Guard) -> Answer | None:
    part = guard.begin(query())
    return part.result(timeout=5) if hasattr(part, "result") else part


def test_answers_are_cached_by_pseudonym_for_their_ttl() -> None:
    now = [0.0]
    fake = Fake()
    guard = Guard(fake, cache_ttl_s=60, clock=lambda: now[0])
    assert run(guard) == Answer("high")
    assert run(guard) == Answer("high")
    assert fake.calls == 1 and guard.stats["cached"] == 1
    now[0] = 61.0
    run(guard)
    assert fake.calls == 2


def test_failures_open_the_breaker_and_the_provider_is_left_alone() -> None:
    now = [0.0]
    fake = Fake(fail=True)
    guard = Guard(fake, breaker=CircuitBreaker(3, 10.0, clock=lambda: now[0]),
                  clock=lambda: now[0])
    assert [run(guard) for _ in range(5)] == [None] * 5
    assert fake.calls == 3 and guard.stats["breaker_open"] == 2
    now[0] = 10.0
    fake.fail = False
    assert run(guard) == Answer("high")  # the trial after the pause closes it again
    assert guard.breaker.state.value == "closed"


def test_a_lookup_past_its_deadline_counts_as_a_failure_but_its_answer_is_kept() -> None:
    fake = Fake(delay_s=0.05, timeout_s=0.01)
    guard = Guard(fake, cache_ttl_s=60, breaker=CircuitBreaker(2, 10.0))
    assert run(guard) == Answer("high")
    assert guard.stats["slow"] == 1
    assert run(guard) == Answer("high")  # from the cache, no second call
    assert fake.calls == 1


def test_no_more_than_max_in_flight_lookups_wait_on_a_hung_service() -> None:
    fake = Fake(delay_s=10.0)
    guard = Guard(fake, max_in_flight=2)
    parts = [guard.begin(query()) for _ in range(5)]
    assert sum(p is None for p in parts) == 3 and guard.stats["busy"] == 3
    fake.release.set()
    assert all(p.result(timeout=5) == Answer("high") for p in parts if p is not None)
    assert guard.begin(query()) is not None  # the slots came back


def test_a_slow_provider_gives_unknown_within_the_budget() -> None:
    slow = Fake("slow", delay_s=2.0)
    signals = Signals([Guard(slow)], budget_s=0.03)
    started = time.perf_counter()
    signals.start(event(), phone=PHONE)
    values = signals.collect(event(), None, None)
    elapsed = time.perf_counter() - started
    slow.release.set()
    assert values["phone_risk_level"] == UNKNOWN
    assert elapsed < 0.03 + 0.05
    assert signals.guards[0].stats["late"] == 1


def test_the_budget_counts_from_the_start_so_the_store_load_overlaps_it() -> None:
    now = [0.0]
    slow = Fake("slow", delay_s=2.0)
    signals = Signals([Guard(slow)], budget_s=0.03, clock=lambda: now[0])
    signals.start(event(), phone=PHONE)
    now[0] = 0.05  # the store load took longer than the budget: nothing left to wait
    started = time.perf_counter()
    assert signals.collect(event(), None, None)["phone_risk_level"] == UNKNOWN
    assert time.perf_counter() - started < 0.01
    slow.release.set()


def test_a_provider_that_raises_is_unknown_and_never_an_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    signals = Signals([Guard(Fake(fail=True))])
    signals.start(event(), phone=PHONE)
    assert signals.collect(event(), None, None)["phone_risk_level"] == UNKNOWN
    assert "ConnectionError" in caplog.text
    assert PHONE not in caplog.text  # the error's message quoted the number: not logged


def test_the_worst_answer_counts_and_unknown_only_when_none_answered() -> None:
    def risk(*answers: Answer | None) -> Any:
        guards = [Guard(Fake(f"p{i}", answer=a, fail=a is None)) for i, a in enumerate(answers)]
        signals = Signals(guards)
        signals.start(event(), phone=PHONE)
        return signals.collect(event(), None, None)["phone_risk_level"]

    assert risk(Answer("medium"), Answer("high"), Answer(UNLISTED)) == "high"
    assert risk(Answer(UNLISTED), None) == UNLISTED
    assert risk(None, None) == UNKNOWN


class Recycled(Fake):
    provides = (Signal.PHONE_RECYCLED,)


def test_recycled_since_the_users_last_login() -> None:
    reassigned = T0.timestamp() - 86_400
    signals = Signals([Guard(Recycled(answer=Answer(phone_recycled_at=reassigned)))])

    def values(last_login: float | None, n: int) -> dict[str, Any]:
        profile = UserProfile(logins=3, last_login=last_login) if last_login else None
        signals.start(event(n), phone=PHONE)
        return signals.collect(event(n), None, profile)

    before = values(reassigned - 3600, 1)
    assert before["phone_recycled_status"] == "recycled"
    assert before["phone_recycled_since_last_login"] is True
    after = values(reassigned + 3600, 2)
    assert after["phone_recycled_since_last_login"] is False
    new_user = values(None, 3)
    assert new_user["phone_recycled_since_last_login"] is None


def test_an_entry_dated_after_the_event_had_not_happened_yet() -> None:
    later = T0.timestamp() + 86_400
    signals = Signals([Guard(Recycled(answer=Answer(phone_recycled_at=later)))])
    signals.start(event(), phone=PHONE)
    values = signals.collect(event(), None, UserProfile(logins=3, last_login=0.0))
    assert values["phone_recycled_status"] == UNLISTED
    assert values["phone_recycled_since_last_login"] is False


def test_phone_providers_are_not_asked_without_a_phone_number() -> None:
    fake = Fake()
    signals = Signals([Guard(fake)], phone_accounts=PhoneAccounts())
    signals.start(event(phone_key=None), phone=None)
    assert signals.collect(event(phone_key=None), None, None) == {}
    assert fake.calls == 0


def test_an_event_never_started_gives_nothing() -> None:
    assert Signals([Guard(Fake())]).collect(event(), None, None) == {}


def test_accounts_per_number_slide_out_of_the_window_and_stay_bounded() -> None:
    counts = PhoneAccounts(window_s=100.0, max_phones=2, max_accounts=3)
    assert [counts.add("p1", u, ts=t) for t, u in [(0, "a"), (10, "b"), (20, "c")]] == [1, 2, 3]
    assert counts.add("p1", "d", ts=30) == 3  # at most three remembered per number
    assert counts.add("p1", "e", ts=125) == 2  # a (0), b (10) and c (20) left the window
    counts.add("p2", "a", ts=0)
    counts.add("p3", "a", ts=0)
    assert len(counts) == 2  # the least recently seen number went first
    assert counts.add("p1", "z", ts=130) == 1


def test_a_fault_in_the_signals_themselves_leaves_the_features_unset(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import riskengine.adapters.signals.lookups as lookups

    def broken(e164: str) -> Any:
        raise RuntimeError("metadata missing")

    monkeypatch.setattr(lookups, "phone_facts", broken)
    signals = Signals([Guard(Fake())])
    signals.start(event(), phone=PHONE)
    assert signals.collect(event(), None, None) == {}
    assert "signals_error" in caplog.text
