"""The figures of a report's transactions, carts and refunds: in total, per value of a
dimension or per bucket of an interval.

From the hourly commerce rollups when they can answer (no filters, a range on whole UTC
hours), else from the derived facts (derive/commerce.py). Distinct buyers and sessions
come from the rollups too: those of a range are its transactions that are the first of
their user (or session) ever, counted per hour, plus those whose previous one is before
the range (or the bucket), read from the few repeat transactions of the range."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tapioca.kit.timerange import Interval
from tapioca.model.commerce import CART, TXN, ZERO, fact_column
from tapioca.model.dimensions import TOTAL, Dimension
from tapioca.reports.executor import Executor
from tapioca.reports.queries import Params
from tapioca.reports.queries.commerce import (
    ROLLED,
    ROLLED_SALES,
    build_carts,
    build_crossing,
    build_distinct,
    build_refunds,
    build_rolled_sales,
    build_sales,
    fact_where,
)
from tapioca.reports.queries.rollup import by_bucket, by_value
from tapioca.reports.scope import Scope


@dataclass(slots=True)
class Money:
    """The money of one currency."""

    transactions: int = 0
    revenue: Decimal = ZERO
    refunds: Decimal = ZERO
    carts: int = 0
    cart_value: Decimal = ZERO


@dataclass(slots=True)
class Sales:
    """The figures of the transactions (and, in total, carts and refunds) of one key."""

    transactions: int = 0
    items: int = 0
    buyers: int = 0
    txn_sessions: int = 0
    carts: int = 0
    cart_items: int = 0
    currencies: dict[str, Money] = field(default_factory=dict)

    def money(self, currency: str) -> Money:
        return self.currencies.setdefault(currency, Money())

    def figures(self, currency: str) -> dict[str, Any]:
        """What the web metrics read (reports/metrics.py): revenue in ``currency``."""
        revenue = self.currencies[currency].revenue if currency in self.currencies else ZERO
        return {"transactions": self.transactions, "revenue": revenue,
                "txn_sessions": self.txn_sessions}  # fmt: skip


Key = Dimension | Interval | None


async def sales(
    ex: Executor, scope: Scope, key: Key = None, everything: bool = False
) -> dict[Any, Sales]:
    """The figures per key (None: the total, which holds carts, refunds and buyers too
    when ``everything``): per value of a dimension (a transaction's session's value for
    a session dimension, its purchase event's for an event dimension), or per bucket
    key (Interval.key_of)."""
    if scope.rolled:
        return await _rolled(ex, scope, key, everything)
    return await _raw(ex, scope, key, everything)


def _keys(scope: Scope, key: Key) -> tuple[Callable[[Params], str] | None, Callable[[Any], Any]]:
    """SQL of a transaction's key (over ``txn t``), and the key of a value it gives."""
    if isinstance(key, Interval):
        zone = scope.span.tz.key
        return (lambda p: key.key_sql("t.ts", p.add(zone))), key.key_of
    if isinstance(key, Dimension):
        column = fact_column(TXN, key)
        return (lambda _p: column), (lambda value: value)
    return None, lambda _value: None


async def _raw(ex: Executor, scope: Scope, key: Key, everything: bool) -> dict[Any, Sales]:
    site, span = scope.site, scope.span
    start, end = span.start_utc, span.end_utc
    group, key_of = _keys(scope, key)
    out: dict[Any, Sales] = {}
    p = Params()
    where = fact_where(TXN, site.id, start, end, scope.filters, p)
    sql_key = group(p) if group else None
    own = scope.currency
    for row in await ex.dicts(build_sales(where, p, sql_key)):
        found = out.setdefault(key_of(row.get("k")), Sales())
        _add(found, row["currency"] or own, row)
    p = Params()
    where = fact_where(TXN, site.id, start, end, scope.filters, p)
    for row in await ex.dicts(build_distinct(where, p, group(p) if group else None)):
        found = out.setdefault(key_of(row.get("k")), Sales())
        found.buyers, found.txn_sessions = int(row["buyers"]), int(row["txn_sessions"])
    if key is None and everything:
        total = out.setdefault(None, Sales())
        p = Params()
        carts = build_carts(fact_where(CART, site.id, start, end, scope.filters, p, "c"), p)
        for row in await ex.dicts(carts):
            _add(total, row["currency"] or own, row)
        refunds = build_refunds(site.id, start, end, scope.filters, own)
        for row in await ex.dicts(refunds):
            total.money(row["currency"]).refunds += row["refunds"] or ZERO
    return out


def _add(found: Sales, currency: str, row: dict[str, Any]) -> None:
    """Add a row of sums (of some of the figures) in ``currency`` to ``found``."""
    money = found.money(currency)
    transactions = int(row.get("transactions") or 0)
    found.transactions += transactions
    found.items += int(row.get("items") or 0)
    found.carts += int(row.get("carts") or 0)
    found.cart_items += int(row.get("cart_items") or 0)
    found.buyers += int(row.get("new_buyers") or 0)
    found.txn_sessions += int(row.get("new_sessions") or 0)
    money.transactions += transactions
    money.revenue += row.get("revenue") or ZERO
    money.carts += int(row.get("carts") or 0)
    money.cart_value += row.get("cart_value") or ZERO
    money.refunds += row.get("refunds") or ZERO


async def _rolled(ex: Executor, scope: Scope, key: Key, everything: bool) -> dict[Any, Sales]:
    site, span = scope.site, scope.span
    start, end = span.start_utc, span.end_utc
    assert start is not None  # a report's range has both ends (reports/scope.py)
    zone = span.tz.key
    dim, rolled_group = TOTAL, None
    split: Callable[[Params], str] | None = None
    if isinstance(key, Interval):
        rolled_group = by_bucket(key, zone)
        interval = key

        def split(p: Params) -> str:  # the previous one in an earlier bucket
            z = p.add(zone)
            return f"{interval.key_sql('t.prev_session_ts', z)} <> {interval.key_sql('t.ts', z)}"

    elif isinstance(key, Dimension):
        dim, rolled_group = key.value, by_value
    group, key_of = _keys(scope, key)
    out: dict[Any, Sales] = {}
    assert end is not None
    days = not isinstance(key, Interval)  # per UTC day, where no bucket splits one
    # carts and refunds count in the total only
    figures = ROLLED if key is None and everything else ROLLED_SALES
    query = build_rolled_sales(site.id, dim, start, end, rolled_group, days, figures)
    for row in await ex.dicts(query):
        if key is not None and not row["transactions"]:
            continue
        _add(out.setdefault(key_of(row.get("k")), Sales()), row["currency"] or scope.currency, row)
    crossing = build_crossing(site.id, start, end, "prev_session_ts", group, split)
    for row in await ex.dicts(crossing):
        out.setdefault(key_of(row.get("k")), Sales()).txn_sessions += int(row["n"])
    if key is None and everything:
        total = out.setdefault(None, Sales())
        ((buyers,),) = await ex.rows(build_crossing(site.id, start, end, "prev_buyer_ts"))
        total.buyers += int(buyers)
    return out
