"""The commerce routes over HTTP, on the app of either store run in this process.

The shop traffic (support/shop_traffic.py) is written as rows into the store an instance
then starts on, derived wave by wave; the owner signs in and asks every
/api/v1/commerce/* route, the web reports' commerce metrics, and BobaShop's routes
(dates inclusive, either bound alone open on the other side, none: all time), each answer
compared with the reference (support/commerce_reference.py) as JSON: money parsed as
decimals, numbers with at most 2 decimals.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from support.accounts import (
    OWNER_EMAIL,
    OWNER_PASSWORD,
    STORES,
    bearer,
    client_of,
    owner_app,
    running,
    settings_for,
    sign_in,
)
from support.commerce_reference import (
    BOBA_ROUTES,
    COMMERCE_METRICS,
    Commerce,
    SessionIds,
    comparable,
    plain,
)
from support.error_shape import assert_error, fields_of
from support.loaded import load_waves
from support.reference import Question, from_wire
from support.shop_traffic import CAFE, SHOP, SITES, shop_traffic
from tapioca.storage.base import Store

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

TRAFFIC = shop_traffic()
REF = Commerce(TRAFFIC.events, SITES)
MONEY = {"revenue", "refunds", "net_revenue", "avg_order_value", "avg_cart_value", "price"}


async def load(store: Store) -> None:
    """The sites, then the traffic wave by wave, each derived."""
    sites = [(site, settings.timezone, settings.currency) for site, settings in SITES.items()]
    await load_waves(store, sites, TRAFFIC.waves)


@dataclass
class Shop:
    client: httpx.AsyncClient
    owner: dict[str, str]

    async def get(self, path: str, params: Mapping[str, str]) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.owner)

    async def answer(self, path: str, params: Mapping[str, str]) -> Any:
        """A 200 answer, money read as decimals; every money figure a number with at most
        2 decimals."""
        response = await self.get(path, params)
        assert response.status_code == 200, response.text
        body = json.loads(response.text, parse_float=Decimal)
        check_money(body)
        return body


def check_money(value: Any, key: str | None = None) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            check_money(v, k)
    elif isinstance(value, list):
        for v in value:
            check_money(v, key)
    elif key in MONEY and value is not None:
        assert isinstance(value, Decimal | int) and not isinstance(value, bool), (key, value)
        exponent = value.as_tuple().exponent if isinstance(value, Decimal) else 0
        assert isinstance(exponent, int) and exponent >= -2, (key, value)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=STORES)
async def shop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Shop]:
    data_dir = tmp_path_factory.mktemp(f"commerce-http-{request.param}")
    async with owner_app(request, data_dir, load) as (client, owner):
        yield Shop(client, owner)


def check(got: Any, want: Any, ids: SessionIds | None = None) -> None:
    got, want = comparable(got, want, ids)
    assert got == want


# == BobaShop's routes ================================================================

RANGES: list[tuple[str, dict[str, str]]] = [
    (SHOP, {}),  # all time
    (SHOP, {"start_date": "2025-10-27", "end_date": "2025-11-17"}),
    (SHOP, {"start_date": "2025-11-10"}),  # from then on
    (SHOP, {"end_date": "2025-11-05"}),  # up to then
    (SHOP, {"start_date": "2025-11-08", "end_date": "2025-11-08"}),  # New York's day
    (SHOP, {"start_date": "2025-11-08", "end_date": "2025-11-09", "tz": "UTC"}),
    (SHOP, {"end_date": "2025-11-12", "tz": "Asia/Kolkata"}),
    (CAFE, {}),
    (CAFE, {"start_date": "2025-11-07"}),
]


@pytest.mark.parametrize("route", BOBA_ROUTES)
@pytest.mark.parametrize(("site", "params"), RANGES, ids=[f"{s}-{p}" for s, p in RANGES])
async def test_bobashop_routes(shop: Shop, route: str, site: str, params: dict[str, str]) -> None:
    got = await shop.answer(route, {"site_id": site, **params})
    want = REF.boba(site, params.get("start_date"), params.get("end_date"), params.get("tz"))
    check(got, want.answer(route))


ITEMS = [
    (SHOP, "T-dup-earlier"),  # the earlier duplicate's items
    (SHOP, "T-dup-tie"),
    (SHOP, "T-loyal-4"),  # "usd"
    (SHOP, "T-client-late"),  # "eur"
    (SHOP, "gift-1"),  # no transaction id; an item without a price
    (SHOP, "T-100"),
    (CAFE, "T-100"),
]


@pytest.mark.parametrize(("site", "transaction_id"), ITEMS)
async def test_bobashop_items(shop: Shop, site: str, transaction_id: str) -> None:
    got = await shop.answer(f"/transactions/{transaction_id}/items", {"site_id": site})
    check(got, REF.boba(site).items(transaction_id))


@pytest.mark.parametrize("transaction_id", ["T-nope", "T-bot-only", "dup2-a"])
async def test_bobashop_items_of_an_unknown_transaction_are_404(
    shop: Shop, transaction_id: str
) -> None:
    response = await shop.get(f"/transactions/{transaction_id}/items", {"site_id": SHOP})
    assert_error(response, 404, "transaction_not_found")


async def test_bobashop_routes_refuse_what_they_do_not_take(shop: Shop) -> None:
    response = await shop.get("/metrics/pageviews/total", {"site_id": SHOP, "date": "2025-11-08"})
    assert fields_of(assert_error(response, 422, "validation_error")) == ["date"]
    response = await shop.get(
        "/metrics/cart/avg", {"site_id": SHOP, "start_date": "2025-11-09", "end_date": "2025-11-08"}
    )
    assert fields_of(assert_error(response, 422, "validation_error")) == ["start_date"]


# == /api/v1/commerce/* ===============================================================

ALL = Question(site=SHOP, start="2025-10-27", end="2025-11-17", tz=None)
QUESTIONS = [
    ALL,
    Question(site=SHOP, day="2025-11-08", tz=None),
    Question(site=SHOP, start="2025-11-08", end="2025-11-09", tz="UTC"),
    Question(site=SHOP, tz=None),  # the 30 days up to today
    replace(ALL, filters=(("channel", "Email"),)),
    replace(ALL, filters=(("device", "mobile"), ("path", "/checkout/complete"))),
    Question(site=CAFE, start="2025-10-27", end="2025-11-17", tz="UTC"),
]


@pytest.mark.parametrize("q", QUESTIONS, ids=str)
async def test_summary_and_carts(shop: Shop, q: Question) -> None:
    check(await shop.answer("/api/v1/commerce/summary", q.params()), REF.summary(q))
    check(await shop.answer("/api/v1/commerce/carts", q.params()), REF.carts_report(q))


@pytest.mark.parametrize("q", QUESTIONS, ids=str)
async def test_products(shop: Shop, q: Question) -> None:
    check(await shop.answer("/api/v1/commerce/products", q.params()), REF.products(q))
    for sort, limit in (("quantity", 3), ("transactions", 1000), ("revenue", 1)):
        params = {**q.params(), "sort": sort, "limit": str(limit)}
        got = await shop.answer("/api/v1/commerce/products", params)
        check(got, REF.products(q, sort, limit))


@pytest.mark.parametrize("limit", [None, 1, 9])
@pytest.mark.parametrize("q", QUESTIONS, ids=str)
async def test_transactions_page_by_page(shop: Shop, q: Question, limit: int | None) -> None:
    """Every transaction once, newest first, following next_cursor (default limit: 50)."""
    rows: list[Any] = []
    params = q.params() if limit is None else {**q.params(), "limit": str(limit)}
    for _ in range(1000):
        page = await shop.answer("/api/v1/commerce/transactions", params)
        assert len(page["results"]) <= (limit or 50)
        rows += page["results"]
        if page["next_cursor"] is None:
            break
        params = {**params, "cursor": page["next_cursor"]}
    check(rows, REF.listing(q), SessionIds())


async def test_every_transaction_in_detail(shop: Shop) -> None:
    ids = SessionIds()
    for site, key in REF.transactions:
        got = await shop.answer(f"/api/v1/commerce/transactions/{key}", {"site_id": site})
        check(got, REF.transaction(site, key), ids)


BAD = [
    ("/api/v1/commerce/transactions", {"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
    ("/api/v1/commerce/transactions", {"limit": "0"}, "limit"),
    ("/api/v1/commerce/transactions", {"limit": "1001"}, "limit"),
    ("/api/v1/commerce/products", {"sort": "price"}, "sort"),
    ("/api/v1/commerce/products", {"limit": "0"}, "limit"),
    ("/api/v1/commerce/summary", {"start": "2025-11-01"}, "start"),
    ("/api/v1/commerce/carts", {"filters": "colour==red"}, "filters"),
    ("/api/v1/commerce/summary", {"start_date": "2025-11-09", "end_date": "2025-11-01"},
     "start_date"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "params", "field"), BAD, ids=[f"{p}-{f}" for p, _, f in BAD])
async def test_malformed_parameters_are_422_naming_them(
    shop: Shop, path: str, params: dict[str, str], field: str
) -> None:
    response = await shop.get(path, {"site_id": SHOP, **params})
    assert fields_of(assert_error(response, 422, "validation_error")) == [field]


async def test_unknown_transactions_and_sites_are_404(shop: Shop) -> None:
    for key in ("T-nope", "T-bot-only", "dup2-a"):  # none; a bot's; a losing event's id
        response = await shop.get(f"/api/v1/commerce/transactions/{key}", {"site_id": SHOP})
        assert_error(response, 404, "transaction_not_found")
    response = await shop.get("/api/v1/commerce/summary", {"site_id": "nowhere"})
    assert_error(response, 404, "site_not_found")


# == the web reports' commerce metrics ================================================


@pytest.mark.parametrize("q", QUESTIONS, ids=str)
async def test_web_reports(shop: Shop, q: Question) -> None:
    check(await shop.answer("/api/v1/stats/overview", q.params()), REF.overview(q))
    metrics = ("revenue", "transactions", "conversion_rate", "sessions")
    params = {**q.params(), "interval": "day", "metrics": ",".join(metrics)}
    got = await shop.answer("/api/v1/stats/timeseries", params)
    check(got, REF.timeseries(q, "day", metrics))
    for dimension, asked in (("channel", COMMERCE_METRICS), ("path", ("revenue", "transactions"))):
        params = {**q.params(), "dimension": dimension, "metrics": ",".join(asked), "limit": "50"}
        got = await shop.answer("/api/v1/stats/breakdown", params)
        check(got, REF.breakdown(q, dimension, asked, 50))


async def test_conversion_rate_by_an_event_dimension_is_422(shop: Shop) -> None:
    params = {**ALL.params(), "dimension": "path", "metrics": "revenue,conversion_rate"}
    response = await shop.get("/api/v1/stats/breakdown", params)
    assert fields_of(assert_error(response, 422, "validation_error")) == ["metrics"]


# == events as trackers send them =====================================================

# every spelling of the commerce events, their aliases, an integer transaction id, a
# lower-case currency, a default quantity, a later duplicate, amounts with 5 decimals
WIRE: list[tuple[dict[str, Any], str, str, str]] = [
    ({"event_type": "page_view", "path": "/", "channel": "Email"}, "w1", "09:58", "page_view"),
    ({"event": "Order Completed", "transaction_id": "W-1", "currency": "usd",
      "items": [{"sku": "A", "name": "Apple", "price": "2.50", "quantity": 3},
                {"sku": "B", "price": 5}]}, "w1", "10:00", "purchase"),
    ({"name": "purchase", "transaction_id": "W-1", "value": 99}, "w1", "10:05", "purchase"),
    ({"event_type": "PURCHASE", "transaction_id": 1001, "value": "10.00005", "currency": "eur",
      "items": [{"sku": "A", "price": "2.33335", "quantity": 2}]}, "w2", "11:00", "purchase"),
    ({"event_type": "Cart Viewed", "items": [{"sku": "A", "price": "2.5"}]}, "w3", "12:00",
     "view_cart"),
    ({"event_type": "Order Refunded", "transaction_id": "W-1"}, "ops", "d2 08:00", "refund"),
    ({"event_type": "REFUND", "transaction_id": "1001", "revenue": "1.5"}, "ops", "d2 09:00",
     "refund"),
]  # fmt: skip


def wire_bodies() -> list[tuple[dict[str, Any], str]]:
    bodies = []
    for n, (raw, user, when, canonical) in enumerate(WIRE):
        day, _, clock = when.rpartition(" ")
        stamp = f"2025-11-{'04' if day == 'd2' else '03'}T{clock}:00Z"
        body = {"channel": "Direct", **raw, "site_id": "wire", "event_id": f"w-{n}",
                "user_id": user, "timestamp": stamp, "device": "desktop"}  # fmt: skip
        bodies.append((body, canonical))
    return bodies


async def test_events_in_every_spelling_make_the_same_numbers(tmp_path: Path) -> None:
    """Sent to /events (embedded: ingest, the worker path and derive in this process),
    the events count as the reference reads them."""
    owner = {"owner_email": OWNER_EMAIL, "owner_password": OWNER_PASSWORD}
    settings = settings_for("embedded", tmp_path, derive_interval_s=0.2, **owner)
    bodies = wire_bodies()
    received = datetime.now(UTC)
    events = []  # as stored: each under its canonical name (metrics.md, Event names)
    for body, canonical in bodies:
        unnamed = {k: v for k, v in body.items() if k not in ("event_type", "event", "name")}
        events.append(from_wire({**unnamed, "event_type": canonical}, received))
    ref = Commerce(events, {}, received)
    q = Question(site="wire", start="2025-11-03", end="2025-11-04", tz="UTC")
    async with running(settings) as app, client_of(app) as client:
        owner_headers = bearer((await sign_in(client, OWNER_EMAIL, OWNER_PASSWORD))["access_token"])
        response = await client.post("/events", json=[body for body, _ in bodies])
        assert response.status_code == 202, response.text
        wire = Shop(client, owner_headers)
        want = plain(ref.summary(q))
        got = None
        for _ in range(150):
            response = await wire.get("/api/v1/commerce/summary", q.params())
            if response.status_code == 200:
                got = plain(json.loads(response.text, parse_float=Decimal))
                if got == want:
                    break
            await asyncio.sleep(0.2)
        assert got == want
        assert want["revenue"] == Decimal("12.50") and want["refunds"] == Decimal("12.50")
        assert [c["currency"] for c in want["by_currency"]] == ["EUR", "USD"]
        check(await wire.answer("/api/v1/commerce/carts", q.params()), ref.carts_report(q))
        got_products = await wire.answer("/api/v1/commerce/products", q.params())
        check(got_products, ref.products(q))
        ids = SessionIds()
        for key in ("W-1", "1001"):
            path = f"/api/v1/commerce/transactions/{key}"
            got_one = await wire.answer(path, {"site_id": "wire"})
            want_one = ref.transaction("wire", key)
            assert want_one is not None
            for derived in ("browser", "os"):  # from the User-Agent: unknown to from_wire
                got_one.pop(derived)
                want_one.pop(derived)
            check(got_one, want_one, ids)
