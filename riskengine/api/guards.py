"""ASGI middleware that refuses a request before any route parses it, in the one error shape:
a body over the size limit (413), a body that is not JSON (415), more requests in flight than
the service takes at once (503 with ``Retry-After``).

What cannot be refused here, because it happens before a request reaches the application (a
client that never finishes its headers or its body), is cut off by the server's protocol
(``riskengine.api.server``).
"""

from __future__ import annotations

from typing import Any

from riskengine.api.errors import RETRY_AFTER_S, error_bytes

MAX_BODY_BYTES = 64 * 1024  # a login event is well under 4 KiB

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


async def _answer(send: Any, status: int, body: bytes,
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def is_json(content_type: bytes | None) -> bool:
    """``application/json`` or ``application/*+json``, parameters allowed (what FastAPI
    parses as JSON)."""
    if not content_type:
        return False
    mime = content_type.split(b";", 1)[0].strip().lower()
    return mime == b"application/json" or (
        mime.startswith(b"application/") and mime.endswith(b"+json"))


class BodyGuard:
    """Refuse request bodies over ``max_bytes`` with 413, whether or not the client declared a
    length, and a body of another content type than JSON with 415, before anything parses
    them."""

    def __init__(self, app: Any, *, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app, self.max_bytes = app, max_bytes
        self._too_large = error_bytes(413, "request body too large", ["body"],
                                      limit_bytes=max_bytes)
        self._not_json = error_bytes(415, "the body must be JSON (Content-Type: "
                                     "application/json)", ["body"])

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _answer(send, 413, self._too_large)
            return
        # Read the whole body first (it is small, or refused): a framework that parses it
        # later would turn an error raised mid-stream into a generic 400.
        messages, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left (or was cut off) before its body was complete
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await _answer(send, 413, self._too_large)
                return
            if not message.get("more_body", False):
                break
        if size and scope["method"] in _WITH_BODY and not is_json(headers.get(b"content-type")):
            await _answer(send, 415, self._not_json)
            return
        replay = iter(messages)

        async def buffered() -> Any:
            return next(replay, None) or await receive()

        await self.app(scope, buffered, send)


DEFAULT_MAX_IN_FLIGHT = 256


class InFlightLimit:
    """At most ``max_in_flight`` requests handled at once; past it, 503 with ``Retry-After``
    at once rather than a queue that grows while every caller's deadline passes. The health
    probe is never refused (a load balancer asks it to know whether the process lives).

    ``max_in_flight`` None: the app's settings say (``RISKENGINE_MAX_IN_FLIGHT``, read once
    the lifespan has put them in ``app.state``)."""

    def __init__(self, app: Any, *, max_in_flight: int | None = None,
                 retry_after_s: int = RETRY_AFTER_S) -> None:
        self.app, self.max_in_flight = app, max_in_flight
        self.in_flight = 0
        self._retry_after = str(retry_after_s).encode()
        self._busy = error_bytes(503, "the service is at its concurrency limit; try again "
                                 "after Retry-After seconds", [])

    def _limit(self, scope: Any) -> int:
        if self.max_in_flight is None:
            settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
            if settings is None:
                return DEFAULT_MAX_IN_FLIGHT
            self.max_in_flight = int(settings.max_in_flight)
        return self.max_in_flight

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] == "/healthz":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self._limit(scope):
            await _answer(send, 503, self._busy, [(b"retry-after", self._retry_after)])
            return
        # One event loop: the count needs no lock.
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


__all__ = ["DEFAULT_MAX_IN_FLIGHT", "MAX_BODY_BYTES", "BodyGuard", "InFlightLimit", "is_json"]
