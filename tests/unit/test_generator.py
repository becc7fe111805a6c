"""The bench generator: the benchmarks' figures are only as honest as its traffic."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.generator import generate

START = datetime(2025, 10, 1, tzinfo=UTC)


def test_same_seed_same_events_and_exactly_the_count() -> None:
    first = list(generate(7, 5_000))
    assert first == list(generate(7, 5_000))
    assert len(first) == 5_000
    assert len({e["event_id"] for e in first}) == 5_000
    assert first != list(generate(8, 5_000))


def test_events_spread_over_every_day_of_the_span() -> None:
    events = list(generate(3, 60_000, start=START, days=30))
    per_day = Counter(
        (datetime.fromisoformat(e["timestamp"]) - START) // timedelta(days=1) for e in events
    )
    inside = [per_day[day] for day in range(30)]
    assert min(inside) > 2_000 * 0.8, inside
    assert max(inside) < 2_000 * 1.2, inside
    # only sessions begun in the last minutes of the span run past it
    assert sum(n for day, n in per_day.items() if not 0 <= day < 30) < 50


def test_no_filler_every_event_belongs_to_a_session() -> None:
    events = list(generate(5, 20_000))
    same = Counter((e["user_id"], e["path"], e["timestamp"]) for e in events)
    assert same.most_common(1)[0][1] == 1
    sessions = Counter(e["session_id"] for e in events)
    assert len(sessions) > 20_000 / 6
    visitors = {e["user_id"] for e in events}
    assert len(sessions) > len(visitors) > len(sessions) / 2


def test_sessions_come_in_order_of_their_start() -> None:
    firsts: dict[str, str] = {}
    for event in generate(9, 10_000):
        firsts.setdefault(event["session_id"], event["timestamp"])
    starts = list(firsts.values())
    assert starts == sorted(starts)


def test_shop_is_deterministic_and_bobashop_shaped() -> None:
    from bench.generator import SHOP_CURRENCY, generate_shop
    from bench.shop_ledger import ShopLedger

    events = list(generate_shop(4, 20_000, days=10))
    assert events == list(generate_shop(4, 20_000, days=10))
    assert len({e["event_id"] for e in events}) == len(events)
    kinds = Counter(e["event_type"] for e in events)
    assert 5.2 < len(events) / 20_000 < 5.8, kinds
    assert len({e["session_id"] for e in events if "session_id" in e}) == 20_000
    purchases = [e for e in events if e["event_type"] == "purchase"]
    orders = Counter(e["transaction_id"] for e in purchases)
    assert 0.18 < len(orders) / 20_000 < 0.22
    assert 0.01 < sum(n > 1 for n in orders.values()) / len(orders) < 0.03  # sent twice
    assert max(orders.values()) == 2
    assert kinds["view_cart"] > 2 * len(orders)  # most carts are left
    assert 0 < kinds["refund"] < len(orders) * 0.02
    lines = [line for e in purchases for line in e["items"]]
    assert all(line.get("quantity", 1) >= 1 for line in lines)
    assert any("quantity" not in line for line in lines)
    assert sum(len(e["items"]) > 1 for e in purchases) > len(purchases) / 4
    assert len({line["sku"] for line in lines}) > 100
    currencies = Counter(e.get("currency") for e in purchases)
    assert currencies.most_common(1)[0][0] == SHOP_CURRENCY and len(currencies) == 4
    ledger = ShopLedger(SHOP_CURRENCY)
    for event in events:
        ledger.add(event)
    assert len(ledger.orders) == len(orders) and ledger.purchase_events == len(purchases)
    assert len(ledger.carts) == kinds["view_cart"]


def test_shop_ledger_follows_the_transaction_rules() -> None:
    from decimal import Decimal

    from bench.shop_ledger import ShopLedger

    def at(minute: int) -> str:
        return (START + timedelta(minutes=minute)).isoformat()

    line = {"sku": "A", "price": 2.5, "quantity": 2}
    base = {"user_id": "u", "session_id": "s", "event_type": "purchase"}
    ledger = ShopLedger("EUR")
    events: list[dict[str, Any]] = [
        {**base, "event_id": "b", "timestamp": at(1), "transaction_id": "T1", "revenue": 9},
        # same key, same time, smaller event id: this one wins
        {**base, "event_id": "a", "timestamp": at(1), "transaction_id": "T1", "items": [line]},
        {**base, "event_id": "c", "timestamp": at(0), "transaction_id": "T2", "value": 3.33333,
         "currency": "usd"},
        {**base, "event_id": "d", "timestamp": at(2), "items": [line, {"sku": "B"}]},  # no id
        {"event_type": "refund", "event_id": "e", "timestamp": at(3), "transaction_id": "T1",
         "user_id": "u"},
        {"event_type": "refund", "event_id": "f", "timestamp": at(4), "transaction_id": "T9",
         "user_id": "u", "revenue": 1},
        {**base, "event_type": "page_view", "event_id": "g", "timestamp": at(5),
         "user_agent": "Googlebot/2.1"},
    ]  # fmt: skip
    for event in events:
        ledger.add(event)
    assert ledger.orders["T1"].revenue == Decimal(5)
    assert ledger.orders["T2"].currency == "USD"
    assert ledger.orders["T2"].revenue == Decimal("3.3333")
    assert ledger.orders["d"].items == 3
    s = ledger.summary(START, START + timedelta(hours=1))
    assert s["transactions"] == 3
    assert s["revenue"] == Decimal("10.00")  # T1 and d: EUR; T2 is USD
    assert s["refunds"] == Decimal("6.00")  # all of T1, and 1 of an unknown order
    assert s["avg_order_value"] == Decimal("5.00")
    assert s["avg_items_per_order"] == 1.67
    assert s["unique_buyers"] == 1 and s["sessions_with_transactions"] == 1
    assert ledger.pageviews_in(START, START + timedelta(hours=1)) == 0
