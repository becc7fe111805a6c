"""The ingest routes served straight from ASGI, in front of the framework.

POST /event, /events and /api/events are the hottest routes: every tracker hit is one.
Served here they skip routing over every route, request objects, exception middleware
and response classes, which together cost more than validating a one-event body. The
contract is the one api.md gives and router.py documents in the OpenAPI schema: the same
bodies, the same 202 answers, the same error shape (request id from RequestIdMiddleware,
which stays outside this layer).
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.types import ASGIApp, Receive, Scope, Send

from tapioca.api.errors import error_content
from tapioca.errors import TapiocaError, too_large
from tapioca.ingest.body import decompress
from tapioca.ingest.service import Client, IngestService
from tapioca.logging import get_logger

log = get_logger(__name__)

_BATCH_PATHS = frozenset({"/events", "/api/events"})
_ENCODER = msgspec.json.Encoder()
_JSON = (b"content-type", b"application/json")


class IngestRoutes:
    """ASGI middleware: answers the ingest routes, hands every other request on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or (path != "/event" and path not in _BATCH_PATHS)
        ):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        declared = encoding = agent = None
        for name, value in scope["headers"]:  # one pass over the headers
            if name == b"content-length":
                declared = value
            elif name == b"content-encoding":
                encoding = value.decode("latin-1")
            elif name == b"user-agent":
                agent = value.decode("latin-1")
        address = scope.get("client")
        client = Client(ip=address[0] if address else "", user_agent=agent)
        try:
            limit: int = state.settings.max_body_bytes
            body = decompress(await _read_body(receive, declared, limit), encoding, limit)
            ingest: IngestService = state.ingest
            if path == "/event":
                event_id = await ingest.accept_one(body, client)
                content: dict[str, Any] = {"status": "accepted", "event_id": event_id}
            else:
                ids = await ingest.accept_batch(body, client)
                content = {"status": "accepted", "accepted": len(ids), "event_ids": ids}
            await _answer(send, 202, content)
        except _ClientGone:
            return  # nothing to answer, nothing accepted
        except TapiocaError as exc:
            await _answer(send, exc.status, _error(scope, exc), exc.headers)
        except Exception as exc:
            log.error("request_failed", path=path, error=type(exc).__name__, exc_info=exc)
            failed = TapiocaError(500, "internal_error", "An internal error occurred.")
            await _answer(send, 500, _error(scope, failed))


class _ClientGone(Exception):
    """The client disconnected before its body was complete."""


def _error(scope: Scope, exc: TapiocaError) -> dict[str, Any]:
    return error_content(scope["state"]["request_id"], exc.code, exc.message, exc.details)


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
    send: Send, status: int, content: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    body = _ENCODER.encode(content)
    raw = [_JSON, (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
