"""encode_events: validation as a whole, limits, defaults and identity (api.md, metrics.md)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from tapioca.errors import TapiocaError
from tapioca.ingest.normalize import RequestContext, path_of
from tapioca.ingest.protocols.base import ensure_batch_size
from tapioca.ingest.protocols.native import encode_events
from tapioca.kit.ids import visitor_id
from tapioca.queue.record import as_json, decode_one

RECEIVED = datetime(2025, 11, 14, 12, 0, 0, 250000, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SALT = bytes(range(32))
IP = "203.0.113.7"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
HEX32 = re.compile(r"^[0-9a-f]{32}$")


def make_ctx(**overrides: Any) -> RequestContext:
    ctx = RequestContext(
        received_at=RECEIVED,
        ip=IP,
        user_agent=UA,
        salt=SALT,
        max_future=timedelta(minutes=5),
        max_event_bytes=64 * 1024,
    )
    return replace(ctx, **overrides)


def raw_event(**fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"site_id": "shop", "event_type": "page_view"}
    event.update(fields)
    return event


def micros(moment: datetime) -> int:
    """Exact microseconds since the epoch (integer arithmetic, no float)."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def encode(
    events: list[Any], ctx: RequestContext | None = None, *, indexed: bool = True
) -> list[tuple[str, dict[str, Any]]]:
    return [
        (event_id, orjson.loads(as_json(decode_one(payload))))
        for event_id, payload in encode_events(events, ctx or make_ctx(), indexed=indexed)
    ]


def record(ctx: RequestContext | None = None, **fields: Any) -> dict[str, Any]:
    [(event_id, rec)] = encode([raw_event(**fields)], ctx, indexed=False)
    assert event_id == rec["event_id"]
    return rec


def rejection(
    events: list[Any], ctx: RequestContext | None = None, *, indexed: bool = True
) -> TapiocaError:
    with pytest.raises(TapiocaError) as info:
        encode_events(events, ctx or make_ctx(), indexed=indexed)
    return info.value


def fields(err: TapiocaError) -> list[str]:
    return [detail.field for detail in err.details]


# --- one event, every field ----------------------------------------------------------


def test_full_event_becomes_the_canonical_record() -> None:
    rec = record(
        event_id="evt-1",
        event_type="Order Completed",
        timestamp="2025-11-14T12:30:00+01:00",
        user_id=42,
        anonymous_id="anon-1",
        session_id=7,
        url="https://shop.example/checkout/done?o=1",
        referrer="https://www.google.com/",
        title="Thanks",
        utm_source="newsletter",
        utm_medium="email",
        utm_campaign="nov",
        utm_term="tea",
        utm_content="hero",
        user_agent="EventUA/1.0",
        screen_width=1280,
        device="desktop",
        channel="Email",
        page_type="checkout",
        props={"coupon": "X"},
        value="19.90",
        currency="eur",
        transaction_id=9001,
        items=[{"sku": 77, "name": "Tea", "category": "drinks", "price": 4.5, "quantity": 2}],
    )
    # money travels as decimal text; its scale is the implementer's choice, its value is not
    assert Decimal(rec.pop("revenue")) == Decimal("19.90")
    assert Decimal(rec["items"][0].pop("price")) == Decimal("4.5")
    assert rec == {
        "site_id": "shop",
        "event_id": "evt-1",
        "event_type": "purchase",
        "ts": micros(datetime(2025, 11, 14, 11, 30, tzinfo=UTC)),
        "received_at": micros(RECEIVED),
        "visitor_id": "42",
        "user_id": "42",
        "anonymous_id": "anon-1",
        "session_id": "7",
        "url": "https://shop.example/checkout/done?o=1",
        "path": "/checkout/done",
        "referrer": "https://www.google.com/",
        "title": "Thanks",
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "nov",
        "utm_term": "tea",
        "utm_content": "hero",
        "user_agent": "EventUA/1.0",
        "screen_width": 1280,
        "device": "desktop",
        "channel": "Email",
        "page_type": "checkout",
        "properties": {"coupon": "X"},
        "currency": "EUR",
        "transaction_id": "9001",
        "items": [{"sku": "77", "name": "Tea", "category": "drinks", "quantity": 2}],
    }


def test_minimal_event_record() -> None:
    rec = record()
    assert rec["ts"] == micros(RECEIVED)
    assert rec["received_at"] == micros(RECEIVED)
    assert rec["path"] is None
    assert rec["url"] is None
    assert rec["user_id"] is None
    assert rec["properties"] is None
    assert rec["revenue"] is None
    assert rec["currency"] is None
    assert rec["items"] is None
    assert rec["user_agent"] == UA


def test_returns_event_id_and_json_payload_pairs() -> None:
    out = encode_events(
        [raw_event(event_id="a"), raw_event(event_id="b")], make_ctx(), indexed=True
    )
    assert [event_id for event_id, _ in out] == ["a", "b"]
    assert all(isinstance(payload, bytes) for _, payload in out)
    assert [decode_one(payload).event_id for _, payload in out] == ["a", "b"]


def test_user_id_integer_is_stored_as_text() -> None:
    rec = record(user_id=1234567890123)
    assert rec["user_id"] == "1234567890123"
    assert rec["visitor_id"] == "1234567890123"


# --- all or nothing ------------------------------------------------------------------


def test_one_bad_event_rejects_the_whole_batch() -> None:
    events = [raw_event(event_id=str(i)) for i in range(5)]
    events[3]["timestamp"] = "not a time"
    err = rejection(events)
    assert err.status == 422
    assert err.code == "validation_error"
    assert fields(err) == ["3.timestamp"]
    assert err.message == "1 event(s) are invalid; nothing was accepted."


def test_each_bad_field_gets_its_own_detail() -> None:
    events = [
        raw_event(),
        {"site_id": "shop"},
        raw_event(),
        raw_event(timestamp="yesterday", screen_width="x"),
        raw_event(tiemstamp="2025-11-14T00:00:00Z"),
    ]
    err = rejection(events)
    assert err.status == 422
    assert sorted(fields(err)) == ["1.event_type", "3.screen_width", "3.timestamp", "4.tiemstamp"]
    assert err.message == "3 event(s) are invalid; nothing was accepted."
    assert all(detail.message for detail in err.details)


def test_nested_item_errors_have_dotted_paths() -> None:
    err = rejection([raw_event(), raw_event(items=[{"sku": "A"}, {"sku": "B", "quantity": -1}])])
    assert fields(err) == ["1.items.1.quantity"]


def test_value_error_message_has_no_pydantic_prefix() -> None:
    err = rejection([raw_event(timestamp="nope")])
    assert fields(err) == ["0.timestamp"]
    assert not err.details[0].message.startswith("Value error")


@pytest.mark.parametrize("item", [1, "event", None, [raw_event()]])
def test_non_object_in_a_batch_is_named_by_index(item: Any) -> None:
    err = rejection([raw_event(), raw_event(), item])
    assert err.status == 422
    assert fields(err) == ["2"]


def test_non_object_single_event_is_named_body() -> None:
    err = rejection(["event"], indexed=False)
    assert fields(err) == ["body"]


def test_single_event_fields_have_no_index_prefix() -> None:
    err = rejection([{"site_id": "shop", "ts": "nope", "oops": 1}], indexed=False)
    assert err.status == 422
    assert sorted(fields(err)) == ["event_type", "oops", "ts"]


def test_every_detail_is_kept_and_the_answer_lists_the_first_20() -> None:
    err = rejection([{"site_id": "shop"}] * 150)
    assert fields(err) == [f"{i}.event_type" for i in range(150)]
    assert err.message == "150 event(s) are invalid; nothing was accepted."
    error = err.body("r")["error"]
    assert [d["field"] for d in error["details"]] == [f"{i}.event_type" for i in range(20)]
    assert error["message"] == (
        "150 event(s) are invalid; nothing was accepted. 130 more details are not listed."
    )


# --- future and past timestamps ------------------------------------------------------


def test_timestamp_beyond_max_future_is_rejected() -> None:
    too_late = RECEIVED + timedelta(minutes=5, microseconds=1)
    events = [raw_event(), raw_event(), raw_event(timestamp=too_late.isoformat())]
    err = rejection(events)
    assert err.status == 422
    assert fields(err) == ["2.timestamp"]
    assert err.details[0].message == "is more than 300 seconds in the future"


def test_epoch_millis_in_the_future_is_rejected() -> None:
    millis = micros(RECEIVED + timedelta(hours=1)) // 1000
    assert fields(rejection([raw_event(ts=millis)])) == ["0.timestamp"]


@pytest.mark.parametrize(
    "offset",
    [timedelta(minutes=5), timedelta(minutes=4, seconds=59), timedelta(0), timedelta(days=-1)],
)
def test_timestamp_within_max_future_is_accepted(offset: timedelta) -> None:
    moment = RECEIVED + offset
    assert record(timestamp=moment.isoformat())["ts"] == micros(moment)


def test_max_future_zero_accepts_now_and_rejects_one_microsecond_later() -> None:
    ctx = make_ctx(max_future=timedelta(0))
    assert record(ctx, timestamp=RECEIVED.isoformat())["ts"] == micros(RECEIVED)
    later = (RECEIVED + timedelta(microseconds=1)).isoformat()
    assert fields(rejection([raw_event(timestamp=later)], ctx)) == ["0.timestamp"]


def test_future_check_respects_the_offset() -> None:
    # 12:03 UTC written in UTC+1 is within 5 minutes; 13:03+00:00 is not.
    assert record(timestamp="2025-11-14T13:03:00+01:00")["ts"] == micros(
        datetime(2025, 11, 14, 12, 3, tzinfo=UTC)
    )
    assert fields(rejection([raw_event(timestamp="2025-11-14T13:03:00+00:00")])) == ["0.timestamp"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2001-02-03T04:05:06Z", datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)),
        ("1970-01-01T00:00:00Z", EPOCH),
        ("2025-11-14T11:59:59.999999Z", datetime(2025, 11, 14, 11, 59, 59, 999999, tzinfo=UTC)),
        ("1969-07-20T20:17:40Z", datetime(1969, 7, 20, 20, 17, 40, tzinfo=UTC)),
    ],
)
def test_old_timestamps_are_accepted_exactly(text: str, expected: datetime) -> None:
    assert record(timestamp=text)["ts"] == micros(expected)


def test_pre_1970_timestamp_with_fraction_is_exact() -> None:
    expected = datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC)
    assert record(timestamp="1969-12-31T23:59:59.5Z")["ts"] == micros(expected)


LATER = make_ctx(received_at=datetime(2027, 1, 1, tzinfo=UTC))  # after the times below


@pytest.mark.parametrize("key", ["timestamp", "occurred_at", "ts"])
@pytest.mark.parametrize(
    ("epoch", "expected"),
    [
        (1_796_526_494, datetime(2026, 12, 6, 3, 8, 14, tzinfo=UTC)),  # seconds
        (1_796_526_494.25, datetime(2026, 12, 6, 3, 8, 14, 250000, tzinfo=UTC)),
        (1_796_526_494_123, datetime(2026, 12, 6, 3, 8, 14, 123000, tzinfo=UTC)),  # ms
        (1_796_526_494_123_456, datetime(2026, 12, 6, 3, 8, 14, 123456, tzinfo=UTC)),  # µs
    ],
)
def test_epoch_timestamps_are_stored_in_their_unit(
    key: str, epoch: float, expected: datetime
) -> None:
    rec = record(LATER, **{key: epoch})
    assert rec["ts"] == micros(expected)
    assert rec["received_at"] == micros(LATER.received_at)


@pytest.mark.parametrize("epoch", [-1, -1_796_526_494, -0.001, 253_402_300_800_000_000, 10**20])
def test_epoch_timestamps_out_of_range_are_422_naming_timestamp(epoch: float) -> None:
    err = rejection([raw_event(), raw_event(timestamp=epoch)])
    assert (err.status, fields(err)) == (422, ["1.timestamp"])


def test_epoch_seconds_in_the_future_are_rejected() -> None:
    seconds = micros(RECEIVED + timedelta(minutes=6)) // 1_000_000
    assert fields(rejection([raw_event(timestamp=seconds)])) == ["0.timestamp"]
    assert record(timestamp=seconds - 120)["ts"] == (seconds - 120) * 1_000_000


def test_events_without_a_time_keep_their_order_in_the_request() -> None:
    """Each is the request's time plus its position in µs; sent times are kept."""
    sent = "2025-11-14T11:00:00Z"
    events = [raw_event(path="/a"), raw_event(path="/b", timestamp=sent), raw_event(path="/c"),
              raw_event(path="/d")]  # fmt: skip
    stamps = [(rec["path"], rec["ts"], rec["received_at"]) for _, rec in encode(events)]
    received = micros(RECEIVED)
    assert stamps == [
        ("/a", received, received),
        ("/b", micros(datetime(2025, 11, 14, 11, tzinfo=UTC)), received),
        ("/c", received + 2, received),
        ("/d", received + 3, received),
    ]


def test_received_at_is_exact_microseconds() -> None:
    ctx = make_ctx(received_at=datetime(2025, 11, 14, 12, 0, 0, 999999, tzinfo=UTC))
    rec = record(ctx)
    assert rec["received_at"] == micros(ctx.received_at)
    assert rec["ts"] == micros(ctx.received_at)


# --- NUL characters and size ---------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "a\x00b"),
        ("url", "https://x.com/\x00"),
        ("event_type", "sign\x00up"),
        ("utm_source", "\x00x"),
        ("properties", {"k": "v\x00"}),
        ("properties", {"k\x00": "v"}),
        ("properties", {"k": ["a", {"b": "\x00"}]}),
        ("items", [{"sku": "A\x00"}]),
        ("user_agent", "UA\x00"),
    ],
)
def test_nul_character_is_rejected_naming_the_field(field: str, value: Any) -> None:
    err = rejection([raw_event(), raw_event(**{field: value})])
    assert err.status == 422
    assert fields(err) == [f"1.{field}"]
    assert "NUL" in err.details[0].message


@pytest.mark.parametrize(("field", "value"), [("user_id", "u\x00"), ("anonymous_id", "\x00")])
def test_nul_in_an_identity_field_names_that_field(field: str, value: str) -> None:
    err = rejection([raw_event(), raw_event(**{field: value})])
    assert err.status == 422
    assert fields(err) == [f"1.{field}"]


def test_nul_in_url_names_url_even_though_path_is_derived() -> None:
    err = rejection([raw_event(url="https://x.com/a\x00b")], indexed=False)
    assert fields(err) == ["url"]


def test_literal_backslash_u0000_text_is_not_a_nul() -> None:
    text = "C:\\u0000\\dir"  # backslash, 'u', '0', '0', '0', '0': no NUL character
    assert "\x00" not in text
    assert record(title=text)["title"] == text


def test_event_larger_than_max_event_bytes_is_413() -> None:
    big = {f"k{i}": "x" * 1100 for i in range(64)}  # > 64 KiB once encoded
    err = rejection([raw_event(), raw_event(properties=big)])
    assert err.status == 413
    assert err.code == "payload_too_large"
    assert "Event 1" in err.message


def encoded_size(ctx: RequestContext, **fields: Any) -> int:
    [(_, payload)] = encode_events([raw_event(**fields)], ctx, indexed=False)
    return len(payload)


def test_event_just_under_max_event_bytes_is_accepted() -> None:
    """The limit applies to the event's queue record, at most max_event_bytes long."""
    ctx = make_ctx(max_event_bytes=2000)
    base = encoded_size(ctx, title="t" * 300)  # a title of 256+ characters: same header
    title = "t" * (300 + 2000 - base)
    assert encoded_size(ctx, title=title) == 2000
    err = rejection([raw_event(title=title + "t")], ctx, indexed=False)
    assert err.status == 413
    assert err.code == "payload_too_large"


# --- path ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://x.com", "/"),
        ("https://x.com/", "/"),
        ("https://x.com?q=1", "/"),
        ("https://x.com/a/b?q=1", "/a/b"),
        ("https://x.com/a/b?q=1#frag", "/a/b"),
        ("https://x.com:8443/products/tea/", "/products/tea/"),
        ("http://user@x.com/a%20b", "/a%20b"),
    ],
)
def test_path_defaults_to_the_path_of_url(url: str, expected: str) -> None:
    assert record(url=url)["path"] == expected
    assert path_of(url, None) == expected


def test_explicit_path_wins_over_url() -> None:
    assert record(url="https://x.com/a/b", path="/custom")["path"] == "/custom"
    assert path_of("https://x.com/a", "/p") == "/p"


def test_no_url_and_no_path_means_no_path() -> None:
    assert record()["path"] is None
    assert path_of(None, None) is None


def test_unparseable_url_gives_no_path() -> None:
    assert path_of("http://[::1", None) is None


# --- event names ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("page_view", "page_view"),
        ("pageview", "page_view"),
        ("$pageview", "page_view"),
        ("page", "page_view"),
        ("view_page", "page_view"),
        ("PageView", "page_view"),
        ("Order Completed", "purchase"),
        ("Purchase", "purchase"),
        ("purchase", "purchase"),
        ("Product Added", "add_to_cart"),
        ("Cart Viewed", "view_cart"),
        ("Signup", "Signup"),
        ("button click", "button click"),
        ("$autocapture", "$autocapture"),
    ],
)
def test_event_type_is_normalised(sent: str, stored: str) -> None:
    assert record(event_type=sent)["event_type"] == stored


@pytest.mark.parametrize("key", ["name", "event"])
def test_event_type_alias_is_normalised_too(key: str) -> None:
    [(_, rec)] = encode([{"site_id": "shop", key: "$pageview"}])
    assert rec["event_type"] == "page_view"


# --- identity ------------------------------------------------------------------------


def test_visitor_is_the_user_id_when_given() -> None:
    rec = record(user_id="u-1", anonymous_id="anon-1")
    assert rec["visitor_id"] == "u-1"
    assert rec["user_id"] == "u-1"
    assert rec["anonymous_id"] == "anon-1"


def test_visitor_is_the_anonymous_id_without_user_id() -> None:
    rec = record(anonymous_id="anon-1")
    assert rec["visitor_id"] == "anon-1"
    assert rec["user_id"] is None


def test_visitor_is_the_hash_without_any_id() -> None:
    rec = record()
    assert rec["visitor_id"] == visitor_id(SALT, "shop", IP, UA)
    assert re.fullmatch(r"v-[0-9a-f]{24}", rec["visitor_id"])
    assert rec["user_id"] is None
    assert rec["anonymous_id"] is None


def test_hash_is_stable_for_the_same_site_ip_ua_and_salt() -> None:
    first = record()["visitor_id"]
    again = record(make_ctx(received_at=RECEIVED + timedelta(hours=3)))["visitor_id"]
    other_event = record(event_type="click", url="https://x.com/other")["visitor_id"]
    assert first == again == other_event


@pytest.mark.parametrize(
    ("ctx_changes", "event_changes"),
    [
        ({"salt": bytes(range(1, 33))}, {}),
        ({"ip": "203.0.113.8"}, {}),
        ({"ip": "2001:db8::1"}, {}),
        ({"user_agent": UA + " Extra"}, {}),
        ({"user_agent": None}, {}),
        ({}, {"site_id": "blog"}),
        ({}, {"user_agent": "Other/1.0"}),
    ],
)
def test_hash_differs_when_any_input_differs(
    ctx_changes: dict[str, Any], event_changes: dict[str, Any]
) -> None:
    base = record()["visitor_id"]
    changed = record(make_ctx(**ctx_changes), **event_changes)["visitor_id"]
    assert changed.startswith("v-")
    assert changed != base


def test_hash_uses_the_events_own_user_agent() -> None:
    rec = record(user_agent="EventUA/2.0")
    assert rec["visitor_id"] == visitor_id(SALT, "shop", IP, "EventUA/2.0")


def test_hash_without_any_user_agent() -> None:
    rec = record(make_ctx(user_agent=None))
    assert rec["user_agent"] is None
    assert rec["visitor_id"] == visitor_id(SALT, "shop", IP, "")


def test_user_agent_comes_from_the_request_unless_the_event_has_one() -> None:
    assert record()["user_agent"] == UA
    assert record(user_agent="EventUA/1.0")["user_agent"] == "EventUA/1.0"
    assert record(make_ctx(user_agent=None), user_agent="EventUA/1.0")["user_agent"] == (
        "EventUA/1.0"
    )


# --- event ids -----------------------------------------------------------------------


def test_event_id_is_kept_when_given() -> None:
    out = encode([raw_event(event_id="client-1"), raw_event(event_id=12345)])
    assert [event_id for event_id, _ in out] == ["client-1", "12345"]
    assert [rec["event_id"] for _, rec in out] == ["client-1", "12345"]


def test_event_id_is_generated_when_missing() -> None:
    out = encode([raw_event() for _ in range(500)])
    ids = [event_id for event_id, _ in out]
    assert all(HEX32.fullmatch(event_id) for event_id in ids)
    assert len(set(ids)) == 500
    assert [rec["event_id"] for _, rec in out] == ids


def test_generated_event_ids_differ_between_requests() -> None:
    assert record()["event_id"] != record()["event_id"]


# --- batch size ----------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 9_999, 10_000])
def test_batch_size_within_the_limit(count: int) -> None:
    ensure_batch_size(count, 10_000)  # raises above the limit (the test below)


@pytest.mark.parametrize("count", [10_001, 50_000])
def test_batch_size_over_the_limit_is_413(count: int) -> None:
    with pytest.raises(TapiocaError) as info:
        ensure_batch_size(count, 10_000)
    assert info.value.status == 413
    assert info.value.code == "payload_too_large"
    assert str(count) in info.value.message


def test_empty_batch_is_422() -> None:
    with pytest.raises(TapiocaError) as info:
        ensure_batch_size(0, 10_000)
    assert info.value.status == 422
    assert info.value.code == "validation_error"
    assert fields(info.value) == ["events"]
