"""The commerce reference's trickiest readings of the contract, on a handful of events:
which purchase event wins a transaction, what a refund amounts to, the session a
transaction takes its channel from, and money rounded once, from the exact sums."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from support.commerce_reference import Commerce, plain
from support.reference import Event, Item, Question, from_row, items_of, items_text

T0 = datetime(2025, 11, 12, 15, tzinfo=UTC)
MIN = timedelta(minutes=1)


@dataclass(frozen=True)
class Settings:
    timezone: str = "UTC"
    currency: str = "USD"


def ev(event_id: str, event_type: str, minutes: float, user: str = "u", **values: Any) -> Event:
    if "items" in values:
        values["items"] = items_text(values["items"])
    return Event("shop", event_id, event_type, T0 + minutes * MIN, user, **values)


def commerce(*events: Event) -> Commerce:
    return Commerce(events, {"shop": Settings()}, T0 + timedelta(days=1))


def tea(quantity: int, price: str | None = "4.5000") -> Item:
    return Item("TEA", "Tea", "tea", None if price is None else Decimal(price), quantity)


def test_the_smallest_time_then_event_id_in_byte_order_wins_and_bots_count_nowhere() -> None:
    ref = commerce(
        ev("p-a", "purchase", 10, transaction_id="T", revenue=Decimal("10")),
        ev("p-later", "purchase", 20, transaction_id="T", revenue=Decimal("99")),
        ev("p-B", "purchase", 10, transaction_id="T", items=(tea(2),)),  # "B" < "a"
        ev("p-bot", "purchase", 1, transaction_id="T", revenue=Decimal("500"), is_bot=True),
        ev("p-noid", "purchase", 30, revenue=Decimal("3")),
    )
    t = ref.transactions[("shop", "T")]
    assert (t.event.event_id, t.revenue, t.items_count) == ("p-B", Decimal("9.0000"), 2)
    assert ref.transactions[("shop", "p-noid")].revenue == Decimal("3")
    assert len(ref.transactions) == 2


def test_refund_amounts_and_currencies() -> None:
    ref = commerce(
        ev("p1", "purchase", 0, transaction_id="T", items=(tea(3), tea(1, None)), currency="eur"),
        ev("r-amount", "refund", 60, transaction_id="T", revenue=Decimal("1.0000")),
        ev("r-items", "refund", 61, transaction_id="T", items=(tea(1),)),
        ev("r-full", "refund", 62, transaction_id="T"),
        ev("r-unknown", "refund", 63, transaction_id="T-nope"),
        ev("r-bot", "refund", 64, transaction_id="T", is_bot=True),
    )
    got = {r.event.event_id: (r.amount, r.currency) for r in ref.refunds}
    assert got == {
        "r-amount": (Decimal("1"), "EUR"),
        "r-items": (Decimal("4.5"), "EUR"),
        "r-full": (Decimal("13.5"), "EUR"),
        "r-unknown": (Decimal("0"), "USD"),
    }


def test_a_transaction_takes_its_sessions_first_values_not_its_own() -> None:
    ref = commerce(
        ev("v1", "page_view", 0, path="/", channel="Email", device="mobile"),
        ev("v2", "page_view", 25, path="/p", channel="Direct"),
        ev("p1", "purchase", 50, transaction_id="T", channel="Paid Search", path="/done"),
    )
    t = ref.transactions[("shop", "T")]
    assert (t.value("channel"), t.value("landing_page"), t.value("path")) == ("Email", "/", "/done")
    q = Question(day="2025-11-12", filters=(("channel", "Email"), ("path", "/done")))
    assert ref.summary(q)["transactions"] == 1
    assert (
        ref.summary(Question(day="2025-11-12", filters=(("channel", "Direct"),)))["transactions"]
        == 0
    )


def test_money_is_rounded_once_from_the_exact_sums() -> None:
    """revenue 1.015 (1.02 when rounded), refunds 0.005 (0.00): net 1.01, not 1.02."""
    ref = commerce(
        ev("p1", "purchase", 0, transaction_id="T", revenue=Decimal("1.0150")),
        ev("r1", "refund", 5, transaction_id="T", revenue=Decimal("0.0050")),
    )
    got = ref.summary(Question(day="2025-11-12"))
    assert plain({k: got[k] for k in ("revenue", "refunds", "net_revenue")}) == {
        "revenue": Decimal("1.02"),
        "refunds": Decimal("0.00"),
        "net_revenue": Decimal("1.01"),
    }


def test_items_round_trip_through_their_stored_text() -> None:
    items = (tea(2), Item("X", None, None, None, 1))
    row = {
        "site_id": "shop", "event_id": "e", "event_type": "purchase", "ts": T0,
        "visitor_id": "u", "items": items_text(items), "revenue": Decimal("1.5"),
    }  # fmt: skip
    stored = from_row(row)
    assert items_of(stored.items) == items and stored.revenue == Decimal("1.5")
    assert '"price": "4.5000"' in (items_text(items) or "")
