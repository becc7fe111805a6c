"""The pure parts of the e-commerce facts: line items, amounts, currencies, money as
answers show it, and the transactions list's cursor."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tapioca.errors import TapiocaError
from tapioca.ingest.names import normalise_event_type
from tapioca.model.commerce import (
    Line,
    amount,
    currency_of,
    lines,
    money,
    money_ratio,
    quantity,
    ratio,
)
from tapioca.reports.commerce import decode_cursor, encode_cursor

ITEMS = json.dumps(
    [
        {"sku": "A", "name": "Taro", "category": "tea", "price": "2.5000", "quantity": 2},
        {"sku": "B", "name": None, "category": None, "price": None, "quantity": 3},
        {"sku": "C", "name": "Pearls", "category": None, "price": "0.1000", "quantity": None},
    ]
)


def test_lines_read_the_stored_items_exactly() -> None:
    found = lines(ITEMS)
    assert found == [
        Line("A", "Taro", "tea", Decimal("2.5000"), 2),
        Line("B", None, None, None, 3),
        Line("C", "Pearls", None, Decimal("0.1000"), 1),  # quantity defaults to 1
    ]
    assert lines(None) == [] and lines("") == [] and lines("[]") == []


def test_an_amount_is_the_revenue_sent_else_price_times_quantity() -> None:
    found = lines(ITEMS)
    assert amount(None, found) == Decimal("5.1000")  # 2.5 * 2 + nothing for B + 0.1 * 1
    assert amount(Decimal("7.0000"), found) == Decimal("7.0000")  # the revenue wins
    assert amount(Decimal(0), found) == Decimal(0)  # a revenue of 0 is a revenue
    assert amount(None, []) == Decimal(0)
    assert quantity(found) == 6


def test_currency_codes_are_kept_upper_case_and_none_is_the_sites() -> None:
    assert currency_of("eur") == "EUR"
    assert currency_of(None) is None
    assert currency_of("") is None


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("10.005"), Decimal("10.00")),  # half to even
        (Decimal("10.015"), Decimal("10.02")),
        (Decimal("0.0049"), Decimal("0.00")),
        (None, Decimal("0.00")),
        (Decimal("123456789012345.6789"), Decimal("123456789012345.68")),
    ],
)
def test_money_has_two_decimals(value: Decimal | None, shown: Decimal) -> None:
    assert money(value) == shown
    assert str(money(value)) == str(shown)


def test_means_of_money_round_the_exact_quotient_once() -> None:
    assert money_ratio(Decimal("10"), 3) == Decimal("3.33")
    assert money_ratio(Decimal("0.01"), 2) == Decimal("0.00")  # 0.005 half to even
    assert money_ratio(Decimal("0.03"), 2) == Decimal("0.02")  # 0.015 half to even
    assert money_ratio(Decimal("5"), 0) == Decimal("0.00")
    assert ratio(2, 3, 4) == 0.6667 and ratio(1, 0, 4) == 0.0


def test_a_cursor_names_a_position_and_nothing_else() -> None:
    moment = datetime(2025, 11, 14, 12, 0, 0, 123456, tzinfo=UTC)
    assert decode_cursor(encode_cursor(moment, "T-1/é")) == (moment, "T-1/é")


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64!",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'["2025-11-14T12:00:00", "T"]').decode(),  # no zone
        base64.urlsafe_b64encode(b'["2025-11-14T12:00:00Z", 7]').decode(),
        base64.urlsafe_b64encode(b'["2025-11-14T12:00:00Z", "a\\u0000"]').decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        "",
    ],
)
def test_a_cursor_the_list_did_not_give_is_a_422_naming_it(cursor: str) -> None:
    with pytest.raises(TapiocaError) as caught:
        decode_cursor(cursor)
    assert caught.value.status == 422
    assert [d.field for d in caught.value.details] == ["cursor"]


@pytest.mark.parametrize("name", ["refund", "Order Refunded", "order_refunded", " REFUND "])
def test_refunds_have_one_name(name: str) -> None:
    assert normalise_event_type(name) == "refund"


def test_whole_utc_days_of_a_range() -> None:
    from datetime import date, timedelta

    from tapioca.reports.queries.commerce import utc_days

    five = datetime(2025, 11, 1, 5, tzinfo=UTC)  # New York midnight
    assert utc_days(five, five + timedelta(days=30)) == (date(2025, 11, 2), date(2025, 12, 1))
    midnight = datetime(2025, 11, 1, tzinfo=UTC)
    day = (date(2025, 11, 1), date(2025, 11, 2))
    assert utc_days(midnight, midnight + timedelta(days=1)) == day
    assert utc_days(five, five + timedelta(days=1)) is None  # no whole UTC day inside
