"""What the HTTP parser refuses, named for the error shape, and the writes of one turn of
the event loop sent together (api/connection.py; the answers themselves are held over
sockets in tests/e2e/test_http_connections.py)."""

from __future__ import annotations

import asyncio
import socket

import httptools
import pytest

from tapioca.api.connection import CoalescedWrites, framing_error
from tapioca.errors import ErrorDetail


class Callbacks:
    def on_url(self, url: bytes) -> None:
        httptools.parse_url(url)  # as uvicorn reads the target once the head is complete


def parser_error(request: bytes) -> BaseException:
    parser = httptools.HttpRequestParser(Callbacks())
    with pytest.raises(httptools.HttpParserError) as info:
        parser.feed_data(request)
    return info.value


@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [
        (
            b"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
            ErrorDetail("Content-Length", "Invalid character in Content-Length"),
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            ErrorDetail("Content-Length", "Duplicate Content-Length"),
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            ErrorDetail("Transfer-Encoding", "Invalid character in chunk size"),
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            ErrorDetail("Content-Length", "Content-Length can't be present with Transfer-Encoding"),
        ),
        (b"GARBAGE\r\n\r\n", ErrorDetail("request line", "Invalid method encountered")),
        (b"GET / HTTP/9.9\r\n\r\n", ErrorDetail("request line", "Invalid HTTP version")),
        (b"GET /\x01 HTTP/1.1\r\n\r\n", ErrorDetail("request line", "Invalid char in url path")),
        (b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", ErrorDetail("headers", "Invalid header token")),
        (
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            ErrorDetail(
                "request line", "an HTTP/2 connection preface (this server speaks HTTP/1.1)"
            ),
        ),
    ],
)
def test_the_part_and_the_reason_are_named(request_bytes: bytes, expected: ErrorDetail) -> None:
    assert framing_error(parser_error(request_bytes)) == expected


def test_an_error_raised_in_a_callback_is_named_by_its_cause() -> None:
    error = parser_error(b"GET http://[bad HTTP/1.1\r\nHost: x\r\n\r\n")
    assert isinstance(error, httptools.HttpParserCallbackError)
    assert framing_error(error) == ErrorDetail("request line", "Invalid URL")


@pytest.mark.parametrize("error", [None, ValueError("internal detail")])
def test_anything_else_is_not_described(error: BaseException | None) -> None:
    assert framing_error(error) == ErrorDetail("request", "the request cannot be read")


class Recording(asyncio.Protocol):
    """The peer's side of a socket pair: what arrives, and when the connection ends."""

    def __init__(self) -> None:
        self.data = b""
        self.ended = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ended.done():
            self.ended.set_result(None)


class Counted(asyncio.Transport):
    """A real socket transport, with the writes asked of it counted."""

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self.transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)

    def write_eof(self) -> None:
        self.transport.write_eof()

    def close(self) -> None:
        self.transport.close()

    def abort(self) -> None:
        self.transport.abort()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size()


async def coalesced_pair() -> tuple[CoalescedWrites, Counted, Recording]:
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    _, peer = await loop.connect_accepted_socket(Recording, theirs)
    counted = Counted(transport)
    return CoalescedWrites(counted, loop), counted, peer


async def test_writes_of_one_turn_go_out_as_one_send_in_order() -> None:
    writes, counted, peer = await coalesced_pair()
    head = b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n"
    writes.write(head)
    writes.write(bytearray(b"{}"))
    writes.writelines([b"", b"next"])
    assert counted.writes == [] and writes.get_write_buffer_size() == len(head) + 6
    await asyncio.sleep(0)  # the end of this turn of the loop
    assert counted.writes == [head + b"{}next"]
    writes.write(b"later")
    await asyncio.sleep(0)
    assert counted.writes[1:] == [b"later"]
    writes.close()
    await asyncio.wait_for(peer.ended, 5)
    assert peer.data == head + b"{}nextlater"


async def test_closing_or_ending_the_writing_side_sends_what_waits_first() -> None:
    writes, counted, peer = await coalesced_pair()
    writes.write(b"refused")
    writes.write_eof()
    assert counted.writes == [b"refused"]
    writes.close()
    await asyncio.wait_for(peer.ended, 5)
    assert peer.data == b"refused"

    writes, counted, peer = await coalesced_pair()
    writes.write(b"answer")
    writes.close()  # closed in the same turn as the write
    assert counted.writes == [b"answer"] and writes.is_closing()
    await asyncio.sleep(0)
    assert counted.writes == [b"answer"]  # sent once
    await asyncio.wait_for(peer.ended, 5)
    assert peer.data == b"answer"


async def test_aborting_drops_what_waits() -> None:
    writes, counted, peer = await coalesced_pair()
    writes.write(b"dropped")
    writes.abort()
    await asyncio.wait_for(peer.ended, 5)
    await asyncio.sleep(0)
    assert counted.writes == [] and peer.data == b""
