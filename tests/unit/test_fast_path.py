"""The fast ingest path accepts exactly what EventIn accepts, and yields the same records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.strategies import event_like, good_event
from tapioca.errors import TapiocaError
from tapioca.ingest.body import parse_batch, parse_one
from tapioca.ingest.fast import GiveUp, decode_batch, decode_one
from tapioca.ingest.normalize import RequestContext, encode
from tapioca.ingest.protocols.native import encode_events
from tapioca.queue.record import as_json
from tapioca.queue.record import decode_one as decode_record

CTX = RequestContext(
    datetime(2025, 11, 14, 12, tzinfo=UTC),
    "10.1.2.3",
    "agent/1",
    b"salt",
    timedelta(minutes=5),
    4096,
)


def comparable(encoded: list[tuple[str, bytes]], raw: list[Any]) -> list[dict[str, Any]]:
    records = []
    for (_, payload), sent in zip(encoded, raw, strict=True):
        record = json.loads(as_json(decode_record(payload)))
        if sent.get("event_id") is None:  # generated: random by design
            record.pop("event_id")
        records.append(record)
    return records


def outcome(call: Any) -> Any:
    try:
        return ("ok", call())
    except GiveUp:
        return ("gave up",)
    except TapiocaError as exc:
        return ("error", exc.status, [(d.field, d.message) for d in exc.details])


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(good_event, min_size=1, max_size=4) | st.lists(event_like, max_size=4))
def test_batches_agree(events: list[dict[str, Any]]) -> None:
    body = json.dumps(events).encode()
    try:
        fast_events = decode_batch(body)
    except GiveUp:
        return  # the general path answers: nothing to compare
    fast = outcome(lambda: encode(fast_events, CTX, indexed=True))
    if fast[0] == "gave up":
        return
    slow = outcome(lambda: encode_events(parse_batch(body), CTX, indexed=True))
    if fast[0] == "ok":
        assert slow[0] == "ok", slow
        assert comparable(fast[1], events) == comparable(slow[1], events)
    else:
        assert fast == slow


@settings(max_examples=400, deadline=None)
@given(event=good_event | event_like)
def test_single_events_agree(event: dict[str, Any]) -> None:
    body = json.dumps(event).encode()
    try:
        fast_event = decode_one(body)
    except GiveUp:
        return
    fast = outcome(lambda: encode([fast_event], CTX, indexed=False))
    if fast[0] == "gave up":
        return
    slow = outcome(lambda: encode_events([parse_one(body)], CTX, indexed=False))
    if fast[0] == "ok":
        assert slow[0] == "ok", slow
        assert comparable(fast[1], [event]) == comparable(slow[1], [event])
    else:
        assert fast == slow


def test_the_fast_path_takes_ordinary_traffic() -> None:
    """A test that the comparison above is not vacuous: plain events take the fast path."""
    events = [
        {"site_id": "s", "event_type": "pageview", "path": "/a", "user_id": 7,
         "timestamp": "2025-11-14T10:00:00+01:00", "revenue": "9.99", "props": {"a": 1},
         "items": [{"sku": "X", "price": 2.5, "quantity": 2}]},
        {"site_id": "s", "name": "click", "ts": 1731578400000},
    ]  # fmt: skip
    body = json.dumps(events).encode()
    fast = encode(decode_batch(body), CTX, indexed=True)
    slow = encode_events(parse_batch(body), CTX, indexed=True)
    assert comparable(fast, events) == comparable(slow, events)
    ndjson = b"\n".join(json.dumps(e).encode() for e in events)
    assert comparable(encode(decode_batch(ndjson), CTX, indexed=True), events) == (
        comparable(slow, events)
    )


def test_both_paths_read_epoch_numbers_by_magnitude_and_keep_the_order() -> None:
    """Seconds, milliseconds and microseconds, whole or with a fraction, and events without
    a time: the fast path takes them and gives the general path's records."""
    epochs = [1_731_578_400, 1_731_578_400.5, 1_731_578_400_123, 1_731_578_400_123.5,
              1_731_578_400_123_456, 1_731_578_400_123_456.0]  # fmt: skip
    events = [{"site_id": "s", "event_type": "e", "ts": epoch} for epoch in epochs]
    events += [{"site_id": "s", "event_type": "e", "path": f"/{n}"} for n in range(3)]
    body = json.dumps(events).encode()
    fast = comparable(encode(decode_batch(body), CTX, indexed=True), events)
    slow = comparable(encode_events(parse_batch(body), CTX, indexed=True), events)
    assert fast == slow
    base = 1_731_578_400_000_000
    assert [r["ts"] - base for r in fast[:6]] == [0, 500_000, 123_000, 123_500, 123_456, 123_456]
    received = (CTX.received_at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert [r["ts"] - received for r in fast[6:]] == [6, 7, 8]
