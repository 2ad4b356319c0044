"""A Python client for auth services: one call per login, never hanging, never failing open.

>>> from riskengine.adapters.client import RiskClient
>>> client = RiskClient("http://127.0.0.1:8000", api_key="rk_…")     # doctest: +SKIP
>>> result = client.score({"user_id": "+8613800138000", "ip": "123.120.5.9"})  # doctest: +SKIP
>>> result.decision, result.failover                                  # doctest: +SKIP
('allow', False)

Every call has a deadline (250 ms by default) covering connection, retries and the answer.
When the service is slow, down or answers 5xx, the call returns the configured failover
decision (``challenge`` by default; ``allow``, ``deny``, or ``raise`` to get an exception),
marked ``failover=True`` with its cause. Retries are safe because each request carries an
``event_id`` (made here when the caller gives none) and the service answers a repeated
``event_id`` with the decision it already made, counting nothing twice; they happen only
while the deadline allows.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

Failover = Literal["challenge", "allow", "deny", "raise"]


class RiskServiceError(RuntimeError):
    """The service could not answer in time (raised only with ``failover="raise"``)."""


@dataclass(frozen=True, slots=True)
class RiskResult:
    event_id: str
    decision: str
    challenge: str | None
    score: float | None
    reasons: list[dict[str, Any]] = field(default_factory=list)
    failover: bool = False
    cause: str | None = None  # why this is a failover: timeout, connect, http_5xx, ...
    body: dict[str, Any] = field(default_factory=dict)


class RiskClient:
    """Calls ``POST /v1/score`` and ``POST /v1/feedback`` on a riskengine service.

    Parameters
    ----------
    base_url, api_key
        The service and a key with the ``score`` (and ``feedback``) scope.
    deadline_s
        The most a call may take, retries included.
    failover
        What a call returns when the service cannot answer within the deadline.
    retries
        Extra attempts after a connection error or a 5xx, within the deadline.
    """

    def __init__(self, base_url: str, *, api_key: str | None = None, deadline_s: float = 0.25,
                 failover: Failover = "challenge", retries: int = 2,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # One pooled client: connections are reused across calls (keep-alive).
        self._http = httpx.Client(base_url=base_url, headers=headers, transport=transport,
                                  limits=httpx.Limits(max_keepalive_connections=20))
        self.deadline_s = deadline_s
        self.failover = failover
        self.retries = retries

    def score(self, event: dict[str, Any]) -> RiskResult:
        """Score one login; never raises unless ``failover="raise"``."""
        event = {**event, "event_id": event.get("event_id") or str(uuid.uuid4())}
        outcome = self._post("/v1/score", event)
        if isinstance(outcome, dict):
            return RiskResult(outcome["event_id"], outcome["decision"], outcome.get("challenge"),
                              outcome.get("score"), outcome.get("reasons", []),
                              bool(outcome.get("failover")),
                              "service_failover" if outcome.get("failover") else None, outcome)
        return self._fallback(event["event_id"], outcome)

    def feedback(self, event_id: str, *, label: str, source: str,
                 tenant: str = "default") -> dict[str, Any] | str:
        """Report a step-up result or a verdict; returns the answer, or the failure cause."""
        return self._post("/v1/feedback", {"event_id": event_id, "label": label,
                                           "source": source, "tenant": tenant})

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any] | str:
        """The JSON answer, or the cause of failure as a string."""
        start = time.monotonic()
        cause = "timeout"
        for _ in range(self.retries + 1):
            left = self.deadline_s - (time.monotonic() - start)
            if left <= 0.005:
                return cause
            try:
                response = self._http.post(path, json=body, timeout=httpx.Timeout(left))
            except httpx.TimeoutException:
                return "timeout"  # the deadline is spent: no retry
            except httpx.TransportError:
                cause = "connect"
                continue
            if response.status_code >= 500:
                cause = f"http_{response.status_code}"
                continue
            if response.status_code >= 400:
                return f"http_{response.status_code}"  # the request is wrong: retrying won't help
            return response.json()  # type: ignore[no-any-return]
        return cause

    def _fallback(self, event_id: str, cause: str) -> RiskResult:
        if self.failover == "raise":
            raise RiskServiceError(f"risk service unavailable: {cause}")
        # No step-up is named: the auth service applies its own default one.
        return RiskResult(event_id, self.failover, None, None, failover=True, cause=cause)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RiskClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
