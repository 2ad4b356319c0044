"""The least a Python client can do to post JSON over keep-alive HTTP/1.1 on 127.0.0.1,
shared by ``bench/http.py`` and ``bench/load.py``: a client that costs the server's cores
little, so that a load test measures the server rather than the client."""

from __future__ import annotations

import asyncio

SCORE_PATH = "/v1/score"


class Connection:
    """One keep-alive HTTP/1.1 connection posting JSON: the least a Python client can do,
    so that the client costs the server's core as little as possible."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def post(self, body: bytes, path: str = SCORE_PATH) -> int:
        self.writer.write(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Content-Type: application/json\r\nContent-Length: "
                          + str(len(body)).encode() + b"\r\n\r\n" + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()
