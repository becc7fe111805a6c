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


def bobashop_scope(
    site_id: SiteParam = None,
    start_date: StartParam = None,
    end_date: EndParam = None,
    tz: TzParam = None,
) -> ScopeQuery:
    return ScopeQuery(site_id, None, start_date, end_date, tz, None, open_ends=True)


ShopScope = Annotated[ScopeQuery, Depends(bobashop_scope)]
_ALL = 1000  # every value of a breakdown (channels, devices, page types)


def _overview(keys: dict[str, str]) -> Callable[[Executor, Scope], Awaitable[dict[str, Any]]]:
    async def report(ex: Executor, scope: Scope) -> dict[str, Any]:
        found = await web.overview(ex, scope)
        return {key: found[metric] for key, metric in keys.items()}

    return report


def _listing(
    dimension: Dimension, metric: str, name: str, key: str
) -> Callable[[Executor, Scope], Awaitable[Any]]:
    async def report(ex: Executor, scope: Scope) -> Any:
        found = await web.breakdown(ex, scope, dimension, [metric], _ALL)
        return [{name: row["value"], key: row[metric]} for row in found["results"] if row[metric]]

    return report


@router.get("/metrics/pageviews/total", summary="BobaShop: page views", **access(Access.READ))
async def shop_pageviews(reader: Reader, scope: ShopScope) -> JSONBody:
    return await scope.answer(reader, _overview({"total_pageviews": "pageviews"}))


@router.get(
    "/metrics/users-sessions", summary="BobaShop: users and sessions", **access(Access.READ)
)
async def shop_users_sessions(reader: Reader, scope: ShopScope) -> JSONBody:
    keys = {"unique_users": "visitors", "total_sessions": "sessions"}
    return await scope.answer(reader, _overview(keys))


@router.get(
    "/metrics/sessions/by-channel", summary="BobaShop: sessions per channel", **access(Access.READ)
)
async def shop_by_channel(reader: Reader, scope: ShopScope) -> JSONBody:
    listing = _listing(Dimension.CHANNEL, "sessions", "channel", "total_sessions")
    return await scope.answer(reader, listing)


@router.get(
    "/metrics/sessions/by-device", summary="BobaShop: sessions per device", **access(Access.READ)
)
async def shop_by_device(reader: Reader, scope: ShopScope) -> JSONBody:
    listing = _listing(Dimension.DEVICE, "sessions", "device", "total_sessions")
    return await scope.answer(reader, listing)


@router.get(
    "/metrics/pageviews/by-pagetype",
    summary="BobaShop: page views per page type",
    **access(Access.READ),
)
async def shop_by_pagetype(reader: Reader, scope: ShopScope) -> JSONBody:
    listing = _listing(Dimension.PAGE_TYPE, "pageviews", "pagetype", "total_pageviews")
    return await scope.answer(reader, listing)


def _summary(keys: dict[str, str]) -> Callable[[Executor, Scope], Awaitable[dict[str, Any]]]:
    async def report(ex: Executor, scope: Scope) -> dict[str, Any]:
        found = await commerce.summary(ex, scope)
        return {key: found[figure] for key, figure in keys.items()}

    return report


@router.get(
    "/metrics/transactions/summary",
    summary="BobaShop: buyers, sessions with transactions, transactions",
    **access(Access.READ),
)
async def shop_transactions(reader: Reader, scope: ShopScope) -> JSONBody:
    keys = {"unique_buyers": "unique_buyers",
            "sessions_with_transactions": "sessions_with_transactions",
            "total_transactions": "transactions"}  # fmt: skip
    return await scope.answer(reader, _summary(keys))


@router.get(
    "/metrics/transactions/aov",
    summary="BobaShop: items per order, average order value",
    **access(Access.READ),
)
async def shop_aov(reader: Reader, scope: ShopScope) -> JSONBody:
    keys = {"avg_n_items_order": "avg_items_per_order", "avg_order_value": "avg_order_value"}
    return await scope.answer(reader, _summary(keys))


@router.get(
    "/metrics/cart/avg", summary="BobaShop: items and value per cart", **access(Access.READ)
)
async def shop_carts(reader: Reader, scope: ShopScope) -> JSONBody:
    async def report(ex: Executor, s: Scope) -> dict[str, Any]:
        found = await commerce.carts(ex, s)
        return {"avg_n_cart_items": found["avg_cart_items"],
                "avg_cart_value": found["avg_cart_value"]}  # fmt: skip

    return await scope.answer(reader, report)


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
