"""A server killed with SIGKILL in the middle of 1,000 writes: the SQLite file is intact and
every update that was answered 200 is in it."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, body: dict) -> int:
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return response.status
    except Exception:
        return 0


def test_sigkill_during_writes_loses_no_answered_update(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKENGINE_")}
    env.update({"RISKENGINE_ENV": "development", "RISKENGINE_AUTH": "open",
                "RISKENGINE_MODEL_DIR": str(tmp_path / "m")})
    proc = subprocess.Popen([sys.executable, "-m", "riskengine.cli", "serve", "--port",
                             str(port), "--store", f"sqlite:{db}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=1)
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.2)

    answered: list[str] = []

    def send(i: int) -> None:
        event_id = f"w{i}"
        status = _post(f"{base}/v1/score", {
            "event_id": event_id, "user_id": f"user{i % 50}", "ip": f"123.120.{i % 250}.9",
            "auth_result": "failure" if i % 3 else "success",
            "timestamp": f"2026-11-02T{1 + i // 600:02d}:{(i // 10) % 60:02d}:{i % 10:02d}Z"})
        if status == 200:
            answered.append(event_id)

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(send, i) for i in range(1000)]
        while len(answered) < 300:  # kill it mid-run
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        for f in futures:
            f.result()

    assert 300 <= len(answered) < 1000
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {row[0] for row in conn.execute("SELECT event_id FROM decisions")}
    missing = set(answered) - stored
    assert not missing, f"{len(missing)} answered updates lost"
