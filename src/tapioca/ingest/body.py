"""Request bodies: size limits, gzip, and the three batch shapes (array, object, NDJSON)."""

from __future__ import annotations

import zlib
from typing import Any

import orjson

from tapioca.errors import ErrorDetail, TapiocaError, too_large, validation_error


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


def _json_error(where: str, exc: Exception) -> TapiocaError:
    return validation_error(
        [ErrorDetail(where, f"malformed JSON: {exc}")], "The body is not valid JSON."
    )


def parse_one(body: bytes) -> Any:
    if not body.strip():
        raise validation_error([ErrorDetail("body", "the body is empty")], "The body is empty.")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _json_error("body", exc) from exc


def parse_batch(body: bytes) -> list[Any]:
    """A JSON array, ``{"events": [...]}``, a single object, or NDJSON lines."""
    stripped = body.strip()
    if not stripped:
        raise validation_error([ErrorDetail("body", "the body is empty")], "The body is empty.")
    try:
        doc = orjson.loads(stripped)
    except orjson.JSONDecodeError as exc:
        if b"\n" not in stripped:
            raise _json_error("body", exc) from exc
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
    events = []
    for number, line in enumerate(body.split(b"\n")):
        if not line.strip():
            continue
        try:
            events.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise _json_error(f"line {number + 1}", exc) from exc
    return events
