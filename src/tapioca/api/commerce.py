"""E-commerce report routes (api.md, E-commerce): Tapioca's own, and the BobaShop
routes with their paths and answers (seed 000), ``site_id`` added. Thin handlers over
reports/commerce.py and reports/web.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from tapioca.api.access import Access, access
from tapioca.api.reports import (
    EndParam,
    Reader,
    ReportScope,
    ScopeQuery,
    SiteParam,
    StartParam,
    TzParam,
    known_parameters_only,
)
from tapioca.api.responses import JSONBody
from tapioca.model.dimensions import Dimension
from tapioca.reports import commerce, web
from tapioca.reports.executor import Executor
from tapioca.reports.scope import Scope
from tapioca.sites.lookup import resolve_site

router = APIRouter(tags=["commerce"], dependencies=[Depends(known_parameters_only)])

# no NUL: PostgreSQL text cannot hold one (no stored id has it)
TransactionId = Annotated[str, Path(min_length=1, max_length=128, pattern="^[^\\x00]+$")]


@router.get(
    "/api/v1/commerce/summary",
    summary="Transactions, revenue, order value, buyers, conversion rate",
    **access(Access.READ),
)
async def get_summary(reader: Reader, scope: ReportScope) -> JSONBody:
    return await scope.answer(reader, commerce.summary)


@router.get(
    "/api/v1/commerce/carts",
    summary="Carts viewed, their mean value and items",
    **access(Access.READ),
)
async def get_carts(reader: Reader, scope: ReportScope) -> JSONBody:
    return await scope.answer(reader, commerce.carts)


@router.get(
    "/api/v1/commerce/products",
    summary="Quantity, revenue and transactions per product (sku)",
    **access(Access.READ),
)
async def get_products(
    reader: Reader,
    scope: ReportScope,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    sort: Annotated[str, Query(pattern="^(revenue|quantity|transactions)$")] = "revenue",
) -> JSONBody:
    return await scope.answer(reader, lambda ex, s: commerce.products(ex, s, sort, limit))


@router.get(
    "/api/v1/commerce/transactions",
    summary="Transactions, newest first, a page at a time",
    **access(Access.READ),
)
async def get_transactions(
    reader: Reader,
    scope: ReportScope,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=1024, description="next_cursor")] = None,
) -> JSONBody:
    return await scope.answer(reader, lambda ex, s: commerce.transactions(ex, s, limit, cursor))


async def _one(
    reader: Executor, site_id: str | None,
    report: Callable[[Executor, Any], Awaitable[dict[str, Any]]],
) -> JSONBody:  # fmt: skip
    async def run(ex: Executor) -> dict[str, Any]:
        site = (await resolve_site(ex.db, site_id)).site
        return await report(ex, site)

    return JSONBody(await reader.answer(run))


@router.get(
    "/api/v1/commerce/transactions/{transaction_id}",
    summary="One transaction: items, session, channel, device, landing page",
    **access(Access.READ),
)
async def get_transaction(
    reader: Reader, transaction_id: TransactionId, site_id: SiteParam = None
) -> JSONBody:
    return await _one(reader, site_id, lambda ex, s: commerce.transaction(ex, s, transaction_id))


# BobaShop's routes: start_date and end_date inclusive, either one alone open on the other
# side, none for all time.


# async, like get_scope: a plain function would be run on a thread of the pool
async def bobashop_scope(
    site_id: SiteParam = None,
    start_date: StartParam = None,
    end_date: EndParam = None,
    tz: TzParam = None,
) -> ScopeQuery:
    return ScopeQuery(site_id, None, start_date, end_date, tz, None, open_ends=True)


ShopScope = Annotated[ScopeQuery, Depends(bobashop_scope)]
ShopReport = Callable[[Executor, Scope], Awaitable[Any]]
_ALL = 1000  # every value of a breakdown (channels, devices, page types)


def _picked(report: ShopReport, keys: dict[str, str]) -> ShopReport:
    """BobaShop's answer: the figures of ``report`` its names stand for (name: figure)."""

    async def picked(ex: Executor, scope: Scope) -> dict[str, Any]:
        found = await report(ex, scope)
        return {name: found[figure] for name, figure in keys.items()}

    return picked


def _totals(*metrics: str) -> ShopReport:
    """The overview of only ``metrics``: what the others need is not read."""

    async def totals(ex: Executor, scope: Scope) -> dict[str, Any]:
        return await web.overview(ex, scope, metrics)

    return totals


def _listing(dimension: Dimension, metric: str, name: str, key: str) -> ShopReport:
    """BobaShop's list: [{name: value, key: metric}] of every value, the largest first."""

    async def listing(ex: Executor, scope: Scope) -> list[dict[str, Any]]:
        found = await web.breakdown(ex, scope, dimension, [metric], _ALL)
        return [{name: row["value"], key: row[metric]} for row in found["results"] if row[metric]]

    return listing


SHOP_ROUTES: dict[str, tuple[str, ShopReport]] = {
    "/metrics/pageviews/total": (
        "page views",
        _picked(_totals("pageviews"), {"total_pageviews": "pageviews"}),
    ),
    "/metrics/users-sessions": (
        "users and sessions",
        _picked(
            _totals("visitors", "sessions"),
            {"unique_users": "visitors", "total_sessions": "sessions"},
        ),
    ),
    "/metrics/sessions/by-channel": (
        "sessions per channel",
        _listing(Dimension.CHANNEL, "sessions", "channel", "total_sessions"),
    ),
    "/metrics/sessions/by-device": (
        "sessions per device",
        _listing(Dimension.DEVICE, "sessions", "device", "total_sessions"),
    ),
    "/metrics/pageviews/by-pagetype": (
        "page views per page type",
        _listing(Dimension.PAGE_TYPE, "pageviews", "pagetype", "total_pageviews"),
    ),
    "/metrics/transactions/summary": (
        "buyers, sessions with transactions, transactions",
        _picked(
            commerce.summary,
            {
                "unique_buyers": "unique_buyers",
                "sessions_with_transactions": "sessions_with_transactions",
                "total_transactions": "transactions",
            },
        ),
    ),
    "/metrics/transactions/aov": (
        "items per order, average order value",
        _picked(
            commerce.summary,
            {"avg_n_items_order": "avg_items_per_order", "avg_order_value": "avg_order_value"},
        ),
    ),
    "/metrics/cart/avg": (
        "items and value per cart",
        _picked(
            commerce.carts,
            {"avg_n_cart_items": "avg_cart_items", "avg_cart_value": "avg_cart_value"},
        ),
    ),
}


def _shop_route(report: ShopReport) -> Callable[..., Awaitable[JSONBody]]:
    async def route(reader: Reader, scope: ShopScope) -> JSONBody:
        return await scope.answer(reader, report)

    return route


for _path, (_summary, _report) in SHOP_ROUTES.items():
    router.add_api_route(
        _path, _shop_route(_report), methods=["GET"], summary=f"BobaShop: {_summary}",
        **access(Access.READ),
    )  # fmt: skip


@router.get(
    "/transactions/{transaction_id}/items",
    summary="BobaShop: the items of one transaction",
    **access(Access.READ),
)
async def shop_items(
    reader: Reader, transaction_id: TransactionId, site_id: SiteParam = None
) -> JSONBody:
    return await _one(
        reader, site_id, lambda ex, s: commerce.transaction_items(ex, s, transaction_id)
    )
