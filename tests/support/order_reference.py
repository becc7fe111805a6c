"""The independent reference of the order reports (metrics.md, "Order analytics"): plain
Python over the rows of a shop's order database (support/order_db.py's ``Order`` and
``OrderItem``), no SQL, nothing imported from Tapioca.

- Only orders whose ``status`` is in the counted set (default ``{"SERVED"}``) count.
- An order's **day and hour**: its ``created_at`` (naive, in the source's zone) read in
  ``source_tz`` and converted to ``site_tz``. Naive times are read as Python's zoneinfo
  reads them (``fold=0``): an ambiguous time (clocks going back) is its first occurrence,
  a time in a gap (clocks going forward) takes the offset from before the gap.
- Ranges are site-zone dates, both ends inclusive; ``None`` leaves that end open.
- ``daily``: per day with at least one counted order, (revenue, orders, average order
  value); revenue = Σ ``total_amount`` (exact; the column holds cents); aov = revenue /
  orders rounded half to even to 2 places, computed exactly (integer cents), no
  intermediate rounding.
- ``hourly``: the count of counted orders per (day, hour 0-23), every hour of every day
  from the first to the last day of the range, zeros included; an open end is the
  first / last day of a counted order.
- ``top_items``: per ``item_id`` over the items of the counted orders of the range:
  Σ quantity and revenue = Σ quantity * unit_price (exact, then rounded half to even to
  2 places, a no-op for 2-place prices); sorted by revenue descending, then item_id
  ascending (code point order); the first ``limit`` (``None``: all). ``item_name`` is the
  name on the item's latest line: the line whose order has the greatest ``created_at``
  (the stored naive value), then the greatest order id, then the greatest line id. It may
  be ``None`` (a line without a name).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

from support.order_db import Order, OrderItem

__all__ = [
    "COUNTED",
    "DailyRow",
    "TopItem",
    "aov",
    "daily",
    "hourly",
    "site_time",
    "top_items",
]

COUNTED: frozenset[str] = frozenset({"SERVED"})
CENT = Decimal("0.01")
ZERO = Decimal(0)

DailyRow = tuple[Decimal, int, Decimal]  # revenue, orders, average order value
TopItem = tuple[str, str | None, int, Decimal]  # item_id, item_name, quantity, revenue
Zone = str | tzinfo


def _zone(zone: Zone) -> tzinfo:
    return ZoneInfo(zone) if isinstance(zone, str) else zone


def site_time(created_at: datetime, source_tz: Zone, site_tz: Zone) -> datetime:
    """``created_at`` (naive, in ``source_tz``) as an aware time in ``site_tz``."""
    if created_at.tzinfo is not None:
        raise ValueError(f"created_at must be naive, got {created_at!r}")
    local = created_at.replace(tzinfo=_zone(source_tz))
    return local.astimezone(UTC).astimezone(_zone(site_tz))


def aov(revenue: Decimal, orders: int) -> Decimal:
    """revenue / orders rounded half to even to cents, exactly (integer arithmetic)."""
    cents = revenue.scaleb(2)
    if cents != cents.to_integral_value():
        raise ValueError(f"revenue {revenue} is not whole cents")
    quotient, remainder = divmod(int(cents), orders)  # floor division: remainder >= 0
    if 2 * remainder > orders or (2 * remainder == orders and quotient % 2 == 1):
        quotient += 1
    return Decimal(quotient).scaleb(-2).quantize(CENT)


def _inside(day: date, start: date | None, end: date | None) -> bool:
    return (start is None or day >= start) and (end is None or day <= end)


def _counted(
    orders: Iterable[Order],
    source_tz: Zone,
    site_tz: Zone,
    statuses: Collection[str],
    start: date | None,
    end: date | None,
) -> list[tuple[Order, datetime]]:
    """The counted orders of the range, each with its site-zone time."""
    source, site = _zone(source_tz), _zone(site_tz)
    found = []
    for order in orders:
        if order.status not in statuses:
            continue
        when = site_time(order.created_at, source, site)
        if _inside(when.date(), start, end):
            found.append((order, when))
    return found


def daily(
    orders: Iterable[Order],
    *,
    source_tz: Zone,
    site_tz: Zone,
    statuses: Collection[str] = COUNTED,
    start: date | None = None,
    end: date | None = None,
) -> dict[date, DailyRow]:
    """Per site-zone day with a counted order: (revenue, orders, aov), days ascending."""
    revenue: dict[date, Decimal] = defaultdict(lambda: ZERO)
    count: dict[date, int] = defaultdict(int)
    for order, when in _counted(orders, source_tz, site_tz, statuses, start, end):
        revenue[when.date()] += order.total_amount
        count[when.date()] += 1
    return {day: (revenue[day], count[day], aov(revenue[day], count[day])) for day in sorted(count)}


def hourly(
    orders: Iterable[Order],
    start: date | None = None,
    end: date | None = None,
    *,
    source_tz: Zone,
    site_tz: Zone,
    statuses: Collection[str] = COUNTED,
) -> dict[tuple[date, int], int]:
    """Counted orders per (site-zone day, hour), every hour from ``start`` to ``end``."""
    counted = _counted(orders, source_tz, site_tz, statuses, start, end)
    days = [when.date() for _, when in counted]
    first = start if start is not None else min(days, default=None)
    last = end if end is not None else max(days, default=None)
    if first is None or last is None:
        return {}
    table: dict[tuple[date, int], int] = {}
    day = first
    while day <= last:
        for hour in range(24):
            table[(day, hour)] = 0
        day += timedelta(days=1)
    for _, when in counted:
        table[(when.date(), when.hour)] += 1
    return table


def top_items(
    orders: Iterable[Order],
    items: Iterable[OrderItem],
    start: date | None = None,
    end: date | None = None,
    limit: int | None = 10,
    *,
    source_tz: Zone,
    site_tz: Zone,
    statuses: Collection[str] = COUNTED,
) -> list[TopItem]:
    """The items of the counted orders of the range, by revenue (see the module doc)."""
    counted = {
        order.id: order for order, _ in _counted(orders, source_tz, site_tz, statuses, start, end)
    }
    quantity: dict[str, int] = defaultdict(int)
    revenue: dict[str, Decimal] = defaultdict(lambda: ZERO)
    latest: dict[str, tuple[tuple[datetime, int, int], str | None]] = {}
    for item in items:
        order = counted.get(item.order_id)
        if order is None:
            continue
        quantity[item.item_id] += item.quantity
        revenue[item.item_id] += item.quantity * item.unit_price
        key = (order.created_at, order.id, item.id)
        seen = latest.get(item.item_id)
        if seen is None or key > seen[0]:
            latest[item.item_id] = (key, item.item_name)
    rows = [
        (
            item_id,
            latest[item_id][1],
            quantity[item_id],
            revenue[item_id].quantize(CENT, ROUND_HALF_EVEN),
        )
        for item_id in quantity
    ]
    rows.sort(key=lambda row: (-row[3], row[0]))
    return rows if limit is None else rows[:limit]
