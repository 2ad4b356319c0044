"""``riskengine serve`` runs on asyncio's own event loop, not uvloop's
(``riskengine.api.server.EVENT_LOOP``: the libuv in uvloop accepts one new connection per turn
of the loop, and a turn of a busy scoring loop is every request in flight)."""

from __future__ import annotations

from pathlib import Path

from riskengine.api.server import EVENT_LOOP
from tests.servers import development_env, serve


def test_the_service_is_served_on_asyncios_loop(tmp_path: Path) -> None:
    assert EVENT_LOOP == "asyncio"
    proc, _ = serve("--store", f"sqlite:{tmp_path / 'store.db'}", env=development_env(tmp_path))
    try:
        # uvicorn imports uvloop only to run on it; the serving process has not loaded it.
        mapped = Path(f"/proc/{proc.pid}/maps").read_text()
        assert "httptools" in mapped  # the map is the server's (its HTTP parser)
        assert "uvloop" not in mapped
    finally:
        proc.terminate()
        proc.wait(timeout=30)
