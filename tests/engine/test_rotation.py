"""Rotating the pseudonymization key keeps history readable until it ages out."""

from __future__ import annotations

from datetime import timedelta

from riskengine.adapters.stores import MemoryStore
from riskengine.core.privacy import Pseudonymizer, parse_key_file
from riskengine.core.wire import ScoreRequest
from tests.engine.conftest import HOME, at, home_history

OLD = b"old-key-0123456789abcdef"
NEW = b"new-key-0123456789abcdef"


def test_history_under_the_retired_key_still_counts(make_engine):
    store = MemoryStore()
    before = make_engine(store=store, pseudonymizer=Pseudonymizer(OLD, key_id="k1"))
    last = home_history(before, 10)

    after = make_engine(store=store, pseudonymizer=Pseudonymizer(
        NEW, key_id="k2", previous=[("k1", OLD)]))
    body = after.score(ScoreRequest(**{**HOME, "event_id": "r1",
                                       "timestamp": at(last + timedelta(days=1))})).body
    codes = {r["code"] for r in body["reasons"]}
    assert body["decision"] == "allow"
    assert "cold_start" not in codes and "new_device" not in codes

    new_key = after.to_event(ScoreRequest(**HOME), received_at=last).user_key
    carried = store.get_profile("default", new_key)
    assert new_key.startswith("k2.")
    assert carried is not None and carried.logins == 11  # history carried to the new key


def test_without_the_retired_key_the_user_is_new(make_engine):
    store = MemoryStore()
    last = home_history(make_engine(store=store, pseudonymizer=Pseudonymizer(OLD)), 5)
    fresh = make_engine(store=store, pseudonymizer=Pseudonymizer(NEW, key_id="k2"))
    scored = fresh.score(ScoreRequest(**{**HOME, "timestamp": at(last + timedelta(days=1))}))
    assert scored.features is not None and scored.features["user_is_new"] is True


def test_key_file_format():
    keys = parse_key_file("# rotated 2026-11\nk2 new-secret-0123456789\nk1 old-secret-0123456789\n")
    assert [k for k, _ in keys] == ["k2", "k1"]
    assert parse_key_file("just-a-secret-0123456789\n") == [("k1", b"just-a-secret-0123456789")]
