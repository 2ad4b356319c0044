"""``riskengine serve --cpu-affinity``: each worker process, all its threads, on a CPU of its
own, claimed so that no two pinned processes share one; a CPU freed when its process ends."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from riskengine.api import server
from riskengine.tools import cli
from tests.servers import development_env, serve, stop_session, worker_pids

pytestmark = pytest.mark.skipif(not server.cpu_affinity_supported(), reason="Linux only")

CPUS = sorted(os.sched_getaffinity(0)) if server.cpu_affinity_supported() else []


def _namespace() -> str:
    return f"riskengine-test-{uuid.uuid4().hex}"


def _threads_affinity(pid: int) -> dict[int, set[int]]:
    """Each thread of process ``pid`` and the CPUs it may run on."""
    return {int(tid): os.sched_getaffinity(int(tid))
            for tid in os.listdir(f"/proc/{pid}/task")}


def test_claims_take_each_cpu_once_and_a_closed_claim_frees_it() -> None:
    namespace = _namespace()
    claims = [server.claim_cpu(namespace) for _ in CPUS]
    try:
        assert [claim[0] for claim in claims if claim] == CPUS
        assert server.claim_cpu(namespace) is None  # every CPU is taken
        assert server.claim_cpu(_namespace()) is not None  # another namespace is apart
        first = claims[0]
        assert first is not None
        first[1].close()
        again = server.claim_cpu(namespace)
        assert again is not None and again[0] == CPUS[0]
        again[1].close()
    finally:
        for claim in claims[1:]:
            if claim:
                claim[1].close()


def _in_a_process(code: str) -> str:
    """Run ``code`` in a python process of its own (pinning this one would pin the suite)."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_thread_is_pinned_those_before_and_those_after() -> None:
    out = _in_a_process(f"""
        import os, threading
        from riskengine.api import server

        stop = threading.Event()
        before = threading.Thread(target=stop.wait)
        before.start()
        cpu = server.pin_to_a_cpu({_namespace()!r})
        after = threading.Thread(target=stop.wait)
        after.start()
        seen = {{os.sched_getaffinity(int(t)) == {{cpu}} for t in os.listdir("/proc/self/task")}}
        print(cpu, len(os.listdir("/proc/self/task")), seen)
        stop.set()
    """)
    cpu, threads, seen = out.split(maxsplit=2)
    assert int(cpu) == CPUS[0] and int(threads) >= 3  # and the libraries' own threads
    assert seen.strip() == "{True}"


def test_a_process_finds_every_cpu_taken_and_runs_unpinned() -> None:
    namespace = _namespace()
    claims = [server.claim_cpu(namespace) for _ in CPUS]
    try:
        out = _in_a_process(f"""
            import os
            from riskengine.api import server
            print(server.pin_to_a_cpu({namespace!r}), sorted(os.sched_getaffinity(0)))
        """)
    finally:
        for claim in claims:
            if claim:
                claim[1].close()
    assert out.split(maxsplit=1) == ["None", str(CPUS) + "\n"]


def test_two_workers_each_on_a_cpu_of_its_own(tmp_path: Path, empty_redis: str) -> None:
    proc, _ = serve("--workers", "2", "--store", empty_redis, "--cpu-affinity",
                    env=development_env(tmp_path), start_new_session=True)
    try:
        workers = worker_pids(proc.pid)
        assert len(workers) == 2
        pinned = [_threads_affinity(pid) for pid in workers]
        cpus = [set().union(*threads.values()) for threads in pinned]
        # Each worker, every thread of it, on one CPU; different CPUs while there are enough.
        for worker, threads in zip(cpus, pinned, strict=True):
            assert len(threads) > 1
            assert len(worker) == 1 or len(CPUS) < 2, pinned
        if len(CPUS) >= 2:
            assert cpus[0] != cpus[1]
        assert len(_threads_affinity(proc.pid)[proc.pid]) == len(CPUS)  # the parent is free
    finally:
        stop_session(proc)


def test_one_worker_is_pinned_too(tmp_path: Path) -> None:
    proc, _ = serve("--store", f"sqlite:{tmp_path / 're.db'}", "--cpu-affinity",
                    env=development_env(tmp_path), start_new_session=True)
    try:
        threads = _threads_affinity(proc.pid)
        assert len(threads) > 1 and len(set().union(*threads.values())) == 1, threads
    finally:
        stop_session(proc)


def test_without_the_option_nothing_is_pinned(tmp_path: Path) -> None:
    proc, _ = serve("--store", f"sqlite:{tmp_path / 're.db'}", env=development_env(tmp_path),
                    start_new_session=True)
    try:
        assert all(cpus == set(CPUS) for cpus in _threads_affinity(proc.pid).values())
    finally:
        stop_session(proc)


def test_the_option_is_refused_where_it_cannot_work(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]
                                                    ) -> None:
    monkeypatch.setattr(server, "cpu_affinity_supported", lambda: False)

    assert cli.main(["serve", "--cpu-affinity", "--store", "memory:"]) == 2
    assert capsys.readouterr().err == "riskengine: cannot start: --cpu-affinity needs Linux\n"
