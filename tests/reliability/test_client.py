"""The Python client against real servers that answer, are slow, are stopped, or fail."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from riskengine.adapters.client import RiskClient, RiskServiceError
from tests.servers import free_port

LOGIN = {"user_id": "+8613800138000", "ip": "123.120.5.9"}


class Behaviour:
    def __init__(self) -> None:
        self.mode = "ok"
        self.seen: list[str] = []


def _server(behaviour: Behaviour) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            behaviour.seen.append(body["event_id"])
            if behaviour.mode == "slow":
                time.sleep(1.0)
            if behaviour.mode == "error" or (behaviour.mode == "flaky"
                                              and len(behaviour.seen) == 1):
                self.send_response(503)
                self.end_headers()
                return
            answer = json.dumps({"event_id": body["event_id"], "decision": "allow",
                                 "challenge": None, "score": 0.0, "reasons": [],
                                 "failover": False}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture()
def service() -> Iterator[tuple[Behaviour, str]]:
    behaviour = Behaviour()
    server, url = _server(behaviour)
    yield behaviour, url
    server.shutdown()


def test_an_answer_is_passed_through_with_connections_reused(service) -> None:
    behaviour, url = service
    with RiskClient(url) as client:
        results = [client.score({**LOGIN, "event_id": f"e{i}"}) for i in range(3)]
    assert [r.decision for r in results] == ["allow"] * 3
    assert not any(r.failover for r in results)
    assert behaviour.seen == ["e0", "e1", "e2"]


def test_a_slow_service_gives_the_failover_within_the_deadline(service) -> None:
    behaviour, url = service
    behaviour.mode = "slow"
    with RiskClient(url, deadline_s=0.25) as client:
        started = time.monotonic()
        result = client.score(LOGIN)
        took = time.monotonic() - started
    assert result.failover and result.decision == "challenge" and result.cause == "timeout"
    assert took < 0.6  # the deadline, not the server's second


def test_a_stopped_service_gives_the_failover(service) -> None:
    with RiskClient(f"http://127.0.0.1:{free_port()}", deadline_s=0.25) as client:
        result = client.score(LOGIN)
    assert result.failover and result.decision == "challenge" and result.cause == "connect"


def test_5xx_is_retried_with_the_same_event_id_then_fails_over(service) -> None:
    behaviour, url = service
    behaviour.mode = "error"
    with RiskClient(url, deadline_s=1.0, retries=2) as client:
        result = client.score(LOGIN)
    assert result.failover and result.cause == "http_503"
    assert len(behaviour.seen) == 3 and len(set(behaviour.seen)) == 1  # one event, retried


def test_a_retry_that_succeeds_is_the_answer(service) -> None:
    behaviour, url = service
    behaviour.mode = "flaky"
    with RiskClient(url, deadline_s=1.0) as client:
        result = client.score({**LOGIN, "event_id": "once"})
    assert not result.failover and result.decision == "allow"
    assert behaviour.seen == ["once", "once"]


@pytest.mark.parametrize("failover", ["allow", "deny"])
def test_the_failover_decision_is_configurable(failover) -> None:
    with RiskClient(f"http://127.0.0.1:{free_port()}", failover=failover) as client:
        assert client.score(LOGIN).decision == failover


def test_raise_instead_of_a_decision() -> None:
    client = RiskClient(f"http://127.0.0.1:{free_port()}", failover="raise")
    with pytest.raises(RiskServiceError, match="connect"):
        client.score(LOGIN)
    client.close()
