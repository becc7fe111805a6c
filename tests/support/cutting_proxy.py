"""A TCP proxy in front of a real server that can end a connection at a chosen moment:
when the client sends a message that holds given bytes, the proxy closes both sides
instead of passing it on, as a server stopping just then would look to the client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class CuttingProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.cut_on: bytes | None = None  # armed: the next message holding these bytes
        self.cuts = 0
        self._writers: set[asyncio.StreamWriter] = set()

    async def _pipe(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, watch: bool,
        ends: list[asyncio.StreamWriter],
    ) -> None:  # fmt: skip
        try:
            while chunk := await src.read(65536):
                if watch and self.cut_on is not None and self.cut_on in chunk:
                    self.cut_on = None
                    self.cuts += 1
                    for end in ends:
                        end.transport.abort()
                    return
                dst.write(chunk)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                dst.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        ends = [writer, up_writer]
        self._writers.update(ends)
        await asyncio.gather(
            self._pipe(reader, up_writer, True, ends), self._pipe(up_reader, writer, False, ends)
        )
        self._writers.difference_update(ends)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[CuttingProxy]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await server.wait_closed()
