"""End to end, the HTTP connection of `tapioca serve` over bare sockets: deadlines for a
request's head and body and for idle connections, the bound on a head, the connection
cap, broken framing answered in the error shape, and a gzip body of many members."""

from __future__ import annotations

import gzip
import time

import httpx
import orjson
import pytest

from support.answers import metric
from support.procs import Launcher, Server
from support.raw_http import RawConnection, assert_error_answer

pytestmark = pytest.mark.e2e

HEADER_S, BODY_S, KEEP_ALIVE_S = 1.0, 1.5, 2.5  # apart, to tell which one acted
SLACK_S = 2.0  # how late a deadline may act on a shared machine
CAP = 3
MAX_BODY = 10 * 1024 * 1024  # TAPIOCA_MAX_BODY_BYTES' default
GZIP_MEMBERS = 10_000  # at most, in one body (docs/api.md)


@pytest.fixture(scope="module")
def strict(module_launcher: Launcher) -> Server:
    """`tapioca serve` whose deadlines are a second or so."""
    return module_launcher.serve(
        env={
            "TAPIOCA_HTTP_HEADER_TIMEOUT_S": str(HEADER_S),
            "TAPIOCA_HTTP_BODY_TIMEOUT_S": str(BODY_S),
            "TAPIOCA_HTTP_KEEP_ALIVE_TIMEOUT_S": str(KEEP_ALIVE_S),
        }
    )


@pytest.fixture(scope="module")
def capped(module_launcher: Launcher) -> Server:
    """`tapioca serve` that serves three connections at once."""
    return module_launcher.serve(env={"TAPIOCA_HTTP_MAX_CONNECTIONS": str(CAP)})


def assert_deadline(seconds: float, deadline: float) -> None:
    """Acted on at the deadline: not before it, and not much after it."""
    assert deadline - 0.2 <= seconds <= deadline + SLACK_S, f"{seconds:.2f} s for {deadline} s"


def post_head(length: int, encoding: str | None = None) -> bytes:
    extra = f"Content-Encoding: {encoding}\r\n" if encoding else ""
    return (
        "POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"{extra}Content-Length: {length}\r\n\r\n"
    ).encode()


# --- deadlines ---------------------------------------------------------------------------


def test_a_connection_that_sends_nothing_is_closed_at_the_header_deadline(
    strict: Server,
) -> None:
    with RawConnection(strict.port) as conn:
        assert_deadline(conn.seconds_until_closed(HEADER_S + SLACK_S + 1), HEADER_S)


def test_half_a_request_line_gets_408_at_the_header_deadline(strict: Server) -> None:
    with RawConnection(strict.port) as conn:
        started = time.monotonic()
        conn.send(b"GET /hea")
        answer = conn.answer()
        assert_deadline(time.monotonic() - started, HEADER_S)
        body = assert_error_answer(answer, 408, "request_timeout")
        assert body["error"]["message"] == "The request line and headers did not arrive within 1 s."
        assert answer.headers["connection"] == "close"
        assert conn.seconds_until_closed(1.0) < 1.0


def test_half_a_second_request_gets_408_at_the_header_deadline(strict: Server) -> None:
    """On a kept-alive connection the head deadline runs from the request's first byte."""
    with RawConnection(strict.port) as conn:
        first = conn.get("/health")
        assert first.status == 200
        started = time.monotonic()
        conn.send(b"GET /health HTTP/1.1\r\nHost: 127.0")
        answer = conn.answer()
        assert_deadline(time.monotonic() - started, HEADER_S)
        assert_error_answer(answer, 408, "request_timeout")
        assert answer.headers["x-request-id"] != first.headers["x-request-id"]


def test_headers_sent_a_byte_at_a_time_get_408_at_the_header_deadline(strict: Server) -> None:
    """A deadline, not a wait between bytes: a byte every 0.2 s does not keep it open."""
    head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
    with RawConnection(strict.port) as conn:
        assert_deadline(conn.trickle(head, every=0.2), HEADER_S)
        assert_error_answer(conn.answer(), 408, "request_timeout")


def test_a_body_sent_a_byte_at_a_time_gets_408_at_the_body_deadline(strict: Server) -> None:
    with RawConnection(strict.port) as conn:
        conn.send(post_head(200))
        assert_deadline(conn.trickle(b"[" + b" " * 199, every=0.2), BODY_S)
        answer = conn.answer()
        body = assert_error_answer(answer, 408, "request_timeout")
        assert body["error"]["message"] == "The request body did not arrive within 1.5 s."
        assert answer.headers["connection"] == "close"
        assert conn.seconds_until_closed(1.0) < 1.0


def test_an_idle_kept_alive_connection_is_closed_at_the_keep_alive_deadline(
    strict: Server,
) -> None:
    with RawConnection(strict.port) as conn:
        assert conn.get("/health").status == 200
        assert conn.get("/health").status == 200  # kept alive
        assert_deadline(conn.seconds_until_closed(KEEP_ALIVE_S + SLACK_S + 1), KEEP_ALIVE_S)


def test_a_connection_answered_before_its_body_arrived_is_closed_when_idle(
    strict: Server,
) -> None:
    """413 as soon as the head declares too large a body; the body still comes, and then
    the connection is idle like any other."""
    with RawConnection(strict.port) as conn:
        conn.send(post_head(MAX_BODY + 1))
        assert_error_answer(conn.answer(), 413, "payload_too_large")
        conn.send(b" " * (MAX_BODY + 1))
        assert_deadline(conn.seconds_until_closed(KEEP_ALIVE_S + SLACK_S + 1), KEEP_ALIVE_S)


def test_the_rest_of_a_body_answered_early_is_cut_at_the_body_deadline(strict: Server) -> None:
    with RawConnection(strict.port) as conn:
        conn.send(post_head(MAX_BODY + 1))
        assert_error_answer(conn.answer(), 413, "payload_too_large")
        assert_deadline(conn.trickle(b" " * 100, every=0.2), BODY_S)
        assert conn.seconds_until_closed(1.0) < 1.0  # closed, with no second answer


# --- the head and its framing ------------------------------------------------------------


def test_a_head_larger_than_64_kib_gets_431(strict: Server) -> None:
    head = b"GET /health?q=" + b"a" * 300_000
    with RawConnection(strict.port) as conn:
        conn.trickle(head, piece=8192, every=0.01)
        body = assert_error_answer(conn.answer(), 431, "headers_too_large")
        assert body["error"]["message"] == (
            "The request line and headers are larger than 65536 bytes."
        )


CHUNKED = b"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    ("request_bytes", "field", "reason"),
    [
        pytest.param(
            post_head(0).replace(b"Content-Length: 0", b"Content-Length: 12x"),
            "Content-Length",
            "Invalid character in Content-Length",
            id="content-length-not-a-number",
        ),
        pytest.param(
            post_head(2).replace(b"\r\n\r\n", b"\r\nContent-Length: 3\r\n\r\n"),
            "Content-Length",
            "Duplicate Content-Length",
            id="two-content-lengths",
        ),
        pytest.param(
            CHUNKED + b"zz\r\n[]\r\n0\r\n\r\n",
            "Transfer-Encoding",
            "Invalid character in chunk size",
            id="chunk-size-not-hex",
        ),
        pytest.param(
            CHUNKED + b"1\r\n[\r\nzz\r\n",
            "Transfer-Encoding",
            "Invalid character in chunk size",
            id="bad-chunk-after-a-good-one",
        ),
        pytest.param(
            b"GARBAGE\r\n\r\n", "request line", "Invalid method encountered", id="no-method"
        ),
        pytest.param(
            b"GET /health HTTP/7.0\r\nHost: 127.0.0.1\r\n\r\n",
            "request line",
            "Invalid HTTP version",
            id="bad-version",
        ),
        pytest.param(
            b"GET http://[bad HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            "request line",
            "Invalid URL",
            id="target-not-a-url",
        ),
        pytest.param(
            b"GET /health HTTP/1.1\r\nBad Name: x\r\n\r\n",
            "headers",
            "Invalid header token",
            id="space-in-a-header-name",
        ),
    ],
)
def test_broken_framing_gets_400_in_the_error_shape(
    strict: Server, request_bytes: bytes, field: str, reason: str
) -> None:
    with RawConnection(strict.port) as conn:
        conn.send(request_bytes)
        answer = conn.answer()
        body = assert_error_answer(answer, 400, "bad_request")
        assert body["error"]["message"] == f"The request is not valid HTTP/1.1: {reason}."
        assert body["error"]["details"] == [{"field": field, "message": reason}]
        assert answer.headers["connection"] == "close"
        assert conn.seconds_until_closed(1.0) < 1.0


# --- the connection cap ------------------------------------------------------------------


def test_connections_beyond_the_cap_get_503_and_those_served_keep_answering(
    capped: Server,
) -> None:
    served = [RawConnection(capped.port) for _ in range(CAP)]
    waiting = RawConnection(capped.port)  # beyond the cap and silent: not counted
    try:
        assert [conn.get("/health").status for conn in served] == [200] * CAP
        with RawConnection(capped.port) as extra:
            answer = extra.get("/health")
            assert_error_answer(answer, 503, "unavailable")
            assert answer.headers["retry-after"] == "2"
            assert answer.headers["connection"] == "close"
            assert extra.seconds_until_closed(1.0) < 1.0
        # the connections served go on, /health included
        assert [conn.get("/health").status for conn in served] == [200] * CAP
        # a place given up is taken by the next connection
        assert served[0].get("/health", close=True).status == 200
        assert served[0].seconds_until_closed(1.0) < 1.0
        with RawConnection(capped.port) as successor:
            assert successor.get("/health").status == 200
            text = successor.get("/metrics").body.decode()
        assert metric(text, "tapioca_http_refused_total", reason="over_capacity") == 1
    finally:
        waiting.close()
        for conn in served:
            conn.close()


# --- gzip --------------------------------------------------------------------------------


def test_a_body_of_ten_mib_of_empty_gzip_members_leaves_the_server_answering(
    embedded: Server,
) -> None:
    """Each member used to cost a copy of the rest of the body: this body held the event
    loop, /health included, for minutes."""
    empty = gzip.compress(b"")
    body = empty * (MAX_BODY // len(empty))
    with RawConnection(embedded.port, timeout=60) as conn:
        conn.send(post_head(len(body), "gzip") + body)
        started = time.monotonic()
        health = httpx.get(f"{embedded.base_url}/health", timeout=10)
        assert health.status_code == 200
        assert time.monotonic() - started < SLACK_S
        answer = conn.answer()
    error = assert_error_answer(answer, 413, "payload_too_large")
    assert error["error"]["message"] == (
        f"The compressed body holds more than {GZIP_MEMBERS} gzip members."
    )


def test_a_body_of_as_many_gzip_members_as_allowed_is_accepted(embedded: Server) -> None:
    events = [
        {"site_id": "gzip-members", "event_type": "page_view", "user_id": n} for n in range(3)
    ]
    body = gzip.compress(b"") * (GZIP_MEMBERS - 1) + gzip.compress(orjson.dumps(events))
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    response = embedded.client.post("/events", content=body, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 3
