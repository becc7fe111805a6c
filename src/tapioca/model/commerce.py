"""E-commerce facts, declared once (metrics.md, E-commerce metrics): what a transaction, a
cart and a refund take from their event, the dimensions they carry, and how money is
summed. The derive job makes them (derive/commerce.py); reports read them
(reports/commerce.py)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from tapioca.model.dimensions import EVENT_DIMENSIONS, SESSION_DIMENSIONS, Dimension
from tapioca.model.event import PURCHASE, VIEW_CART

CENTS = Decimal("0.01")
ZERO = Decimal(0)

# The derived tables: a fact of a transaction or a cart keeps the dimensions of its own
# event (EVENT_COLUMNS) and of the session that holds it (SESSION_COLUMNS, refreshed when
# that session changes).
TXN, TXN_ITEM, CART, REFUNDS = "txn", "txn_item", "cart", "refund"
TABLES = [TXN, TXN_ITEM, CART, REFUNDS]
FACT_TABLES = (TXN, CART)
EVENT_COLUMNS = tuple(c for d, c in EVENT_DIMENSIONS.items() if d is not Dimension.EVENT_TYPE)
SESSION_COLUMNS = tuple(SESSION_DIMENSIONS.values())
# The event type of the events each fact table holds (the event_type dimension).
FACT_EVENT_TYPE = {TXN: PURCHASE, CART: VIEW_CART}


# The dimensions a transaction is counted under (breakdowns, filters, rollups): every
# session dimension (its session's value) and event dimension (its purchase event's).
FACT_DIMENSIONS = (*SESSION_DIMENSIONS, *EVENT_DIMENSIONS)


def fact_column(table: str, dimension: Dimension, alias: str = "t") -> str:
    """SQL: a transaction's or cart's value of ``dimension``: its session's for a session
    dimension, its own event's for an event dimension."""
    if dimension in SESSION_DIMENSIONS:
        return f"{alias}.{SESSION_DIMENSIONS[dimension]}"
    if dimension is Dimension.EVENT_TYPE:
        return f"CAST('{FACT_EVENT_TYPE[table]}' AS VARCHAR)"  # one value: no column
    return f"{alias}.{EVENT_DIMENSIONS[dimension]}"


@dataclass(frozen=True, slots=True)
class Line:
    """One line item as the event keeps it (model/event.py ITEM_FIELDS)."""

    sku: str
    name: str | None
    category: str | None
    price: Decimal | None
    quantity: int

    @property
    def total(self) -> Decimal:
        """price * quantity (a line without a price adds nothing)."""
        return ZERO if self.price is None else self.price * self.quantity


def lines(items: str | None) -> list[Line]:
    """The line items of an event's ``items`` JSON text (as ingest stores them: skus and
    prices as text, quantity an integer)."""
    if not items:
        return []
    out = []
    for item in json.loads(items, parse_float=Decimal):
        price = item.get("price")
        quantity = item.get("quantity")
        out.append(
            Line(
                sku=str(item["sku"]),
                name=item.get("name"),
                category=item.get("category"),
                price=None if price is None else Decimal(str(price)),
                quantity=1 if quantity is None else int(quantity),
            )
        )
    return out


def amount(revenue: Decimal | None, items: Iterable[Line]) -> Decimal:
    """An event's money: its ``revenue`` (alias ``value``) when sent, else Σ price * quantity."""
    if revenue is not None:
        return Decimal(revenue)
    return sum((line.total for line in items), ZERO)


def quantity(items: Iterable[Line]) -> int:
    return sum(line.quantity for line in items)


def currency_of(sent: str | None) -> str | None:
    """A currency code as it is kept: upper case; none when not sent (the site's
    reporting currency, whatever it is when a report is asked)."""
    return sent.upper() if sent else None


def money(value: Any) -> Decimal:
    """Money as answers show it: 2 decimals, half to even, from the exact amount."""
    return Decimal(value or 0).quantize(CENTS, rounding=ROUND_HALF_EVEN)


def ratio(part: Any, whole: Any, places: int) -> float:
    """``part / whole`` rounded to ``places``, 0 when ``whole`` is 0."""
    return round(float(part or 0) / float(whole), places) if whole else 0.0


def money_ratio(part: Any, whole: Any) -> Decimal:
    """A mean amount: the exact quotient, rounded as money (0 without a whole)."""
    return money(Decimal(part or 0) / Decimal(whole)) if whole else money(0)
