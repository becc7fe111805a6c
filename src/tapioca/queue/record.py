"""The queue record: one accepted event as ingest hands it to the writer.

``QueueRecord`` has the fields of the event's table (model/event.py) that the queue
carries, in the table's order. Ingest encodes each record as a MessagePack array of
them. A queue entry, the events of one request, is a MessagePack array of records:
the array's header followed by the records' encodings, so the API joins encodings it
already has and the worker decodes a whole entry in one call. Against the JSON objects
used before (one per line), a record is a third of the size and both ends spend about
half the CPU. Free-form ``properties`` and ``items`` travel as the JSON text they are
stored as.

The record has a version (``RECORD_VERSION``; each queue entry states the version of its
records): a later version only appends fields. A worker reads the records of earlier
versions (the fields they lack are null) and those of a later version whose new fields
are all null; an entry of a later version with a value in a field it does not know is
left in the queue for a worker that knows it (NewerRecord), never dead-lettered.

Entries and records written as JSON (NDJSON lines of objects, properties as objects)
are still read: by workers meeting entries an earlier version queued, by imports and in
tests. Dead letters are written in that JSON form, readable and readable back.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Annotated, Any

import msgspec

from tapioca.model.event import QUEUED, RECORD_VERSION, EventField, Kind

__all__ = ["RECORD_VERSION"]  # with the names below

_MICROS = msgspec.Meta(ge=-62_135_596_800_000_000, le=253_402_300_799_999_999)  # years 1-9999
_TYPES: dict[Kind, Any] = {
    Kind.TIME: Annotated[int, _MICROS],  # µs since 1970 UTC
    Kind.INT: int,
    Kind.MONEY: Decimal,  # carried as its text
}


def _record_type(field: EventField) -> Any:
    """A field's type in the record: text for ids and JSON, µs for times, money as a
    Decimal (its text in MessagePack and JSON)."""
    kind = _TYPES.get(field.kind, str)
    return kind if field.required else kind | None


def _record_fields() -> list[tuple[str, Any] | tuple[str, Any, Any]]:
    """The record's fields in order; those added after version 1 default to null, so a
    record of an earlier version (a shorter array) still decodes."""
    return [
        (f.name, _record_type(f)) if f.since == 1 else (f.name, _record_type(f) | None, None)
        for f in QUEUED
    ]


def _json_fields() -> list[tuple[str, Any, Any] | tuple[str, Any]]:
    """The same record as a JSON object: JSON fields kept as the JSON text they came in."""
    out: list[tuple[str, Any, Any] | tuple[str, Any]] = []
    for f in QUEUED:
        if f.kind in _JSON_KINDS:
            out.append((f.name, msgspec.Raw, NULL))
        elif f.required:
            out.append((f.name, _record_type(f)))
        else:
            out.append((f.name, _record_type(f), None))
    return out


NULL = msgspec.Raw(b"null")
_JSON_KINDS = (Kind.JSON, Kind.ITEMS)
QueueRecord: Any = msgspec.defstruct(
    "QueueRecord", _record_fields(), array_like=True, forbid_unknown_fields=True
)
JsonRecord: Any = msgspec.defstruct("JsonRecord", _json_fields(), forbid_unknown_fields=True)
Record = Any  # an instance of QueueRecord (a class made from the table: typed loosely)
RECORD_INDEX = {field.name: index for index, field in enumerate(QUEUED)}
_JSON_NAMES = tuple(f.name for f in QUEUED if f.kind in _JSON_KINDS)


class UnreadableRecord(ValueError):
    """Bytes that are no record of either form."""


class NewerRecord(Exception):
    """A record of a later version holding a value in a field this version does not know:
    a worker of that version must write it. The entry stays in the queue, unacknowledged
    and never dead-lettered, until one does."""


_ENCODER = msgspec.msgpack.Encoder()
_ONE = msgspec.msgpack.Decoder(QueueRecord)
_ENTRY = msgspec.msgpack.Decoder(list[QueueRecord])
_JSON_ONE = msgspec.json.Decoder(JsonRecord)
_JSON = msgspec.json.Encoder()
_ERRORS = (msgspec.ValidationError, msgspec.DecodeError)


def encode(record: Record | Sequence[Any]) -> bytes:
    """A record, or its values in order (as ingest makes them), as MessagePack."""
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


def from_json(line: bytes) -> Record:
    """A record from its JSON object form."""
    try:
        r = _JSON_ONE.decode(line)
    except _ERRORS as exc:
        raise UnreadableRecord(str(exc)) from exc
    fields = msgspec.structs.asdict(r)
    for name in _JSON_NAMES:
        fields[name] = _text(fields[name])
    return QueueRecord(**fields)


def decode_one(data: bytes) -> Record:
    """One record, in either form."""
    if not _is_packed(data):
        return from_json(data)
    try:
        return _ONE.decode(data)
    except _ERRORS as exc:
        raise UnreadableRecord(str(exc)) from exc


def decode_entry(payload: bytes, version: int = 1) -> list[Record]:
    """The records of an entry of record ``version``: one MessagePack array, or JSON
    objects one per line. An entry of a later version is read when every field this
    version does not know is null (nothing is lost), else NewerRecord is raised."""
    if version > RECORD_VERSION:
        return _decode_newer(payload)
    if _is_packed(payload):
        try:
            return _ENTRY.decode(payload)
        except _ERRORS as exc:
            raise UnreadableRecord(str(exc)) from exc
    return [from_json(line) for line in payload.split(b"\n") if line]


def _decode_newer(payload: bytes) -> list[Record]:
    try:
        entry = msgspec.msgpack.decode(payload)
    except _ERRORS as exc:
        raise UnreadableRecord(str(exc)) from exc
    if not isinstance(entry, list) or not all(isinstance(r, list) for r in entry):
        raise UnreadableRecord("an entry is an array of records")
    known = len(QUEUED)
    if any(value is not None for values in entry for value in values[known:]):
        raise NewerRecord(f"a field after the {known} of record version {RECORD_VERSION}")
    try:
        return [msgspec.convert(values[:known], QueueRecord) for values in entry]
    except _ERRORS as exc:
        raise UnreadableRecord(str(exc)) from exc


def decode_each(records: Iterable[bytes]) -> list[Record]:
    """Records encoded one by one (the embedded group commit, imports)."""
    return [decode_one(data) for data in records if data]


def as_json(record: Record) -> bytes:
    """The record's JSON object form (properties and items as JSON, not text)."""
    fields: dict[str, Any] = msgspec.structs.asdict(record)
    for key in _JSON_NAMES:
        if fields[key] is not None:
            fields[key] = msgspec.Raw(fields[key].encode())
    return _JSON.encode(fields)


def event_lines(payload: bytes, version: int = 1) -> list[bytes]:
    """An entry's records one by one, each as its JSON object (for dead letters)."""
    if _is_packed(payload):
        return [as_json(record) for record in decode_entry(payload, version)]
    return [line for line in payload.split(b"\n") if line]
