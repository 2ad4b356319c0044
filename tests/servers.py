"""Real ``riskengine`` processes for the tests: a free port, the command line run with the
environment's own RISKENGINE_ settings left out, and a wait until a server answers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A port nothing listens on right now (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def store_down_client(tmp_path: Path) -> Iterator[Any]:
    """A test client of an app whose Redis store listens nowhere (a port nothing is bound to),
    with its outbox under ``tmp_path``."""
    from fastapi.testclient import TestClient

    from riskengine.api import create_app
    from riskengine.service.settings import Settings

    settings = Settings(env="test", auth="open", store=f"redis://127.0.0.1:{free_port()}/0",
                        outbox=tmp_path / "outbox.db", _env_file=None)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without its RISKENGINE_ settings, plus ``extra``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("RISKENGINE_")}
    return {**base, **(extra or {})}


def development_env(tmp_path: Path) -> dict[str, str]:
    """Settings of a development service with open auth and its files under ``tmp_path``
    (the store is the command line's or the default)."""
    return {"RISKENGINE_ENV": "development", "RISKENGINE_AUTH": "open",
            "RISKENGINE_MODEL_DIR": str(tmp_path / "models"),
            "RISKENGINE_API_KEYS": str(tmp_path / "keys.json"),
            "RISKENGINE_OUTBOX": str(tmp_path / "outbox.db"),
            "RISKENGINE_LOG_LEVEL": "WARNING"}


def riskengine(*args: str, env: dict[str, str] | None = None, **popen: Any) -> subprocess.Popen:
    """``python -m riskengine.tools.cli *args`` in a clean environment plus ``env``."""
    return subprocess.Popen([sys.executable, "-m", "riskengine.tools.cli", *args],
                            env=clean_env(env), **popen)


def riskengine_piped(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``riskengine`` with its output (stdout and stderr, as text) to read back."""
    return riskengine(*args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                      text=True)


def wait_until_up(base: str, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    """Return once ``base``/healthz answers; fail with the server's output if it exits
    first, or if it does not answer within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers, if not with 200
        except OSError:
            if proc.poll() is not None:
                output = proc.stdout.read() if proc.stdout else ""
                raise AssertionError(f"the server exited ({proc.returncode}): {output}") from None
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not come up in {timeout_s:g} s") from None
            time.sleep(0.2)


def serve(*args: str, env: dict[str, str] | None = None, **popen: Any
          ) -> tuple[subprocess.Popen, str]:
    """``riskengine serve`` on a free port with ``args``, once it answers: the process and
    its base URL. Its output goes nowhere unless ``popen`` says otherwise."""
    port = free_port()
    popen = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, **popen}
    proc = riskengine("serve", "--port", str(port), *args, env=env, **popen)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, proc)
    except BaseException:
        proc.kill()
        proc.wait(timeout=10)
        raise
    return proc, base


def worker_pids(pid: int) -> list[int]:
    """uvicorn's worker processes under its parent ``pid`` (a third child may be
    multiprocessing's resource tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children
            if "spawn_main" in Path(f"/proc/{child}/cmdline").read_text()]


def stop_session(proc: subprocess.Popen) -> None:
    """End a server started in a session of its own: its whole process group."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
