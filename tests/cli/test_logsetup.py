"""The service's logging: a stalled stderr never holds up the code that logs."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Iterator

import pytest

from riskengine.adapters import logsetup


class StalledStream(io.StringIO):
    """A stream whose writes block until released, like a pipe nobody reads."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.release.wait(10)
        return super().write(text)


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_lines_reach_the_stream_formatted(restore_root: None) -> None:
    out = io.StringIO()
    handle = logsetup.configure("INFO", stream=out)
    logging.getLogger("riskengine.decision").info('{"event": "decision", "n": %d}', 7)
    logging.getLogger("riskengine.decision").debug("below the level")
    handle.stop()
    assert out.getvalue() == 'INFO riskengine.decision {"event": "decision", "n": 7}\n'


def test_a_stalled_stream_costs_the_caller_nothing_and_drops_are_counted(
    restore_root: None,
) -> None:
    stream = StalledStream()
    handle = logsetup.configure("INFO", stream=stream, max_lines=50)
    log = logging.getLogger("riskengine.decision")
    started = time.perf_counter()
    for n in range(500):
        log.info("line %d", n)
    elapsed = time.perf_counter() - started
    # Written straight to the stream, the first line alone would have waited 10 s.
    assert elapsed < 5.0
    # The writer holds the one batch it took before the stream stalled it (at most the
    # buffer's 50 lines), the buffer 50 more: the rest were dropped, and counted.
    assert 500 - 2 * 50 <= handle.handler.dropped <= 500 - 50
    stream.release.set()
    time.sleep(0.2)  # let the writer drain the buffer, so that there is room again
    log.info("after")
    handle.stop()
    text = stream.getvalue()
    assert "INFO riskengine.decision line 0\n" in text
    assert "INFO riskengine.decision after\n" in text
    assert f'"event": "log_lines_dropped", "count": {handle.handler.dropped}' in text
    assert text.count("\n") == 500 - handle.handler.dropped + 2


def test_exceptions_are_formatted_where_they_are_logged(restore_root: None) -> None:
    out = io.StringIO()
    handle = logsetup.configure("INFO", stream=out)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("riskengine.engine").exception("scoring failed")
    handle.stop()
    assert "ERROR riskengine.engine scoring failed" in out.getvalue()
    assert "ValueError: boom" in out.getvalue()


def test_lines_are_written_in_batches_not_one_wake_per_line(restore_root: None) -> None:
    """The writer wakes on its timer and writes every line it finds in one write: a writer
    woken per line handed the interpreter's lock back and forth with the event loop on
    every decision (bench/README)."""

    class CountingStream(io.StringIO):
        def __init__(self) -> None:
            super().__init__()
            self.writes = 0

        def write(self, text: str) -> int:
            self.writes += 1
            return super().write(text)

    out = CountingStream()
    handle = logsetup.configure("INFO", stream=out)
    log = logging.getLogger("riskengine.decision")
    for n in range(200):
        log.info("line %d", n)
    handle.stop()
    assert out.getvalue().splitlines() == [f"INFO riskengine.decision line {n}"
                                           for n in range(200)]
    assert out.writes <= 3
