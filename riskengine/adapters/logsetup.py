"""Logging for the long-running commands: a bounded buffer between the code and stderr.

A scoring answer must never wait for its log line. Written straight to stderr, a line
blocks its thread whenever the reader of that stream falls behind (a full pipe, a stalled
log collector), and in the service that thread is the event loop that answers every
caller. Here lines are formatted where they are logged, appended to a bounded buffer
without waiting, and written by one thread of their own, in batches: when the buffer is
full the line is dropped and counted, and the count is written once the writer catches up.

The writer wakes on a timer (``FLUSH_S``), not per line: a queue that woke it for every
line made each decision hand the interpreter's lock to the writer and back, ~270 us a
login on SQLite, a third of the engine's own work (bench/README, "The decision's log
line").
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
from collections import deque
from typing import TextIO

FORMAT = "%(levelname)s %(name)s %(message)s"
QUEUE_LINES = 10_000  # a few seconds of decisions at peak; a stall longer than that drops
FLUSH_S = 0.05  # how long a line may wait for the writer; a write per batch, not per line


class BufferingHandler(logging.Handler):
    """Formats a record where it is logged and keeps the line in a bounded buffer; never
    blocks: a full buffer drops the line and counts it."""

    def __init__(self, max_lines: int) -> None:
        super().__init__()
        self.lines: deque[str] = deque()
        self.max_lines = max_lines
        self.dropped = 0
        self._reported = 0
        self._count = threading.Lock()

    def handle(self, record: logging.LogRecord) -> bool:
        # ``Handler.handle`` without its lock: a deque's append is atomic, and the counts
        # have a lock of their own. (A filter may hand back a record to log in its place.)
        kept = self.filter(record)
        if kept:
            self.emit(kept if isinstance(kept, logging.LogRecord) else record)
        return bool(kept)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a broken record must not break the caller, as logging promises
            self.handleError(record)
            return
        if len(self.lines) >= self.max_lines:
            with self._count:
                self.dropped += 1
            return
        if self.dropped != self._reported:  # room again: say what was lost meanwhile
            with self._count:
                lost, self._reported = self.dropped - self._reported, self.dropped
            if lost:
                self.lines.append(self.format(logging.LogRecord(
                    "riskengine.logging", logging.WARNING, __file__, 0,
                    '{"event": "log_lines_dropped", "count": %d}', (lost,), None)))
        self.lines.append(line)


class Writer(threading.Thread):
    """Writes the buffered lines to ``stream``: every ``FLUSH_S``, all that are there."""

    def __init__(self, handler: BufferingHandler, stream: TextIO) -> None:
        super().__init__(name="log-writer", daemon=True)
        self.handler, self.stream = handler, stream
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(FLUSH_S):
            self.drain()
        self.drain()

    def drain(self) -> None:
        lines = self.handler.lines
        batch = [lines.popleft() for _ in range(len(lines))]
        if batch:
            try:
                self.stream.write("\n".join(batch) + "\n")
                self.stream.flush()
            except (OSError, ValueError):  # a closed or broken stream: nothing to tell it
                pass

    def stop(self) -> None:
        self._halt.set()
        self.join()


class Logging:
    """The handle of ``configure``: the buffering handler and its writer thread."""

    def __init__(self, handler: BufferingHandler, writer: Writer) -> None:
        self.handler, self.writer = handler, writer
        self._stopped = False

    def stop(self) -> None:
        """Write what is buffered and stop the writer thread (idempotent)."""
        if not self._stopped:
            self._stopped = True
            logging.getLogger().removeHandler(self.handler)
            self.writer.stop()


def configure(level: str | int = "INFO", *, stream: TextIO | None = None,
              max_lines: int = QUEUE_LINES) -> Logging:
    """Send every log line through a bounded buffer to ``stream`` (stderr by default).

    Replaces the root logger's handlers, like ``logging.basicConfig(force=True)``; the
    writer thread is stopped, and what is buffered written, at exit.
    """
    handler = BufferingHandler(max_lines)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    writer = Writer(handler, stream or sys.stderr)
    writer.start()
    handle = Logging(handler, writer)
    atexit.register(handle.stop)
    return handle


__all__ = ["FLUSH_S", "FORMAT", "BufferingHandler", "Logging", "Writer", "configure"]
