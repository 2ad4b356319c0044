"""``bench/http.py``'s bound on what a second worker can give on the machine's cores."""

from __future__ import annotations

import pytest

from tests.bench_scripts import bench_module

bench_http = bench_module("http")


def run(server: float, client: float, redis: float) -> dict[str, float]:
    return {"server": server, "client": client, "redis": redis, "machine": 1.99}


def test_two_cores_shared_with_the_client_and_redis_cap_a_second_worker() -> None:
    got = bench_http.worker_ceiling([run(0.9, 0.5, 0.45)], 2, 2)
    # One worker's traffic keeps 1.85 cores busy: two can have at most 2 of them.
    assert got["busy"] == pytest.approx(1.85)
    assert got["ceiling"] == pytest.approx(2 / 1.85)
    assert got["cores_for_target"] == pytest.approx(bench_http.TARGET_WORKERS * 1.85)


def test_with_cores_to_spare_each_worker_is_the_bound() -> None:
    got = bench_http.worker_ceiling([run(1.0, 0.2, 0.1)], 2, 16)
    assert got["ceiling"] == pytest.approx(2.0)


def test_the_runs_medians_are_taken_part_by_part() -> None:
    runs = [run(0.8, 0.3, 0.3), run(1.0, 0.9, 0.1), run(0.9, 0.5, 0.2)]
    got = bench_http.worker_ceiling(runs, 2, 2)
    assert got["busy"] == pytest.approx(0.9 + 0.5 + 0.2)


def test_a_server_that_used_no_cpu_gives_no_bound() -> None:
    with pytest.raises(ValueError):
        bench_http.worker_ceiling([run(0.0, 0.1, 0.1)], 2, 2)
