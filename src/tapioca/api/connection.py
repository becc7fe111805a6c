"""HTTP connections: deadlines for a request's head and body, a bound on the head, a cap
on open connections, and what the HTTP parser refuses answered in the one error shape.

uvicorn's httptools protocol (the one ``uvicorn[standard]`` selects) times out only an
idle connection between two answers (``timeout_keep_alive``): a connection that sends
nothing, half a request line, or a body a byte at a time is held for as long as its
client likes, a head may grow without bound, and what the parser refuses gets a plain-text
400. ``GuardedHttpProtocol`` is that protocol with, per connection:

- a head deadline, from the opening of the connection (first request) or a request's first
  byte (the next ones) to the end of its headers. When it passes, a connection that sent
  nothing is closed; one that sent part of a request gets a 408 first;
- a body deadline, from the start of the request's handling to its last body byte. When
  it passes, the application's ``receive`` tells it that the client left, the client gets
  a 408 and the connection is closed (what is left of the body could not be told from a
  next request);
- a head (request line and headers) of about ``MAX_HEAD_BYTES`` at most, else 431;
- admission: a connection opened while ``max_connections`` others are served gets a 503
  (``Retry-After``) for its request and is closed. uvicorn's own ``limit_concurrency`` is
  not used: it counts every open connection, the refused ones too, and once reached it
  refuses requests on every connection, so a burst of new connections would make those
  already served (a load balancer's /health on its kept-alive connection) answer 503;
- the parser's 400 in the error shape, naming what is wrong;
- the keep-alive timer run again when a request was answered before its body ended
  (uvicorn stops it at the body's bytes and would leave the connection open for good).
- the writes of one turn of the event loop sent together (``CoalescedWrites``): an
  answer's head and body in one send instead of two.

A refusal ends the writing side after its answer and drops what the client still sends
for ``LINGER_S`` before closing: closing with unread bytes would reset the connection,
and the client could lose the answer.

These are timers of the protocol rather than a deadline inside the application: a head
is read before there is an application call to put a deadline around, and the rest of a
body the application did not wait for (an early 413) is still read by the protocol. The
hooks taken over are uvicorn's: ``send_400_response``, ``_start_asgi_task`` and the parser
callbacks (tests/e2e/test_http_connections.py holds them to the uvicorn of uv.lock).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
import orjson
from uvicorn._types import ASGI3Application
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.server import ServerState

from tapioca.config import Settings
from tapioca.errors import ErrorDetail, error_body
from tapioca.kit.ids import new_request_id
from tapioca.metrics import HTTP_REFUSED

# A head as long as the longest report query (docs/api.md: filters of 4,096 characters,
# percent-encoded) and ordinary headers. The first read of a head is not counted, so a
# head is cut off within this plus one read of the socket (256 KiB).
MAX_HEAD_BYTES = 64 * 1024
LINGER_S = 2.0

# What part of a request a reason of the parser (llhttp's fixed texts) is about.
_PARTS = (
    ("content-length", "Content-Length"),
    ("chunk", "Transfer-Encoding"),
    ("transfer-encoding", "Transfer-Encoding"),
    ("header", "headers"),
    ("method", "request line"),
    ("url", "request line"),
    ("version", "request line"),
    ("http/", "request line"),
    ("start line", "request line"),
    ("pri/upgrade", "request line"),
)
_UNREADABLE = ErrorDetail("request", "the request cannot be read")
_REWORDED = {"Pause on PRI/Upgrade": "an HTTP/2 connection preface (this server speaks HTTP/1.1)"}


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    header_timeout_s: float
    body_timeout_s: float
    max_connections: int
    retry_after_s: int


@dataclass(slots=True)
class ServedCount:
    """The connections of one server admitted and neither closed nor refused since."""

    count: int = 0


def http_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for every Tapioca HTTP server."""
    limits = ConnectionLimits(
        settings.http_header_timeout_s,
        settings.http_body_timeout_s,
        settings.http_max_connections,
        settings.retry_after_seconds,
    )
    # uvicorn builds the protocol itself, from the class: the limits are the class's own
    attributes = {"limits": limits, "served": ServedCount()}
    protocol = type("GuardedHttpProtocol", (GuardedHttpProtocol,), attributes)
    return {
        "http": protocol,
        "ws": "none",  # no WebSocket routes; an upgraded connection would leave the count
        "timeout_keep_alive": settings.http_keep_alive_timeout_s,
    }


def framing_error(error: BaseException | None) -> ErrorDetail:
    """The part of a request the HTTP parser refused (``field``) and why."""
    if isinstance(error, httptools.HttpParserCallbackError):  # raised in uvicorn's callbacks
        if isinstance(error.__context__, httptools.HttpParserInvalidURLError):
            return ErrorDetail("request line", "Invalid URL")  # its text holds the target
        return _UNREADABLE
    if not isinstance(error, httptools.HttpParserError):
        return _UNREADABLE
    reason = str(error)
    lowered = reason.lower()
    part = next((name for key, name in _PARTS if key in lowered), "request")
    return ErrorDetail(part, _REWORDED.get(reason, reason))


class CoalescedWrites(asyncio.Transport):
    """A connection's transport whose writes of one turn of the event loop go out in one
    send at the end of it. uvicorn writes an answer's status line and headers, then its
    body, each at once: two system calls and two TCP segments for an answer that fits in
    one. Their order is kept, and closing (or ending the writing side) sends what waits
    first; aborting drops it, as the transport's own buffer is dropped."""

    __slots__ = ("_loop", "_transport", "_waiting")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._waiting: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._waiting:
            self._loop.call_soon(self._send)
        self._waiting.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def _send(self) -> None:
        if self._waiting:
            data = b"".join(self._waiting)
            self._waiting.clear()
            self._transport.write(data)

    def write_eof(self) -> None:
        self._send()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def close(self) -> None:
        self._send()
        self._transport.close()

    def abort(self) -> None:
        self._waiting.clear()
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._waiting))

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the deadlines and limits of this module."""

    limits: ClassVar[ConnectionLimits]
    served: ClassVar[ServedCount]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._in_head = False  # a request's first byte is in, not yet all its headers
        self._heads = 0  # requests begun on this connection
        self._head_bytes = 0
        self._admitted = False  # counted in ``served``
        self._lingering: asyncio.TimerHandle | None = None  # refused, closing soon

    def connection_made(  # type: ignore[override]
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(CoalescedWrites(transport, self.loop))
        if self.served.count < self.limits.max_connections:
            self._admitted = True
            self.served.count += 1
        self._start_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_deadline()
        self._stop_body_deadline()
        if self._lingering is not None:
            self._lingering.cancel()
        self._leave_count()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering is not None:
            return  # refused: dropped
        heads, in_head = self._heads, self._in_head
        super().data_received(data)
        if in_head and self._in_head and heads == self._heads:  # all of it was one head
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES and not self._closed():
                HTTP_REFUSED.labels("head_too_large").inc()
                self._refuse(
                    431,
                    "headers_too_large",
                    f"The request line and headers are larger than {MAX_HEAD_BYTES} bytes.",
                )

    def send_400_response(self, msg: str) -> None:
        # HttpToolsProtocol.data_received calls this while it handles the parser's error
        HTTP_REFUSED.labels("bad_request").inc()
        detail = framing_error(sys.exception())
        self._refuse(
            400, "bad_request", f"The request is not valid HTTP/1.1: {detail.message}.", [detail]
        )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._heads, self._head_bytes = True, self._heads + 1, 0
        if self._head_timer is None:
            self._start_head_deadline()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_head_deadline()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._stop_body_deadline()
        cycle = self.cycle
        idle = not self.pipeline and not self._closed()
        if cycle is not None and cycle.response_complete and idle:
            # answered before its body ended: uvicorn's keep-alive timer, which the body's
            # bytes stopped, runs again for the now idle connection
            self._unset_keepalive_if_required()
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        if self._closed():  # refused: nothing more is answered on this connection
            return
        if not self._admitted:
            HTTP_REFUSED.labels("over_capacity").inc()
            retry = str(self.limits.retry_after_s).encode()
            self._refuse(
                503,
                "unavailable",
                "The server holds as many connections as it serves; retry later.",
                headers=[(b"retry-after", retry)],
            )
            return
        super()._start_asgi_task(cycle, app)
        if cycle.more_body:
            self._body_timer = self.loop.call_later(
                self.limits.body_timeout_s, self._body_late, cycle
            )

    def _start_head_deadline(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_late)

    def _stop_head_deadline(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _stop_body_deadline(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if self._closed():
            return
        HTTP_REFUSED.labels("head_timeout").inc()
        if not self._in_head:  # not a byte of a request: nothing to answer
            self.transport.close()
            return
        seconds = self.limits.header_timeout_s
        message = f"The request line and headers did not arrive within {seconds:g} s."
        self._refuse(408, "request_timeout", message)

    def _body_late(self, cycle: RequestResponseCycle) -> None:
        self._body_timer = None
        if self._closed():
            return
        HTTP_REFUSED.labels("body_timeout").inc()
        if cycle.response_started:  # answered without waiting for the body: close only
            self.transport.close()
            return
        seconds = self.limits.body_timeout_s
        self._refuse(
            408, "request_timeout", f"The request body did not arrive within {seconds:g} s."
        )

    def _leave_count(self) -> None:
        if self._admitted:
            self._admitted = False
            self.served.count -= 1

    def _closed(self) -> bool:
        return self._lingering is not None or self.transport.is_closing()

    def _refuse(
        self,
        status: int,
        code: str,
        message: str,
        details: list[ErrorDetail] | None = None,
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        """Answer ``status`` in the error shape, unless an answer is under way, and close."""
        if self._closed():
            return
        self._leave_count()
        cycle, rid = self.cycle, None
        answering = bool(self.pipeline)
        if cycle is not None and not cycle.response_complete:  # the request refused
            answering = answering or cycle.response_started
            rid = cycle.scope.get("state", {}).get("request_id")
            cycle.disconnected = True  # the application's receive() says the client left
            cycle.message_event.set()
        if answering:
            self.transport.close()
            return
        rid = rid or new_request_id()
        body = orjson.dumps(error_body(rid, code, message, details))
        fields = [
            *self.server_state.default_headers,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", rid.encode()),
            (b"connection", b"close"),
            *headers,
        ]
        head = b"".join(name + b": " + value + b"\r\n" for name, value in fields)
        self.transport.write(STATUS_LINE[status] + head + b"\r\n" + body)
        if not self.transport.can_write_eof():  # TLS
            self.transport.close()
            return
        # Closing with unread bytes would reset the connection, and the client's system
        # could drop the answer: end the writing side, read and drop what still comes
        # for a moment, then close.
        self.transport.write_eof()
        self.flow.resume_reading()
        self._lingering = self.loop.call_later(LINGER_S, self.transport.close)
