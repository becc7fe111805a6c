"""Order analytics routes (api.md, Orders): seed 004's five admin routes with its paths,
parameters and answers, ``site_id`` added, and GET /api/v1/forecast for any forecast
series. Thin handlers over reports/orders.py; every answer carries ``as_of``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from tapioca.api.access import Access, access
from tapioca.api.reports import EndParam, Reader, SiteParam, StartParam, known_parameters_only
from tapioca.api.responses import JSONBody
from tapioca.kit.timerange import DATE_PATTERN
from tapioca.reports import orders
from tapioca.reports.executor import Executor
from tapioca.reports.orders import DailyOrderSeries, Metric
from tapioca.reports.params import parse_date
from tapioca.reports.web import utc_now
from tapioca.sites.lookup import resolve_site
from tapioca.sites.site import Site

router = APIRouter(tags=["orders"], dependencies=[Depends(known_parameters_only)])

SEED = "Seed 004: "
_DAY = {"format": "date", "pattern": f"^{DATE_PATTERN}$"}
AsOf = str | None  # when the batch last finished (RFC 3339 UTC); null: never


def _day_param(description: str) -> Any:
    return Query(description=description, json_schema_extra=_DAY)


class DaySummary(BaseModel):
    date: str
    total_revenue: float
    order_count: int
    average_order_value: float


class Summary(BaseModel):
    daily_summaries: list[DaySummary]
    total_records: int
    as_of: AsOf


class TopItem(BaseModel):
    item_id: str
    item_name: str | None
    total_quantity: float
    total_revenue: float


class TopItems(BaseModel):
    top_items: list[TopItem]
    total_items: int
    as_of: AsOf


class HourOrders(BaseModel):
    date: str
    hour: int
    order_count: int


class Hourly(BaseModel):
    hourly_data: list[HourOrders]
    total_records: int
    as_of: AsOf


class _Point(BaseModel):
    forecast_value: float | None
    lower: float | None
    upper: float | None
    model: str
    generated_at: str
    score: float | None


class DayForecast(_Point):
    forecast_date: str
    forecast_type: DailyOrderSeries


class DailyForecasts(BaseModel):
    forecasts: list[DayForecast]
    total_forecasts: int
    as_of: AsOf


class HourForecast(_Point):
    hour: int


class HourlyForecasts(BaseModel):
    forecasts: list[HourForecast]
    total_forecasts: int
    as_of: AsOf


class Backtest(BaseModel):
    score: float | None
    model_mae: float | None
    naive_mae: float | None
    coverage: float | None
    origins: int


class ForecastPoint(BaseModel):
    ts: str  # a day YYYY-MM-DD, or an hour's local start with its UTC offset
    value: float | None
    lower: float | None
    upper: float | None


class Forecast(BaseModel):
    site_id: str
    metric: Metric
    series: str
    model: str
    generated_at: str
    level: int
    backtest: Backtest
    forecasts: list[ForecastPoint]
    as_of: AsOf  # orders: when the batch last finished; web traffic: generated_at


Report = Callable[[Executor, Site, datetime], Awaitable[dict[str, Any]]]


async def _answer(reader: Executor, site_id: str | None, report: Report) -> JSONBody:
    """``report`` of the site, on one snapshot of the store, as of now."""
    now = utc_now()

    async def run(ex: Executor) -> dict[str, Any]:
        site = (await resolve_site(ex.db, site_id)).site
        return await report(ex, site, now)

    return JSONBody(await reader.answer(run))


def _date(value: str | None, field: str) -> date | None:
    return parse_date(value, field) if value is not None else None


Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get(
    "/api/admin/analytics/summary",
    response_model=Summary,
    summary=SEED + "revenue, orders and average order value per day, newest first",
    **access(Access.READ),
)
async def get_summary(
    reader: Reader, site_id: SiteParam = None, start_date: StartParam = None,
    end_date: EndParam = None, limit: Limit = 30,
) -> JSONBody:  # fmt: skip
    """Days without dates: the 30 up to today in the site's time zone."""
    start, end = _date(start_date, "start_date"), _date(end_date, "end_date")

    async def report(ex: Executor, site: Site, now: datetime) -> dict[str, Any]:
        first, last = orders.report_days(start, end, orders.local_today(site, now))
        return await orders.summary(ex, site, first, last, limit)

    return await _answer(reader, site_id, report)


@router.get(
    "/api/admin/analytics/top-items",
    response_model=TopItems,
    summary=SEED + "items by revenue, with their quantity",
    **access(Access.READ),
)
async def get_top_items(
    reader: Reader, site_id: SiteParam = None, start_date: StartParam = None,
    end_date: EndParam = None, limit: Limit = 10,
) -> JSONBody:  # fmt: skip
    """Days as the summary's; ``total_items``: every item sold in them, before the limit."""
    start, end = _date(start_date, "start_date"), _date(end_date, "end_date")

    async def report(ex: Executor, site: Site, now: datetime) -> dict[str, Any]:
        first, last = orders.report_days(start, end, orders.local_today(site, now))
        return await orders.top_items(ex, site, first, last, limit)

    return await _answer(reader, site_id, report)


@router.get(
    "/api/admin/analytics/hourly",
    response_model=Hourly,
    summary=SEED + "orders per hour, 24 rows a day",
    **access(Access.READ),
)
async def get_hourly(
    reader: Reader,
    site_id: SiteParam = None,
    target_date: Annotated[
        str | None, _day_param("YYYY-MM-DD, the last day; default yesterday (the last whole day)")
    ] = None,
    days_back: Annotated[int, Query(ge=1, le=366, description="days up to target_date")] = 7,
) -> JSONBody:
    target = _date(target_date, "target_date")

    async def report(ex: Executor, site: Site, now: datetime) -> dict[str, Any]:
        last = target or orders.days_before(orders.local_today(site, now), 1)
        return await orders.hourly(ex, site, last, days_back)

    return await _answer(reader, site_id, report)


@router.get(
    "/api/admin/analytics/forecast/daily",
    response_model=DailyForecasts,
    summary=SEED + "the latest daily forecast, from today on",
    **access(Access.READ),
)
async def get_daily_forecast(
    reader: Reader,
    site_id: SiteParam = None,
    limit: Limit = 7,
    forecast_type: DailyOrderSeries = DailyOrderSeries.DAILY_REVENUE,
) -> JSONBody:
    async def report(ex: Executor, site: Site, now: datetime) -> dict[str, Any]:
        return await orders.daily_forecast(ex, site, forecast_type, limit, now)

    return await _answer(reader, site_id, report)


@router.get(
    "/api/admin/analytics/forecast/hourly",
    response_model=HourlyForecasts,
    summary=SEED + "the latest forecast of orders per hour of a day",
    **access(Access.READ),
)
async def get_hourly_forecast(
    reader: Reader,
    site_id: SiteParam = None,
    forecast_date: Annotated[str | None, _day_param("YYYY-MM-DD; default tomorrow")] = None,
) -> JSONBody:
    day = _date(forecast_date, "forecast_date")

    async def report(ex: Executor, site: Site, now: datetime) -> dict[str, Any]:
        asked = day or orders.local_today(site, now) + timedelta(days=1)
        return await orders.hourly_forecast(ex, site, asked)

    return await _answer(reader, site_id, report)


@router.get(
    "/api/v1/forecast",
    response_model=Forecast,
    summary="The latest forecast of a metric, with its backtest",
    **access(Access.READ),
)
async def get_forecast(
    reader: Reader,
    metric: Metric,
    site_id: SiteParam = None,
    horizon: Annotated[
        int | None, Query(ge=1, le=168, description="points from now on; default all")
    ] = None,
) -> JSONBody:
    """404 forecast_not_found: the metric has no forecast yet."""

    async def report(ex: Executor, site: Site, now: datetime) -> dict[str, Any]:
        return await orders.forecast(ex, site, metric, horizon, now)

    return await _answer(reader, site_id, report)
