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
