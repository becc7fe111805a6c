"""A site's reporting currency: money sent without a currency is in it, whatever it is
when the report is asked; money in another currency is never added to it. On both
stores, from the rollups and from the facts (a filter)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from support.factories import make_row
from tapioca.derive.jobs import derive_once
from tapioca.reports import commerce
from tapioca.reports.executor import Executor
from tapioca.reports.scope import resolve_scope
from tapioca.sites.service import SiteChanges, update_site
from tapioca.storage.base import Store
from tapioca.storage.rows import EventRow

pytestmark = pytest.mark.integration

T = datetime(2025, 11, 14, 12, 0, tzinfo=UTC)
ITEMS = json.dumps([{"sku": "TARO", "name": "Taro", "category": None, "price": "4.2500",
                     "quantity": 2}])  # fmt: skip


def purchase(n: int, currency: str | None, revenue: str | None) -> EventRow:
    return make_row(
        event_id=f"p{n}", event_type="purchase", ts=T + timedelta(minutes=n),
        transaction_id=f"T{n}", visitor_id=f"u{n}", currency=currency,
        revenue=None if revenue is None else Decimal(revenue), items=ITEMS,
    )  # fmt: skip


async def report(store: Store, filters: str | None) -> tuple[dict, dict]:  # type: ignore[type-arg]
    async def run(ex: Executor) -> tuple[dict, dict]:  # type: ignore[type-arg]
        scope = await resolve_scope(ex.db, "shop", "2025-11-14", None, None, None, filters, T)
        return (await commerce.summary(ex, scope),
                await commerce.products(ex, scope, "revenue", 10))  # fmt: skip

    return await Executor(store).answer(run)


@pytest.mark.parametrize("filters", [None, "device==desktop"])
async def test_money_without_a_currency_follows_the_sites(
    migrated_store: Store, filters: str | None
) -> None:
    store = migrated_store
    rows = [purchase(1, None, "10.00"), purchase(2, "eur", None), purchase(3, "USD", "1.50")]
    rows = [r._replace(device="desktop") for r in rows]
    await store.write_events(rows)
    await derive_once(store)

    summary, products = await report(store, filters)
    usd = ("USD", 3, Decimal("11.50"))
    assert (summary["currency"], summary["transactions"], summary["revenue"]) == usd
    assert [(c["currency"], c["transactions"], c["revenue"]) for c in summary["by_currency"]] == [
        ("EUR", 1, Decimal("8.50")), ("USD", 2, Decimal("11.50")),
    ]  # fmt: skip
    assert summary["avg_order_value"] == Decimal("5.75")
    ((taro,),) = [products["results"]]
    assert (taro["quantity"], taro["revenue"], taro["transactions"]) == (6, Decimal("17.00"), 3)

    await update_site(store, "shop", SiteChanges(currency="eur"))
    summary, products = await report(store, filters)
    assert (summary["currency"], summary["revenue"]) == ("EUR", Decimal("18.50"))
    assert [(c["currency"], c["transactions"], c["revenue"]) for c in summary["by_currency"]] == [
        ("EUR", 2, Decimal("18.50")), ("USD", 1, Decimal("1.50")),
    ]  # fmt: skip
    assert products["results"][0]["revenue"] == Decimal("17.00")  # two of three in EUR now
