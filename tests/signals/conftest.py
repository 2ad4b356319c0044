"""A real HTTP server on 127.0.0.1, in a thread, that plays a phone risk service: well,
slow, failing, trickling, or answering garbage. And a port where nothing listens."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from riskengine.api import create_app
from riskengine.service.settings import Settings
from tests.servers import free_port


@dataclass
class Service:
    """What the fake service does; tests change it between requests."""

    mode: str = "ok"  # ok | slow | error | garbage | not_object | bad_level | drip | huge
    delay_s: float = 2.0
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)  # phone -> JSON answer
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    stop: threading.Event = field(default_factory=threading.Event)


def _handler(service: Service) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            phone = json.loads(body).get("phone")
            service.requests.append({"path": self.path, "phone": phone,
                                     "headers": dict(self.headers)})
            mode = service.mode
            if mode == "slow":
                service.stop.wait(service.delay_s)
            if mode == "error":
                return self._send(500, b'{"error": "down for maintenance"}')
            if mode == "garbage":  # and it echoes the number, which must not reach a log
                return self._send(200, f"<html>oops {phone}</html>".encode())
            if mode == "not_object":
                return self._send(200, b'["high"]')
            if mode == "bad_level":
                return self._send(200, b'{"risk_level": "extreme"}')
            if mode == "huge":
                return self._send(200, b'{"risk_level": "high", "pad": "' + b"x" * 70_000 + b'"}')
            answer = json.dumps(service.answers.get(phone, {})).encode()
            if mode == "drip":  # one byte every 50 ms: 2.5 s for these 50 bytes
                answer = json.dumps({**service.answers.get(phone, {}), "pad": " " * 40}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                for byte in answer:
                    if service.stop.wait(0.05):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                return None
            return self._send(200, answer)

        def _send(self, status: int, body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:  # the client gave up first: that is the point of some tests
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def service() -> Iterator[Service]:
    state = Service()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1/phone-risk"
    try:
        yield state
    finally:
        state.stop.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def down_url() -> str:
    """An address where nothing listens: connections are refused at once."""
    return f"http://127.0.0.1:{free_port()}/v1/phone-risk"


def make_client(tmp_path: Path, **settings: Any) -> TestClient:
    """The scoring service as in production, with test settings and its own SQLite file;
    its windows run on the logins' own timestamps (they are dated November 2026), as in a
    replay of recorded traffic."""
    values = {"env": "test", "auth": "open", "store": f"sqlite:{tmp_path / 'signals.db'}",
              "_env_file": None, "trust_event_time": True, **settings}
    return TestClient(create_app(Settings(**values)))


def stored_features(client: TestClient, event_id: str) -> dict[str, Any]:
    engine = client.app.state.built.engine  # kept under the event id's pseudonym
    stored = engine.store.get_decision("default", engine.event_key("default", event_id))
    assert stored is not None
    return stored.features


def timed_post(client: TestClient, body: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """The answer and the wall-clock seconds it took, as the caller saw them."""
    started = time.perf_counter()
    response = client.post("/v1/score", json=body)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return response.json(), elapsed
