"""The queue record: one accepted event as ingest hands it to the writer.

Ingest encodes each record as a MessagePack array (the fields of `QueueRecord`, in
order). A queue entry, the events of one request, is a MessagePack array of records:
the array's header followed by the records' encodings, so the API joins encodings it
already has and the worker decodes a whole entry in one call. Against the JSON objects
used before (one per line), a record is a third of the size and both ends spend about
half the CPU. Free-form ``properties`` and ``items`` travel as the JSON text they are
stored as.

Entries and records written as JSON (NDJSON lines of objects, properties as objects)
are still read: by workers meeting entries an earlier version queued, by imports and in
tests. Dead letters are written in that JSON form, readable and readable back.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec


class QueueRecord(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    site_id: str
    event_id: str
    event_type: str
    ts: int  # microseconds since the epoch, UTC
    received_at: int
    visitor_id: str
    user_id: str | None
    anonymous_id: str | None
    session_id: str | None
    url: str | None
    path: str | None
    referrer: str | None
    title: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    utm_term: str | None
    utm_content: str | None
    user_agent: str | None
    screen_width: int | None
    device: str | None
    channel: str | None
    page_type: str | None
    properties: str | None  # JSON text
    revenue: str | None  # decimal text
    currency: str | None
    transaction_id: str | None
    items: str | None  # JSON text


NULL = msgspec.Raw(b"null")


class JsonRecord(msgspec.Struct, forbid_unknown_fields=True):
    """The same record as a JSON object (the earlier queue format and dead letters)."""

    site_id: str
    event_id: str
    event_type: str
    ts: int
    received_at: int
    visitor_id: str
    user_id: str | None = None
    anonymous_id: str | None = None
    session_id: str | None = None
    url: str | None = None
    path: str | None = None
    referrer: str | None = None
    title: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    utm_content: str | None = None
    user_agent: str | None = None
    screen_width: int | None = None
    device: str | None = None
    channel: str | None = None
    page_type: str | None = None
    properties: msgspec.Raw = NULL  # kept as the JSON text it arrived in
    revenue: str | None = None
    currency: str | None = None
    transaction_id: str | None = None
    items: msgspec.Raw = NULL


class UnreadableRecord(ValueError):
    """Bytes that are no record of either form."""


_ENCODER = msgspec.msgpack.Encoder()
_ONE = msgspec.msgpack.Decoder(QueueRecord)
_ENTRY = msgspec.msgpack.Decoder(list[QueueRecord])
_JSON_ONE = msgspec.json.Decoder(JsonRecord)
_JSON = msgspec.json.Encoder()
_ERRORS = (msgspec.ValidationError, msgspec.DecodeError)


def encode(record: QueueRecord) -> bytes:
    return _ENCODER.encode(record)


def pack(encoded: Sequence[bytes]) -> bytes:
    """One entry from records already encoded: a MessagePack array 32 header, then them."""
    return b"\xdd" + struct.pack(">I", len(encoded)) + b"".join(encoded)


def _is_packed(data: bytes) -> bool:
    """MessagePack arrays start with 0x90-0x9f, 0xdc or 0xdd; JSON never does."""
    return bool(data) and (0x90 <= data[0] <= 0x9F or data[0] in (0xDC, 0xDD))


def count(payload: bytes) -> int:
    """Events in an entry, read from its header (or its lines), without decoding it."""
    if not payload:
        return 0
    if payload[0] == 0xDD and len(payload) >= 5:
        return int(struct.unpack(">I", payload[1:5])[0])
    if payload[0] == 0xDC and len(payload) >= 3:
        return int(struct.unpack(">H", payload[1:3])[0])
    if 0x90 <= payload[0] <= 0x9F:
        return payload[0] - 0x90
    return sum(1 for line in payload.split(b"\n") if line)


def _text(raw: msgspec.Raw) -> str | None:
    text = bytes(raw).decode()
    return None if text == "null" else text


def from_json(line: bytes) -> QueueRecord:
    """A record from its JSON object form."""
    try:
        r = _JSON_ONE.decode(line)
    except _ERRORS as exc:
        raise UnreadableRecord(str(exc)) from exc
    fields = msgspec.structs.asdict(r)
    fields["properties"], fields["items"] = _text(r.properties), _text(r.items)
    return QueueRecord(**fields)


def decode_one(data: bytes) -> QueueRecord:
    """One record, in either form."""
    if not _is_packed(data):
        return from_json(data)
    try:
        return _ONE.decode(data)
    except _ERRORS as exc:
        raise UnreadableRecord(str(exc)) from exc


def decode_entry(payload: bytes) -> list[QueueRecord]:
    """The records of an entry: one MessagePack array, or JSON objects one per line."""
    if _is_packed(payload):
        try:
            return _ENTRY.decode(payload)
        except _ERRORS as exc:
            raise UnreadableRecord(str(exc)) from exc
    return [from_json(line) for line in payload.split(b"\n") if line]


def decode_each(records: Iterable[bytes]) -> list[QueueRecord]:
    """Records encoded one by one (the embedded group commit, imports)."""
    return [decode_one(data) for data in records if data]


def as_json(record: QueueRecord) -> bytes:
    """The record's JSON object form (properties and items as JSON, not text)."""
    fields: dict[str, Any] = msgspec.structs.asdict(record)
    for key in ("properties", "items"):
        if fields[key] is not None:
            fields[key] = msgspec.Raw(fields[key].encode())
    return _JSON.encode(fields)


def event_lines(payload: bytes) -> list[bytes]:
    """An entry's records one by one, each as its JSON object (for dead letters)."""
    if _is_packed(payload):
        return [as_json(record) for record in decode_entry(payload)]
    return [line for line in payload.split(b"\n") if line]
