"""What only the SQLite store promises: a file that persists, and the URLs that open it."""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from features.profile import UserProfile
from riskengine.adapters.stores import (
    Attempt,
    MemoryStore,
    SqliteStore,
    StoredDecision,
    StoreError,
    open_store,
)
from riskengine.adapters.stores.sqlite import PRUNE_EVERY_RECORDS, SCHEMA_VERSION

from .test_contract import T0, bump, load, record


def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    stored = record(store, "e1", user="u2", failed=True, update=bump)
    store.close()

    reopened = SqliteStore(path)

    assert reopened.get_decision("t1", "e1") == stored
    assert reopened.get_profile("t1", "u2") == UserProfile(logins=1)
    assert load(reopened).velocity.ip_failures_10m == 1
    reopened.close()


def test_file_is_in_wal_mode_with_a_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SqliteStore(path).close()

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")

    with pytest.raises(StoreError, match="schema version"):
        SqliteStore(path)


def test_missing_parent_folders_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "s.db"

    SqliteStore(path).close()

    assert path.is_file()


def test_in_memory_database_works() -> None:
    store = SqliteStore(":memory:")
    record(store, "e1", update=bump)

    assert store.get_profile("t1", "u1") == UserProfile(logins=1)
    store.close()


@pytest.mark.parametrize(
    "garbage", ["{not json", "[]", '{"hours": [1.0]}', '{"devices": {"d1": {"n": 1}}}']
)
def test_corrupt_profile_row_raises_store_error(tmp_path: Path, garbage: str) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    record(store, "e1", update=bump)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE profiles SET profile = ?", (garbage,))

    with pytest.raises(StoreError, match="corrupt profile"):
        load(store)
    with pytest.raises(StoreError, match="corrupt profile"):
        store.get_profile("t1", "u1")
    with pytest.raises(StoreError, match="corrupt profile"):
        record(store, "e2", update=bump)
    assert store.get_decision("t1", "e2") is None
    store.close()


def test_corrupt_decision_row_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    record(store, "e1")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE decisions SET features = '{truncated'")

    with pytest.raises(StoreError, match="corrupt decision"):
        store.get_decision("t1", "e1")
    with pytest.raises(StoreError, match="corrupt decision"):
        record(store, "e1")
    store.close()


def test_closed_store_raises_store_error(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    store.close()

    with pytest.raises(StoreError, match="ping failed"):
        store.ping()


def test_unopenable_path_raises_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="open failed"):
        SqliteStore(tmp_path)  # a folder, not a database file


def test_two_stores_on_one_file_lose_no_update(tmp_path: Path) -> None:
    # Two connections stand in for two worker processes sharing the file.
    stores = [SqliteStore(tmp_path / "s.db"), SqliteStore(tmp_path / "s.db")]

    def work(worker: int) -> None:
        for i in range(50):
            record(stores[worker], f"e{worker}-{i}", update=bump)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for done in [pool.submit(work, w) for w in range(2)]:
            done.result()

    profile = stores[0].get_profile("t1", "u1")
    assert profile is not None and profile.logins == 100
    for store in stores:
        store.close()


def test_old_attempts_are_pruned_as_logins_go_and_device_sightings_by_purge(
        tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    record(store, "old-device", user="u3", ts=T0 - 31 * 86_400.0)
    record(store, "old-attempt", user="u2", ts=T0 - 7200.0, device=None)
    for i in range(PRUNE_EVERY_RECORDS - 2):
        record(store, f"e{i}", ts=T0)

    def rows(sql: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(path) as conn:
            found = conn.execute(sql).fetchall()
        conn.close()
        return found

    assert rows(f"SELECT COUNT(*) FROM attempts WHERE ts < {T0}") == [(0,)]
    # No index on the sightings' time to keep up at every login: the daily purge drops them.
    assert store.purge(now=T0, profile_retention_s=1e9)["device_accounts"] == 1
    assert rows("SELECT user_key FROM device_accounts") == [("u1",)]
    store.close()


def test_a_purge_drops_the_old_prefix_of_what_arrives_in_time_order(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    for i in range(5):
        record(store, f"old{i}", user=f"u{i}", ts=T0 + i)
    record(store, "new", user="u9", ts=T0 + 100 * 86_400.0)
    record(store, "late", user="u8", ts=T0 + 10)  # arrived after a newer one

    report = store.purge(now=T0 + 100 * 86_400.0, profile_retention_s=1e9)

    assert report["decisions"] == 5 and report["attempts"] == 5
    assert [store.get_decision("t1", e) is None for e in ("old0", "old4", "new")] == [
        True, True, False]
    # Out of order: kept until what arrived before it ages out too (30 days more at most).
    assert store.get_decision("t1", "late") is not None
    report = store.purge(now=T0 + 200 * 86_400.0, profile_retention_s=1e9)
    assert report["decisions"] == 2 and store.get_decision("t1", "late") is None
    store.close()


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:rel.db", "rel.db"),
        ("sqlite://rel.db", "rel.db"),
        ("sqlite:sub/rel.sqlite3", "sub/rel.sqlite3"),
        ("sqlite::memory:", ":memory:"),
        ("sqlite://:memory:", ":memory:"),
        ("bare.db", "bare.db"),
        ("sub/bare.sqlite", "sub/bare.sqlite"),
        ("bare.SQLITE3", "bare.SQLITE3"),
    ],
)
def test_open_store_sqlite_urls(
    url: str, path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    store = open_store(url)

    assert isinstance(store, SqliteStore) and store.path == path
    store.close()


def test_open_store_absolute_sqlite_url(tmp_path: Path) -> None:
    store = open_store(f"sqlite://{tmp_path}/abs.db")  # sqlite:/// + the path's leading /

    assert isinstance(store, SqliteStore) and store.path == f"{tmp_path}/abs.db"
    store.close()
    assert (tmp_path / "abs.db").is_file()


@pytest.mark.parametrize("url", ["memory:", "memory://"])
def test_open_store_memory_urls(url: str) -> None:
    assert isinstance(open_store(url), MemoryStore)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://db/risk", "unsupported store url 'postgres://db/risk'"),
        ("store.txt", "unsupported store url 'store.txt'"),
        ("", "unsupported store url ''"),
        ("memory://elsewhere", "unsupported store url 'memory://elsewhere'"),
        ("sqlite:", "names no SQLite file"),
        ("sqlite://", "names no SQLite file"),
    ],
)
def test_open_store_rejects_unknown_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_store(url)


def test_open_store_error_masks_passwords() -> None:
    with pytest.raises(ValueError, match="unsupported store url") as raised:
        open_store("postgres://risk:s3cret@db:5432/risk")

    assert "s3cret" not in str(raised.value)
    assert "postgres://risk:***@db:5432/risk" in str(raised.value)


def test_decisions_older_than_the_retention_are_pruned(tmp_path: Path) -> None:
    from riskengine.adapters.stores.sqlite import PRUNE_EVERY_RECORDS
    from tests.stores.test_contract import T0, record

    store = SqliteStore(tmp_path / "r.db", retention_s=86_400.0)
    record(store, "old", ts=T0)
    for i in range(PRUNE_EVERY_RECORDS):
        record(store, f"e{i}", ts=T0 + 2 * 86_400.0 + i)
    assert store.get_decision("t1", "old") is None  # past its day of retention
    assert store.get_decision("t1", "e0") is not None
    store.close()


def test_purge_goes_in_chunks_and_lets_other_writers_in_between(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from riskengine.adapters.stores import sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "PURGE_CHUNK_ROWS", 4)
    path = tmp_path / "p.db"
    store, other = SqliteStore(path), SqliteStore(path)
    now = T0 + 200 * 86_400.0
    for i in range(11):
        record(store, f"old{i}", user=f"old{i}", device=f"d{i}", ts=T0, update=bump)
    for i in range(3):
        record(store, f"new{i}", user=f"new{i}", ts=now - 60, update=bump)

    # Another process scores on the same file while the purge runs: when the purge begins
    # its second chunk, that writer must already be able to commit (no lock held).
    begun, during = [], []

    def on_statement(sql: str) -> None:
        if sql == "BEGIN IMMEDIATE":
            begun.append(sql)
            if len(begun) == 2:
                during.append(record(other, "during", user="late", ts=now, update=bump))

    store._conn.set_trace_callback(on_statement)
    report = store.purge(now=now, profile_retention_s=100 * 86_400.0)
    store._conn.set_trace_callback(None)

    assert during and other.get_decision("t1", "during") == during[0]
    assert report == {"profiles": 11, "decisions": 11, "attempts": 11, "device_accounts": 11,
                      "tenant_minutes": 1, "abuse_buckets": 0}  # went as the network counted
    assert all(store.get_profile("t1", f"old{i}") is None for i in range(11))
    assert all(store.get_profile("t1", f"new{i}") is not None for i in range(3))
    assert store.get_profile("t1", "late") == UserProfile(logins=1)
    assert store.purge(now=now, profile_retention_s=100 * 86_400.0) == dict.fromkeys(report, 0)
    store.close()
    other.close()


# The tables of schema version 1 (riskengine before the sustained-abuse buckets and the
# compact decisions), as such a file holds them.
_SCHEMA_1 = """
CREATE TABLE profiles (tenant TEXT NOT NULL, user_key TEXT NOT NULL, profile TEXT NOT NULL,
    updated_ts REAL NOT NULL, PRIMARY KEY (tenant, user_key)) WITHOUT ROWID;
CREATE TABLE attempts (tenant TEXT NOT NULL, ip_key TEXT NOT NULL, asn INTEGER,
    user_key TEXT NOT NULL, ts REAL NOT NULL, failed INTEGER NOT NULL);
CREATE INDEX attempts_ip_window ON attempts (tenant, ip_key, ts, user_key, failed);
CREATE INDEX attempts_asn_window ON attempts (tenant, asn, ts, user_key, failed);
CREATE INDEX attempts_by_ts ON attempts (ts);
CREATE TABLE device_accounts (tenant TEXT NOT NULL, device_key TEXT NOT NULL,
    user_key TEXT NOT NULL, last_ts REAL NOT NULL,
    PRIMARY KEY (tenant, device_key, user_key)) WITHOUT ROWID;
CREATE INDEX device_accounts_by_ts ON device_accounts (last_ts);
CREATE TABLE tenant_minutes (tenant TEXT NOT NULL, minute INTEGER NOT NULL,
    attempts INTEGER NOT NULL, failures INTEGER NOT NULL,
    PRIMARY KEY (tenant, minute)) WITHOUT ROWID;
CREATE TABLE decisions (tenant TEXT NOT NULL, event_id TEXT NOT NULL, user_key TEXT NOT NULL,
    ts REAL NOT NULL, decision TEXT NOT NULL, features TEXT NOT NULL, sighting TEXT,
    feedback TEXT, learned INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, event_id)) WITHOUT ROWID;
CREATE INDEX decisions_by_ts ON decisions (ts);
CREATE INDEX decisions_by_user ON decisions (tenant, user_key, ts);
CREATE INDEX attempts_by_user ON attempts (tenant, user_key);
CREATE INDEX device_accounts_by_user ON device_accounts (tenant, user_key);
INSERT INTO profiles VALUES ('t1', 'u1', '{"logins": 4}', 1700000000.0);
INSERT INTO decisions VALUES ('t1', 'e1', 'u1', 1700000000.0, '{"action": "allow"}',
    '{"ip_users_10m": 1, "geo_velocity_kmh": null}', NULL, 'legit', 1);
PRAGMA user_version = 1;
"""


def old_file(path: Path, script: str) -> Path:
    """A database file as an older version of the store left it."""
    with sqlite3.connect(path) as conn:
        conn.executescript(script)
    conn.close()
    return path


def test_a_schema_1_file_is_migrated_on_open(tmp_path: Path) -> None:
    path = old_file(tmp_path / "v1.db", _SCHEMA_1)
    store = SqliteStore(path)
    record(store, "e2", user="u2", failed=True)

    assert store.get_profile("t1", "u1") == UserProfile(logins=4)
    old = store.get_decision("t1", "e1")
    assert old is not None and old.features == {"ip_users_10m": 1, "geo_velocity_kmh": None}
    assert (old.feedback, old.learned, old.decision) == ("legit", True, {"action": "allow"})
    assert [b[1:3] for b in load(store).velocity.ip_prefix_abuse] == [(1, 1)]
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_feature_vectors_are_stored_compactly_and_read_back_whole(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    store = SqliteStore(path)
    vector = {f"feature_{n}": n * 0.5 if n % 3 else None for n in range(40)}
    decision = StoredDecision(event_id="e1", tenant="t1", user_key="u1", ts=T0,
                              decision={"action": "allow"}, features=vector)
    store.record(decision, Attempt("t1", "u1", "ip1", None, None, T0, False), None)
    store.record(replace(decision, event_id="e2", features={"few": 1}),
                 Attempt("t1", "u1", "ip1", None, None, T0, False), None)
    store.close()

    with sqlite3.connect(path) as conn:
        [(text, names_id)] = conn.execute(
            "SELECT features, names_id FROM decisions WHERE event_id = 'e1'").fetchall()
        [(names,)] = conn.execute("SELECT names FROM feature_names").fetchall()
    conn.close()
    assert json.loads(text) == list(vector.values()) and names_id is not None
    assert json.loads(names) == list(vector)  # the names once, not in every row
    reopened = SqliteStore(path)  # another process: the names come from the file
    assert reopened.get_decision("t1", "e1") == decision
    assert reopened.get_decision("t1", "e2").features == {"few": 1}
    assert [d.features for d in reopened.export_user("t1", "u1").decisions] == [
        vector, {"few": 1}]
    reopened.close()


# The tables of schema version 3 (before attempts were kept under their decisions' rowids),
# with a history: u1 twice at one time, u2's attempt stored before u1's, and an attempt
# whose decision is not there.
_SCHEMA_3 = f"""
CREATE TABLE profiles (tenant TEXT NOT NULL, user_key TEXT NOT NULL,
    updated_ts REAL NOT NULL, profile TEXT NOT NULL);
CREATE UNIQUE INDEX profiles_by_user ON profiles (tenant, user_key);
CREATE TABLE attempts (tenant TEXT NOT NULL, ip_key TEXT NOT NULL, asn INTEGER,
    user_key TEXT NOT NULL, ts REAL NOT NULL, failed INTEGER NOT NULL);
CREATE INDEX attempts_ip_window ON attempts (tenant, ip_key, ts, user_key, failed);
CREATE INDEX attempts_asn_window ON attempts (tenant, asn, ts, user_key, failed);
CREATE TABLE device_accounts (tenant TEXT NOT NULL, device_key TEXT NOT NULL,
    user_key TEXT NOT NULL, last_ts REAL NOT NULL,
    PRIMARY KEY (tenant, device_key, user_key)) WITHOUT ROWID;
CREATE TABLE tenant_minutes (tenant TEXT NOT NULL, minute INTEGER NOT NULL,
    attempts INTEGER NOT NULL, failures INTEGER NOT NULL,
    PRIMARY KEY (tenant, minute)) WITHOUT ROWID;
CREATE TABLE feature_names (id INTEGER PRIMARY KEY, names TEXT NOT NULL UNIQUE);
CREATE TABLE decisions (tenant TEXT NOT NULL, event_id TEXT NOT NULL,
    user_key TEXT NOT NULL, ts REAL NOT NULL, learned INTEGER NOT NULL DEFAULT 0,
    feedback TEXT, names_id INTEGER REFERENCES feature_names (id), decision TEXT NOT NULL,
    features TEXT NOT NULL, sighting TEXT);
CREATE UNIQUE INDEX decisions_by_event ON decisions (tenant, event_id);
CREATE INDEX decisions_by_user ON decisions (tenant, user_key, ts);
CREATE INDEX attempts_by_user ON attempts (tenant, user_key);
CREATE INDEX device_accounts_by_user ON device_accounts (tenant, user_key);
CREATE TABLE abuse_buckets (tenant TEXT NOT NULL, kind TEXT NOT NULL, network TEXT NOT NULL,
    bucket INTEGER NOT NULL, attempts INTEGER NOT NULL, failures INTEGER NOT NULL,
    sketch INTEGER NOT NULL, PRIMARY KEY (tenant, kind, network, bucket)) WITHOUT ROWID;
INSERT INTO decisions (tenant, event_id, user_key, ts, decision, features) VALUES
    ('t1', 'e1', 'u1', {T0}, '{{"action": "allow"}}', '{{}}'),
    ('t1', 'e2', 'u2', {T0}, '{{"action": "allow"}}', '{{}}'),
    ('t1', 'e3', 'u1', {T0 + 1}, '{{"action": "deny"}}', '{{}}'),
    ('t1', 'e4', 'u1', {T0 + 1}, '{{"action": "allow"}}', '{{}}');
INSERT INTO attempts (tenant, ip_key, asn, user_key, ts, failed) VALUES
    ('t1', 'ip1', 64500, 'u2', {T0}, 0),
    ('t1', 'ip1', 64500, 'u1', {T0}, 0),
    ('t1', 'ip1', 64500, 'u1', {T0 + 1}, 1),
    ('t1', 'ip2', 64500, 'u1', {T0 + 1}, 0),
    ('t1', 'ip1', 64500, 'u3', {T0}, 1);
PRAGMA user_version = 3;
"""


def test_a_schema_3_file_keeps_each_attempt_under_its_decision(tmp_path: Path) -> None:
    path = old_file(tmp_path / "v3.db", _SCHEMA_3)
    store = SqliteStore(path)

    with sqlite3.connect(path) as conn:
        moved = conn.execute("SELECT rowid, user_key, ts, ip_key, failed FROM attempts"
                             " ORDER BY rowid").fetchall()
        indexes = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'attempts'")}
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    conn.close()
    # Each under its decision's rowid, in the order they arrived; the one without a
    # decision is gone.
    assert moved == [(1, "u1", T0, "ip1", 0), (2, "u2", T0, "ip1", 0),
                     (3, "u1", T0 + 1, "ip1", 1), (4, "u1", T0 + 1, "ip2", 0)]
    assert indexes == {"attempts_ip_window", "attempts_asn_window"} and version == 4
    seen = load(store, user="u9", ip="ip1", now=T0 + 2).velocity
    assert (seen.ip_users_10m, seen.ip_failures_10m) == (2, 1)
    assert store.erase_user("t1", "u1") == 6  # three decisions, three attempts
    seen = load(store, user="u9", ip="ip1", now=T0 + 2).velocity
    assert (seen.ip_users_10m, seen.ip_failures_10m) == (1, 0)
    store.close()


@pytest.mark.parametrize("how", ["as logins go", "by purge"])
def test_an_attempt_never_outlives_its_decision(tmp_path: Path, how: str) -> None:
    path = tmp_path / "r.db"
    # Decisions kept a minute: shorter than the attempts' hour.
    store = SqliteStore(path, retention_s=60.0)
    record(store, "old", user="u2", ts=T0)
    if how == "as logins go":
        for i in range(PRUNE_EVERY_RECORDS - 1):
            record(store, f"e{i}", ts=T0 + 120)
    else:
        record(store, "new", ts=T0 + 120)
        report = store.purge(now=T0 + 120, profile_retention_s=1e9)
        assert (report["decisions"], report["attempts"]) == (1, 1)

    assert store.get_decision("t1", "old") is None
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM attempts WHERE user_key = 'u2'"
                            ).fetchone() == (0,)
    conn.close()
    store.close()
