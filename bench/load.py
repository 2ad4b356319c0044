"""A bounded load test of the scoring API at a fixed request rate, on 127.0.0.1 only.

Starts `riskengine serve` (SQLite, development keys, auth open), finds its peak rate with a
short closed-loop burst unless --rate is given, then sends requests at a fixed rate (80 % of
the peak by default) for --seconds, with varied logins (many users, devices, networks), over
keep-alive connections with a lean client (``_client.py``: the client shares the machine's
cores with the server, and a heavy one would measure itself). Prints the fail ratio,
latency p50 / p99 (from each request's scheduled time) and the server's memory (RSS).

    .venv/bin/python bench/load.py                      # 60 s at 80 % of peak
    .venv/bin/python bench/load.py --seconds 600        # the soak: 10 minutes
    .venv/bin/python bench/load.py --seconds 10 --rate 50
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder comes first on sys.path, where bench/http.py would shadow the
# standard library's http package: it goes last instead, for ``_client``.
_HERE = Path(__file__).parent.resolve()
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]

import argparse
import asyncio
import itertools
import json
import os
import random
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import _client as client
import httpx

IPS = ["123.120.{}.9", "114.88.{}.4", "183.14.{}.6", "58.152.{}.3", "81.167.{}.58"]


def login(i: int, rng: random.Random) -> dict[str, Any]:
    user = rng.randrange(5000)
    return {
        "event_id": f"load-{i}-{rng.getrandbits(32):08x}",
        "user_id": f"user{user}@example.cn",
        "ip": rng.choice(IPS).format(user % 250),
        "auth_result": "failure" if rng.random() < 0.05 else "success",
        "device": {"id": f"{user:08x}-0000-4000-8000-{rng.randrange(3):012x}",
                   "model": "Xiaomi 14", "os_name": "Android", "os_version": "14"},
        "network": {"type": "wifi", "ssid": f"home-{user}"},
    }


@dataclass
class Result:
    sent: int = 0
    failed: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms) or [0.0]
        return {"sent": self.sent, "failed": self.failed,
                "fail_ratio": self.failed / max(self.sent, 1),
                "p50_ms": lat[len(lat) // 2], "p99_ms": lat[int(0.99 * (len(lat) - 1))],
                "rss_mb_start": self.rss_mb[0] if self.rss_mb else None,
                "rss_mb_end": self.rss_mb[-1] if self.rss_mb else None,
                "rss_mb_max": max(self.rss_mb) if self.rss_mb else None,
                # sampled about once a second: one a minute shows whether it levels off
                "rss_mb_each_minute": self.rss_mb[::60]}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _bodies(seed: int) -> Callable[[], bytes]:
    """Varied logins as request bodies, one after another, deterministic by ``seed``."""
    rng = random.Random(seed)
    return (json.dumps(login(i, rng)).encode() for i in itertools.count()).__next__


async def fixed_rate(base: str, *, rate: float, seconds: float, pid: int | None,
                     seed: int = 1, connections: int = 64) -> Result:
    """Send ``rate`` requests a second for ``seconds`` over ``connections`` keep-alive
    connections (``_client.fixed_rate``: latency from each request's scheduled time); one
    not answered 200 within 2 s of it counts as failed. Samples the server's RSS once a
    second when ``pid`` is given."""
    result = Result()

    def sample(i: int) -> None:
        if pid is not None and i % max(1, int(rate)) == 0:
            result.rss_mb.append(rss_mb(pid))

    latencies, statuses, _ = await client.fixed_rate(
        int(base.rsplit(":", 1)[1]), _bodies(seed), rate=rate, seconds=seconds,
        connections=connections, timeout_s=2.0, on_send=sample)
    result.sent = len(statuses)
    result.latencies_ms = [lat * 1000 for lat in latencies]
    result.failed = sum(status != 200 or lat > 2.0
                        for lat, status in zip(latencies, statuses, strict=True))
    if pid is not None:
        result.rss_mb.append(rss_mb(pid))
    return result


async def peak(base: str, seconds: float = 15.0, concurrency: int = 16,
               warmup_s: float = 5.0) -> float:
    """Requests per second with ``concurrency`` callers sending back to back, counted over
    ``seconds`` after ``warmup_s``: a fresh server's first seconds (empty store, cold
    caches) run faster than it can keep up, and 80 % of that would be an overload."""
    latencies, errors, counted = await client.closed_loop(
        int(base.rsplit(":", 1)[1]), _bodies(0), seconds=seconds, connections=concurrency,
        warmup_s=warmup_s)
    return (len(latencies) + errors) / counted


def start_server(tmp: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKENGINE_")}
    env.update({"RISKENGINE_ENV": "development", "RISKENGINE_AUTH": "open",
                "RISKENGINE_MODEL_DIR": str(tmp / "m"), "RISKENGINE_LOG_LEVEL": "WARNING"})
    proc = subprocess.Popen([sys.executable, "-m", "riskengine.tools.cli", "serve", "--port",
                             str(port), "--store", f"sqlite:{tmp / 'load.db'}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            return proc, base
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("server did not start") from None
            time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, help="requests/s (default: 80 %% of the peak)")
    parser.add_argument("--out", help="write the figures as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, base = start_server(Path(tmp))
        try:
            measured = None if args.rate else asyncio.run(peak(base))
            rate = args.rate or 0.8 * (measured or 1)
            result = asyncio.run(fixed_rate(base, rate=rate, seconds=args.seconds, pid=proc.pid))
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    figures = {"peak_rps": measured, "rate_rps": rate, "seconds": args.seconds,
               **result.summary()}
    print(json.dumps(figures, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")
    print(f"fail ratio {figures['fail_ratio']:.4%} (target < 0.1 %), p50 "
          f"{figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, RSS "
          f"{figures['rss_mb_start']:.0f} -> {figures['rss_mb_end']:.0f} MB "
          f"(median {statistics.median(result.rss_mb):.0f}; each minute: "
          f"{' '.join(f'{mb:.0f}' for mb in figures['rss_mb_each_minute'])})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
