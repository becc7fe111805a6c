"""HTTP/1.1 over a bare socket, for what an HTTP client library does not send: nothing at
all, half a request line, a body a byte at a time, broken framing, an idle connection."""

from __future__ import annotations

import json
import select
import socket
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from support.error_shape import error_shape_problems


@dataclass(frozen=True)
class RawAnswer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


class RawConnection:
    """One TCP connection to a server on 127.0.0.1."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self._buffer = b""

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def get(self, path: str, close: bool = False) -> RawAnswer:
        """``GET path`` on this connection, and its answer."""
        connection = b"Connection: close\r\n" if close else b""
        self.send(
            b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + connection + b"\r\n"
        )
        return self.answer()

    def trickle(self, data: bytes, piece: int = 1, every: float = 0.2) -> float:
        """Send ``data`` ``piece`` bytes at a time, one piece ``every`` seconds, until the
        server answers or closes; returns the seconds from the first piece to that."""
        started = time.monotonic()
        for start in range(0, len(data), piece):
            self.send(data[start : start + piece])
            readable, _, _ = select.select([self.sock], [], [], every)
            if readable:
                return time.monotonic() - started
        raise AssertionError(f"all {len(data)} bytes sent and no answer")

    def answer(self) -> RawAnswer:
        """The next answer on the connection (its body by Content-Length)."""
        while b"\r\n\r\n" not in self._buffer:
            self._fill("an answer's head")
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self._buffer) < length:
            self._fill("an answer's body")
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return RawAnswer(int(status_line.split(" ")[1]), headers, body)

    def seconds_until_closed(self, limit: float) -> float:
        """Seconds from now until the server closes the connection, sending nothing more;
        fails when it is still open after ``limit`` seconds."""
        started = time.monotonic()
        self.sock.settimeout(limit)
        try:
            data = self.sock.recv(65536)
        except TimeoutError as exc:
            raise AssertionError(f"the connection is still open after {limit} s") from exc
        except ConnectionResetError:
            data = b""
        finally:
            self.sock.settimeout(self.timeout)
        assert data == b"", f"expected the connection to close, got {data[:300]!r}"
        assert self._buffer == b"", f"unread bytes before the close: {self._buffer[:300]!r}"
        return time.monotonic() - started

    def _fill(self, what: str) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise AssertionError(f"the server closed the connection before {what}")
        self._buffer += chunk


def assert_error_answer(answer: RawAnswer, status: int, code: str) -> dict[str, Any]:
    """An answer of ``status`` in api.md's one error shape with ``code``; returns the body."""
    assert answer.status == status, f"{answer.status} {answer.body[:300]!r}"
    problems = error_shape_problems(status, answer.body, answer.headers.get("x-request-id"))
    assert not problems, "; ".join(problems)
    assert answer.headers.get("content-type") == "application/json", answer.headers
    body: dict[str, Any] = json.loads(answer.body)
    assert body["error"]["code"] == code, body
    return body
