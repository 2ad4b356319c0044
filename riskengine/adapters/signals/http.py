"""An HTTP adapter for a carrier's or a risk service's phone-number lookup.

The request is ``POST <url>`` with ``{"phone": "+8613800138000"}`` as JSON (in the body, so
the number stays out of the service's access logs and of any proxy's), the configured
authentication header, and ``Accept: application/json``. The answer must be a JSON object::

    {"risk_level": "high", "recycled_at": "2026-10-01"}

``risk_level`` is ``low``, ``medium`` or ``high``, or null / absent for a number the service
has no entry for; ``recycled_at`` is the date (or RFC 3339 time) the number was last
reassigned to a new subscriber, null / absent when it never was. Anything else (another
status, a body that is not such an object, a level or date it cannot read, a body over
64 KiB) is a failure, and a failure is the fallback ``"unknown"``, never an exception in
the scoring path.

Deadline: ``timeout_s`` covers the whole exchange. Connecting and each read are given
only the time left, and the body is read in chunks with the clock checked between them,
so a service that trickles bytes is cut off. (``httpx``' and ``urllib``'s timeouts are per
operation, not a total: a trickle resets them.) The scoring path does not wait for this
deadline anyway; it waits only for its own budget (``Signals``).

The standard library's client is used on purpose: it reads no proxy settings from the
environment and adds no dependency to the service.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from riskengine.adapters.signals.base import RISK_LEVELS, UNLISTED, Answer, Query, Signal
from riskengine.adapters.signals.files import parse_date

MAX_BODY_BYTES = 64 * 1024


class SignalServiceError(RuntimeError):
    """The service did not give a usable answer; the message never quotes its body."""


class HttpPhoneRisk:
    """Phone risk level and recycled status from an HTTP service.

    Parameters
    ----------
    url
        ``http://`` or ``https://`` address of the lookup.
    timeout_s
        Deadline of one whole exchange.
    auth_header
        One header line sent with every request, ``Name: value`` (e.g.
        ``Authorization: Bearer …``); None for none.
    name
        Names the provider in logs and status.
    """

    subject = "phone"
    provides = (Signal.PHONE_RISK, Signal.PHONE_RECYCLED)

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 0.2,
        auth_header: str | None = None,
        name: str = "phone-http",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the phone risk service URL must be http(s)://host/…, got {url!r}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.url = url
        self.timeout_s = timeout_s
        self.name = name
        self.clock = clock
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth_header:
            header, sep, value = auth_header.partition(":")
            if not sep or not header.strip() or any(c in auth_header for c in "\r\n"):
                raise ValueError("the auth header must be one line 'Name: value'")
            self._headers[header.strip()] = value.strip()

    def lookup(self, query: Query) -> Answer:
        if query.phone is None:
            raise ValueError("no phone number to look up")
        data = self._exchange(json.dumps({"phone": query.phone}).encode())
        return _read_answer(data)

    def _exchange(self, body: bytes) -> bytes:
        deadline = self.clock() + self.timeout_s

        def left() -> float:
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise TimeoutError(f"{self.name}: no answer within {self.timeout_s} s")
            return remaining

        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=left())
        response: http.client.HTTPResponse | None = None
        try:
            conn.request("POST", self._path, body=body, headers=self._headers)
            # Kept: the connection hands its socket to the response when the server closes.
            sock = conn.sock
            assert sock is not None
            sock.settimeout(left())
            response = conn.getresponse()
            if response.status != 200:
                raise SignalServiceError(f"{self.name}: HTTP {response.status}")
            chunks, size = [], 0
            while True:
                sock.settimeout(left())
                chunk = response.read1(16_384)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise SignalServiceError(f"{self.name}: answer over {MAX_BODY_BYTES} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
        except OSError as exc:  # socket timeouts are OSErrors too
            if isinstance(exc, TimeoutError):
                raise TimeoutError(f"{self.name}: no answer within {self.timeout_s} s") from None
            raise SignalServiceError(f"{self.name}: {type(exc).__name__}") from None
        except http.client.HTTPException as exc:
            raise SignalServiceError(f"{self.name}: {type(exc).__name__}") from None
        finally:
            if response is not None:
                response.close()
            conn.close()

    def status(self) -> dict[str, Any]:
        return {"url": self.url, "timeout_s": self.timeout_s}


def _read_answer(data: bytes) -> Answer:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise SignalServiceError("the answer is not JSON") from None
    if not isinstance(doc, dict):
        raise SignalServiceError("the answer is not a JSON object")
    level = doc.get("risk_level")
    if level is None:
        level = UNLISTED
    elif not isinstance(level, str) or level.lower() not in RISK_LEVELS:
        raise SignalServiceError("risk_level is not low, medium, high or null")
    recycled = doc.get("recycled_at")
    recycled_at = None
    if recycled is not None:
        if not isinstance(recycled, str):
            raise SignalServiceError("recycled_at is not a date")
        try:
            recycled_at = parse_date(recycled)
        except ValueError:
            raise SignalServiceError("recycled_at is not a date") from None
    return Answer(phone_risk_level=level.lower(), phone_recycled_at=recycled_at)
