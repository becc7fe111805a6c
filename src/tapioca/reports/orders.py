"""Order analytics (metrics.md, Order analytics and Forecasts): what a shop's owner reads
of the orders the batch keeps per day, hour and item, and of the forecasts made from
them. Read only, on one snapshot of the report store (a replica in production); the
days and hours are those of the site's time zone, as the batch kept them.

Every answer says how old its data is: ``as_of``, when the batch last finished a run
(null before the first), or for a forecast of web traffic when that forecast was made."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from tapioca.errors import invalid_parameter, not_found
from tapioca.kit.clock import utc_text
from tapioca.model.commerce import money, money_ratio
from tapioca.reports.executor import Executor
from tapioca.reports.queries import Params, Query
from tapioca.sites.site import Site

DEFAULT_DAYS = 30  # a summary or top items without dates: the 30 days up to today


class Series(StrEnum):
    """The series the forecast job keeps a run of (forecast_run.series)."""

    DAILY_REVENUE = "daily_revenue"
    DAILY_ORDERS = "daily_orders"
    HOURLY_ORDERS = "hourly_orders"
    DAILY_PAGEVIEWS = "daily_pageviews"
    DAILY_VISITORS = "daily_visitors"

    @property
    def hourly(self) -> bool:
        return self is Series.HOURLY_ORDERS

    @property
    def of_orders(self) -> bool:
        """Made from the order batch's tables (else from web traffic)."""
        return self in (Series.DAILY_REVENUE, Series.DAILY_ORDERS, Series.HOURLY_ORDERS)


class DailyOrderSeries(StrEnum):
    """Seed 004's ``forecast_type``."""

    DAILY_REVENUE = "daily_revenue"
    DAILY_ORDERS = "daily_orders"


class Metric(StrEnum):
    """What GET /api/v1/forecast is asked for, and the series that forecasts it."""

    REVENUE = "revenue"
    ORDERS = "orders"
    HOURLY_ORDERS = "hourly_orders"
    PAGEVIEWS = "pageviews"
    VISITORS = "visitors"

    @property
    def series(self) -> Series:
        return Series("hourly_orders" if self is Metric.HOURLY_ORDERS else f"daily_{self.value}")


# -- dates ------------------------------------------------------------------------------


def days_before(day: date, days: int) -> date:
    """``day`` less ``days`` days, no earlier than the first day of the calendar."""
    return date.fromordinal(max(1, day.toordinal() - days))


def report_days(start: date | None, end: date | None, today: date) -> tuple[date, date]:
    """The days of a summary or of top items: without an end, today (or the start when
    it is later); without a start, the 30 days up to the end."""
    last = end or max(today, start or today)
    first = start or days_before(last, DEFAULT_DAYS - 1)
    if first > last:
        raise invalid_parameter("start_date", "start_date is after end_date")
    return first, last


def local_today(site: Site, now: datetime) -> date:
    return now.astimezone(site.timezone).date()


# -- queries ----------------------------------------------------------------------------


def build_synced(site_id: str) -> Query:
    return Query("SELECT synced_at FROM order_sync WHERE site_id = $1", [site_id])


def build_days(site_id: str, first: date, last: date, limit: int) -> Query:
    p = Params()
    sql = (
        "SELECT day, orders, revenue FROM order_day "
        f"WHERE site_id = {p.add(site_id)} AND day >= {p.add(first)} AND day <= {p.add(last)} "
        f"ORDER BY day DESC LIMIT {p.add(limit)}"
    )
    return Query(sql, p.values, ("day", "orders", "revenue"))


def build_items(site_id: str, first: date, last: date, limit: int) -> Query:
    """Per item over the days: Σ quantity, Σ revenue, the name of its latest day, and how
    many items there are (before the limit). One name row per item: (site, day, item) is
    the table's key."""
    p = Params()
    site = p.add(site_id)
    sql = (
        "WITH item AS (SELECT item_id, sum(quantity) AS quantity, sum(revenue) AS revenue, "
        "max(day) AS last_day FROM order_item_day "
        f"WHERE site_id = {site} AND day >= {p.add(first)} AND day <= {p.add(last)} "
        "GROUP BY item_id) "
        "SELECT i.item_id, n.item_name, i.quantity, i.revenue, count(*) OVER () AS items "
        "FROM item i JOIN order_item_day n "
        f"ON n.site_id = {site} AND n.day = i.last_day AND n.item_id = i.item_id "
        f"ORDER BY i.revenue DESC, i.item_id LIMIT {p.add(limit)}"
    )
    return Query(sql, p.values, ("item_id", "item_name", "quantity", "revenue", "items"))


def build_hours(site_id: str, first: date, last: date) -> Query:
    p = Params()
    sql = (
        "SELECT day, hour, orders FROM order_hour "
        f"WHERE site_id = {p.add(site_id)} AND day >= {p.add(first)} AND day <= {p.add(last)} "
        "ORDER BY day, hour"
    )
    return Query(sql, p.values, ("day", "hour", "orders"))


_RUN = ("generated_at", "model", "level", "score", "model_mae", "naive_mae", "coverage",
        "origins")  # fmt: skip


def build_run(site_id: str, series: Series) -> Query:
    """The latest run of the series."""
    sql = (
        f"SELECT {', '.join(_RUN)} FROM forecast_run WHERE site_id = $1 AND series = $2 "
        "ORDER BY generated_at DESC LIMIT 1"
    )
    return Query(sql, [site_id, series.value], _RUN)


def build_points(
    site_id: str, series: Series, since: datetime, until: datetime | None, limit: int | None
) -> Query:
    """The latest run's points from ``since`` (local time), before ``until`` when given,
    the first ``limit`` of them when given."""
    p = Params()
    site, name = p.add(site_id), p.add(series.value)
    sql = (
        "SELECT p.ts, p.value, p.lower, p.upper FROM forecast_point p "
        f"WHERE p.site_id = {site} AND p.series = {name} AND p.generated_at = "
        "(SELECT max(r.generated_at) FROM forecast_run r "
        f"WHERE r.site_id = {site} AND r.series = {name}) AND p.ts >= {p.add(since)}"
    )
    if until is not None:
        sql += f" AND p.ts < {p.add(until)}"
    sql += " ORDER BY p.ts"
    if limit is not None:
        sql += f" LIMIT {p.add(limit)}"
    return Query(sql, p.values, ("ts", "value", "lower", "upper"))


# -- answers ----------------------------------------------------------------------------


async def synced_at(ex: Executor, site: Site) -> str | None:
    """When the order batch last finished a run for the site (None: never)."""
    rows = await ex.rows(build_synced(site.id))
    return utc_text(rows[0][0]) if rows else None


def _quantity(value: Decimal) -> int | Decimal:
    """A quantity as a count when it is whole (items sold by weight keep their places)."""
    return int(value) if value == value.to_integral_value() else value.normalize()


async def summary(ex: Executor, site: Site, first: date, last: date, limit: int) -> dict[str, Any]:
    """Revenue, orders and average order value per day, the newest first; a day without
    orders is a row of zeros."""
    rows = await ex.dicts(build_days(site.id, first, last, limit))
    days = [
        {"date": row["day"].isoformat(), "total_revenue": money(row["revenue"]),
         "order_count": int(row["orders"]),
         "average_order_value": money_ratio(row["revenue"], row["orders"])}
        for row in rows
    ]  # fmt: skip
    return {"daily_summaries": days, "total_records": len(days),
            "as_of": await synced_at(ex, site)}  # fmt: skip


async def top_items(
    ex: Executor, site: Site, first: date, last: date, limit: int
) -> dict[str, Any]:
    """Items by revenue over the days (ties by item id), with the name of each item's
    latest day; ``total_items`` counts every item sold in the range, so a client sees how
    many the limit left out."""
    rows = await ex.dicts(build_items(site.id, first, last, limit))
    items = [
        {"item_id": row["item_id"], "item_name": row["item_name"],
         "total_quantity": _quantity(row["quantity"]), "total_revenue": money(row["revenue"])}
        for row in rows
    ]  # fmt: skip
    total = int(rows[0]["items"]) if rows else 0
    return {"top_items": items, "total_items": total, "as_of": await synced_at(ex, site)}


async def hourly(ex: Executor, site: Site, target: date, days_back: int) -> dict[str, Any]:
    """Orders per hour of the ``days_back`` days ending ``target``: 24 rows a day the
    batch has counted, none for a day it has not reached."""
    first = days_before(target, days_back - 1)
    rows = await ex.dicts(build_hours(site.id, first, target))
    hours = [{"date": row["day"].isoformat(), "hour": int(row["hour"]),
              "order_count": int(row["orders"])} for row in rows]  # fmt: skip
    return {"hourly_data": hours, "total_records": len(hours), "as_of": await synced_at(ex, site)}


def _figure(value: Any) -> float:
    return round(float(value), 2)


async def _run(ex: Executor, site: Site, series: Series) -> dict[str, Any] | None:
    rows = await ex.dicts(build_run(site.id, series))
    return rows[0] if rows else None


async def daily_forecast(
    ex: Executor, site: Site, series: DailyOrderSeries, limit: int, now: datetime
) -> dict[str, Any]:
    """The latest run's days from today on (the site's zone), at most ``limit``."""
    kind = Series(series.value)
    run = await _run(ex, site, kind)
    since = datetime.combine(local_today(site, now), time(0))
    points = await ex.dicts(build_points(site.id, kind, since, None, limit)) if run else []
    about = _about(run) if run else {}
    forecasts = [
        {"forecast_date": point["ts"].date().isoformat(), **_values(point),
         "forecast_type": kind.value, **about}
        for point in points
    ]  # fmt: skip
    return {"forecasts": forecasts, "total_forecasts": len(forecasts),
            "as_of": await synced_at(ex, site)}  # fmt: skip


async def hourly_forecast(ex: Executor, site: Site, day: date) -> dict[str, Any]:
    """The latest hourly run's hours of ``day`` (the site's zone)."""
    run = await _run(ex, site, Series.HOURLY_ORDERS)
    since = datetime.combine(day, time(0))
    until = since + timedelta(days=1) if day < date.max else None
    query = build_points(site.id, Series.HOURLY_ORDERS, since, until, None)
    points = await ex.dicts(query) if run else []
    about = _about(run) if run else {}
    forecasts = [{"hour": point["ts"].hour, **_values(point), **about} for point in points]
    return {"forecasts": forecasts, "total_forecasts": len(forecasts),
            "as_of": await synced_at(ex, site)}  # fmt: skip


def _values(point: dict[str, Any]) -> dict[str, float]:
    return {"forecast_value": _figure(point["value"]), "lower": _figure(point["lower"]),
            "upper": _figure(point["upper"])}  # fmt: skip


def _about(run: dict[str, Any]) -> dict[str, Any]:
    return {"model": run["model"], "generated_at": utc_text(run["generated_at"]),
            "score": run["score"]}  # fmt: skip


def _since(series: Series, site: Site, now: datetime) -> datetime:
    """The start (local, naive) of the hour or day that holds ``now``."""
    local = now.astimezone(site.timezone).replace(tzinfo=None)
    if series.hourly:
        return local.replace(minute=0, second=0, microsecond=0)
    return datetime.combine(local.date(), time(0))


def _stamp(series: Series, site: Site, ts: datetime) -> str:
    """A day as YYYY-MM-DD; an hour as its local start with the UTC offset then."""
    if not series.hourly:
        return ts.date().isoformat()
    return ts.replace(tzinfo=site.timezone).isoformat(timespec="minutes")


async def forecast(
    ex: Executor, site: Site, metric: Metric, horizon: int | None, now: datetime
) -> dict[str, Any]:
    """The latest run of the metric's series: its model, its backtest against the
    seasonal-naive forecast, and its points from the current day (or hour) on, the first
    ``horizon`` of them (None: all). No run yet: 404 naming the metric."""
    series = metric.series
    run = await _run(ex, site, series)
    if run is None:
        message = f"Site '{site.id}' has no forecast of {metric.value} yet."
        raise not_found("forecast_not_found", message, "metric")
    points = await ex.dicts(build_points(site.id, series, _since(series, site, now), None, horizon))
    made = utc_text(run["generated_at"])
    return {
        "site_id": site.id, "metric": metric.value, "series": series.value,
        "model": run["model"], "generated_at": made, "level": int(run["level"]),
        "backtest": {"score": run["score"], "model_mae": run["model_mae"],
                     "naive_mae": run["naive_mae"], "coverage": run["coverage"],
                     "origins": int(run["origins"])},
        "forecasts": [{"ts": _stamp(series, site, point["ts"]), "value": _figure(point["value"]),
                       "lower": _figure(point["lower"]), "upper": _figure(point["upper"])}
                      for point in points],
        "as_of": await synced_at(ex, site) if series.of_orders else made,
    }  # fmt: skip
