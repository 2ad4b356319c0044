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
    # The writer holds one line, the queue 50: the rest were dropped, and counted.
    assert 500 - 51 <= handle.handler.dropped <= 500 - 50
    stream.release.set()
    time.sleep(0.2)  # let the writer drain the queue, so that there is room again
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
