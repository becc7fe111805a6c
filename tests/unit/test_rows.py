"""storage/rows.py: the row shape and in-batch de-duplication."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tapioca.model.event import COLUMNS as EVENT_COLUMNS
from tapioca.storage.rows import EventRow, dedupe

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
