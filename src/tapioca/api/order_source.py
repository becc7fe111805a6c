"""A site's order source and its runs (api.md, "Order source"): connect, show, forget,
sync now, and the list of the batch's and forecasts' runs. Admin of the site; the
password is never echoed."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from tapioca.api.access import Access, access
from tapioca.api.responses import JSONBody
from tapioca.api.runtime import Runtime
from tapioca.errors import ErrorDetail, not_found, validation_error
from tapioca.kit.timerange import DATE_PATTERN
from tapioca.orders.source import (
    DEFAULT_MAPPING,
    MAX_LOOKBACK_DAYS,
    STATUS_PATTERN,
    URL_PATTERN,
    connect_source,
    delete_source,
    load_source,
)
from tapioca.scheduler import runs
from tapioca.scheduler.jobs import run_answer, sync_site
from tapioca.sites.service import get_site

router = APIRouter(tags=["orders"])

# a column: a plain name; a table: a name, or schema.name (orders/source.py checks the same)
COLUMN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
TABLE = r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$"
Name = Annotated[str, Field(pattern=COLUMN)]
Table = Annotated[str, Field(pattern=TABLE)]


class Mapping(BaseModel):
    """Table and column names of the order database (defaults: seed 004's schema)."""

    model_config = ConfigDict(extra="forbid")
    orders: Table = "orders"
    order_id: Name = "id"
    created_at: Name = "created_at"
    status: Name = "status"
    total_amount: Name = "total_amount"
    updated_at: Name | None = None  # none: changes are found by the lookback and checks
    order_items: Table = "order_items"
    item_order_id: Name = "order_id"
    item_id: Name = "item_id"
    item_name: Name = "item_name"
    quantity: Name = "quantity"
    unit_price: Name = "unit_price"


assert Mapping().model_dump() == DEFAULT_MAPPING


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2000, pattern=URL_PATTERN)
    timezone: str | None = Field(default=None, max_length=64)
    counted_statuses: list[Annotated[str, Field(pattern=STATUS_PATTERN)]] | None = Field(
        default=None, min_length=1, max_length=50
    )
    mapping: Mapping | None = None
    lookback_days: int | None = Field(default=None, ge=0, le=MAX_LOOKBACK_DAYS, strict=True)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


_PATH = "/api/v1/sites/{site_id}/order-source"


@router.put(_PATH, summary="Connect the site's order database", **access(Access.ADMIN))
async def put_source(request: Request, site_id: str, body: SourceIn) -> JSONBody:
    runtime = _runtime(request)
    mapping = body.mapping.model_dump(exclude_unset=True) if body.mapping else None
    assert runtime.sealer is not None
    saved = await connect_source(
        runtime.store, runtime.sealer, site_id, body.url, body.timezone,
        body.counted_statuses, mapping, body.lookback_days,
    )  # fmt: skip
    return JSONBody(saved.public())


@router.get(_PATH, summary="The site's order source (no password)", **access(Access.ADMIN))
async def get_source(request: Request, site_id: str) -> JSONBody:
    runtime = _runtime(request)
    assert runtime.sealer is not None
    source = await load_source(runtime.store, runtime.sealer, site_id)
    if source is None:
        raise not_found("order_source", f"Site '{site_id}' has no order source.")
    return JSONBody(source.public())


@router.delete(
    _PATH, summary="Forget the order source and what was kept of it", **access(Access.ADMIN)
)
async def remove_source(request: Request, site_id: str) -> JSONBody:
    await delete_source(_runtime(request).store, site_id)
    return JSONBody({"site_id": site_id, "deleted": True})


Day = Annotated[str | None, Query(pattern=DATE_PATTERN, description="YYYY-MM-DD")]


@router.post(
    _PATH + "/sync",
    summary="Run the order batch now (and the forecasts after it)",
    **access(Access.ADMIN, 409),
)
async def sync(
    request: Request,
    site_id: str,
    start_date: Day = None,
    end_date: Day = None,
    forecast: Annotated[bool, Query()] = True,
) -> JSONBody:
    """The batch's run: every day touched since the last run, or the days from
    ``start_date`` to ``end_date`` (a backfill). ``status`` "failed" says why in
    ``error`` (the order database is down, say); the last good data stays."""
    runtime = _runtime(request)
    span = _span(start_date, end_date)
    await get_site(runtime.store, site_id)
    return JSONBody(await sync_site(runtime.jobs(), site_id, "http", span, forecast))


def _day(name: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise validation_error([ErrorDetail(name, "is not a date (YYYY-MM-DD)")]) from None


def _span(start: str | None, end: str | None) -> tuple[date, date] | None:
    if start is None and end is None:
        return None
    if start is None or end is None:
        field = "start_date" if start is None else "end_date"
        raise validation_error([ErrorDetail(field, "a backfill needs both dates")])
    first, last = _day("start_date", start), _day("end_date", end)
    if first > last:
        raise validation_error([ErrorDetail("end_date", "must not be before start_date")])
    if (last - first).days > 3660:
        raise validation_error([ErrorDetail("end_date", "at most 3,660 days at once")])
    return first, last


@router.get(
    "/api/v1/sites/{site_id}/runs",
    summary="The order batch's and forecasts' runs, newest first",
    **access(Access.ADMIN),
)
async def list_runs(
    request: Request,
    site_id: str,
    job: Annotated[str | None, Query(pattern="^(orders|forecast)$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> JSONBody:
    runtime = _runtime(request)
    await get_site(runtime.store, site_id)
    found = await runs.list_runs(runtime.store, site_id, job, limit)
    return JSONBody({"runs": [run_answer(run) for run in found]})
