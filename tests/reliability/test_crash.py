"""A server killed with SIGKILL in the middle of 1,000 writes: the SQLite file is intact and
every update that was answered 200 is in it."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from riskengine.core.privacy import Kind
from riskengine.service.settings import Settings
from tests.servers import serve


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
    proc, base = serve("--store", f"sqlite:{db}", env={
        "RISKENGINE_ENV": "development", "RISKENGINE_AUTH": "open",
        # The logins are dated 2026-11-02, as in a replay of recorded traffic.
        "RISKENGINE_TRUST_EVENT_TIME": "1", "RISKENGINE_MODEL_DIR": str(tmp_path / "m")})

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
    # Kept under the event ids' pseudonyms (development mode's public key).
    pseudonym = Settings(env="development", _env_file=None).pseudonymizer()
    missing = {e for e in answered if pseudonym(Kind.EVENT_ID, e, scope="default") not in stored}
    assert not missing, f"{len(missing)} answered updates lost"
