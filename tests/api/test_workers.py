"""``riskengine serve --workers N``: N worker processes on a shared (Redis) store, each
building the app from the settings the command was given; a memory store is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.servers import development_env, riskengine_piped, serve

REDIS_URL = "redis://127.0.0.1:6379/13"  # a database the tests empty before and after use


@pytest.fixture
def empty_redis() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def test_a_memory_store_is_refused_with_several_workers(tmp_path: Path) -> None:
    proc = riskengine_piped("serve", "--workers", "2", "--store", "memory:",
                            env=development_env(tmp_path))
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 2, out
    assert out.strip().splitlines() == [
        "riskengine: cannot start: --workers > 1 needs a store the workers share "
        "(redis://...); each worker would keep its own memory: store"]


def test_two_workers_serve_from_the_settings_the_command_was_given(
        tmp_path: Path, empty_redis: str) -> None:
    proc, base = serve("--workers", "2", "--store", empty_redis, env=development_env(tmp_path),
                       start_new_session=True)
    try:
        # uvicorn's parent process and its two workers (a third child may be
        # multiprocessing's resource tracker).
        workers = [child for child in _children(proc.pid)
                   if "spawn_main" in Path(f"/proc/{child}/cmdline").read_text()]
        assert len(workers) == 2
        answers = []
        for i in range(20):
            body = json.dumps({"event_id": f"w-{i}", "user_id": f"u{i}@example.cn",
                               "ip": "123.120.5.9"}).encode()
            request = urllib.request.Request(f"{base}/v1/score", data=body, method="POST",
                                             headers={"content-type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as answer:
                answers.append((answer.status, json.loads(answer.read())["event_id"]))
        assert answers == [(200, f"w-{i}") for i in range(20)]
        # Both workers write the one store the command named.
        assert redis.Redis.from_url(empty_redis).dbsize() > 0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
