"""storage/rows.py: the row shape, the key order of writes and in-batch de-duplication."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tapioca.model.event import COLUMNS as EVENT_COLUMNS
from tapioca.storage.rows import EventRow, dedupe, in_key_order

T0 = datetime(2025, 11, 14, 12, tzinfo=UTC)


def make_row(**values: Any) -> EventRow:
    base: dict[str, Any] = dict.fromkeys(EVENT_COLUMNS)
    base.update(
        site_id="shop",
        event_id="e-1",
        event_type="page_view",
        ts=T0,
        received_at=T0,
        visitor_id="u-1",
        is_bot=False,
    )
    base.update(values)
    return EventRow(**base)


def test_event_columns_are_the_row_fields() -> None:
    assert EventRow._fields == EVENT_COLUMNS
    assert EVENT_COLUMNS[:3] == ("site_id", "event_id", "event_type")
    assert len(set(EVENT_COLUMNS)) == len(EVENT_COLUMNS)


def test_dedupe_keeps_the_first_row_per_site_and_event_id() -> None:
    first = make_row(event_id="a", path="/first")
    repeat = make_row(event_id="a", path="/second", ts=T0 + timedelta(minutes=1))
    other = make_row(event_id="b", path="/other")
    assert dedupe([first, other, repeat]) == [first, other]
    assert dedupe([first, other, repeat])[0].path == "/first"


def test_dedupe_keeps_same_event_id_on_different_sites() -> None:
    shop = make_row(site_id="shop", event_id="a")
    blog = make_row(site_id="blog", event_id="a")
    assert dedupe([shop, blog, make_row(site_id="shop", event_id="a", title="dup")]) == [
        shop,
        blog,
    ]


def test_dedupe_keeps_order_and_identical_rows_once() -> None:
    rows = [make_row(event_id=str(i)) for i in (3, 1, 2)]
    assert dedupe(rows + rows + rows) == rows


def test_dedupe_without_duplicates_is_identity() -> None:
    rows = [make_row(event_id=str(i)) for i in range(10)]
    assert dedupe(rows) == rows
    assert dedupe([]) == []


def test_dedupe_is_not_fooled_by_key_concatenation() -> None:
    a = make_row(site_id="ab", event_id="c")
    b = make_row(site_id="a", event_id="bc")
    assert dedupe([a, b]) == [a, b]


def test_in_key_order_sorts_by_site_then_event_id_and_keeps_the_first_of_a_key_first() -> None:
    first = make_row(event_id="b", path="/first")
    rows = [
        make_row(event_id="c"),
        first,
        make_row(site_id="blog", event_id="z"),
        make_row(event_id="b", path="/second"),
        make_row(site_id="ab", event_id="c"),
        make_row(site_id="a", event_id="bc"),
    ]
    ordered = in_key_order(rows)
    assert [(row.site_id, row.event_id) for row in ordered] == [
        ("a", "bc"), ("ab", "c"), ("blog", "z"), ("shop", "b"), ("shop", "b"), ("shop", "c"),
    ]  # fmt: skip
    assert ordered[3] is first
    assert dedupe(ordered)[3] is first


def test_in_key_order_is_the_order_of_utf8_bytes() -> None:
    """PostgreSQL compares the key columns ("C" collation) by their UTF-8 bytes."""
    ids = ["b", "B", "a-10", "a-9", "a_1", "é", "e\u0301", "z", "Ω", "ß", "😀", "~", " x"]
    ordered = in_key_order([make_row(event_id=i) for i in ids])
    assert [row.event_id for row in ordered] == sorted(ids, key=lambda i: i.encode())
