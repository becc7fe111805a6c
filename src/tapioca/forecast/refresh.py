"""The forecast refresh of a site: the series it has, read from the store, each
forecast (forecast.forecast, off the event loop, within a deadline) and stored as a run
with its backtest; the API serves each series' latest run.

Series: daily revenue and orders (7 days from today on) and hourly orders (today and
tomorrow: 48 hours) of a site with an order source, from the days the batch counted;
daily pageviews and visitors (7 days) of a site with events, as the web reports count
them. History ends yesterday (the last whole day, in the site's zone)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from tapioca.forecast import Forecast, Freq, forecast
from tapioca.kit.timerange import Interval
from tapioca.logging import get_logger
from tapioca.reports import web
from tapioca.reports.executor import Executor
from tapioca.reports.scope import resolve_scope
from tapioca.sites.lookup import resolve_site
from tapioca.storage.base import ReadStore, Store
from tapioca.storage.statements import insert_values

log = get_logger(__name__)

DAILY_HORIZON = 7
HOURLY_HORIZON = 48
DAILY_HISTORY_DAYS = 3 * 365
HOURLY_HISTORY_DAYS = 8 * 7
WEB_HISTORY_DAYS = 365
DEADLINE_S = 20.0


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    freq: Freq
    horizon: int
    start: datetime  # local time of the first value
    values: list[float]


async def order_series(db: ReadStore, site_id: str, today: date) -> list[Series]:
    """Daily revenue and orders, hourly orders, up to yesterday (none: no counted days)."""
    first = today - timedelta(days=DAILY_HISTORY_DAYS)
    rows = await db.fetch(
        "SELECT day, orders, revenue FROM order_day WHERE site_id = $1 AND day >= $2 "
        "AND day < $3 ORDER BY day",
        (site_id, first, today),
    )
    if not rows:
        return []
    days = {row[0]: (float(row[1]), float(row[2])) for row in rows}
    start = rows[0][0]
    span = [start + timedelta(days=n) for n in range((today - start).days)]
    at = datetime.combine(start, time())
    found = [
        Series(
            "daily_revenue", Freq.DAY, DAILY_HORIZON, at, [days.get(d, (0, 0))[1] for d in span]
        ),
        Series("daily_orders", Freq.DAY, DAILY_HORIZON, at, [days.get(d, (0, 0))[0] for d in span]),
    ]
    hour_start = max(start, today - timedelta(days=HOURLY_HISTORY_DAYS))
    hours = await db.fetch(
        "SELECT day, hour, orders FROM order_hour WHERE site_id = $1 AND day >= $2 AND day < $3",
        (site_id, hour_start, today),
    )
    counts = {(row[0], int(row[1])): float(row[2]) for row in hours}
    hour_days = [hour_start + timedelta(days=n) for n in range((today - hour_start).days)]
    values = [counts.get((d, h), 0.0) for d in hour_days for h in range(24)]
    at = datetime.combine(hour_start, time())
    found.append(Series("hourly_orders", Freq.HOUR, HOURLY_HORIZON, at, values))
    return found


async def web_series(db: ReadStore, site_id: str, now: datetime) -> list[Series]:
    """Daily pageviews and visitors as the web reports count them, from the site's first
    event (at most a year back) to yesterday (none: no events before today)."""
    first_rows = await db.fetch("SELECT min(ts) FROM event WHERE site_id = $1", (site_id,))
    if not first_rows or first_rows[0][0] is None:
        return []
    executor = Executor(db)

    async def report(ex: Executor) -> dict[str, Any]:
        zone = (await resolve_site(ex.db, site_id)).site.timezone
        today = now.astimezone(zone).date()
        first = first_rows[0][0].astimezone(zone).date()
        start = max(first, today - timedelta(days=WEB_HISTORY_DAYS))
        if start >= today:
            return {"results": []}
        scope = await resolve_scope(
            ex.db, site_id, None, start.isoformat(), (today - timedelta(days=1)).isoformat(),
            None, None, now,
        )  # fmt: skip
        answer = await web.timeseries(ex, scope, Interval.DAY, ["pageviews", "visitors"])
        answer["start"] = start
        return answer

    answer = await executor.answer(report)
    results = answer["results"]
    if not results:
        return []
    at = datetime.combine(answer["start"], time())
    return [
        Series(f"daily_{metric}", Freq.DAY, DAILY_HORIZON, at,
               [float(row[metric] or 0) for row in results])
        for metric in ("pageviews", "visitors")
    ]  # fmt: skip


_SAVE_RUN = (
    "INSERT INTO forecast_run (site_id, series, generated_at, model, level, horizon, score, "
    "model_mae, naive_mae, coverage, origins, history) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
)


async def save(store: Store, site_id: str, series: Series, made: Forecast, at: datetime) -> None:
    """Store one forecast run: its points, then the run (which the API finds them by)."""
    b = made.backtest
    points = [
        (site_id, series.name, at, p.ts.replace(tzinfo=None), p.value, p.lower, p.upper)
        for p in made.points
    ]
    columns = "site_id, series, generated_at, ts, value, lower, upper"
    for sql, args in insert_values("forecast_point", columns, points):
        await store.execute(sql, args)
    await store.execute(
        _SAVE_RUN,
        (site_id, series.name, at, made.model, made.level, series.horizon, _finite(b.score),
         _finite(b.model_mae), _finite(b.naive_mae), _finite(b.coverage), b.origins,
         len(series.values)),
    )  # fmt: skip


def _finite(value: float | None) -> float | None:
    return value if value is not None and value == value and abs(value) != float("inf") else None


async def refresh(
    store: Store,
    db: ReadStore,
    site_id: str,
    now: datetime | None = None,
    deadline_s: float = DEADLINE_S,
) -> dict[str, Any]:
    """Forecast every series the site has; what was made, per series."""
    now = now or datetime.now(UTC)
    zone = (await resolve_site(db, site_id)).site.timezone
    today = now.astimezone(zone).date()
    found = await order_series(db, site_id, today) + await web_series(db, site_id, now)
    made: dict[str, Any] = {}
    for series in found:
        result = await asyncio.to_thread(
            forecast, series.values, series.start, series.freq, series.horizon,
            deadline_s=deadline_s,
        )  # fmt: skip
        await save(store, site_id, series, result, now)
        made[series.name] = {"model": result.model, "score": _finite(result.backtest.score)}
    log.info("forecasts_made", site_id=site_id, series=sorted(made))
    return {"series": made}
