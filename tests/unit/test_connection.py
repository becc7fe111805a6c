"""What the HTTP parser refuses, named for the error shape (api/connection.py; the answers
themselves are held over sockets in tests/e2e/test_http_connections.py)."""

from __future__ import annotations

import httptools
import pytest

from tapioca.api.connection import framing_error
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
