"""The two paths of ingest give every body the same answer: the fast path (msgspec) takes
exactly what the strict one (EventIn) takes, into the same events; refusals name the same
fields, in a batch by the index of the event, whatever its framing (docs/api.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings

from support.strategies import bodies
from tapioca.errors import TapiocaError
from tapioca.ingest.body import parse_batch, parse_one
from tapioca.ingest.fast import GiveUp, decode_batch, decode_one
from tapioca.ingest.normalize import Encoded, RequestContext, encode
from tapioca.ingest.protocols import ROUTES
from tapioca.ingest.protocols.base import Route, Shape, ensure_batch_size
from tapioca.ingest.protocols.native import encode_events, parse, validate
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
MAX_EVENTS = 100


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
        return (
            "error",
            exc.status,
            exc.code,
            exc.message,
            [(d.field, d.message) for d in exc.details],
        )


def through_the_route(route: Route, body: bytes) -> Encoded:
    """What a route makes of a body: the fast path where it vouches for the body, else
    the strict path (protocols/native.parse), then the checks of every event."""
    parsed = parse(route, body, {}, MAX_EVENTS)
    return encode(
        parsed.events, CTX, indexed=parsed.indexed, details=parsed.details,
        nul_possible=parsed.nul_possible,
    )  # fmt: skip


def strictly(route: Route, body: bytes) -> Encoded:
    """What the strict path alone makes of a body (JSON reader, EventIn, the same checks)."""
    if route.shape is Shape.ONE:
        return encode_events([parse_one(body)], CTX, indexed=False)
    raw = parse_batch(body)
    ensure_batch_size(len(raw), MAX_EVENTS)
    return encode_events(raw, CTX, indexed=True)


def fast_decode(route: Route, body: bytes) -> list[Any]:
    return [decode_one(body)] if route.shape is Shape.ONE else decode_batch(body)


def events_sent(route: Route, body: bytes) -> list[Any]:
    return [parse_one(body)] if route.shape is Shape.ONE else parse_batch(body)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=bodies())
def test_both_paths_agree_on_every_body(request: tuple[str, bytes]) -> None:
    """Every body, in every framing, gets the same answer whichever path reads it: accepted
    with the same records, or refused with the same status, message and details (the same
    fields named, in the same order). Where the fast path takes a body, the strict path
    takes it too and validates it into the same events."""
    path, body = request
    _, route = ROUTES[path]
    routed = outcome(lambda: through_the_route(route, body))
    strict = outcome(lambda: strictly(route, body))
    if routed[0] == "ok" and strict[0] == "ok":
        sent = events_sent(route, body)
        assert comparable(routed[1], sent) == comparable(strict[1], sent)
    else:
        assert routed == strict
    try:
        fast = fast_decode(route, body)
    except GiveUp:
        event("the fast path gave up")
        return
    event("the fast path took it")
    validated = validate(events_sent(route, body), indexed=route.shape is Shape.BATCH)
    assert list(validated.details) == []
    assert fast == list(validated.events)


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


def answer(path: str, body: bytes) -> Any:
    """A body's answer by each path: (fast-then-strict, strict alone)."""
    _, route = ROUTES[path]
    return outcome(lambda: through_the_route(route, body)), outcome(lambda: strictly(route, body))


def lines(*events: dict[str, Any]) -> bytes:
    return b"\n".join(json.dumps(e).encode() for e in events) + b"\n"


PAGE = {"site_id": "shop", "event_type": "page_view", "event_id": "e1"}
PATTERN = "String should match pattern '{}'"


NEAR_MISSES = [("site_id", "p-nl\n"), ("currency", "EUR\n"), ("site_id", "shop\r\n"),
               ("currency", "\neur")]  # fmt: skip


@pytest.mark.parametrize(("name", "value"), NEAR_MISSES)
def test_a_newline_around_a_patterned_text_is_refused_on_both_paths(name: str, value: str) -> None:
    """A final newline is not the end of the text (model/event.full_match): "p-nl\\n"
    would be a site no report can name."""
    pattern = {"site_id": "^[A-Za-z0-9_.:-]+$", "currency": "^[A-Za-z]{3}$"}[name]
    bad = {**PAGE, name: value}
    one = ("error", 422, "validation_error", "The request is not valid.",
           [(name, PATTERN.format(pattern))])  # fmt: skip
    assert answer("/event", json.dumps(bad).encode()) == (one, one)
    batch = ("error", 422, "validation_error", "1 event(s) are invalid; nothing was accepted.",
             [(f"1.{name}", PATTERN.format(pattern))])  # fmt: skip
    for body in (json.dumps([PAGE, bad]).encode(), lines(PAGE, bad)):
        assert answer("/events", body) == (batch, batch)


BIG = 100000000000000000000  # 10^20: beyond 64 bits


@pytest.mark.parametrize(
    ("properties", "fields"),
    [
        (b'{"big": 100000000000000000000}', ["properties.big"]),
        (b'{"a": {"b": [1, -9223372036854775809]}, "c": 18446744073709551616}',
         ["properties.a.b.1", "properties.c"]),
        (b'{"": [100000000000000000000]}', ['properties."".0']),
        (b'"{\\"big\\": 100000000000000000000}"', ["properties.big"]),  # a JSON text of one
    ],
)  # fmt: skip
@pytest.mark.parametrize("key", ["properties", "props", "properties_json"])
def test_integers_beyond_64_bits_in_properties_are_refused_naming_their_path(
    key: str, properties: bytes, fields: list[str]
) -> None:
    event = json.dumps({**PAGE, "event_id": "e2"})[:-1].encode() + f', "{key}": '.encode()
    event += properties + b"}"
    one = ("error", 422, "validation_error", "The request is not valid.",
           [(field, "is an integer beyond 64 bits") for field in fields])  # fmt: skip
    assert answer("/event", event) == (one, one)
    batch = ("error", 422, "validation_error", "1 event(s) are invalid; nothing was accepted.",
             [(f"1.{field}", "is an integer beyond 64 bits") for field in fields])  # fmt: skip
    first = json.dumps(PAGE).encode()
    for body in (b"[" + first + b"," + event + b"]", first + b"\n" + event):
        assert answer("/events", body) == (batch, batch)


def test_integers_of_64_bits_in_properties_are_kept_exactly_on_both_paths() -> None:
    properties = {"u64": 2**64 - 1, "i64": -(2**63), "n": 2**53 + 1}
    body = json.dumps([{**PAGE, "properties": properties}]).encode()
    routed, strict = answer("/events", body)
    assert routed[0] == strict[0] == "ok"
    sent = [{"event_id": "e1"}]
    assert comparable(routed[1], sent) == comparable(strict[1], sent)
    assert comparable(routed[1], sent)[0]["properties"] == properties


def test_a_batch_names_an_error_by_the_index_of_its_event_in_every_framing() -> None:
    """docs/api.md: the index, from 0, is the first part of the field (blank NDJSON lines
    hold no event); a line that is not JSON is named by the index alone."""
    bad = {**PAGE, "event_id": "e3", "timestamp": "noon"}
    message = "must be an RFC 3339 time, e.g. 2025-11-14T13:30:01Z"
    expected = [("2.timestamp", message)]
    for body in (
        json.dumps([PAGE, PAGE, bad]).encode(),
        json.dumps({"events": [PAGE, PAGE, bad]}).encode(),
        b"\n" + lines(PAGE) + b"\n  \n" + lines(PAGE, bad),
        lines(PAGE, PAGE, bad).replace(b"\n", b"\r\n"),
    ):
        routed, strict = answer("/events", body)
        assert routed == strict
        assert (routed[1], routed[4]) == (422, expected), body
    body = lines(PAGE) + b"\n" + lines(PAGE) + b'{"site_id": "shop",\n' + lines(PAGE)
    routed, strict = answer("/events", body)
    assert routed == strict == (
        "error", 422, "validation_error", "The body is not valid JSON.",
        [("2", "malformed JSON (line 4): Input data was truncated")],
    )  # fmt: skip


def test_the_ndjson_example_of_the_documentation() -> None:
    """docs/api.md, Rules: an NDJSON line that is not JSON, else a bad field, by index."""
    first = b'{"site_id": "shop", "event_type": "page_view"}\n\n'
    second = b'{"site_id": "shop", "event_type": "page_view", "timestamp": "noon"}\n'
    body = first + second + b'{"site_id": "shop",\n'
    routed, strict = answer("/events", body)
    assert routed == strict
    assert routed[4] == [("2", "malformed JSON (line 4): Input data was truncated")]
    routed, strict = answer("/events", first + second)
    assert routed == strict
    assert routed[4] == [("1.timestamp", "must be an RFC 3339 time, e.g. 2025-11-14T13:30:01Z")]
