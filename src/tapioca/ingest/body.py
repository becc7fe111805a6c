"""Request bodies: size limits, gzip, and the three batch shapes (array, object, NDJSON)."""

from __future__ import annotations

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


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo ``Content-Encoding: gzip`` without ever holding more than ``limit`` bytes."""
    if not encoding or encoding.strip().lower() in ("identity", ""):
        return body
    if encoding.strip().lower() not in ("gzip", "x-gzip", "deflate"):
        raise TapiocaError(
            415,
            "unsupported_encoding",
            f"Content-Encoding '{encoding}' is not supported; use gzip.",
            [ErrorDetail("Content-Encoding", "expected gzip")],
        )
    wbits = 47 if "gzip" in encoding.lower() else 15  # 47 = auto-detect gzip/zlib header
    out = bytearray()
    rest = body
    while True:  # a gzip body may hold several members (RFC 1952)
        inflater = zlib.decompressobj(wbits)
        try:
            out += inflater.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise _corrupt() from exc
        if len(out) > limit or inflater.unconsumed_tail:
            raise too_large(f"The decompressed body is larger than {limit} bytes.")
        if not inflater.eof:
            raise _corrupt("the compressed body is truncated")
        rest = inflater.unused_data
        if not rest.strip(b"\x00"):
            return bytes(out)


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
