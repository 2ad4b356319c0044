"""``riskengine serve --workers N``: N worker processes on a shared (Redis) store, each
building the app from the settings the command was given and listening on a socket of its
own; a memory store is refused, a port already taken stops the start."""

from __future__ import annotations

import json
import os
import selectors
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import redis

from tests.servers import (
    clean_env,
    development_env,
    riskengine_piped,
    serve,
    stop_session,
    worker_pids,
)


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
        assert len(worker_pids(proc.pid)) == 2
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
        stop_session(proc)


def _socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets process ``pid`` holds open."""
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed since listed
            continue
        if target.startswith("socket:["):
            found.add(int(target[8:-1]))
    return found


def _tcp_inodes(port: int, state: str) -> set[int]:
    """The inodes of this machine's TCP sockets on local ``port`` in ``state`` (kernel
    hex codes: 0A listening, 01 established)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                found.add(int(fields[9]))
    return found


def _burst(port: int, n: int) -> list[socket.socket]:
    """``n`` connections opened at once, as a client's pool opens them, each answered once
    (a request on each: accepted and served, and kept alive)."""
    socks = []
    with selectors.DefaultSelector() as sel:
        for _ in range(n):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            sel.register(sock, selectors.EVENT_WRITE)
            socks.append(sock)
        pending = len(socks)
        while pending:
            ready = sel.select(timeout=10)
            assert ready, "connections not made within 10 s"
            for key, _ in ready:
                sel.unregister(key.fileobj)
                pending -= 1
    for sock in socks:
        sock.setblocking(True)
        sock.settimeout(10)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
    for sock in socks:
        assert sock.recv(65536).startswith(b"HTTP/1.1 200"), "no answer on a connection"
    return socks


def test_each_worker_listens_on_its_own_socket_and_takes_its_share_of_a_burst(
        tmp_path: Path, empty_redis: str) -> None:
    proc, base = serve("--workers", "2", "--store", empty_redis, env=development_env(tmp_path),
                       start_new_session=True)
    port = urlsplit(base).port
    assert port is not None
    socks: list[socket.socket] = []
    try:
        workers = worker_pids(proc.pid)
        assert len(workers) == 2
        # Both listening (the one /healthz answered may have been up before the other).
        deadline = time.monotonic() + 60
        while True:
            listening = _tcp_inodes(port, "0A")
            mine = [listening & _socket_inodes(w) for w in workers]
            if all(mine) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert all(len(m) == 1 for m in mine), mine
        assert mine[0] != mine[1]  # two sockets, not one shared
        assert not listening & _socket_inodes(proc.pid)  # the parent only holds the port
        socks = _burst(port, 32)
        established = _tcp_inodes(port, "01")
        served = [len(established & _socket_inodes(w)) for w in workers]
        assert sum(served) == 32
        # Each worker took its share; one shared socket gave all 32 to one of them.
        assert min(served) >= 4, served
    finally:
        for sock in socks:
            sock.close()
        stop_session(proc)


def test_a_port_already_taken_stops_the_start_at_once(tmp_path: Path, empty_redis: str
                                                      ) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = riskengine_piped("serve", "--workers", "2", "--store", empty_redis,
                                "--port", str(port), env=development_env(tmp_path))
        out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 3, out  # uvicorn's start-up failure, no worker spawned
    assert "cannot bind" in out and "Address already in use" in out, out


WORKERS_CANNOT_BIND = '''
import socket, sys, uvicorn
from riskengine.api import server

if __name__ == "__main__":
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    made = server.WorkerListener
    # The parent's own bind succeeds; the workers are sent to a port already taken.
    server.WorkerListener = lambda host, port, *rest: made(host, taken.getsockname()[1], *rest)
    server.serve_workers(uvicorn.Config("riskengine.api.app:served_app", factory=True,
                                        host="127.0.0.1", port=0, workers=2))
'''


def test_workers_that_cannot_bind_stop_the_server_instead_of_restarting(tmp_path: Path
                                                                        ) -> None:
    script = tmp_path / "cannot_bind.py"
    script.write_text(WORKERS_CANNOT_BIND)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, check=False, cwd=tmp_path,
                          env=clean_env(development_env(tmp_path)))
    assert done.returncode == 3, done.stderr[-3000:]
    assert "worker cannot bind" in done.stderr
