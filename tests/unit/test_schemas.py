"""EventIn / ItemIn: aliases, strict types, timestamps, properties, money, items (api.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from support.reference import parse_time
from tapioca.ingest.schemas import MAX_PROPERTIES, EventIn, ItemIn, Validated


def raw_event(**fields: Any) -> dict[str, Any]:
    """A minimal valid event; keyword arguments add or replace fields."""
    event: dict[str, Any] = {"site_id": "shop", "event_type": "page_view"}
    event.update(fields)
    return event


def parse(**fields: Any) -> Validated:
    return EventIn.model_validate(raw_event(**fields))


def errors_of(data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """The (loc, type) of every error; fails the test when the data is valid."""
    with pytest.raises(ValidationError) as info:
        EventIn.model_validate(data)
    return [(tuple(err["loc"]), err["type"]) for err in info.value.errors()]


def error_locs(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [loc for loc, _ in errors_of(data)]


# --- aliases -------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["event_type", "name", "event"])
def test_event_type_aliases(key: str) -> None:
    event = EventIn.model_validate({"site_id": "shop", key: "signup"})
    assert event.event_type == "signup"


@pytest.mark.parametrize("key", ["timestamp", "occurred_at", "ts"])
def test_timestamp_aliases(key: str) -> None:
    event = parse(**{key: "2025-11-14T13:30:01Z"})
    assert event.timestamp == datetime(2025, 11, 14, 13, 30, 1, tzinfo=UTC)


@pytest.mark.parametrize("key", ["properties", "props"])
def test_properties_aliases_with_an_object(key: str) -> None:
    event = parse(**{key: {"plan": "pro", "seats": 3}})
    assert event.properties == {"plan": "pro", "seats": 3}


def test_properties_json_alias_with_a_json_string() -> None:
    event = parse(properties_json='{"plan": "pro", "nested": {"a": [1, 2]}}')
    assert event.properties == {"plan": "pro", "nested": {"a": [1, 2]}}


@pytest.mark.parametrize("key", ["properties", "properties_json", "props"])
def test_properties_given_as_json_text_under_every_alias(key: str) -> None:
    assert parse(**{key: '{"k": "v"}'}).properties == {"k": "v"}


def test_properties_json_empty_string_means_no_properties() -> None:
    assert parse(properties_json="").properties is None
    assert parse(properties_json="   ").properties is None


@pytest.mark.parametrize("key", ["revenue", "value"])
def test_revenue_aliases(key: str) -> None:
    event = parse(**{key: "19.90"})
    assert isinstance(event.revenue, Decimal)
    assert event.revenue == Decimal("19.90")


def test_aliases_are_never_echoed() -> None:
    event = EventIn.model_validate(
        {"site_id": "shop", "name": "x", "ts": 0, "props": {"a": 1}, "value": 1}
    )
    dumped = event.model_dump()
    assert set(dumped) == set(EventIn.model_fields)
    for alias in ("name", "event", "ts", "occurred_at", "props", "properties_json", "value"):
        assert alias not in dumped
    assert set(event.model_dump(by_alias=True)) == set(EventIn.model_fields)


def test_event_type_and_its_alias_together_are_rejected() -> None:
    assert errors_of(raw_event(name="other")) == [(("name",), "extra_forbidden")]


# --- required fields and unknown fields ----------------------------------------------


def test_minimal_event_defaults() -> None:
    event = parse()
    assert event.site_id == "shop"
    assert event.event_type == "page_view"
    assert event.timestamp is None
    assert event.event_id is None
    assert event.user_id is None
    assert event.properties is None
    assert event.revenue is None
    assert event.items is None


def test_missing_event_type_is_named() -> None:
    assert errors_of({"site_id": "shop"}) == [(("event_type",), "missing")]


def test_missing_site_id_is_named() -> None:
    assert errors_of({"event_type": "x"}) == [(("site_id",), "missing")]


@pytest.mark.parametrize("field", ["tiemstamp", "userId", "foo", "site"])
def test_unknown_top_level_field_is_named(field: str) -> None:
    assert errors_of(raw_event(**{field: "x"})) == [((field,), "extra_forbidden")]


def test_several_unknown_fields_are_each_named() -> None:
    locs = error_locs(raw_event(a=1, b=2))
    assert sorted(locs) == [("a",), ("b",)]


@pytest.mark.parametrize("site_id", ["", "my shop", "shop/1", "a" * 101, "sh\x00op"])
def test_bad_site_ids_are_rejected(site_id: str) -> None:
    assert error_locs(raw_event(site_id=site_id)) == [("site_id",)]


@pytest.mark.parametrize("site_id", ["shop", "Shop_1", "a.b-c:d", "a" * 100])
def test_good_site_ids_are_accepted(site_id: str) -> None:
    assert parse(site_id=site_id).site_id == site_id


def test_empty_event_type_is_rejected() -> None:
    assert error_locs(raw_event(event_type="")) == [("event_type",)]


# --- identifiers ---------------------------------------------------------------------


def test_user_id_may_be_an_integer() -> None:
    event = parse(user_id=42)
    assert event.user_id == 42


def test_user_id_may_be_a_string() -> None:
    assert parse(user_id="u-42").user_id == "u-42"


@pytest.mark.parametrize("value", [True, False, 1.5, [1], {"id": 1}, ""])
def test_user_id_rejects_other_types(value: Any) -> None:
    assert all(loc[0] == "user_id" for loc in error_locs(raw_event(user_id=value)))


def test_event_id_at_most_128_chars() -> None:
    assert parse(event_id="e" * 128).event_id == "e" * 128
    assert all(loc[0] == "event_id" for loc in error_locs(raw_event(event_id="e" * 129)))


def test_user_id_at_most_128_chars() -> None:
    assert parse(user_id="u" * 128).user_id == "u" * 128
    assert all(loc[0] == "user_id" for loc in error_locs(raw_event(user_id="u" * 129)))


@pytest.mark.parametrize("field", ["event_id", "session_id", "transaction_id"])
def test_integer_identifiers_accepted_bools_rejected(field: str) -> None:
    assert getattr(parse(**{field: 7}), field) == 7
    assert all(loc[0] == field for loc in error_locs(raw_event(**{field: True})))


# --- strict types --------------------------------------------------------------------


def test_screen_width_integer_accepted() -> None:
    assert parse(screen_width=1024).screen_width == 1024
    assert parse(screen_width=0).screen_width == 0


@pytest.mark.parametrize("value", [True, False, "x", "1024", 1024.5, -1, 100_001])
def test_screen_width_rejects_non_integers_and_out_of_range(value: Any) -> None:
    assert error_locs(raw_event(screen_width=value)) == [("screen_width",)]


@pytest.mark.parametrize(
    "field", ["url", "path", "referrer", "title", "utm_source", "device", "user_agent"]
)
@pytest.mark.parametrize("value", [1, True, ["a"]])
def test_text_fields_are_strictly_strings(field: str, value: Any) -> None:
    assert error_locs(raw_event(**{field: value})) == [(field,)]


def test_event_type_must_be_a_string() -> None:
    assert error_locs(raw_event(event_type=1)) == [("event_type",)]


def test_text_length_limits() -> None:
    assert parse(url="u" * 2048).url == "u" * 2048
    assert error_locs(raw_event(url="u" * 2049)) == [("url",)]
    assert error_locs(raw_event(utm_source="s" * 257)) == [("utm_source",)]


# --- timestamps ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-11-14T13:30:01Z", datetime(2025, 11, 14, 13, 30, 1, tzinfo=UTC)),
        ("2025-11-14T13:30:01+00:00", datetime(2025, 11, 14, 13, 30, 1, tzinfo=UTC)),
        ("2025-11-14T14:30:01+01:00", datetime(2025, 11, 14, 13, 30, 1, tzinfo=UTC)),
        ("2025-11-14T08:30:01-05:00", datetime(2025, 11, 14, 13, 30, 1, tzinfo=UTC)),
        ("2025-11-14T19:00:01+05:30", datetime(2025, 11, 14, 13, 30, 1, tzinfo=UTC)),
        ("2025-11-15T00:30:01+11:00", datetime(2025, 11, 14, 13, 30, 1, tzinfo=UTC)),
        ("2025-11-13T23:30:01-14:00", datetime(2025, 11, 14, 13, 30, 1, tzinfo=UTC)),
        (
            "2025-11-14T13:30:01.123456Z",
            datetime(2025, 11, 14, 13, 30, 1, 123456, tzinfo=UTC),
        ),
        ("2025-11-14T13:30:01.5+02:00", datetime(2025, 11, 14, 11, 30, 1, 500000, tzinfo=UTC)),
    ],
)
def test_rfc3339_timestamps_are_converted_to_utc(text: str, expected: datetime) -> None:
    ts = parse(timestamp=text).timestamp
    assert ts == expected
    assert ts is not None
    assert ts.utcoffset() == timedelta(0)
    assert (ts.year, ts.month, ts.day, ts.hour, ts.minute) == (
        expected.year,
        expected.month,
        expected.day,
        expected.hour,
        expected.minute,
    )


def test_offset_less_timestamp_is_utc() -> None:
    ts = parse(timestamp="2025-11-14T13:30:01").timestamp
    assert ts == datetime(2025, 11, 14, 13, 30, 1, tzinfo=UTC)
    assert ts is not None
    assert ts.utcoffset() == timedelta(0)


def test_surrounding_whitespace_in_timestamp_is_ignored() -> None:
    ts = parse(timestamp=" 2025-11-14T13:30:01Z ").timestamp
    assert ts == datetime(2025, 11, 14, 13, 30, 1, tzinfo=UTC)


T = datetime(2026, 12, 6, 3, 8, 14, tzinfo=UTC)  # 1796526494 seconds after 1970


@pytest.mark.parametrize(
    ("epoch", "expected"),
    [
        # seconds: below 10^11
        (1_796_526_494, T),
        (1_796_526_494.5, T.replace(microsecond=500000)),
        (1_796_526_494.123456, T.replace(microsecond=123456)),
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
        (0.000001, datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC)),
        (99_999_999_999, datetime(5138, 11, 16, 9, 46, 39, tzinfo=UTC)),
        (1_796_526_494.0, T),
        # milliseconds: from 10^11, below 10^14
        (100_000_000_000, datetime(1973, 3, 3, 9, 46, 40, tzinfo=UTC)),
        (1_796_526_494_000, T),
        (1_763_127_001_123, datetime(2025, 11, 14, 13, 30, 1, 123000, tzinfo=UTC)),
        (1_763_127_001_999, datetime(2025, 11, 14, 13, 30, 1, 999000, tzinfo=UTC)),
        (1_763_127_001_123.0, datetime(2025, 11, 14, 13, 30, 1, 123000, tzinfo=UTC)),
        (1_796_526_494_123.25, T.replace(microsecond=123250)),
        (99_999_999_999_999, datetime(5138, 11, 16, 9, 46, 39, 999000, tzinfo=UTC)),
        # microseconds: from 10^14
        (100_000_000_000_000, datetime(1973, 3, 3, 9, 46, 40, tzinfo=UTC)),
        (1_796_526_494_123_456, T.replace(microsecond=123456)),
        (1_796_526_494_000_000.0, T),
        (253_402_300_799_999_999, datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ],
)
def test_epoch_numbers_are_read_by_magnitude(epoch: float, expected: datetime) -> None:
    """Seconds below 10^11, milliseconds below 10^14, else microseconds (docs/api.md)."""
    ts = parse(timestamp=epoch).timestamp
    assert ts == expected
    assert ts is not None
    assert ts.microsecond == expected.microsecond
    assert ts.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "epoch",
    [0, 0.5, 1_796_526_494, 1_796_526_494.000001, 99_999_999_999.9, 10**11, 1_796_526_494_123,
     1_796_526_494_123.4, 10**14 - 1, 10**14, 1_796_526_494_123_456, 2**53 + 2],
)  # fmt: skip
def test_epoch_numbers_agree_with_the_reference(epoch: float) -> None:
    """The independent reference (support/reference.py) reads each at the same moment."""
    assert parse(timestamp=epoch).timestamp == parse_time(epoch, datetime.now(UTC))


def test_epoch_seconds_are_not_read_as_milliseconds() -> None:
    ts = parse(timestamp=1_796_526_494).timestamp
    assert ts is not None and ts.year == 2026


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "",
        "2025-13-01T00:00:00Z",
        "2025-11-14T25:00:00Z",
        "14/11/2025 13:30",
        True,
        False,
        -1,
        -0.5,
        -1_796_526_494_000,
        253_402_300_800_000_000,  # one µs after 9999-12-31T23:59:59.999999Z
        1e19,
        2**64,
        [2025, 11, 14],
        {"t": 1},
    ],
)
def test_bad_timestamps_are_rejected(value: Any) -> None:
    assert error_locs(raw_event(timestamp=value)) == [("timestamp",)]


def test_rfc3339_lower_case_t_and_z_are_accepted() -> None:
    ts = parse(timestamp="2025-11-14t13:30:01z").timestamp
    assert ts == datetime(2025, 11, 14, 13, 30, 1, tzinfo=UTC)


# --- properties ----------------------------------------------------------------------


def test_properties_with_exactly_64_keys_are_accepted() -> None:
    props = {f"k{i}": i for i in range(MAX_PROPERTIES)}
    assert MAX_PROPERTIES == 64
    assert parse(properties=props).properties == props


@pytest.mark.parametrize("key", ["properties", "properties_json", "props"])
def test_properties_with_65_keys_are_rejected(key: str) -> None:
    props = {f"k{i}": i for i in range(65)}
    assert error_locs(raw_event(**{key: props})) == [(key,)]


def test_properties_json_with_65_keys_is_rejected() -> None:
    text = "{" + ",".join(f'"k{i}": {i}' for i in range(65)) + "}"
    assert error_locs(raw_event(properties_json=text)) == [("properties_json",)]


@pytest.mark.parametrize("value", [[1, 2], "[1, 2]", "not json", "42", 42, True, '"text"'])
def test_properties_must_be_an_object(value: Any) -> None:
    assert error_locs(raw_event(properties=value)) == [("properties",)]


# --- money ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("19.90", "19.90"),
        (0.1, "0.1"),  # parsed from the float's text, not its binary value
        (1.005, "1.005"),
        (19.9, "19.9"),
        (20, "20"),
        ("0", "0"),
        (" 5.5 ", "5.5"),
        ("-3.25", "-3.25"),
        ("99999999999999.99", "99999999999999.99"),
        ("+5", "5"),
        (".5", "0.5"),
        ("5.", "5"),
        ("\t00000000000000000012.5\n", "12.5"),
    ],
)
def test_revenue_is_an_exact_decimal(value: Any, expected: str) -> None:
    revenue = parse(revenue=value).revenue
    assert isinstance(revenue, Decimal)
    assert revenue == Decimal(expected)


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        "abc",
        "NaN",
        "Infinity",
        float("nan"),
        float("inf"),
        "1e14",
        [1],
        "",
        "1e3",  # the text is digits only, as /openapi.json says (MONEY_TEXT)
        "1_000",
        "\u0665",  # ARABIC-INDIC DIGIT FIVE: Decimal reads it, the document does not allow it
        "123456789012345",
        "99999999999999.99995",  # rounds to 10^14 at four places
        1e14,
    ],
)
def test_bad_revenue_is_rejected(value: Any) -> None:
    assert error_locs(raw_event(revenue=value)) == [("revenue",)]


@pytest.mark.parametrize("currency", ["EUR", "usd", "Gbp"])
def test_currency_three_letters(currency: str) -> None:
    assert parse(currency=currency).currency == currency


@pytest.mark.parametrize("currency", ["EU", "EURO", "E1R", "EUR\n", " EUR", "€", "", 978, True])
def test_currency_pattern_rejects(currency: Any) -> None:
    assert error_locs(raw_event(currency=currency)) == [("currency",)]


# --- items ---------------------------------------------------------------------------


def test_items_are_validated_and_typed() -> None:
    event = parse(
        items=[
            {"sku": "TEA-1", "name": "Tea", "category": "drinks", "price": "4.50", "quantity": 2},
            {"sku": 1002, "price": 3},
            {"sku": "X"},
        ]
    )
    assert event.items is not None
    first, second, third = event.items
    assert first == ItemIn(
        sku="TEA-1", name="Tea", category="drinks", price=Decimal("4.50"), quantity=2
    )
    assert isinstance(first.price, Decimal)
    assert isinstance(second.price, Decimal)
    assert second.sku == 1002
    assert second.price == Decimal("3")
    assert second.quantity == 1
    assert third.price is None
    assert third.name is None
    assert third.category is None


def test_empty_items_list_is_accepted() -> None:
    assert parse(items=[]).items == []


@pytest.mark.parametrize(
    ("item", "loc"),
    [
        ({"name": "no sku"}, ("items", 0, "sku")),
        ({"sku": "A", "colour": "red"}, ("items", 0, "colour")),
        ({"sku": "A", "quantity": -1}, ("items", 0, "quantity")),
        ({"sku": "A", "quantity": 1_000_001}, ("items", 0, "quantity")),
        ({"sku": "A", "quantity": True}, ("items", 0, "quantity")),
        ({"sku": "A", "quantity": "2"}, ("items", 0, "quantity")),
        ({"sku": "A", "quantity": 1.5}, ("items", 0, "quantity")),
        ({"sku": "A", "price": "abc"}, ("items", 0, "price")),
        ({"sku": "A", "price": True}, ("items", 0, "price")),
        ({"sku": "A", "price": "NaN"}, ("items", 0, "price")),
        ({"sku": "A", "name": 5}, ("items", 0, "name")),
    ],
)
def test_bad_items_are_named_by_index_and_field(item: dict[str, Any], loc: tuple[Any, ...]) -> None:
    locs = error_locs(raw_event(items=[{"sku": "OK"}, item]))
    # the first item is fine, so the error is on index 1
    assert [(lp[0], lp[1], lp[2]) for lp in locs] == [(loc[0], 1, loc[2])]


@pytest.mark.parametrize("sku", ["", "s" * 257, True, 1.5, None, ["A"]])
def test_bad_skus_are_rejected(sku: Any) -> None:
    locs = error_locs(raw_event(items=[{"sku": sku}]))
    assert {loc[:3] for loc in locs} == {("items", 0, "sku")}


@pytest.mark.parametrize("value", ["TEA", {"sku": "A"}, 1])
def test_items_must_be_a_list(value: Any) -> None:
    assert all(loc[0] == "items" for loc in error_locs(raw_event(items=value)))


def test_at_most_1000_items() -> None:
    assert len(parse(items=[{"sku": "A"}] * 1000).items or []) == 1000
    assert error_locs(raw_event(items=[{"sku": "A"}] * 1001)) == [("items",)]


# --- integers written with a zero fraction -----------------------------------------------


def test_an_integral_float_is_an_integer() -> None:
    """JSON Schema counts 1280.0 as an integer, so the document's clients may send it."""
    event = parse(screen_width=1280.0, user_id=-12033.0, items=[{"sku": 7.0, "quantity": 2.0}])
    assert (event.screen_width, event.user_id) == (1280, -12033)
    assert type(event.screen_width) is int and type(event.user_id) is int
    assert event.items is not None
    assert (event.items[0].sku, event.items[0].quantity) == (7, 2)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("screen_width", 1280.5),
        ("screen_width", -1.0),
        ("user_id", 2.0**60),  # beyond 2^53 a float is not the integer the client wrote
        ("user_id", -9223372036854775809.0),  # how the JSON parser reads an integer < -2^63
        ("session_id", True),
    ],
)
def test_other_floats_are_not_integers(field: str, value: Any) -> None:
    locs = error_locs(raw_event(**{field: value}))
    assert locs and all(loc[0] == field for loc in locs)
