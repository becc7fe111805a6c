"""Commerce reports on both stores, compared with the independent reference.

The expected answers come from support/commerce_reference.py (commerce-contract.md in
plain Python) over the generated shop traffic of support/shop_traffic.py. The events are
written as rows (no enrichment runs) in three waves (purchases before the page views of
their sessions, earlier duplicates last), each in small batches derived now and then, and
the service functions are asked directly: the commerce reports, and the web reports'
revenue, transactions and conversion_rate. A rebuild of everything derived answers the
same.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from support.commerce_reference import (
    COMMERCE_EVENT_DIMS,
    COMMERCE_METRICS,
    SORTS,
    Commerce,
    SessionIds,
    comparable,
)
from support.loaded import load_waves, loaded_store
from support.reference import SESSION_DIMS, Filters, Question
from support.shop_traffic import CAFE, SHOP, SITES, ShopTraffic, shop_traffic
from tapioca.errors import TapiocaError
from tapioca.kit.timerange import Interval
from tapioca.model.dimensions import Dimension
from tapioca.reports import commerce, web
from tapioca.reports.executor import Executor
from tapioca.reports.scope import Scope, resolve_scope
from tapioca.storage.base import Store

pytestmark = pytest.mark.integration

NOW = datetime(2025, 11, 18, 15, tzinfo=UTC)  # the default range: Oct 20 .. Nov 18
TRAFFIC: ShopTraffic = shop_traffic()
EVENTS = TRAFFIC.events
REF = Commerce(EVENTS, SITES, NOW)
BATCH = 150


# == loading ==========================================================================


SITE_ROWS = [(site, settings.timezone, settings.currency) for site, settings in SITES.items()]


async def load(store: Store, incremental: bool) -> None:
    """The waves in order, each in batches derived now and then and derived at its end;
    or (not ``incremental``) every event at once, then a rebuild of everything derived."""
    await load_waves(store, SITE_ROWS, TRAFFIC.waves, BATCH, incremental)


def _loaded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, incremental: bool
) -> Iterator[Callable[[], Store]]:
    yield from loaded_store(
        request, tmp_path_factory, "commerce", lambda store: load(store, incremental)
    )


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def opener(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], Store]]:
    """The traffic derived wave by wave, batch by batch (once per module and store)."""
    yield from _loaded(request, tmp_path_factory, incremental=True)


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def rebuilt_opener(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], Store]]:
    """The same traffic written at once, then `tapioca derive rebuild`."""
    yield from _loaded(request, tmp_path_factory, incremental=False)


@pytest.fixture
async def db(opener: Callable[[], Store]) -> AsyncIterator[Store]:
    store = opener()
    try:
        yield store
    finally:
        await store.close()


async def scope_of(db: Store, q: Question) -> Scope:
    return await resolve_scope(db, q.site, q.day, q.start, q.end, q.tz, q.filter_text, NOW)


def same(got: Any, want: Any, ids: SessionIds | None = None) -> None:
    got, want = comparable(got, want, ids)
    assert got == want


# == the data has the cases it is meant to have =======================================


def test_the_traffic_has_the_edge_cases() -> None:
    txs = list(REF.transactions.values())
    shop = [t for t in txs if t.site == SHOP]
    assert len(shop) > 150 and len(EVENTS) > 1500
    assert len({t.user for t in shop}) < len(shop)  # repeat buyers
    assert len({id(t.session) for t in shop}) < len(shop)  # two orders in one session
    assert any(i.quantity > 1 for t in shop for i in t.items)
    assert {t.currency for t in shop} == {"USD", "EUR"}
    assert {e.currency for e in EVENTS if e.event_type == "purchase"} >= {"eur", "EUR", None}
    assert any(t.event.revenue is None for t in shop) and any(t.event.revenue for t in shop)
    assert any(t.event.transaction_id is None for t in shop)
    assert any(t.session.first.session_id for t in shop)  # client sessions
    assert REF.transactions[(SHOP, "T-dup-earlier")].event.event_id == "dup2-b"
    assert REF.transactions[(SHOP, "T-dup-tie")].event.event_id == "dup3-B"
    assert REF.transactions[(SHOP, "T-dup-bot")].revenue == Decimal("7.5")  # not the bot's 500
    assert (SHOP, "T-bot-only") not in REF.transactions
    late = REF.transactions[(SHOP, "T-late-landing")].session
    assert (late.value("landing_page"), late.value("channel")) == ("/", "Organic Search")
    bridge = REF.transactions[(SHOP, "T-bridge")].session
    assert (bridge.value("landing_page"), bridge.value("device")) == ("/blog/a", "desktop")
    amounts = {r.event.event_id: r.amount for r in REF.refunds}
    assert 0 in amounts.values() and len({r.currency for r in REF.refunds}) == 2
    assert any(t.session.first.ts < t.ts and t.session.first.ts.day != t.ts.day for t in shop)
    assert REF.transactions[(SHOP, "T-collide")].event.event_id == "T-collide"
    assert REF.transactions[(SHOP, "T-value-only")].items_count == 0
    late_cart = next(c for c in REF.carts if c.session is late)
    assert late_cart.session.value("channel") == "Organic Search"
    carts = [c for c in REF.carts if c.event.site_id == SHOP]
    assert len(carts) > 50 and {c.currency for c in carts} == {"USD", "EUR"}


# == the questions ====================================================================

ALL = Question(site=SHOP, start="2025-10-27", end="2025-11-17", tz=None)
FILTERS: list[Filters] = [
    (("channel", "Email"),),
    (("device", "mobile"),),
    (("browser", "Firefox"), ("os", "Linux")),
    (("source", "Google"),),
    (("path", "/checkout/complete"),),
    (("page_type", "checkout"),),
    (("utm_term", "tea"),),
    (("event_type", "purchase"),),
    (("channel", "Organic Social"), ("path", "/checkout/complete")),
    (("utm_campaign", "winter"), ("utm_content", "banner")),
    (("path", "/nowhere"),),
]
QUESTIONS = [
    ALL,
    replace(ALL, tz="UTC"),
    replace(ALL, tz="Asia/Kolkata"),
    Question(site=SHOP, day="2025-11-08", tz=None),  # an earlier duplicate wins, here
    Question(site=SHOP, day="2025-11-09", tz="UTC"),
    Question(site=SHOP, day="2025-11-11", tz=None),  # a session before a purchase's midnight
    Question(site=SHOP, day="2025-11-12", tz=None),
    Question(site=SHOP, start="2025-11-01", end="2025-11-03", tz=None),  # summer time ends
    Question(site=SHOP, tz=None),  # the 30 days up to NOW
    Question(site=SHOP, start="2025-11-10", tz=None),  # up to NOW
    Question(site=SHOP, end="2025-11-05", tz="UTC"),  # the 30 days up to the end
    Question(site=SHOP, day="2025-12-01", tz=None),  # nothing
    Question(site=CAFE, start="2025-10-27", end="2025-11-17", tz=None),  # EUR
    Question(site=CAFE, day="2025-11-07", tz=None),
    *(replace(ALL, filters=f) for f in FILTERS),
    Question(site=SHOP, day="2025-11-12", tz=None, filters=(("channel", "Paid Search"),)),
]


@pytest.mark.parametrize("q", QUESTIONS, ids=str)
async def test_summary(db: Store, q: Question) -> None:
    same(await commerce.summary(Executor(db), await scope_of(db, q)), REF.summary(q))


@pytest.mark.parametrize("q", QUESTIONS, ids=str)
async def test_carts(db: Store, q: Question) -> None:
    same(await commerce.carts(Executor(db), await scope_of(db, q)), REF.carts_report(q))


PRODUCTS = [
    *((ALL, sort, 10) for sort in SORTS),
    *((replace(ALL, tz="UTC"), sort, 1000) for sort in SORTS),
    (ALL, "revenue", 1),
    (ALL, "quantity", 3),
    (Question(site=SHOP, day="2025-11-17", tz=None), "revenue", 10),  # a sku's name changes
    (Question(site=SHOP, start="2025-11-10", end="2025-11-16", tz=None), "transactions", 5),
    (Question(site=CAFE, start="2025-10-27", end="2025-11-17", tz=None), "revenue", 10),
    *((replace(ALL, filters=f), "revenue", 10) for f in FILTERS[:6]),
]


@pytest.mark.parametrize(
    ("q", "sort", "limit"), PRODUCTS, ids=[f"{s}-{n}-{q}" for q, s, n in PRODUCTS]
)
async def test_products(db: Store, q: Question, sort: str, limit: int) -> None:
    got = await commerce.products(Executor(db), await scope_of(db, q), sort, limit)
    same(got, REF.products(q, sort, limit))


async def all_pages(db: Store, q: Question, limit: int) -> list[dict[str, Any]]:
    """Every page of the transactions list, following next_cursor."""
    scope = await scope_of(db, q)
    rows: list[dict[str, Any]] = []
    cursor = None
    for _ in range(10_000):
        page = await commerce.transactions(Executor(db), scope, limit, cursor)
        assert len(page["results"]) <= limit
        rows += page["results"]
        cursor = page["next_cursor"]
        if cursor is None:
            return rows
        assert page["results"], "a page before the last one is not empty"
    raise AssertionError("paging does not end")


LISTINGS = [
    (ALL, 1000),
    (ALL, 7),
    (Question(site=SHOP, day="2025-11-05", tz=None), 1),  # T-100 and T-99 at one moment
    (Question(site=SHOP, day="2025-11-08", tz=None), 2),
    (Question(site=CAFE, start="2025-10-27", end="2025-11-17", tz="UTC"), 50),
    (replace(ALL, filters=(("channel", "Email"),)), 3),
    (replace(ALL, filters=(("path", "/nowhere"),)), 10),
    (Question(site=SHOP, start="2025-11-10", tz=None), 5),  # up to NOW: windows widen
    (Question(site=SHOP, end="2025-11-05", tz="UTC"), 4),
]


@pytest.mark.parametrize(("q", "limit"), LISTINGS, ids=[f"{n}-{q}" for q, n in LISTINGS])
async def test_transactions_newest_first_each_once(db: Store, q: Question, limit: int) -> None:
    same(await all_pages(db, q, limit), REF.listing(q), SessionIds())


async def test_transactions_refuse_a_bad_cursor(db: Store) -> None:
    scope = await scope_of(db, ALL)
    with pytest.raises(TapiocaError) as caught:
        await commerce.transactions(Executor(db), scope, 10, "not a cursor")
    assert caught.value.status == 422
    assert [d.field for d in caught.value.details] == ["cursor"]


@pytest.mark.parametrize("site", [SHOP, CAFE])
async def test_every_transaction_in_detail(db: Store, site: str) -> None:
    scope = await scope_of(db, Question(site=site, tz=None))
    ids = SessionIds()
    known = [key for s, key in REF.transactions if s == site]
    assert len(known) > 20
    for key in known:
        got = await commerce.transaction(Executor(db), scope.site, key)
        same(got, REF.transaction(site, key), ids)


async def test_an_unknown_transaction_is_404(db: Store) -> None:
    scope = await scope_of(db, ALL)
    for key in ("T-nope", "T-bot-only", "dup2-a"):  # none; a bot's; a loser's event id
        with pytest.raises(TapiocaError) as caught:
            await commerce.transaction(Executor(db), scope.site, key)
        assert (caught.value.status, caught.value.code) == (404, "transaction_not_found")


# == the web reports' commerce metrics ================================================


@pytest.mark.parametrize("q", QUESTIONS, ids=str)
async def test_overview(db: Store, q: Question) -> None:
    same(await web.overview(Executor(db), await scope_of(db, q)), REF.overview(q))


BOTH = ("revenue", "sessions", "transactions", "pageviews", "conversion_rate", "visitors")
TIMESERIES: list[tuple[Question, str, Sequence[str]]] = [
    (Question(site=SHOP, day="2025-11-08", tz=None), "hour", COMMERCE_METRICS),
    (Question(site=SHOP, day="2025-11-02", tz=None), "hour", BOTH),  # 25 hours
    (Question(site=SHOP, day="2025-11-12", tz="UTC"), "hour", ("transactions",)),
    (ALL, "day", BOTH),
    (replace(ALL, tz="UTC"), "day", COMMERCE_METRICS),
    (replace(ALL, filters=(("channel", "Email"),)), "day", BOTH),
    (replace(ALL, filters=(("path", "/checkout/complete"),)), "day", COMMERCE_METRICS),
    (Question(site=SHOP, start="2025-10-20", end="2025-11-25", tz=None), "week", BOTH),
    (Question(site=SHOP, start="2025-10-15", end="2025-11-20", tz=None), "month", BOTH),
    (Question(site=CAFE, start="2025-10-27", end="2025-11-17", tz=None), "day", BOTH),
]


@pytest.mark.parametrize(
    ("q", "interval", "metrics"), TIMESERIES, ids=[f"{i}-{q}" for q, i, _ in TIMESERIES]
)
async def test_timeseries(db: Store, q: Question, interval: str, metrics: Sequence[str]) -> None:
    got = await web.timeseries(
        Executor(db), await scope_of(db, q), Interval(interval), list(metrics)
    )
    same(got, REF.timeseries(q, interval, metrics))


BREAKDOWN: list[tuple[Question, str, Sequence[str], int]] = [
    *((ALL, d, ("revenue", "transactions", "conversion_rate", "sessions"), 1000)
      for d in SESSION_DIMS),
    *((ALL, d, ("transactions", "revenue"), 1000) for d in COMMERCE_EVENT_DIMS),
    *((ALL, d, ("revenue", "pageviews"), 1000) for d in ("path", "utm_content")),
    (ALL, "channel", ("conversion_rate", "revenue"), 3),
    (ALL, "device", ("transactions",), 2),
    (replace(ALL, tz="UTC"), "landing_page", ("revenue", "visitors"), 5),
    (Question(site=SHOP, day="2025-11-08", tz=None), "channel", COMMERCE_METRICS, 1000),
    (replace(ALL, filters=(("channel", "Email"),)), "path", ("revenue", "transactions"), 1000),
    (replace(ALL, filters=(("path", "/checkout/complete"),)), "device", COMMERCE_METRICS, 50),
    (Question(site=CAFE, start="2025-10-27", end="2025-11-17", tz=None), "channel",
     COMMERCE_METRICS, 50),
]  # fmt: skip


@pytest.mark.parametrize(
    ("q", "dimension", "metrics", "limit"),
    BREAKDOWN,
    ids=[f"{d}-{'.'.join(m)}-{n}-{q}" for q, d, m, n in BREAKDOWN],
)
async def test_breakdown(
    db: Store, q: Question, dimension: str, metrics: Sequence[str], limit: int
) -> None:
    got = await web.breakdown(
        Executor(db), await scope_of(db, q), Dimension(dimension), list(metrics), limit
    )
    same(got, REF.breakdown(q, dimension, metrics, limit))


@pytest.mark.parametrize("dimension", COMMERCE_EVENT_DIMS)
async def test_conversion_rate_is_a_session_metric(db: Store, dimension: str) -> None:
    scope = await scope_of(db, ALL)
    with pytest.raises(TapiocaError) as caught:
        await web.breakdown(
            Executor(db), scope, Dimension(dimension), ["revenue", "conversion_rate"], 10
        )
    assert caught.value.status == 422
    assert [d.field for d in caught.value.details] == ["metrics"]


# == a rebuild answers as the incremental derive did ==================================

REBUILT = [ALL, Question(site=SHOP, day="2025-11-08", tz=None), QUESTIONS[-1], QUESTIONS[12]]


async def test_a_rebuild_gives_the_same_answers(rebuilt_opener: Callable[[], Store]) -> None:
    db = rebuilt_opener()
    ex = Executor(db)
    try:
        ids = SessionIds()
        for q in REBUILT:
            scope = await scope_of(db, q)
            same(await commerce.summary(ex, scope), REF.summary(q))
            same(await commerce.carts(ex, scope), REF.carts_report(q))
            same(
                await commerce.products(ex, scope, "quantity", 1000),
                REF.products(q, "quantity", 1000),
            )
            same(await all_pages(db, q, 1000), REF.listing(q), ids)
            same(await web.overview(ex, scope), REF.overview(q))
            got = await web.breakdown(ex, scope, Dimension.CHANNEL, list(COMMERCE_METRICS), 100)
            same(got, REF.breakdown(q, "channel", COMMERCE_METRICS, 100))
        for site, key in REF.transactions:
            scope = await scope_of(db, Question(site=site))
            got = await commerce.transaction(ex, scope.site, key)
            same(got, REF.transaction(site, key), ids)
    finally:
        await db.close()
