"""``bench/redis_floor.py``: Redis's CPU a login at its floors, and what they leave a second
worker once the HTTP target holds (``_common.scaling_ceiling``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.bench_scripts import bench_module

ROOT = Path(__file__).resolve().parents[2]
floor = bench_module("redis_floor")
ceiling = floor.c.scaling_ceiling
# A database of this test's own (the benchmarks use 11, the store tests 13).
DB_URL = "redis://127.0.0.1:6379/14"


def test_each_worker_is_the_bound_when_the_machine_has_cores_to_spare() -> None:
    assert ceiling(300.0, 40.0, 60.0, workers=2, machine_cores=16) == pytest.approx(2.0)


def test_the_client_and_redis_share_the_machine_with_the_workers() -> None:
    # 2 cores hold 2 / 400 requests a us, one worker 1 / 300: at most 1.5 x.
    assert ceiling(300.0, 40.0, 60.0, workers=2, machine_cores=2) == pytest.approx(1.5)


def test_a_worker_the_machine_cannot_keep_busy_gains_nothing_from_a_second() -> None:
    # Client and Redis cost more than the server: one worker already fills the machine.
    assert ceiling(100.0, 150.0, 100.0, workers=2, machine_cores=2) == pytest.approx(1.0)


def test_a_server_that_costs_nothing_has_no_bound() -> None:
    with pytest.raises(ValueError):
        ceiling(0.0, 40.0, 60.0, workers=2, machine_cores=2)


def test_the_http_target_leaves_the_server_twice_the_bare_routes_cpu() -> None:
    got = floor.joint_ceiling(150.0, 30.0, 60.0, 2)
    assert got["server_us"] == pytest.approx(300.0)
    assert got["ceiling"] == pytest.approx(2 * 300.0 / 390.0)


def test_each_round_is_weighed_with_its_own_bare_route() -> None:
    rounds = {
        "http": [{"bare_server_us": 150.0, "client_us": 30.0},
                 {"bare_server_us": 200.0, "client_us": 40.0}],
        "ping": [{"redis_us": 60.0, "client_us": 1.0}, {"redis_us": 80.0, "client_us": 1.0}],
    }
    got = floor.ceilings(rounds, 2)["ping"]
    assert got["measured_client"] == pytest.approx([600.0 / 390.0, 800.0 / 520.0])
    assert got["free_client"] == pytest.approx([600.0 / 360.0, 800.0 / 480.0])


def test_a_users_calls_stay_on_one_connection_in_order() -> None:
    calls = [("load" if i % 2 == 0 else "record", [f"profile-{i // 2 % 5}"], [i])
             for i in range(40)]
    seen: dict[object, list[tuple[str, list[str], list[object]]]] = {}
    conns = [object() for _ in range(3)]
    floor.spread(conns, calls, lambda conn, lane: seen.setdefault(conn, []).extend(lane))
    assert sorted(sum(seen.values(), []), key=lambda call: call[2][0]) == calls
    for lane in seen.values():
        for user in {call[1][0] for call in lane}:
            assert [c for c in lane if c[1][0] == user] == [c for c in calls if c[1][0] == user]
    assert len({call[1][0] for lane in seen.values() for call in lane}) == 5
    assert all(len({c[1][0] for c in lane} & {c[1][0] for c in other}) == 0
               for lane in seen.values() for other in seen.values() if other is not lane)


def test_a_failing_connection_fails_the_pass() -> None:
    def broken(conn: object, lane: list[object]) -> None:
        raise ConnectionError("reset")

    with pytest.raises(ConnectionError):
        floor.spread([object(), object()], [("load", ["a"], []), ("load", ["b"], [])], broken)


def test_the_script_captures_two_calls_a_login_and_replays_them(tmp_path: Path) -> None:
    db = redis.Redis.from_url(DB_URL)
    db.flushdb()
    out = tmp_path / "floor.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "redis_floor.py"), "--events", "40",
         "--repeat", "1", "--batch", "8", "--no-http", "--out", str(out)],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
        env={**os.environ, "RISKENGINE_BENCH_REDIS": DB_URL})
    try:
        assert done.returncode == 0, done.stderr[-3000:]
        got = json.loads(out.read_text())
        assert got["calls"] == 80  # a load and a record a login
        passes = {"ping", "empty", "scripts", "empty, batch 8", "scripts, batch 8"}
        assert set(got["rounds"]) == passes | {"http"}
        for name in passes:
            assert len(got["rounds"][name]) == 1
            assert got["rounds"][name][0]["redis_us"] > 0
        assert db.dbsize() == 0  # what the passes wrote is gone
    finally:
        db.flushdb()
        db.close()
