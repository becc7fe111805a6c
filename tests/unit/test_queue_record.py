"""The queue record's two forms (tapioca.queue.record): MessagePack entries, JSON lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import orjson
import pytest

from tapioca.ingest.normalize import RequestContext
from tapioca.ingest.protocols.native import encode_events
from tapioca.queue.record import (
    QueueRecord,
    UnreadableRecord,
    as_json,
    count,
    decode_each,
    decode_entry,
    decode_one,
    event_lines,
    from_json,
    pack,
)

CTX = RequestContext(
    datetime(2025, 11, 14, 12, tzinfo=UTC), "203.0.113.9", "UA/1", b"s" * 32,
    timedelta(minutes=5), 64 * 1024,
)  # fmt: skip


def encoded(count_: int, **fields: object) -> list[bytes]:
    raw = [
        {"site_id": "shop", "event_type": "page_view", "event_id": f"e{i}", **fields}
        for i in range(count_)
    ]
    return [payload for _, payload in encode_events(raw, CTX, indexed=True)]


@pytest.mark.parametrize("size", [0, 1, 15, 16, 65_535, 65_536, 70_000])
def test_an_entry_holds_every_record_and_says_how_many(size: int) -> None:
    one = encoded(1)[0]
    entry = pack([one] * size)
    assert count(entry) == size
    assert len(decode_entry(entry)) == size


@pytest.mark.parametrize(
    ("header", "size"),
    [(bytes([0x90 + 3]), 3), (b"\xdc\x00\x03", 3), (b"\xdd\x00\x00\x00\x03", 3)],
)
def test_every_array_header_is_read(header: bytes, size: int) -> None:
    """Other MessagePack writers may pick the short headers: all three count and decode."""
    one = encoded(1)[0]
    entry = header + one * size
    assert count(entry) == size
    assert [r.event_id for r in decode_entry(entry)] == ["e0"] * size


def test_json_lines_are_counted_and_read() -> None:
    lines = [as_json(decode_one(p)) for p in encoded(3)]
    entry = b"\n".join(lines) + b"\n"
    assert count(entry) == 3
    assert [r.event_id for r in decode_entry(entry)] == ["e0", "e1", "e2"]
    assert count(b"") == 0


def test_the_json_form_carries_properties_and_items_as_json() -> None:
    [payload] = encoded(
        1,
        properties={"coupon": "X", "n": [1, 2.5, None]},
        items=[{"sku": "A", "price": "4.50", "quantity": 2}],
    )
    record = decode_one(payload)
    assert orjson.loads(record.properties or "") == {"coupon": "X", "n": [1, 2.5, None]}
    as_object = orjson.loads(as_json(record))
    assert as_object["properties"] == {"coupon": "X", "n": [1, 2.5, None]}
    assert as_object["items"] == [
        {"sku": "A", "name": None, "category": None, "price": "4.5000", "quantity": 2}
    ]
    assert from_json(as_json(record)) == record  # the JSON form reads back exactly


def test_dead_letter_lines_are_json_objects_of_either_form() -> None:
    packed = encoded(2, path="/a")
    lines = event_lines(pack(packed))
    assert [orjson.loads(line)["event_id"] for line in lines] == ["e0", "e1"]
    assert event_lines(b"\n".join(lines)) == lines


def test_a_packed_record_is_a_third_of_its_json_size() -> None:
    [payload] = encoded(1, url="https://shop.example/p/1?utm_source=x", referrer="https://a.b/")
    assert len(payload) * 2 < len(as_json(decode_one(payload)))


@pytest.mark.parametrize(
    "data",
    [
        b"\xdd\x00\x00\x00\x02\x01",  # says two records, holds an integer
        b"\x93\x01\x02\x03",  # an array of integers
        b"\x91\x92\xa1a\xa1b",  # a record of two fields
        b"{}",
        b"garbage",
    ],
)
def test_anything_else_is_unreadable(data: bytes) -> None:
    with pytest.raises(UnreadableRecord):
        decode_entry(data)
    with pytest.raises(UnreadableRecord):
        decode_each([data])


def test_a_record_has_no_optional_tail() -> None:
    """Every field is written: a record one field short is refused, not filled in."""
    [payload] = encoded(1)
    fields = msgspec.msgpack.decode(payload)
    with pytest.raises(msgspec.ValidationError):
        msgspec.msgpack.decode(msgspec.msgpack.encode(fields[:-1]), type=QueueRecord)
