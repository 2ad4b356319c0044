"""What the SQLite store writes and spends a login: pages of log by b-tree, statements' CPU.

An engine is built as ``hotpath.py`` builds it (SQLite store, development settings), warmed
with the first ``--warmup`` simulated events, then fed the next ``--events``:

- **pages**: the store's background checkpointer is stopped and the write-ahead log emptied
  (``wal_checkpoint(TRUNCATE)``) before the timed logins, so every frame the log holds after
  them was written by them. Each frame names its page; ``dbstat`` says which table or index
  owns each page after the run (or before it, for a page freed in the run). Page 1 is
  written whenever the file grows or its free list changes. Printed: frames a login by
  b-tree, and commits (frames whose header carries the database's size).
- **statements**: the store's connection is wrapped, in this process only, by a proxy timing
  each ``execute`` / ``executemany`` / ``commit`` in the scoring thread's CPU time, keyed by
  the statement's first words. ``fetchone`` on the load's cursor is SQLite's work too (the
  statement steps there), so it is counted with its statement.

The two are separate runs (the proxy's own cost is not in the page count).

    PYTHONPATH=. .venv/bin/python bench/sqlite_pages.py --events 2000 --warmup 5000
"""

from __future__ import annotations

import argparse
import struct
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

WAL_HEADER = 32
FRAME_HEADER = 24


def wal_frames(path: Path) -> list[tuple[int, int]]:
    """(page number, database size after commit or 0) of every frame in the log at ``path``,
    up to the first frame whose salt differs from the header's (the rest is an old log)."""
    data = path.read_bytes()
    if len(data) < WAL_HEADER:
        return []
    page_size = struct.unpack(">I", data[8:12])[0]
    salt = data[16:24]
    out = []
    at = WAL_HEADER
    while at + FRAME_HEADER + page_size <= len(data):
        page, size = struct.unpack(">II", data[at:at + 8])
        if data[at + 8:at + 16] != salt:
            break
        out.append((page, size))
        at += FRAME_HEADER + page_size
    return out


class Timed:
    """A proxy of a ``sqlite3.Connection`` timing its calls (thread CPU) by statement."""

    def __init__(self, conn: Any, ns: Counter[str], calls: Counter[str]) -> None:
        self._conn, self._ns, self._calls = conn, ns, calls

    def _key(self, sql: str) -> str:
        words = sql.split()
        if words[0].upper() == "SELECT" and len(sql) > 400:
            return "SELECT (load)"
        return " ".join(words[:3])[:48]

    def execute(self, sql: str, *args: Any) -> Any:
        key, tick = self._key(sql), time.thread_time_ns
        t0 = tick()
        cur = self._conn.execute(sql, *args)
        if key == "SELECT (load)":
            row = cur.fetchone()
            cur = _Row(row)
        self._ns[key] += tick() - t0
        self._calls[key] += 1
        return cur

    def executemany(self, sql: str, rows: Any) -> Any:
        key, tick = self._key(sql) + " (many)", time.thread_time_ns
        t0 = tick()
        cur = self._conn.executemany(sql, rows)
        self._ns[key] += tick() - t0
        self._calls[key] += 1
        return cur

    def commit(self) -> None:
        tick = time.thread_time_ns
        t0 = tick()
        self._conn.commit()
        self._ns["COMMIT"] += tick() - t0
        self._calls["COMMIT"] += 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class _Row:
    def __init__(self, row: Any) -> None:
        self._row = row

    def fetchone(self) -> Any:
        return self._row


def run(events: list[dict[str, Any]], warmup: int, mode: str) -> dict[str, Any]:
    from riskengine.core.wire import ScoreRequest

    with tempfile.TemporaryDirectory(prefix="sqlite-pages-") as folder:
        tmp = Path(folder)
        built = c.build(c.store_url("sqlite", tmp), tmp)
        engine = built.engine
        store = engine.store
        validate, score = ScoreRequest.model_validate, engine.score
        try:
            for body in events[:warmup]:
                score(validate(body))
            measured = events[warmup:]
            out: dict[str, Any] = {"logins": len(measured)}
            if mode == "pages":
                before = dict(store._conn.execute(
                    "SELECT pageno, name FROM dbstat WHERE aggregate = 0").fetchall())
                store._checkpointer.stop()
                store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                for body in measured:
                    score(validate(body))
                wal = Path(str(store.path) + "-wal")
                frames = wal_frames(wal)
                # A page's owner after the run, else before it (a page freed in the run:
                # the attempts' oldest leaves, pruned); else the page was taken and freed
                # within the run (the attempts' newest leaves, pruned at every
                # ``PRUNE_EVERY_RECORDS`` logins).
                owner = before | dict(store._conn.execute(
                    "SELECT pageno, name FROM dbstat WHERE aggregate = 0").fetchall())
                owner[1] = "(page 1: the file's header)"
                by = Counter(owner.get(page, "(taken and freed in the run)") for page, _ in frames)
                out["frames"] = len(frames)
                out["commits"] = sum(1 for _, size in frames if size)
                out["by"] = dict(by.most_common())
                out["page_size"] = store._conn.execute("PRAGMA page_size").fetchone()[0]
                out["file_pages"] = store._conn.execute("PRAGMA page_count").fetchone()[0]
                out["tables"] = {name: n for name, n in store._conn.execute(
                    "SELECT name, COUNT(*) FROM dbstat GROUP BY name ORDER BY 2 DESC")}
            else:
                ns: Counter[str] = Counter()
                calls: Counter[str] = Counter()
                real = store._conn
                store._conn = Timed(real, ns, calls)
                tick = time.thread_time_ns
                t0 = tick()
                for body in measured:
                    score(validate(body))
                out["thread_us"] = (tick() - t0) / len(measured) / 1e3
                store._conn = real
                out["ns"] = dict(ns)
                out["calls"] = dict(calls)
        finally:
            engine.store.close()
            if engine.outbox is not None:
                engine.outbox.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=5000)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--modes", nargs="+", default=["pages", "statements"],
                        choices=["pages", "statements"])
    args = parser.parse_args()
    events = c.simulate(events=args.warmup + args.events, users=args.users, seed=args.seed)
    for mode in args.modes:
        out = run(events, args.warmup, mode)
        n = out["logins"]
        if mode == "pages":
            print(f"pages of log a login ({n:,} logins, {out['commits']:,} commits, page size "
                  f"{out['page_size']}, file {out['file_pages']:,} pages): "
                  f"{out['frames'] / n:.2f}")
            for name, frames in out["by"].items():
                print(f"  {name:<28} {frames / n:6.2f}   (b-tree of {out['tables'].get(name, 0):,}"
                      " pages)")
        else:
            total = sum(out["ns"].values())
            print(f"statements, thread CPU a login ({n:,} logins; scoring thread in all "
                  f"{out['thread_us']:.1f} us): {total / n / 1e3:.1f} us")
            for key, ns in sorted(out["ns"].items(), key=lambda kv: -kv[1]):
                print(f"  {key:<52} {ns / n / 1e3:6.1f} us  ({out['calls'][key] / n:.2f} a login)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
