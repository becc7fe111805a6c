"""Web reports: overview, timeseries, breakdown, realtime (metrics.md, Web metrics).

Each reads rollups when they can answer (no filters, a range on whole UTC hours) and raw
events and sessions otherwise, through the query builders (reports/queries/) and the
executor; every number is a metric of reports/metrics.py. The commerce metrics (revenue,
transactions, conversion rate) come from the derived transactions of the same snapshot."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from tapioca.errors import invalid_parameter
from tapioca.kit.timerange import Interval, TooManyBuckets
from tapioca.model.dimensions import SESSION_DIMENSIONS, TOTAL, Dimension
from tapioca.model.figures import Source
from tapioca.reports import metrics as m
from tapioca.reports.executor import Executor
from tapioca.reports.queries import Params
from tapioca.reports.queries.events import (
    bucket_key,
    build_realtime,
    build_totals,
    dimension_key,
    event_where,
    session_where,
    source_of,
)
from tapioca.reports.queries.rollup import Group, build_hour_totals, build_sums, by_bucket, by_value
from tapioca.reports.sales import Sales, sales
from tapioca.reports.scope import Scope
from tapioca.reports.visitors import Counts, Days, bounds, read_days, visitors_by
from tapioca.sites.site import Site

Rows = dict[Any, dict[str, Any]]  # bucket or value → figures


async def _totals(
    ex: Executor,
    scope: Scope,
    source: Source,
    group: Callable[[Params], str] | None = None,
) -> list[dict[str, Any]]:
    """The figures of the scope's raw events or sessions, in total or per ``group``."""
    p = Params()
    key = group(p) if group else None
    span = scope.span
    if source is Source.EVENT:
        clause = event_where(scope.site.id, span.start_utc, span.end_utc, scope.filters, p,
                             scope.upto)  # fmt: skip
    else:
        clause = session_where(scope.site.id, span.start_utc, span.end_utc, scope.filters, p)
    return await ex.dicts(build_totals(source, clause, p, key))


async def _rolled(
    ex: Executor,
    scope: Scope,
    source: Source | tuple[Source, ...],
    dim: str = TOTAL,
    group: Group | None = None,
    days: bool = False,
) -> list[dict[str, Any]]:
    return await ex.dicts(build_sums(source, scope.site.id, dim, scope.span, group, days))


async def session_totals(ex: Executor, scope: Scope) -> dict[str, Any]:
    """The figures of the sessions that start in the scope."""
    if scope.rolled:
        (sessions,) = await _rolled(ex, scope, Source.SESSION, days=scope.whole_days)
    else:
        (sessions,) = await _totals(ex, scope, Source.SESSION)
    return sessions


async def overview(
    ex: Executor, scope: Scope, metrics: Sequence[str] = m.ALL_METRICS
) -> dict[str, Any]:
    """The totals of the scope: every metric, or those of ``metrics`` (only what they
    are computed from is read)."""
    wanted = set(metrics)
    sources = tuple(
        source
        for source, names in ((Source.EVENT, m.EVENT_METRICS), (Source.SESSION, m.SESSION_METRICS))
        if wanted & set(names)
    )
    figures: dict[str, Any] = {}
    if sources and scope.rolled:  # the events' and the sessions' sums in one statement
        (found,) = await _rolled(ex, scope, sources, days=scope.whole_days)
        figures.update(found)
        if "visitors" in wanted:
            counts = await visitors_by(ex, scope, scope.span, TOTAL)
            figures["visitors"] = counts.get((None, None), 0)
    else:
        for source in sources:
            (found,) = await _totals(ex, scope, source)
            figures.update(found)
    if wanted & set(m.COMMERCE_METRICS):
        total = (await sales(ex, scope)).get(None, Sales())
        figures.update(total.figures(scope.currency))
    return {**scope.echo(), **m.values(figures, list(metrics))}


async def timeseries(
    ex: Executor, scope: Scope, interval: Interval, metrics: list[str]
) -> dict[str, Any]:
    try:
        buckets = interval.buckets(scope.span)
    except TooManyBuckets as exc:
        raise invalid_parameter("interval", f"{exc}; widen it") from exc
    rows: Rows = {}
    if scope.rolled:
        await _timeseries_rolled(ex, scope, interval, metrics, rows)
    else:
        await _timeseries_raw(ex, scope, interval, metrics, rows)
    if set(metrics) & set(m.COMMERCE_METRICS):
        for bucket, found in (await sales(ex, scope, interval)).items():
            rows.setdefault(bucket, {}).update(found.figures(scope.currency))
    results = [
        {"bucket": interval.label(bucket, scope.span), **m.values(rows.get(bucket, {}), metrics)}
        for bucket in buckets
    ]
    return {**scope.echo(), "interval": interval.value, "results": results}


async def _timeseries_raw(
    ex: Executor, scope: Scope, interval: Interval, metrics: list[str], rows: Rows
) -> None:
    zone = scope.span.tz.key
    for source, wanted in ((Source.EVENT, m.EVENT_METRICS), (Source.SESSION, m.SESSION_METRICS)):
        if set(metrics) & set(wanted):
            group = partial(bucket_key, source, interval, zone)
            for row in await _totals(ex, scope, source, group):
                rows.setdefault(interval.key_of(row["k"]), {}).update(row)


async def _timeseries_rolled(
    ex: Executor, scope: Scope, interval: Interval, metrics: list[str], rows: Rows
) -> None:
    span = scope.span
    start, end = span.start_utc, span.end_utc
    local = by_bucket(interval, span.tz.key)
    days = interval is not Interval.HOUR and scope.whole_days
    wanted = set(metrics)
    hourly = interval is Interval.HOUR  # one row per hour holds every event figure
    if hourly and wanted & {"pageviews", "events", "visitors"}:
        for row in await ex.dicts(build_hour_totals(scope.site.id, start, end)):
            rows.setdefault(interval.key_of(row.pop("hour")), {}).update(row)
    elif wanted & {"pageviews", "events"}:
        for row in await _rolled(ex, scope, Source.EVENT, TOTAL, local, days):
            rows.setdefault(interval.key_of(row["k"]), {}).update(row)
    if wanted & set(m.SESSION_METRICS):
        for row in await _rolled(ex, scope, Source.SESSION, TOTAL, local, days):
            rows.setdefault(interval.key_of(row["k"]), {}).update(row)
    if "visitors" not in wanted or hourly:
        return
    for (_, moment), count in (await visitors_by(ex, scope, span, TOTAL, interval)).items():
        rows.setdefault(moment, {})["visitors"] = count


async def breakdown(
    ex: Executor, scope: Scope, dimension: Dimension, metrics: list[str], limit: int
) -> dict[str, Any]:
    if dimension is Dimension.COUNTRY:  # not collected: no GeoIP database
        return {**scope.echo(), "dimension": dimension.value, "results": []}
    by_session = dimension in SESSION_DIMENSIONS
    if not by_session:
        bad = [name for name in metrics if name in m.SESSION_METRICS]
        if bad:
            raise invalid_parameter(
                "metrics", f"{bad} are session metrics; '{dimension.value}' is an event dimension"
            )
    source = source_of(dimension)
    if scope.rolled:
        rows = await _rolled(ex, scope, source, dimension.value, by_value, scope.whole_days)
        if "visitors" in metrics:
            await _add_visitors(ex, scope, dimension, rows, metrics, limit, by_session)
    else:
        rows = await _totals(ex, scope, source, lambda _p: dimension_key(dimension))
    if set(metrics) & set(m.COMMERCE_METRICS):
        await _add_commerce(ex, scope, dimension, rows)
    results = [{"value": row["k"], **m.values(row, metrics, by_session)} for row in rows]
    key = metrics[0]
    results.sort(key=lambda r: (-r[key], r["value"] is None, r["value"] or ""))
    return {**scope.echo(), "dimension": dimension.value, "results": results[:limit]}


# The additive first metrics a breakdown can rank by, and their figures, per kind of
# dimension (True: a session dimension).
_RANKS = {
    False: {"pageviews": "pageviews", "events": "events"},
    True: {"pageviews": "session_pageviews", "events": "session_events", "sessions": "sessions"},
}


async def _add_visitors(
    ex: Executor,
    scope: Scope,
    dimension: Dimension,
    rows: list[dict[str, Any]],
    metrics: list[str],
    limit: int,
    by_session: bool,
) -> None:
    """Visitors of the breakdown rows that can make the top ``limit``: all of them from
    events when the daily rollups are in another zone; else the top rows by an additive
    first metric, or, when visitors rank, the values whose most visitors possible (the
    sum of their days) reaches the ``limit``-th largest fewest possible (their best day).
    A value with visitors but no additive figure in the range cannot exist (both come
    from the same events)."""
    dim = dimension.value
    values: list[Any] | None = None
    days: Days | None = None
    if scope.days_usable:
        first = metrics[0]
        if first in _RANKS[by_session]:
            name = _RANKS[by_session][first]
            ranked = sorted(rows, key=lambda r: (-(r[name] or 0), r["k"] is None, r["k"] or ""))
            values = [r["k"] for r in ranked[:limit]]
        elif first == "visitors":
            days = await read_days(ex, scope, dim, scope.span)
            most = bounds(days)
            floors = sorted((low for low, _ in most.values()), reverse=True)
            bar = floors[limit - 1] if len(floors) >= limit else 0
            values = [v for v, (_, high) in most.items() if high >= bar]
    counts: Counts = {}
    if values is None or values:  # [] when no value has visitors
        counts = await visitors_by(ex, scope, scope.span, dim, None, values, days)
    column = "session_visitors" if by_session else "visitors"
    for row in rows:
        row[column] = counts.get((row["k"], None), 0)


async def _add_commerce(
    ex: Executor, scope: Scope, dimension: Dimension, rows: list[dict[str, Any]]
) -> None:
    """The transaction figures of each value (a row for a value that only transactions
    have): by the transaction's session for a session dimension, else its purchase event."""
    by_value = {row["k"]: row for row in rows}
    for value, found in (await sales(ex, scope, dimension)).items():
        row = by_value.get(value)
        if row is None:
            row = by_value[value] = {"k": value}
            rows.append(row)
        row.update(found.figures(scope.currency))


async def realtime(ex: Executor, site: Site, now: datetime) -> dict[str, Any]:
    ((count,),) = await ex.rows(build_realtime(site.id, now - timedelta(minutes=5)))
    return {"site_id": site.id, "visitors": int(count)}


def utc_now() -> datetime:
    return datetime.now(UTC)
