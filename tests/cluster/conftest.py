"""Real processes for the multi-instance tests: a Redis server of the test's own (so that it
can be stopped and started), a learner, and two scoring servers."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from riskengine.adapters.auth import KeyStore
from tests.servers import free_port, riskengine, wait_until_up

KEYS = {"RISKENGINE_PSEUDONYM_KEY": "cluster-test-key-0123456789",
        "RISKENGINE_MODEL_SIGNING_KEY": "cluster-signing-key-0123456789"}

# Only the cluster mechanics are under test: no rule or model may get in the way.
QUIET_RULES = """\
version: "cluster-test"
thresholds: {challenge: 0.98, deny: 0.99}
model: {weight: 0.0}
rules:
  - id: tor_exit
    name: Tor exit node
    description: The login comes from a Tor exit node.
    when: {feature: ip_is_tor, op: is_true}
    score: 0.1
"""


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: _connects(self.port), "redis-server")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


def _connects(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_for(check: Any, what: str, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            result = check()
        except Exception:
            result = None
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"{what} not ready within {timeout_s} s")


API_KEY: dict[str, str] = {}  # the admin key the cluster fixture created


def call(url: str, body: dict | None = None, timeout: float = 5.0) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if API_KEY:
        headers["Authorization"] = f"Bearer {API_KEY['key']}"
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body else None,
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@dataclass
class Cluster:
    redis: RedisServer
    tmp: Path
    servers: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen] = field(default_factory=list)
    store_timeout_s: float = 0.05  # the product's default

    def env(self, name: str) -> dict[str, str]:
        # The tests tell stories in event time, as a replay over HTTP does: the servers run
        # their windows on the logins' own timestamps (tests/security checks the server's).
        return {**KEYS, "RISKENGINE_TRUST_EVENT_TIME": "1",
                "RISKENGINE_MODEL_DIR": str(self.tmp / name),
                "RISKENGINE_API_KEYS": str(self.tmp / "keys.json"),
                "RISKENGINE_OUTBOX": str(self.tmp / f"{name}-outbox.db"),
                "RISKENGINE_STORE_TIMEOUT_S": str(self.store_timeout_s)}

    def spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        proc = riskengine(*args, env=self.env(name), stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def start_server(self, name: str, rules: Path) -> str:
        port = free_port()
        proc = self.spawn(name, "serve", "--port", str(port), "--store", self.redis.url,
                          "--rules", str(rules))
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, proc)
        self.servers.append(base)
        return base

    def logs(self, lines: int = 40) -> str:
        """The last lines of every process's log, for a failure message."""
        tails = []
        for path in sorted(self.tmp.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            tails.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(tails)

    def stop_all(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture()
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    redis_server = RedisServer(free_port())
    redis_server.start()
    rules = tmp_path / "quiet.yaml"
    rules.write_text(QUIET_RULES)
    deadline = request.node.get_closest_marker("store_timeout")
    c = Cluster(redis_server, tmp_path)
    if deadline is not None:
        c.store_timeout_s = float(deadline.args[0])
    _, API_KEY["key"] = KeyStore(tmp_path / "keys.json").create("cluster-test", ["admin"])
    try:
        c.spawn("learner", "learner", "--store", redis_server.url, "--snapshot-every-s", "0.5")
        c.start_server("a", rules)
        c.start_server("b", rules)
        yield c
    finally:
        API_KEY.clear()
        c.stop_all()
        redis_server.stop()
