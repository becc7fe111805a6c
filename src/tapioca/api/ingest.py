"""The ingest routes, served from ASGI in front of the framework.

Every route of every ingest protocol (ingest/protocols) is a POST that trackers send
with each hit. Served here they skip the framework's middleware, routing over every
route, request objects and response classes, which together cost more than validating a
one-event body. The contract is the one api.md gives and /openapi.json documents (api/openapi.py):
the same error shape as every other route (request id from RequestIdMiddleware, which
stays outside this layer); OPTIONS answers browsers' preflights and a browser may read
the answers when some site accepts its origin (api/cors.py); another method is a 405.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import msgspec
from starlette.types import Receive, Scope, Send

from tapioca.api.cors import ALLOW, answer_headers, origin_refused, preflight_headers
from tapioca.errors import TapiocaError, too_large
from tapioca.ingest.body import decompress_off_loop
from tapioca.ingest.service import IngestRequest, IngestService
from tapioca.logging import get_logger

log = get_logger(__name__)

_ENCODER = msgspec.json.Encoder()
_JSON = (b"content-type", b"application/json")


class IngestRoutes:
    """The ASGI application of the ingest routes (api/app.py, TapiocaAPI, hands it the
    HTTP requests of their paths)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        cors: dict[str, str] = {}  # none without an Origin
        try:
            declared, encoding, agent, origin, referer = _read_headers(scope["headers"])
            state = scope["app"].state
            ingest: IngestService = state.ingest
            accepted = False  # some site accepts the browser's origin
            if origin is not None:
                accepted = await ingest.allows_origin(origin)
                cors = answer_headers(origin, accepted)
            headers = RawHeaders(scope["headers"])
            if scope["method"] != "POST":
                await _other_method(send, scope["method"], path, headers, accepted)
                return
            address = scope.get("client")
            # the page a browser sends from: its Origin, else the Referer's (sendBeacon and
            # image requests of some browsers carry only the latter)
            page = origin if origin is not None else referer
            request = IngestRequest(path, headers, address[0] if address else "", agent, page)
            limit: int = state.settings.max_body_bytes
            raw = await _read_body(receive, declared, limit)
            body = await decompress_off_loop(raw, encoding, limit)
            await _answer(send, 202, await ingest.accept(request, body), cors)
        except _ClientGone:
            return  # nothing to answer, nothing accepted
        except TapiocaError as exc:
            error = exc.body(scope["state"]["request_id"])
            await _answer(send, exc.status, error, {**cors, **exc.headers})
        except Exception as exc:
            log.error("request_failed", path=path, error=type(exc).__name__, exc_info=exc)
            failed = TapiocaError(500, "internal_error", "An internal error occurred.")
            await _answer(send, 500, failed.body(scope["state"]["request_id"]), cors)


def _read_headers(
    raw: Iterable[tuple[bytes, bytes]],
) -> tuple[bytes | None, str | None, str | None, str | None, str | None]:
    """Content-Length, Content-Encoding, User-Agent, Origin and Referer, in one pass."""
    declared = encoding = agent = origin = referer = None
    for name, value in raw:
        if name == b"content-length":
            declared = value
        elif name == b"content-encoding":
            encoding = value.decode("latin-1")
        elif name == b"user-agent":
            agent = value.decode("latin-1")
        elif name == b"origin":
            origin = value.decode("latin-1")
        elif name == b"referer":
            referer = value.decode("latin-1")
    return declared, encoding, agent, origin, referer


async def _other_method(
    send: Send, method: str, path: str, headers: RawHeaders, accepted: bool
) -> None:
    """OPTIONS: a browser's preflight (``accepted``: some site accepts its origin), else
    the methods of the path; any other method is a 405."""
    if method != "OPTIONS":
        message = f"Method {method} is not allowed on {path}."
        raise TapiocaError(405, "method_not_allowed", message, headers={"Allow": ALLOW})
    origin = headers.get("origin")
    if origin is None or headers.get("access-control-request-method") is None:
        await _answer(send, 204, None, {"Allow": ALLOW})
    elif accepted:
        await _answer(send, 204, None, preflight_headers(origin))
    else:
        raise origin_refused(origin)


class RawHeaders(Mapping[str, str]):
    """A request's headers as ASGI gives them (lower-case names), decoded when asked for:
    most protocols read one or two of them."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        self._raw = list(raw)

    def get(self, name: str, default: Any = None) -> Any:
        key = name.encode("latin-1")
        for found, value in self._raw:
            if found == key:
                return value.decode("latin-1")
        return default

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return str(value)

    def __iter__(self) -> Iterator[str]:
        return (name.decode("latin-1") for name, _ in self._raw)

    def __len__(self) -> int:
        return len(self._raw)


class _ClientGone(Exception):
    """The client disconnected before its body was complete."""


async def _read_body(receive: Receive, declared: bytes | None, limit: int) -> bytes:
    """The raw body, refused before reading it when its declared length is over ``limit``,
    and as soon as it grows past ``limit`` otherwise."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(f"The body is larger than {limit} bytes.")
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(f"The body is larger than {limit} bytes.")
        chunks.append(chunk)
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _answer(
    send: Send, status: int, content: dict[str, Any] | None, headers: dict[str, str] | None = None
) -> None:
    """``content`` as JSON (None: no body)."""
    body = b"" if content is None else _ENCODER.encode(content)
    raw = [] if content is None else [_JSON, (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
