"""Queue records → EventRow (worker/transform.py), round-tripped through encode_events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from tapioca.ingest.normalize import RequestContext
from tapioca.ingest.protocols.native import encode_events
from tapioca.kit.ids import visitor_id
from tapioca.model.event import COLUMNS as EVENT_COLUMNS
from tapioca.queue.record import as_json, decode_one, pack
from tapioca.storage.rows import EventRow
from tapioca.worker.transform import PoisonRecord, decode_payload, to_row

RECEIVED = datetime(2025, 11, 14, 12, 0, 0, 123456, tzinfo=UTC)
SALT = b"\x01" * 32
IP = "198.51.100.23"
UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def make_ctx() -> RequestContext:
    return RequestContext(
        received_at=RECEIVED,
        ip=IP,
        user_agent=UA,
        salt=SALT,
        max_future=timedelta(minutes=5),
        max_event_bytes=64 * 1024,
    )


def raw_event(**fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"site_id": "shop", "event_type": "page_view"}
    event.update(fields)
    return event


def payloads(*events: dict[str, Any]) -> list[bytes]:
    return [payload for _, payload in encode_events(list(events), make_ctx(), indexed=True)]


def record_of(**fields: Any) -> dict[str, Any]:
    [payload] = payloads(raw_event(**fields))
    result: dict[str, Any] = orjson.loads(as_json(decode_one(payload)))
    return result


# --- to_row --------------------------------------------------------------------------


def test_full_record_maps_to_an_exact_row() -> None:
    record = record_of(
        event_id="evt-9",
        event_type="Order Completed",
        timestamp="2025-11-14T12:58:30.250001+01:00",
        user_id=42,
        anonymous_id="anon-7",
        session_id="sess-1",
        url="https://shop.example/checkout/done?o=1",
        referrer="https://www.google.com/",
        title="Thank you",
        utm_source="google",
        utm_medium="cpc",
        utm_campaign="winter",
        utm_term="boba",
        utm_content="ad-1",
        screen_width=390,
        device="mobile",
        channel="Paid Search",
        page_type="checkout",
        properties={"coupon": "WINTER", "n": 1.5, "tags": ["a", "b"]},
        revenue="19.90",
        currency="eur",
        transaction_id="T-1",
        items=[
            {"sku": "TEA-1", "name": "Tea", "category": "drinks", "price": "4.50", "quantity": 2},
            {"sku": 77, "price": 10.9},
        ],
    )
    row = to_row(record)
    assert row == EventRow(
        site_id="shop",
        event_id="evt-9",
        event_type="purchase",
        ts=micros(datetime(2025, 11, 14, 11, 58, 30, 250001, tzinfo=UTC)),
        received_at=micros(RECEIVED),
        visitor_id="42",
        user_id="42",
        anonymous_id="anon-7",
        session_id="sess-1",
        url="https://shop.example/checkout/done?o=1",
        path="/checkout/done",
        referrer="https://www.google.com/",
        title="Thank you",
        utm_source="google",
        utm_medium="cpc",
        utm_campaign="winter",
        utm_term="boba",
        utm_content="ad-1",
        user_agent=UA,
        screen_width=390,
        device="mobile",
        browser="Mobile Safari UI/WKWebView",  # enriched from the User-Agent
        os="iOS",
        channel="Paid Search",
        source="Google",  # utm_source, by its known name (utm_source keeps "google")
        page_type="checkout",
        revenue=Decimal("19.90"),
        currency="EUR",
        transaction_id="T-1",
        items=row.items,  # JSON text, checked below
        properties=row.properties,
        is_bot=False,
    )
    # times are exact microseconds since 1970 UTC (both stores' writers take them)
    assert isinstance(row.ts, int)
    assert isinstance(row.received_at, int)
    # revenue is an exact Decimal
    assert isinstance(row.revenue, Decimal)
    assert row.revenue == Decimal("19.90")
    # items / properties are JSON text
    assert isinstance(row.items, str)
    assert isinstance(row.properties, str)
    items = orjson.loads(row.items)
    assert [Decimal(item.pop("price")) for item in items] == [Decimal("4.50"), Decimal("10.9")]
    assert items == [
        {"sku": "TEA-1", "name": "Tea", "category": "drinks", "quantity": 2},
        {"sku": "77", "name": None, "category": None, "quantity": 1},
    ]
    assert orjson.loads(row.properties) == {"coupon": "WINTER", "n": 1.5, "tags": ["a", "b"]}


def test_minimal_record_maps_to_a_row_with_nulls() -> None:
    row = to_row(record_of())
    assert row.ts == micros(RECEIVED)
    assert row.received_at == micros(RECEIVED)
    assert row.event_type == "page_view"
    assert row.visitor_id == visitor_id(SALT, "shop", IP, UA)
    assert row.user_agent == UA
    for column in (
        "user_id",
        "anonymous_id",
        "session_id",
        "url",
        "path",
        "revenue",
        "currency",
        "transaction_id",
        "items",
        "properties",
        "source",
        "screen_width",
    ):
        assert getattr(row, column) is None, column
    # enriched from the request's User-Agent; no referrer, no UTM: a direct visit
    assert (row.browser, row.os, row.device) == ("Mobile Safari UI/WKWebView", "iOS", "mobile")
    assert (row.channel, row.page_type) == ("Direct", None)  # no path: no page type
    assert row.is_bot is False
    assert len(row.event_id) == 32


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2025-11-14T11:00:00Z", datetime(2025, 11, 14, 11, tzinfo=UTC)),
        ("2025-11-14T06:00:00-05:00", datetime(2025, 11, 14, 11, tzinfo=UTC)),
        (1_763_118_000_123, datetime(2025, 11, 14, 11, 0, 0, 123000, tzinfo=UTC)),
        (1_763_118_000, datetime(2025, 11, 14, 11, tzinfo=UTC)),
        (1_763_118_000_123_456, datetime(2025, 11, 14, 11, 0, 0, 123456, tzinfo=UTC)),
        ("2000-01-01T00:00:00.000001", datetime(2000, 1, 1, 0, 0, 0, 1, tzinfo=UTC)),
        ("1970-01-01T00:00:00Z", datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
def test_ts_round_trips_exactly(timestamp: Any, expected: datetime) -> None:
    row = to_row(record_of(timestamp=timestamp))
    assert row.ts == micros(expected)


@pytest.mark.parametrize(
    ("revenue", "expected"),
    [("0.10", "0.10"), (19.9, "19.9"), (100, "100"), ("1234567.89", "1234567.89")],
)
def test_revenue_round_trips_as_decimal(revenue: Any, expected: str) -> None:
    row = to_row(record_of(value=revenue))
    assert isinstance(row.revenue, Decimal)
    assert row.revenue == Decimal(expected)


def test_properties_json_alias_round_trips_as_json_text() -> None:
    row = to_row(record_of(properties_json='{"a": {"b": [1, null, "x"]}}'))
    assert row.properties is not None
    assert orjson.loads(row.properties) == {"a": {"b": [1, None, "x"]}}


def test_unicode_survives() -> None:
    row = to_row(record_of(title="Café ☕ 茶", properties={"emoji": "🧋"}))
    assert row.title == "Café ☕ 茶"
    assert row.properties is not None
    assert orjson.loads(row.properties) == {"emoji": "🧋"}


def test_to_row_fills_every_column() -> None:
    row = to_row(record_of())
    assert row._fields == EVENT_COLUMNS
    assert len(row) == len(EVENT_COLUMNS)


# --- decode_payload ------------------------------------------------------------------


def test_decode_payload_with_several_records() -> None:
    events = [
        raw_event(event_id="a", path="/"),
        raw_event(event_id="b", event_type="click", user_id=5),
        raw_event(event_id="c", event_type="purchase", revenue="3.30"),
    ]
    rows = decode_payload(pack(payloads(*events)))
    assert [row.event_id for row in rows] == ["a", "b", "c"]
    assert [row.event_type for row in rows] == ["page_view", "click", "purchase"]
    assert rows[0].path == "/"
    assert rows[1].user_id == "5"
    assert rows[2].revenue == Decimal("3.30")
    assert all(isinstance(row, EventRow) for row in rows)


def test_decode_payload_single_record() -> None:
    [payload] = payloads(raw_event(event_id="x"))
    assert [row.event_id for row in decode_payload(pack([payload]))] == ["x"]


def json_line(payload: bytes) -> bytes:
    return as_json(decode_one(payload))


def test_decode_payload_reads_json_lines_and_skips_empty_ones() -> None:
    """Entries queued as NDJSON (the earlier format) are still read."""
    one, two = payloads(raw_event(event_id="1"), raw_event(event_id="2", props={"a": [1]}))
    rows = decode_payload(b"\n" + json_line(one) + b"\n\n\n" + json_line(two) + b"\n\n")
    assert [row.event_id for row in rows] == ["1", "2"]
    assert rows == decode_payload(pack([one, two]))


def test_decode_payload_empty() -> None:
    assert decode_payload(b"") == []


# --- poison --------------------------------------------------------------------------


def good_record() -> dict[str, Any]:
    return record_of(event_id="good")


@pytest.mark.parametrize(
    "payload",
    [
        b"garbage",
        b"{not json}",
        b"\xff\xfe\x00",
        b"[1, 2, 3]",
        b'"a string"',
        b"42",
        b"null",
        b"{}",
        b'{"site_id": "shop"}',
    ],
)
def test_garbage_is_a_poison_record(payload: bytes) -> None:
    with pytest.raises(PoisonRecord):
        decode_payload(payload)


def test_one_bad_line_poisons_the_whole_payload() -> None:
    good = orjson.dumps(good_record())
    with pytest.raises(PoisonRecord):
        decode_payload(good + b"\n" + b"{broken" + b"\n" + good)
    packed = payloads(raw_event(event_id="good"))[0]
    with pytest.raises(PoisonRecord):
        decode_payload(pack([packed, b"\xa3abc", packed]))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ts", "2025-11-14T12:00:00Z"),
        ("ts", 1.5),
        ("ts", True),
        ("ts", None),
        ("ts", 2**62),
        ("ts", -(2**62)),
        ("received_at", "now"),
        ("revenue", "abc"),
        ("revenue", "NaN-ish"),
        ("revenue", {"amount": 1}),
    ],
)
def test_bad_values_are_poison(key: str, value: Any) -> None:
    record = good_record()
    record[key] = value
    with pytest.raises(PoisonRecord):
        to_row(record)
    with pytest.raises(PoisonRecord):
        decode_payload(orjson.dumps(record))


@pytest.mark.parametrize("revenue", [[1], [1, 2, 3], []])
def test_revenue_as_a_list_is_poison(revenue: list[Any]) -> None:
    record = good_record()
    record["revenue"] = revenue
    with pytest.raises(PoisonRecord):
        decode_payload(orjson.dumps(record))


@pytest.mark.parametrize(
    "key", ["site_id", "event_id", "event_type", "ts", "received_at", "visitor_id"]
)
def test_missing_required_key_is_poison(key: str) -> None:
    record = good_record()
    del record[key]
    with pytest.raises(PoisonRecord):
        to_row(record)


def test_poison_record_is_a_value_error() -> None:
    assert issubclass(PoisonRecord, ValueError)


def test_times_before_1970_down_to_year_one_are_rows() -> None:
    for iso in ("1969-12-31T23:59:59.500000+00:00", "0001-01-01T00:00:00+00:00"):
        row = to_row(record_of(timestamp=iso))
        assert isinstance(row.ts, int)  # the worker's rows carry microseconds
        assert (EPOCH + timedelta(microseconds=row.ts)).isoformat() == iso
