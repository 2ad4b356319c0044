"""A number's facts are remembered by its pseudonym: same facts, bounded, no raw number kept."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import riskengine.adapters.signals.lookups as lookups
from features.event import LoginEvent
from features.phone import phone_facts
from riskengine.adapters.signals import PhoneAccounts, Signals
from riskengine.adapters.signals.lookups import PhoneFactsCache
from riskengine.core.privacy import Kind, Pseudonymizer

PHONES = ["+8613800138000", "+445612345678", "+14155552671", "+819012345678", "+999123",
          "+33912345678", "+8613800138000"]
PSEUDONYMIZE = Pseudonymizer(b"phone-facts-test-key-0123456789")


def key(phone: str) -> str:
    return PSEUDONYMIZE(Kind.PHONE, phone, scope="t")


def event(n: int, phone: str | None) -> LoginEvent:
    return LoginEvent(event_id=f"e{n}", tenant="t", user_key="u1", ip="123.120.5.9",
                      ip_key="ip1", ip_prefix_key="n1",
                      phone_key=key(phone) if phone else None,
                      timestamp=datetime(2026, 11, 2, tzinfo=UTC))


def test_remembered_facts_are_the_numbers_own() -> None:
    cache = PhoneFactsCache()
    for _ in range(2):  # parsed, then remembered
        for phone in PHONES:
            assert cache.get(key(phone), phone) == phone_facts(phone)
    assert len(cache) == len(set(PHONES))


def test_the_cache_is_keyed_by_pseudonym_never_by_the_number() -> None:
    cache = PhoneFactsCache()
    for phone in PHONES:
        cache.get(key(phone), phone)
    kept = " ".join(cache.keys())
    assert set(cache.keys()) == {key(p) for p in PHONES}
    assert not any(p in kept or p.lstrip("+") in kept for p in PHONES)


def test_the_least_recently_used_number_goes_first() -> None:
    cache = PhoneFactsCache(max_phones=2)
    a, b, c = PHONES[:3]
    cache.get(key(a), a)
    cache.get(key(b), b)
    cache.get(key(a), a)  # a is used again, so b is now the oldest
    cache.get(key(c), c)
    assert cache.keys() == (key(a), key(c))
    assert len(PhoneFactsCache(max_phones=0)) == 0
    with pytest.raises(ValueError):
        PhoneFactsCache(max_phones=-1)


def test_signals_parse_a_returning_number_once(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []

    def counting(e164: str) -> object:
        parsed.append(e164)
        return phone_facts(e164)

    monkeypatch.setattr(lookups, "phone_facts", counting)
    signals = Signals(phone_accounts=PhoneAccounts(), phone_facts_max=4)
    seen = []
    for n, phone in enumerate(["+8613800138000", "+8613800138000", "+445612345678"]):
        signals.start(event(n, phone), phone=phone)
        seen.append(signals.collect(event(n, phone), None, None))
    assert parsed == ["+8613800138000", "+445612345678"]
    assert seen[0]["phone_carrier"] == seen[1]["phone_carrier"] == "China Mobile"
    assert seen[2]["phone_type"] == "voip"
    # Without a pseudonym there is no key to remember the facts by: parsed every time.
    signals.start(event(9, None), phone="")
    signals.start(event(10, None), phone="")
    assert parsed[2:] == ["", ""]
