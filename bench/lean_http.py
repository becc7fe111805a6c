"""A lean HTTP/1.1 client for the timed POSTs of the benchmark.

The load generator runs on the same two cores as what it measures, so its own CPU is
taken from the pipeline: httpx spends about 4 ms of CPU per 1,000-event request (0.4 s
per 100k events), this client a fraction of that. It speaks only what the benchmark
needs: keep-alive connections, a body with Content-Length, an answer with
Content-Length (or chunked, read to its end).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit


class LeanConnection:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> LeanConnection:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()

    async def post(self, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        """POST ``body``; returns the status and the answer's body."""
        assert self._reader is not None and self._writer is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        self._writer.write(head)
        self._writer.write(body)
        await self._writer.drain()
        status_line = await self._reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length: int | None = None
        chunked = False
        while (line := await self._reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                length = int(value.strip())
            elif key == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            return status, await self._read_chunked()
        return status, await self._reader.readexactly(length or 0)

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        out = bytearray()
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while await self._reader.readuntil(b"\r\n") != b"\r\n":
                    pass
                return bytes(out)
            out += await self._reader.readexactly(size)
            await self._reader.readexactly(2)
