"""What an erasure needs of an SQLite file (a store's, the outbox's): deleted rows gone from
its bytes, not only from its tables.

SQLite leaves deleted rows in free pages unless ``secure_delete`` is on, and in WAL mode the
write-ahead log keeps every page as it was written, erased rows included, until a
checkpoint copies the log back and it starts over. ``wipe_deleted`` turns the first off for
a connection; ``empty_log`` copies the log back and truncates it to zero bytes.
"""

from __future__ import annotations

import sqlite3
import time

# How often ``empty_log`` tries while a reader holds an old snapshot, and how long it waits
# between tries: 50 x 10 ms, then it leaves the log to the next checkpoint.
EMPTY_LOG_TRIES = 50
EMPTY_LOG_WAIT_S = 0.01


def wipe_deleted(conn: sqlite3.Connection) -> None:
    """Make ``conn`` overwrite what it deletes with zeros (``PRAGMA secure_delete``)."""
    conn.execute("PRAGMA secure_delete = ON")


def empty_log(conn: sqlite3.Connection) -> bool:
    """Copy the write-ahead log into the database file and truncate the log to zero bytes
    (call outside a transaction). Returns False when readers kept it busy throughout."""
    for _ in range(EMPTY_LOG_TRIES):
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if not busy:
            return True
        time.sleep(EMPTY_LOG_WAIT_S)
    return False
