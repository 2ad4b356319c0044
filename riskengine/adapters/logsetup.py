"""Logging for the long-running commands: a bounded queue between the code and stderr.

A scoring answer must never wait for its log line. Written straight to stderr, a line
blocks its thread whenever the reader of that stream falls behind (a full pipe, a stalled
log collector), and in the service that thread is the event loop that answers every
caller. Here lines are formatted where they are logged, put on a bounded queue without
waiting, and written by one thread of their own; when the queue is full the line is
dropped and counted, and the count is written once the writer catches up.
"""

from __future__ import annotations

import atexit
import logging
import queue
import sys
import threading
from logging.handlers import QueueHandler, QueueListener
from typing import TextIO

FORMAT = "%(levelname)s %(name)s %(message)s"
QUEUE_LINES = 10_000  # a few seconds of decisions at peak; a stall longer than that drops


class DroppingQueueHandler(QueueHandler):
    """A ``QueueHandler`` that never blocks: a full queue drops the line and counts it."""

    def __init__(self, q: queue.Queue[logging.LogRecord]) -> None:
        super().__init__(q)
        self.dropped = 0
        self._reported = 0
        self._lock = threading.Lock()

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            with self._lock:
                self.dropped += 1
            return
        with self._lock:  # room again: say what was lost meanwhile
            lost, self._reported = self.dropped - self._reported, self.dropped
        if lost:
            note = logging.LogRecord("riskengine.logging", logging.WARNING, __file__, 0,
                                     '{"event": "log_lines_dropped", "count": %d}', (lost,),
                                     None)
            try:
                self.queue.put_nowait(self.prepare(note))
            except queue.Full:
                with self._lock:
                    self._reported -= lost  # told next time


class Logging:
    """The handle of ``configure``: the queue handler and its writer thread."""

    def __init__(self, handler: DroppingQueueHandler, listener: QueueListener) -> None:
        self.handler, self.listener = handler, listener
        self._stopped = False

    def stop(self) -> None:
        """Write what is queued and stop the writer thread (idempotent)."""
        if not self._stopped:
            self._stopped = True
            logging.getLogger().removeHandler(self.handler)
            self.listener.stop()


def configure(level: str | int = "INFO", *, stream: TextIO | None = None,
              max_lines: int = QUEUE_LINES) -> Logging:
    """Send every log line through a bounded queue to ``stream`` (stderr by default).

    Replaces the root logger's handlers, like ``logging.basicConfig(force=True)``; the
    writer thread is stopped, and what is queued written, at exit.
    """
    lines: queue.Queue[logging.LogRecord] = queue.Queue(max_lines)
    writer = logging.StreamHandler(stream or sys.stderr)
    writer.setFormatter(logging.Formatter(FORMAT))
    handler = DroppingQueueHandler(lines)
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    listener = QueueListener(lines, writer, respect_handler_level=False)
    listener.start()
    handle = Logging(handler, listener)
    atexit.register(handle.stop)
    return handle


__all__ = ["FORMAT", "DroppingQueueHandler", "Logging", "configure"]
