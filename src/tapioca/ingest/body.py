"""Request bodies: size limits, gzip, and the three batch shapes (array, object, NDJSON)."""

from __future__ import annotations

import asyncio
import re
import zlib
from typing import Any

from tapioca.errors import ErrorDetail, TapiocaError, too_large, validation_error
from tapioca.ingest.event import NOT_JSON, json_problem, read_json

_ENVELOPE = re.compile(rb'\{\s*"events"')


def is_envelope(text: bytes) -> bool:
    """Whether a body (stripped) starts as ``{"events": ...}``: one JSON text, never NDJSON
    lines of events (both ingest paths frame batches by this)."""
    return _ENVELOPE.match(text) is not None


# A gzip body may hold several members (RFC 1952): files joined with `cat`, or a client
# that compresses each part of a batch on its own. A member can be as small as 20 bytes
# (8 for a zlib stream), so a body of empty members costs a fresh inflater every few
# bytes: more members than this are refused (413).
MAX_GZIP_MEMBERS = 10_000
# Compressed bodies larger than this are decompressed in a thread, off the event loop: a
# smaller one inflates to at most about 4 MiB (deflate's ratio is at most 1032:1).
OFF_LOOP_BYTES = 4 * 1024
_FIRST_FEED = 512  # compressed bytes given to zlib first for each member, doubling
_MAX_FEED = 64 * 1024


def _wbits(encoding: str | None) -> int | None:
    """zlib's window bits for a ``Content-Encoding``; None when there is nothing to undo."""
    name = (encoding or "").strip().lower()
    if name in ("identity", ""):
        return None
    if name not in ("gzip", "x-gzip", "deflate"):
        raise TapiocaError(
            415,
            "unsupported_encoding",
            f"Content-Encoding '{encoding}' is not supported; use gzip.",
            [ErrorDetail("Content-Encoding", "expected gzip")],
        )
    return 47 if "gzip" in name else 15  # 47 = auto-detect gzip/zlib header


async def decompress_off_loop(body: bytes, encoding: str | None, limit: int) -> bytes:
    """``decompress``, in a thread when the body is larger than ``OFF_LOOP_BYTES``."""
    if len(body) > OFF_LOOP_BYTES and _wbits(encoding) is not None:
        return await asyncio.to_thread(decompress, body, encoding, limit)
    return decompress(body, encoding, limit)


def decompress(
    body: bytes, encoding: str | None, limit: int, max_members: int = MAX_GZIP_MEMBERS
) -> bytes:
    """Undo ``Content-Encoding: gzip`` without ever holding more than ``limit`` bytes, in
    time linear in the size of the body."""
    wbits = _wbits(encoding)
    if wbits is None:
        return body
    out = bytearray()
    view = memoryview(body)
    offset = members = 0
    while True:
        members += 1
        if members > max_members:
            raise too_large(f"The compressed body holds more than {max_members} gzip members.")
        offset = _inflate_member(view, offset, wbits, out, limit)
        if offset == len(body):
            return bytes(out)
        if body[offset] == 0:  # zero padding after the last member, as gzip allows
            if body.count(0, offset) != len(body) - offset:
                raise _corrupt()
            return bytes(out)


def _inflate_member(view: memoryview, offset: int, wbits: int, out: bytearray, limit: int) -> int:
    """Inflate the member at ``offset`` onto ``out``; returns the offset after it.

    zlib copies what follows the end of a member (``unused_data``): the input is handed
    to it in slices that start small and double, so that this copy stays within twice
    the member's own size instead of being the rest of the body each time."""
    inflater = zlib.decompressobj(wbits)
    feed = _FIRST_FEED
    while not inflater.eof:
        if offset >= len(view):
            raise _corrupt("the compressed body is truncated")
        chunk = view[offset : offset + feed]
        try:
            out += inflater.decompress(chunk, limit + 1 - len(out))
        except zlib.error as exc:
            raise _corrupt() from exc
        if len(out) > limit or inflater.unconsumed_tail:
            raise too_large(f"The decompressed body is larger than {limit} bytes.")
        offset += len(chunk) - len(inflater.unused_data)
        feed = min(feed * 2, _MAX_FEED)
    return offset


def _corrupt(reason: str = "the compressed body is corrupt") -> TapiocaError:
    return validation_error([ErrorDetail("body", reason)], "The body cannot be decompressed.")


def _json_error(where: str, exc: BaseException, line: int | None = None) -> ErrorDetail:
    at = "" if line is None else f" (line {line})"
    return ErrorDetail(where, f"malformed JSON{at}: {json_problem(exc)}")


def _not_json(details: list[ErrorDetail]) -> TapiocaError:
    return validation_error(details, "The body is not valid JSON.")


def parse_one(body: bytes) -> Any:
    if not body.strip():
        raise validation_error([ErrorDetail("body", "the body is empty")], "The body is empty.")
    try:
        return read_json(body)
    except NOT_JSON as exc:
        raise _not_json([_json_error("body", exc)]) from exc


def parse_batch(body: bytes) -> list[Any]:
    """A JSON array, ``{"events": [...]}``, a single object, or NDJSON lines (a body that
    is not one JSON text, has several lines, and starts as neither of the first two)."""
    stripped = body.strip()
    if not stripped:
        raise validation_error([ErrorDetail("body", "the body is empty")], "The body is empty.")
    try:
        doc = read_json(stripped)
    except NOT_JSON as exc:
        if b"\n" not in stripped or stripped[:1] == b"[" or is_envelope(stripped):
            raise _not_json([_json_error("body", exc)]) from exc
        return _parse_ndjson(stripped)
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict) and set(doc) == {"events"}:
        events = doc["events"]
        if not isinstance(events, list):
            raise validation_error([ErrorDetail("events", "must be an array of events")])
        return events
    if isinstance(doc, dict):
        return [doc]
    raise validation_error(
        [ErrorDetail("body", 'expected an array of events, {"events": [...]}, or NDJSON')]
    )


def _parse_ndjson(body: bytes) -> list[Any]:
    """The events of NDJSON lines (blank lines are no events). A line that is not JSON is
    named as every error in a batch is: by the index of its event (docs/api.md)."""
    events: list[Any] = []
    details: list[ErrorDetail] = []
    for number, line in enumerate(body.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            events.append(read_json(line))
        except NOT_JSON as exc:
            details.append(_json_error(str(len(events)), exc, number))
            events.append(None)
    if details:
        raise _not_json(details)
    return events
