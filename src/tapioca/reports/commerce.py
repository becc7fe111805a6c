"""E-commerce reports: summary, carts, products, transactions (metrics.md, E-commerce
metrics), and the answers of the BobaShop routes.

Every number comes from the derived transactions, line items, carts and refunds
(derive/commerce.py) of one snapshot, which hold the events up to the same seq as the
sessions and rollups: a conversion rate never divides the transactions of some events by
the sessions of others. Money is summed exactly (Decimal) in the site's reporting
currency and shown with 2 decimals; amounts in other currencies are listed apart."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from tapioca.errors import invalid_parameter, not_found
from tapioca.model.commerce import TXN, ZERO, money, money_ratio, ratio
from tapioca.reports import web
from tapioca.reports.executor import Executor
from tapioca.reports.queries import Params
from tapioca.reports.queries.commerce import (
    build_items,
    build_product_names,
    build_products,
    build_rolled_products,
    build_transaction,
    build_transactions,
    fact_where,
)
from tapioca.reports.sales import Money, Sales, sales
from tapioca.reports.scope import Scope
from tapioca.sites.site import Site

PRODUCT_SORTS = ("revenue", "quantity", "transactions")


async def summary(ex: Executor, scope: Scope) -> dict[str, Any]:
    """transactions, revenue, refunds, net revenue, order value, items per order, buyers,
    sessions with transactions and the conversion rate; each currency's money apart."""
    found = (await sales(ex, scope, everything=True)).get(None, Sales())
    sessions = int((await web.session_totals(ex, scope)).get("sessions") or 0)
    own = found.currencies.get(scope.currency) or Money()
    by_currency = [
        {
            "currency": code,
            "transactions": kept.transactions,
            "revenue": money(kept.revenue),
            "refunds": money(kept.refunds),
            "net_revenue": money(kept.revenue - kept.refunds),
            "avg_order_value": money_ratio(kept.revenue, kept.transactions),
        }
        for code, kept in sorted(found.currencies.items())
        if kept.transactions or kept.refunds
    ]
    return {
        **scope.echo(),
        "currency": scope.currency,
        "transactions": found.transactions,
        "revenue": money(own.revenue),
        "refunds": money(own.refunds),
        "net_revenue": money(own.revenue - own.refunds),
        "avg_order_value": money_ratio(own.revenue, own.transactions),
        "avg_items_per_order": ratio(found.items, found.transactions, 2),
        "unique_buyers": found.buyers,
        "sessions_with_transactions": found.txn_sessions,
        "sessions": sessions,
        "conversion_rate": ratio(found.txn_sessions, sessions, 4),
        "by_currency": by_currency,
    }


async def carts(ex: Executor, scope: Scope) -> dict[str, Any]:
    """carts (view_cart events), their mean value (in the reporting currency) and items."""
    found = (await sales(ex, scope, everything=True)).get(None, Sales())
    own = found.currencies.get(scope.currency) or Money()
    return {
        **scope.echo(),
        "currency": scope.currency,
        "carts": found.carts,
        "avg_cart_value": money_ratio(own.cart_value, own.carts),
        "avg_cart_items": ratio(found.cart_items, found.carts, 2),
    }


async def products(ex: Executor, scope: Scope, sort: str, limit: int) -> dict[str, Any]:
    """Per sku: quantity, revenue and transactions over the line items of the range's
    transactions, by ``sort`` descending (ties by sku), at most ``limit``; each with its
    current name."""
    span, site = scope.span, scope.site
    if scope.rolled and span.start_utc is not None and span.end_utc is not None:
        query = build_rolled_products(site.id, span.start_utc, span.end_utc, scope.currency)
    else:
        query = build_products(site.id, span.start_utc, span.end_utc, scope.filters, scope.currency)
    rows = [
        {"sku": sku, "quantity": int(q or 0), "revenue": r or ZERO, "transactions": int(n or 0)}
        for sku, q, r, n in await ex.rows(query)
    ]
    rows.sort(key=lambda row: (-row[sort], row["sku"]))
    rows = rows[:limit]
    names: dict[str, str | None] = dict(
        await ex.rows(build_product_names(site.id, [row["sku"] for row in rows]))
    )
    results = [
        {"sku": row["sku"], "name": names.get(row["sku"]), "quantity": row["quantity"],
         "revenue": money(row["revenue"]), "transactions": row["transactions"]}
        for row in rows
    ]  # fmt: skip
    return {**scope.echo(), "currency": scope.currency, "sort": sort, "results": results}


def _utc(moment: datetime) -> str:
    """RFC 3339 in UTC, with a Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def encode_cursor(ts: datetime, transaction_id: str) -> str:
    """An opaque position in the newest-first list: after this transaction."""
    text = json.dumps([_utc(ts), transaction_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, tx = json.loads(text)
        ts = datetime.fromisoformat(moment)
        if ts.tzinfo is None or not isinstance(tx, str) or "\x00" in tx:
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise invalid_parameter("cursor", "not a cursor this list gave") from exc
    return ts, tx


# The first window of time a page of transactions is looked for in, before its end (the
# range's, or the cursor's), and how much wider each next one is while it holds too few:
# the newest of a range are found without reading, or sorting, the rest of it.
FIRST_WINDOW = timedelta(days=1)
WIDER = 8
LAST_WINDOW = timedelta(days=1000)  # wider: the whole range (of an open start too)


async def _newest(
    ex: Executor, scope: Scope, n: int, after: tuple[datetime, str] | None
) -> list[dict[str, Any]]:
    """The ``n`` newest transactions of the scope after the cursor position ``after``:
    those from ``top - w`` on (``top``: the cursor's time, else the range's end) when the
    window holds n of them, since every one before it is older; else those of the next,
    wider window, until it starts at the range's start."""
    start, end = scope.span.start_utc, scope.span.end_utc
    top = after[0] if after is not None else end
    window = FIRST_WINDOW
    while True:
        lo = start
        if top is not None and window <= LAST_WINDOW and (start is None or top - window > start):
            lo = top - window
        p = Params()
        where = fact_where(TXN, scope.site.id, lo, end, scope.filters, p)
        found = await ex.dicts(build_transactions(where, p, n, after))
        if len(found) >= n or lo == start:
            return found
        window *= WIDER


async def transactions(
    ex: Executor, scope: Scope, limit: int, cursor: str | None = None
) -> dict[str, Any]:
    """The range's transactions, newest first, ``limit`` at a time: ``next_cursor`` asks
    for the ones after the last (None on the last page)."""
    after = decode_cursor(cursor) if cursor else None
    found = await _newest(ex, scope, limit + 1, after)
    page = found[:limit]
    results = [
        {"transaction_id": row["transaction_id"], "ts": _utc(row["ts"]),
         "revenue": money(row["revenue"]), "currency": row["currency"] or scope.currency,
         "items": int(row["items"]),
         "user": row["visitor_id"], "session_id": row["session_id"], "channel": row["channel"],
         "source": row["source"], "device": row["device"], "landing_page": row["landing_path"]}
        for row in page
    ]  # fmt: skip
    last = page[-1] if page and len(found) > limit else None
    return {
        **scope.echo(),
        "results": results,
        "next_cursor": encode_cursor(last["ts"], last["transaction_id"]) if last else None,
    }


async def transaction(ex: Executor, site: Site, transaction_id: str) -> dict[str, Any]:
    """One transaction: its money, its session's dimensions and its line items."""
    own = site.currency.upper()
    found = await ex.dicts(build_transaction(site.id, transaction_id, own))
    if not found:
        raise not_found("transaction_not_found", f"No transaction '{transaction_id}' on this site.")
    row = found[0]
    items = await ex.dicts(build_items(site.id, transaction_id))
    return {
        "site_id": site.id,
        "transaction_id": row["transaction_id"],
        "ts": _utc(row["ts"]),
        "revenue": money(row["revenue"]),
        "currency": row["currency"] or own,
        "items_count": int(row["items"]),
        "refunds": money(row["refunds"]),
        "user": row["visitor_id"],
        "session_id": row["session_id"],
        "landing_page": row["landing_path"],
        **{k: row[k] for k in ("channel", "source", "device", "browser", "os", "utm_source",
                               "utm_medium", "utm_campaign", "path", "page_type")},
        "items": [
            {"sku": i["sku"], "name": i["name"], "category": i["category"],
             "price": None if i["price"] is None else money(i["price"]),
             "quantity": int(i["quantity"])}
            for i in items
        ],
    }  # fmt: skip


async def transaction_items(ex: Executor, site: Site, transaction_id: str) -> dict[str, Any]:
    """BobaShop's items of one transaction: sku, quantity, price and currency of each line
    of the purchase event that made it."""
    own = site.currency.upper()
    items = await ex.dicts(build_items(site.id, transaction_id))
    if not items and not await ex.rows(build_transaction(site.id, transaction_id, own)):
        raise not_found("transaction_not_found", f"No transaction '{transaction_id}' on this site.")
    return {
        "transaction_id": transaction_id,
        "items": [
            {"sku": i["sku"], "quantity": int(i["quantity"]),
             "price": None if i["price"] is None else money(i["price"]),
             "currency": i["currency"] or own}
            for i in items
        ],
    }  # fmt: skip
