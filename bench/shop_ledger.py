"""The bench shop's figures computed straight from the generated events, in Decimal, by
the rules of metrics.md ("E-commerce metrics") and the commerce contract: the reference
the commerce reports are held to. Nothing here reads a store or Tapioca's code.

Events are fed one by one as the generator yields them (before any encoding); the ledger
keeps per order, cart, refund and page-view hour what the reports need, and can be saved
beside the site's Parquet and read back.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import orjson

PLACES = Decimal("0.0001")  # money as ingest keeps it
CENT = Decimal("0.01")


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(ts: datetime) -> int:
    return (ts - EPOCH) // timedelta(microseconds=1)


def money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(PLACES, rounding=ROUND_HALF_EVEN)


def cents(value: Decimal) -> Decimal:
    """A money figure as the reports give it: 2 decimals, half-even."""
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def _lines_value(items: list[dict[str, Any]]) -> Decimal:
    return sum(
        (
            money(i["price"]) * int(i.get("quantity", 1))
            for i in items
            if i.get("price") is not None
        ),
        Decimal(0),
    )


def _is_bot(event: dict[str, Any]) -> bool:
    return "bot" in str(event.get("user_agent", "")).lower()  # the generator's only crawler


@dataclass
class Order:
    transaction_id: str
    ts: datetime
    event_id: str
    currency: str
    revenue: Decimal
    items: int
    user: str
    session: str
    lines: list[tuple[str, str | None, Decimal | None, int]]  # sku, name, price, quantity


@dataclass
class Refund:
    ts: datetime
    transaction_id: str
    currency: str | None  # as sent, upper-cased
    amount: Decimal | None  # None: the whole order


@dataclass
class Cart:
    ts: datetime
    currency: str
    value: Decimal
    items: int


class ShopLedger:
    def __init__(self, currency: str) -> None:
        self.currency = currency
        self.orders: dict[str, Order] = {}
        self.refunds: list[Refund] = []
        self.carts: list[Cart] = []
        self.pageviews: Counter[int] = Counter()  # non-bot page views per UTC hour (epoch h)
        self.purchase_events = 0

    # -- feeding ------------------------------------------------------------------
    def add(self, event: dict[str, Any]) -> None:
        if _is_bot(event):
            return
        kind = event["event_type"]
        ts = datetime.fromisoformat(event["timestamp"])
        if kind == "page_view":
            self.pageviews[int(ts.timestamp()) // 3600] += 1
        elif kind == "purchase":
            self._purchase(event, ts)
        elif kind == "view_cart":
            items = event.get("items") or []
            value = event.get("revenue", event.get("value"))
            self.carts.append(
                Cart(
                    ts,
                    self._currency(event) or self.currency,
                    money(value) if value is not None else _lines_value(items),
                    sum(int(i.get("quantity", 1)) for i in items),
                )
            )
        elif kind == "refund":
            value = event.get("revenue", event.get("value"))
            items = event.get("items")
            amount = money(value) if value is not None else _lines_value(items) if items else None
            self.refunds.append(
                Refund(ts, str(event["transaction_id"]), self._currency(event), amount)
            )

    @staticmethod
    def _currency(event: dict[str, Any]) -> str | None:
        sent = event.get("currency")
        return str(sent).upper() if sent else None

    def _purchase(self, event: dict[str, Any], ts: datetime) -> None:
        self.purchase_events += 1
        key = str(event.get("transaction_id") or event["event_id"])
        held = self.orders.get(key)
        if held is not None and (held.ts, held.event_id.encode()) <= (
            ts,
            event["event_id"].encode(),
        ):
            return  # a later (or repeated) purchase of the same order counts for nothing
        items = event.get("items") or []
        value = event.get("revenue", event.get("value"))
        self.orders[key] = Order(
            key,
            ts,
            event["event_id"],
            self._currency(event) or self.currency,
            money(value) if value is not None else _lines_value(items),
            sum(int(i.get("quantity", 1)) for i in items),
            str(event["user_id"]),
            str(event["session_id"]),
            [
                (
                    str(i["sku"]),
                    i.get("name"),
                    money(i["price"]) if i.get("price") is not None else None,
                    int(i.get("quantity", 1)),
                )
                for i in items
            ],
        )

    # -- figures over [lo, hi) --------------------------------------------------------
    def orders_in(self, lo: datetime, hi: datetime) -> list[Order]:
        return [o for o in self.orders.values() if lo <= o.ts < hi]

    def refund_amount(self, refund: Refund) -> tuple[str, Decimal]:
        order = self.orders.get(refund.transaction_id)
        currency = refund.currency or (order.currency if order else self.currency)
        if refund.amount is not None:
            return currency, refund.amount
        return currency, order.revenue if order else Decimal(0)

    def summary(self, lo: datetime, hi: datetime) -> dict[str, Any]:
        orders = self.orders_in(lo, hi)
        mine = [o for o in orders if o.currency == self.currency]
        revenue = sum((o.revenue for o in mine), Decimal(0))
        refunds = sum(
            (
                amount
                for currency, amount in (
                    self.refund_amount(r) for r in self.refunds if lo <= r.ts < hi
                )
                if currency == self.currency
            ),
            Decimal(0),
        )
        items = sum(o.items for o in orders)
        return {
            "transactions": len(orders),
            "revenue": cents(revenue),
            "refunds": cents(refunds),
            "net_revenue": cents(revenue - refunds),
            "avg_order_value": cents(revenue / len(mine)) if mine else Decimal(0),
            "avg_items_per_order": round(items / len(orders), 2) if orders else 0,
            "unique_buyers": len({o.user for o in orders}),
            "sessions_with_transactions": len({o.session for o in orders}),
        }

    def cart_figures(self, lo: datetime, hi: datetime) -> dict[str, Any]:
        carts = [c for c in self.carts if lo <= c.ts < hi]
        mine = [c for c in carts if c.currency == self.currency]
        value = sum((c.value for c in mine), Decimal(0))
        return {
            "carts": len(carts),
            "avg_cart_value": cents(value / len(mine)) if mine else Decimal(0),
            "avg_cart_items": round(sum(c.items for c in carts) / len(carts), 2) if carts else 0,
        }

    def products(self, lo: datetime, hi: datetime, limit: int = 10) -> list[dict[str, Any]]:
        """Top skus by revenue (ties by sku), as /commerce/products?sort=revenue."""
        quantity: Counter[str] = Counter()
        revenue: dict[str, Decimal] = {}
        holding: dict[str, set[str]] = {}
        for order in self.orders_in(lo, hi):
            for sku, _name, price, count in order.lines:
                quantity[sku] += count
                revenue.setdefault(sku, Decimal(0))
                if order.currency == self.currency and price is not None:
                    revenue[sku] += price * count
                holding.setdefault(sku, set()).add(order.transaction_id)
        ranked = sorted(revenue, key=lambda sku: (-revenue[sku], sku.encode()))[:limit]
        return [
            {
                "sku": sku,
                "quantity": quantity[sku],
                "revenue": cents(revenue[sku]),
                "transactions": len(holding[sku]),
            }
            for sku in ranked
        ]

    def pageviews_in(self, lo: datetime, hi: datetime) -> int:
        """Page views in [lo, hi); both on whole hours (the shop's zone is whole hours
        from UTC)."""
        assert lo.minute == lo.second == hi.minute == hi.second == 0
        first, after = int(lo.timestamp()) // 3600, int(hi.timestamp()) // 3600
        return sum(n for hour, n in self.pageviews.items() if first <= hour < after)

    # -- keeping ----------------------------------------------------------------------
    def save(self, path: Path) -> None:
        def plain(value: Any) -> Any:
            if isinstance(value, Decimal):
                return str(value)
            raise TypeError(type(value))

        doc = {
            "currency": self.currency,
            "purchase_events": self.purchase_events,
            "orders": [
                [
                    o.transaction_id,
                    _micros(o.ts),
                    o.event_id,
                    o.currency,
                    o.revenue,
                    o.items,
                    o.user,
                    o.session,
                    o.lines,
                ]
                for o in self.orders.values()
            ],
            "refunds": [
                [_micros(r.ts), r.transaction_id, r.currency, r.amount] for r in self.refunds
            ],
            "carts": [[_micros(c.ts), c.currency, c.value, c.items] for c in self.carts],
            "pageviews": sorted(self.pageviews.items()),
        }
        path.write_bytes(orjson.dumps(doc, default=plain))

    @classmethod
    def load(cls, path: Path) -> ShopLedger:
        doc = orjson.loads(path.read_bytes())

        def when(micros: int) -> datetime:
            return EPOCH + timedelta(microseconds=micros)

        def amount(text: str | None) -> Decimal | None:
            return None if text is None else Decimal(text)

        ledger = cls(doc["currency"])
        ledger.purchase_events = doc["purchase_events"]
        for tid, ts, eid, cur, revenue, items, user, session, lines in doc["orders"]:
            ledger.orders[tid] = Order(
                tid, when(ts), eid, cur, Decimal(revenue), items, user, session,
                [(sku, name, amount(price), count) for sku, name, price, count in lines],
            )  # fmt: skip
        ledger.refunds = [
            Refund(when(ts), tid, cur, amount(a)) for ts, tid, cur, a in doc["refunds"]
        ]
        ledger.carts = [Cart(when(ts), cur, Decimal(v), n) for ts, cur, v, n in doc["carts"]]
        ledger.pageviews = Counter({hour: n for hour, n in doc["pageviews"]})
        return ledger
