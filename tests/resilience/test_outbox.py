"""The outbox: durable, deduplicated by (kind, key), replayed in order, bounded, thread-safe."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from riskengine.adapters.outbox import (
    SCHEMA_VERSION,
    DrainResult,
    Outbox,
    OutboxError,
    OutboxFull,
    OutboxItem,
    Owner,
)

T0 = 1_700_000_000.0
THREADS = 8


class Ticker:
    """Epoch seconds that step by one on each read."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture(params=["memory", "file"])
def outbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outbox]:
    path = ":memory:" if request.param == "memory" else tmp_path / "outbox.db"
    opened = Outbox(path, clock=Ticker())
    yield opened
    opened.close()


def keys(items: list[OutboxItem]) -> list[str]:
    return [item.key for item in items]


def fill(outbox: Outbox, *names: str) -> None:
    for name in names:
        assert outbox.put("record", name, {"event_id": name})


class Recorder:
    """An ``apply`` that records what it saw and fails on chosen keys."""

    def __init__(self, *failing: str) -> None:
        self.failing = set(failing)
        self.seen: list[str] = []

    def __call__(self, item: OutboxItem) -> None:
        self.seen.append(item.key)
        if item.key in self.failing:
            raise ConnectionError("store still down")


def test_put_then_pending_gives_the_item_back(outbox: Outbox) -> None:
    payload = {"event_id": "e1", "user_key": "u_3fa9", "nested": {"score": 0.25, "n": [1, 2]}}

    assert outbox.put("record", "e1", payload)

    [item] = outbox.pending()
    assert (item.kind, item.key, item.payload, item.attempts) == ("record", "e1", payload, 0)
    assert item.queued_at == T0 + 1.0
    assert len(outbox) == 1


def test_items_are_frozen(outbox: Outbox) -> None:
    fill(outbox, "e1")
    [item] = outbox.pending()

    with pytest.raises(AttributeError):
        item.attempts = 3  # type: ignore[misc]


def test_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "outbox.db"
    first = Outbox(path)
    fill(first, "e3", "e1", "e2")
    first.retry_later(first.pending()[0].id)
    first.close()

    reopened = Outbox(path)

    assert keys(reopened.pending()) == ["e3", "e1", "e2"]
    assert [item.attempts for item in reopened.pending()] == [1, 0, 0]
    assert len(reopened) == 3
    # Dedup holds across the restart too.
    assert not reopened.put("record", "e1", {"event_id": "e1"})
    reopened.close()


def test_same_kind_and_key_is_queued_once(outbox: Outbox) -> None:
    assert outbox.put("record", "e1", {"version": 1})
    assert not outbox.put("record", "e1", {"version": 2})

    [item] = outbox.pending()
    assert item.payload == {"version": 1}
    assert len(outbox) == 1


def test_same_key_under_another_kind_is_another_item(outbox: Outbox) -> None:
    assert outbox.put("record", "e1", {})
    assert outbox.put("feedback", "e1", {})

    assert [(item.kind, item.key) for item in outbox.pending()] == [
        ("record", "e1"),
        ("feedback", "e1"),
    ]


def test_pending_keeps_insertion_order_and_limit(outbox: Outbox) -> None:
    names = ["zeta", "alpha", "mid", "beta", "omega"]
    fill(outbox, *names)

    assert keys(outbox.pending()) == names
    assert keys(outbox.pending(limit=2)) == names[:2]


def test_done_removes_only_that_item(outbox: Outbox) -> None:
    fill(outbox, "e1", "e2", "e3")
    middle = outbox.pending()[1]

    outbox.done(middle.id)
    outbox.done(middle.id)  # already gone: nothing happens

    assert keys(outbox.pending()) == ["e1", "e3"]
    assert len(outbox) == 2


def test_an_applied_pair_can_be_queued_again(outbox: Outbox) -> None:
    fill(outbox, "e1")
    outbox.done(outbox.pending()[0].id)

    assert outbox.put("record", "e1", {"event_id": "e1"})
    assert len(outbox) == 1


def test_new_items_never_reuse_an_old_id(outbox: Outbox) -> None:
    fill(outbox, "e1", "e2")
    last = outbox.pending()[-1]
    outbox.done(last.id)

    fill(outbox, "e3")

    assert outbox.pending()[-1].id > last.id
    assert keys(outbox.pending()) == ["e1", "e3"]


def test_retry_later_counts_attempts_and_keeps_the_place(outbox: Outbox) -> None:
    fill(outbox, "e1", "e2")
    first = outbox.pending()[0]

    outbox.retry_later(first.id)
    outbox.retry_later(first.id)

    items = outbox.pending()
    assert keys(items) == ["e1", "e2"]
    assert [item.attempts for item in items] == [2, 0]


def test_drain_applies_everything_in_order(outbox: Outbox) -> None:
    fill(outbox, "e2", "e1", "e3")
    apply = Recorder()

    result = outbox.drain(apply)

    assert result == DrainResult(applied=3, failed=0, left=0)
    assert apply.seen == ["e2", "e1", "e3"]
    assert len(outbox) == 0


def test_drain_of_an_empty_outbox_does_nothing(outbox: Outbox) -> None:
    assert outbox.drain(Recorder()) == DrainResult(applied=0, failed=0, left=0)


def test_drain_stops_at_the_first_failure_and_keeps_the_rest_in_order(outbox: Outbox) -> None:
    fill(outbox, "e1", "e2", "e3", "e4", "e5")
    apply = Recorder("e3")

    result = outbox.drain(apply)

    assert result == DrainResult(applied=2, failed=1, left=3)
    assert isinstance(result.error, ConnectionError)  # what stopped it, for the caller to judge
    assert apply.seen == ["e1", "e2", "e3"]  # nothing after the failure was tried
    items = outbox.pending()
    assert keys(items) == ["e3", "e4", "e5"]
    assert [item.attempts for item in items] == [1, 0, 0]


def test_a_later_drain_resumes_where_the_last_one_stopped(outbox: Outbox) -> None:
    fill(outbox, "e1", "e2", "e3")
    assert outbox.drain(Recorder("e2")).failed == 1
    assert outbox.drain(Recorder("e2")).failed == 1
    assert outbox.pending()[0].attempts == 2

    apply = Recorder()
    result = outbox.drain(apply)

    assert result == DrainResult(applied=2, failed=0, left=0)
    assert apply.seen == ["e2", "e3"]


def test_drain_takes_at_most_limit_items(outbox: Outbox) -> None:
    fill(outbox, "e1", "e2", "e3", "e4")
    apply = Recorder()

    assert outbox.drain(apply, limit=3) == DrainResult(applied=3, failed=0, left=1)
    assert keys(outbox.pending()) == ["e4"]


def test_a_second_drain_while_one_runs_returns_at_once(outbox: Outbox) -> None:
    fill(outbox, "e1", "e2")
    entered, release = threading.Event(), threading.Event()
    seen: list[str] = []

    def slow(item: OutboxItem) -> None:
        seen.append(item.key)
        entered.set()
        assert release.wait(10)

    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(outbox.drain, slow)
        assert entered.wait(10)
        # Puts go on while a drain waits on the store.
        assert outbox.put("record", "e3", {})
        second = outbox.drain(Recorder())
        release.set()

    assert second == DrainResult(applied=0, failed=0, left=3)
    assert first.result().applied == 2
    assert seen == ["e1", "e2"]
    assert keys(outbox.pending()) == ["e3"]


def test_a_full_outbox_refuses_new_items(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db", max_items=3)
    fill(outbox, "e1", "e2", "e3")

    with pytest.raises(OutboxFull, match="full") as refused:
        outbox.put("record", "e4", {"user_key": "u_secret"})

    assert isinstance(refused.value, OutboxError)
    assert "e4" not in str(refused.value) and "u_secret" not in str(refused.value)
    assert len(outbox) == 3
    # A pair already queued is not refused: nothing would be lost.
    assert not outbox.put("record", "e1", {})
    # Room again once an item is applied.
    outbox.done(outbox.pending()[0].id)
    assert outbox.put("record", "e4", {})
    assert keys(outbox.pending()) == ["e2", "e3", "e4"]
    outbox.close()


def test_concurrent_puts_all_land_exactly_once(outbox: Outbox) -> None:
    shared = [f"shared-{i}" for i in range(100)]
    start = threading.Barrier(THREADS)

    def put_all(thread: int) -> int:
        start.wait()
        queued = 0
        for i, name in enumerate(shared):
            queued += outbox.put("record", name, {"by": thread})
            queued += outbox.put("record", f"own-{thread}-{i}", {"by": thread})
        return queued

    with ThreadPoolExecutor(THREADS) as pool:
        queued = sum(pool.map(put_all, range(THREADS)))

    expected = len(shared) * (THREADS + 1)
    items = outbox.pending(limit=10 * expected)
    assert queued == expected
    assert len(outbox) == expected
    assert len(items) == expected
    assert len({(item.kind, item.key) for item in items}) == expected
    assert [item.id for item in items] == sorted(item.id for item in items)


def test_two_handles_on_one_file_agree_on_size_and_dedup(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    first, second = Outbox(path), Outbox(path, max_items=2)

    fill(first, "e1")
    assert not second.put("record", "e1", {})
    fill(second, "e2")
    with pytest.raises(OutboxFull):
        second.put("record", "e3", {})

    assert len(first) == len(second) == 2
    first.close()
    second.close()


def test_payloads_that_are_not_json_are_refused(outbox: Outbox) -> None:
    with pytest.raises(TypeError):
        outbox.put("record", "e1", {"when": object()})

    assert len(outbox) == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda box: Outbox(":memory:", max_items=0),
        lambda box: box.put("", "e1", {}),
        lambda box: box.put("record", "", {}),
        lambda box: box.pending(limit=0),
    ],
)
def test_meaningless_arguments_are_refused(
    outbox: Outbox, call: Callable[[Outbox], object]
) -> None:
    with pytest.raises(ValueError):
        call(outbox)


def test_never_logs_payloads(outbox: Outbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    marker = "u_7d1e-marker"

    outbox.put("record", "e1", {"user_key": marker})
    outbox.drain(Recorder("e1"))
    outbox.drain(Recorder())

    assert marker not in caplog.text


def test_a_file_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    Outbox(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()

    with pytest.raises(OutboxError, match="schema version"):
        Outbox(path)


def test_a_closed_outbox_fails_clearly(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    outbox.close()

    with pytest.raises(OutboxError, match="put failed"):
        outbox.put("record", "e1", {})


def test_works_as_a_context_manager(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    with Outbox(path) as outbox:
        fill(outbox, "e1")

    with Outbox(path) as reopened:
        assert keys(reopened.pending()) == ["e1"]


def test_forget_finds_a_users_items_by_their_keys(tmp_path) -> None:
    box = Outbox(tmp_path / "o.db")
    box.put("record", "e1", {}, Owner("t", "u1", "e1"))
    box.put("record", "e2", {}, Owner("t", "u2", "e2"))
    box.put("lesson", "u1:1.0", {}, Owner(None, "u1", None))
    box.put("feedback", "t:e3:legit:user_report", {}, Owner("t", None, "e3"))
    box.put("feedback", "s:e3:legit:user_report", {}, Owner("s", None, "e3"))
    gone = box.forget(user_keys=["u1"], tenant="t", event_ids=["e3"])
    assert gone == 3
    assert [i.key for i in box.pending()] == ["e2", "s:e3:legit:user_report"]
    assert len(box) == 2


def test_a_version_1_outbox_is_migrated_with_its_owners(tmp_path) -> None:
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
            key TEXT NOT NULL, payload TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
            queued_at REAL NOT NULL, UNIQUE (kind, key));
        CREATE TABLE outbox_size (only INTEGER PRIMARY KEY CHECK (only = 0),
            items INTEGER NOT NULL);
        INSERT INTO outbox_size VALUES (0, 3);
        CREATE TRIGGER outbox_size_delete AFTER DELETE ON outbox
        BEGIN UPDATE outbox_size SET items = items - 1; END;
        INSERT INTO outbox (kind, key, payload, queued_at) VALUES
            ('record', 'e1', '{"decision": {"tenant": "t", "user_key": "u1",
              "event_id": "e1"}, "attempt": {}}', 1.0),
            ('feedback', 't:e2:fraud:analyst', '{"tenant": "t", "event_id": "e2"}', 2.0),
            ('lesson', 'u1:3.0', '{"user": "u1", "values": {}}', 3.0);
        PRAGMA user_version = 1;
    """)
    conn.close()
    with Outbox(path) as box:
        assert len(box) == 3
        assert box.forget(user_keys=["u1"], tenant="t", event_ids=["e2"]) == 3
        assert len(box) == 0
