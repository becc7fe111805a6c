"""Web reports: overview, timeseries, breakdown, realtime (metrics.md, Web metrics)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from tapioca.errors import ErrorDetail, invalid_parameter, validation_error
from tapioca.kit.timerange import DateRange, build_range, parse_zone
from tapioca.reports.filters import (
    EVENT_DIMENSIONS,
    SESSION_DIMENSIONS,
    Dimension,
    Filter,
    parse_filters,
)
from tapioca.reports.queries import rollup
from tapioca.reports.queries.web import (
    Params,
    build_event_totals,
    build_realtime,
    build_session_totals,
    event_where,
    session_where,
)
from tapioca.reports.sites import Site, resolve_site
from tapioca.storage.base import ReadStore


class Interval(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


EVENT_METRIC_NAMES = ("pageviews", "visitors", "events")
SESSION_METRIC_NAMES = ("sessions", "bounce_rate", "avg_session_seconds", "views_per_session")
ALL_METRICS = EVENT_METRIC_NAMES + SESSION_METRIC_NAMES
MAX_BUCKETS = 10_000


@dataclass(frozen=True)
class Scope:
    site: Site
    span: DateRange
    filters: list[Filter]

    def echo(self) -> dict[str, Any]:
        return {
            "site_id": self.site.id,
            "start_date": self.span.start_date.isoformat() if self.span.start_date else None,
            "end_date": self.span.end_date.isoformat() if self.span.end_date else None,
            "tz": self.span.tz.key,
        }


async def resolve_scope(
    db: ReadStore,
    site_id: str | None,
    date_: str | None,
    start_date: str | None,
    end_date: str | None,
    tz: str | None,
    filters: str | None,
) -> Scope:
    site = await resolve_site(db, site_id)
    zone = parse_zone(tz) if tz else site.timezone
    span = build_range(date_=date_, start_date=start_date, end_date=end_date, tz=zone)
    return Scope(site, span, parse_filters(filters))


_METRIC = "|".join(ALL_METRICS)
# What parse_metrics takes, as /openapi.json states it: names, commas, spaces around.
METRICS_PATTERN = rf"^(?: *(?:{_METRIC}) *(?:, *(?:{_METRIC}) *)*)?$"


def parse_metrics(text: str | None, default: tuple[str, ...]) -> list[str]:
    if not text:
        return list(default)
    names = [m.strip(" ") for m in text.split(",")]
    unknown = [m for m in names if m not in ALL_METRICS]
    if unknown:
        raise invalid_parameter("metrics", f"unknown metric(s) {unknown}; use {list(ALL_METRICS)}")
    return list(dict.fromkeys(names))


def _ratio(part: float | None, whole: int) -> float:
    return round(float(part or 0) / whole, 4) if whole else 0.0


def _session_values(row: dict[str, Any]) -> dict[str, Any]:
    sessions = int(row.get("sessions") or 0)
    return {
        "sessions": sessions,
        "bounce_rate": _ratio(row.get("bounces"), sessions),
        "avg_session_seconds": round(float(row.get("duration_seconds") or 0) / sessions, 2)
        if sessions
        else 0.0,
        "views_per_session": round(float(row.get("session_pageviews") or 0) / sessions, 2)
        if sessions
        else 0.0,
    }


async def _fetch_dicts(
    db: ReadStore, query: tuple[str, list[Any]], names: list[str]
) -> list[dict[str, Any]]:
    return [dict(zip(names, row, strict=True)) for row in await db.fetch(*query)]


_EVENT_NAMES = ["pageviews", "visitors", "events"]
_SESSION_NAMES = ["sessions", "bounces", "duration_seconds", "session_pageviews",
                  "session_visitors", "session_events"]  # fmt: skip


async def overview(db: ReadStore, scope: Scope) -> dict[str, Any]:
    start, end = scope.span.start_utc, scope.span.end_utc
    if rollup.usable(scope.span, scope.filters):
        days = rollup.whole_days(scope.span, scope.filters, scope.site)
        (ev,) = await rollup.sums(
            db, "rollup_hour", rollup.EVENT_SUMS, scope.site.id, "", scope.span, None, days
        )
        (se,) = await rollup.sums(
            db, "rollup_session_hour", rollup.SESSION_SUMS, scope.site.id, "", scope.span,
            None, days,
        )  # fmt: skip
        visitors = (await _visitors_by(db, scope, scope.span, "")).get((None, None), 0)
        counts = {"pageviews": int(ev["pageviews"] or 0), "visitors": visitors,
                  "events": int(ev["events"] or 0)}  # fmt: skip
        return {**scope.echo(), **counts, **_session_values(se)}
    p = Params()
    events = await _fetch_dicts(
        db,
        build_event_totals(event_where(scope.site.id, start, end, scope.filters, p), p),
        _EVENT_NAMES,
    )
    q = Params()
    sessions = await _fetch_dicts(
        db,
        build_session_totals(session_where(scope.site.id, start, end, scope.filters, q), q),
        _SESSION_NAMES,
    )
    totals = {name: int(events[0][name] or 0) for name in _EVENT_NAMES}
    return {**scope.echo(), **totals, **_session_values(sessions[0])}


async def _visitors_by(
    db: ReadStore,
    scope: Scope,
    span: DateRange,
    dim: str,
    interval: Interval | None = None,
    values: list[Any] | None = None,
    parts: list[rollup.Part] | None = None,
) -> dict[tuple[Any, Any], int]:
    """Distinct visitors per (value, bucket start): from the daily rollups when they are
    in the report's zone (``parts``: their rows, already read), else from events
    (sessions for a session dimension)."""
    if interval is not Interval.HOUR and rollup.days_usable(span, scope.site):
        bucket = None if interval is None else (lambda d: _bucket_of(d, interval))
        return await rollup.day_visitors(db, scope.site.id, dim, span, bucket, values, parts)
    p = Params()
    start, end = span.start_utc, span.end_utc
    keys: list[str] = []
    if dim:
        keys.append(f"e.{EVENT_DIMENSIONS[Dimension(dim)]}" if Dimension(dim) in
                    EVENT_DIMENSIONS else f"s.{SESSION_DIMENSIONS[Dimension(dim)]}")  # fmt: skip
    if interval is not None:
        keys.append(f"date_trunc('{interval.value}', e.ts AT TIME ZONE {p.add(span.tz.key)})")
    if dim and Dimension(dim) in SESSION_DIMENSIONS:
        where = session_where(scope.site.id, start, end, [], p)
        sql = f"SELECT {keys[0]}, count(DISTINCT s.visitor_id) FROM session s WHERE {where} "
        sql += f"GROUP BY {keys[0]}"
        return {(row[0], None): int(row[1]) for row in await db.fetch(sql, p.values)}
    where = event_where(scope.site.id, start, end, [], p)
    select = ", ".join([*keys, "count(DISTINCT e.visitor_id)"])
    sql = f"SELECT {select} FROM event e WHERE {where}"
    if keys:
        sql += " GROUP BY " + ", ".join(keys)
    out = {}
    for row in await db.fetch(sql, p.values):
        value = row[0] if dim else None
        moment = _naive(row[-2]) if interval is not None else None
        out[(value, moment)] = int(row[-1])
    return out


def _bucket_of(day: date, interval: Interval) -> datetime:
    if interval is Interval.WEEK:
        day -= timedelta(days=day.weekday())
    elif interval is Interval.MONTH:
        day = day.replace(day=1)
    return datetime.combine(day, datetime.min.time())


def _buckets(span: DateRange, interval: Interval) -> list[datetime]:
    """Every bucket start (local, naive) from the range start to its end, zero-filled."""
    assert span.start_date is not None and span.end_date is not None
    first = datetime.combine(span.start_date, datetime.min.time())
    last = datetime.combine(span.end_date, datetime.min.time()) + timedelta(days=1)
    if interval is Interval.WEEK:
        first -= timedelta(days=first.weekday())
    if interval is Interval.MONTH:
        first = first.replace(day=1)
    out, moment = [], first
    while moment < last:
        out.append(moment)
        if len(out) > MAX_BUCKETS:
            raise invalid_parameter("interval", f"more than {MAX_BUCKETS} buckets; widen it")
        moment = _advance(moment, interval)
    return out


def _advance(moment: datetime, interval: Interval) -> datetime:
    if interval is Interval.HOUR:
        return moment + timedelta(hours=1)
    if interval is Interval.DAY:
        return moment + timedelta(days=1)
    if interval is Interval.WEEK:
        return moment + timedelta(days=7)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return moment.replace(year=year, month=month)


def _label(moment: datetime, interval: Interval) -> str:
    if interval is Interval.HOUR:
        return moment.strftime("%Y-%m-%dT%H:00")
    return moment.date().isoformat()


def default_span(span: DateRange, today: date) -> DateRange:
    """Timeseries need both bounds: the 30 days up to today unless given."""
    end = span.end_date or today
    start = span.start_date or end - timedelta(days=29)
    if start > end:
        raise invalid_parameter("start_date", "start_date is after end_date")
    return DateRange(start, end, span.tz)


async def timeseries(
    db: ReadStore, scope: Scope, interval: Interval, metrics: list[str], now: datetime
) -> dict[str, Any]:
    span = default_span(scope.span, now.astimezone(scope.span.tz).date())
    buckets = _buckets(span, interval)
    rows: dict[Any, dict[str, Any]] = {}
    if rollup.usable(span, scope.filters):
        await _timeseries_rolled(db, scope, span, interval, metrics, rows)
    else:
        await _timeseries_raw(db, scope, span, interval, metrics, rows)
    results = []
    for bucket in buckets:
        row = rows.get(bucket, {})
        values = {name: int(row.get(name) or 0) for name in EVENT_METRIC_NAMES}
        values.update(_session_values(row))
        results.append({"bucket": _label(bucket, interval), **{m: values[m] for m in metrics}})
    echo = Scope(scope.site, span, scope.filters).echo()
    return {**echo, "interval": interval.value, "results": results}


async def _timeseries_raw(
    db: ReadStore,
    scope: Scope,
    span: DateRange,
    interval: Interval,
    metrics: list[str],
    rows: dict[Any, dict[str, Any]],
) -> None:
    start, end = span.start_utc, span.end_utc
    if set(metrics) & set(EVENT_METRIC_NAMES):
        p = Params()
        group = f"date_trunc('{interval.value}', e.ts AT TIME ZONE {p.add(span.tz.key)})"
        where = event_where(scope.site.id, start, end, scope.filters, p)
        for row in await _fetch_dicts(
            db, build_event_totals(where, p, group), ["k", *_EVENT_NAMES]
        ):
            rows.setdefault(_naive(row["k"]), {}).update(row)
    if set(metrics) & set(SESSION_METRIC_NAMES):
        q = Params()
        group = f"date_trunc('{interval.value}', s.started_at AT TIME ZONE {q.add(span.tz.key)})"
        where = session_where(scope.site.id, start, end, scope.filters, q)
        for row in await _fetch_dicts(
            db, build_session_totals(where, q, group), ["k", *_SESSION_NAMES]
        ):
            rows.setdefault(_naive(row["k"]), {}).update(row)


async def _timeseries_rolled(
    db: ReadStore,
    scope: Scope,
    span: DateRange,
    interval: Interval,
    metrics: list[str],
    rows: dict[Any, dict[str, Any]],
) -> None:
    start, end = span.start_utc, span.end_utc
    zone = span.tz.key

    def local(p: Params, day: bool) -> str:
        moment = "CAST(r.day AS TIMESTAMP)" if day else f"r.hour AT TIME ZONE {p.add(zone)}"
        return f"date_trunc('{interval.value}', {moment})"

    days = interval is not Interval.HOUR and rollup.whole_days(span, scope.filters, scope.site)

    wanted = set(metrics)
    steady = (
        start is not None
        and end is not None
        and start.astimezone(span.tz).utcoffset() == end.astimezone(span.tz).utcoffset()
    )
    # hours with no clock change inside: one row per hour holds every event figure
    hourly = interval is Interval.HOUR and steady
    if hourly and wanted & {"pageviews", "events", "visitors"}:
        assert start is not None
        local_epoch = _EPOCH + (start.astimezone(span.tz).utcoffset() or timedelta(0))
        for seconds, events, pageviews, visitors in await rollup.hour_totals(
            db, scope.site.id, start, end
        ):
            moment = local_epoch + timedelta(seconds=seconds)  # one offset all along
            figures = {"events": events, "pageviews": pageviews, "visitors": visitors}
            rows.setdefault(moment, {}).update(figures)
    elif wanted & {"pageviews", "events"}:
        for row in await rollup.sums(
            db, "rollup_hour", rollup.EVENT_SUMS, scope.site.id, "", span, local, days
        ):
            rows.setdefault(_naive(row["k"]), {}).update(row)
    if wanted & set(SESSION_METRIC_NAMES):
        for row in await rollup.sums(
            db, "rollup_session_hour", rollup.SESSION_SUMS, scope.site.id, "", span, local, days
        ):
            rows.setdefault(_naive(row["k"]), {}).update(row)
    if "visitors" not in wanted or hourly:
        return
    # days, weeks and months from the daily rollups; hours around a clock change (one
    # repeated or skipped) from events
    counts = await _visitors_by(db, scope, span, "", interval)
    for (_, moment), count in counts.items():
        rows.setdefault(moment, {})["visitors"] = count


_EPOCH = datetime(1970, 1, 1)


def _naive(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime.combine(value, datetime.min.time())


async def breakdown(
    db: ReadStore, scope: Scope, dimension: Dimension, metrics: list[str], limit: int
) -> dict[str, Any]:
    start, end = scope.span.start_utc, scope.span.end_utc
    if dimension is Dimension.COUNTRY:  # not collected: no GeoIP database
        return {**scope.echo(), "dimension": dimension.value, "results": []}
    rolled = rollup.usable(scope.span, scope.filters)
    days = rollup.whole_days(scope.span, scope.filters, scope.site)
    if dimension in SESSION_DIMENSIONS and rolled:
        rows = await rollup.sums(db, "rollup_session_hour", rollup.SESSION_SUMS, scope.site.id,
                                 dimension.value, scope.span, _by_value, days)  # fmt: skip
        if "visitors" in metrics:
            await _add_visitors(db, scope, dimension, rows, metrics, limit, "session_visitors")
        results = [_session_row(row, metrics) for row in rows]
    elif dimension in SESSION_DIMENSIONS:
        p = Params()
        where = session_where(scope.site.id, start, end, scope.filters, p)
        group = f"s.{SESSION_DIMENSIONS[dimension]}"
        rows = await _fetch_dicts(db, build_session_totals(where, p, group), ["k", *_SESSION_NAMES])
        results = [_session_row(row, metrics) for row in rows]
    else:
        bad = [m for m in metrics if m in SESSION_METRIC_NAMES]
        if bad:
            raise invalid_parameter(
                "metrics", f"{bad} are session metrics; '{dimension.value}' is an event dimension"
            )
        if rolled:
            rows = await rollup.sums(db, "rollup_hour", rollup.EVENT_SUMS, scope.site.id,
                                     dimension.value, scope.span, _by_value, days)  # fmt: skip
            if "visitors" in metrics:
                await _add_visitors(db, scope, dimension, rows, metrics, limit, "visitors")
        else:
            p = Params()
            where = event_where(scope.site.id, start, end, scope.filters, p)
            group = f"e.{EVENT_DIMENSIONS[dimension]}"
            rows = await _fetch_dicts(db, build_event_totals(where, p, group), ["k", *_EVENT_NAMES])
        results = [{"value": r["k"], **{m: int(r[m] or 0) for m in metrics}} for r in rows]
    key = metrics[0]
    results.sort(key=lambda r: (-r[key], r["value"] is None, r["value"] or ""))
    return {**scope.echo(), "dimension": dimension.value, "results": results[:limit]}


def _by_value(p: Params, day: bool) -> str:
    return "r.value"


# The additive first metrics a breakdown can rank by, and their row columns.
_SORT_COLUMNS = {
    "visitors": {"pageviews": "pageviews", "events": "events"},
    "session_visitors": {"pageviews": "session_pageviews", "events": "session_events",
                         "sessions": "sessions"},
}  # fmt: skip


async def _add_visitors(
    db: ReadStore,
    scope: Scope,
    dimension: Dimension,
    rows: list[dict[str, Any]],
    metrics: list[str],
    limit: int,
    column: str,
) -> None:
    """Visitors of the breakdown rows that can make the top ``limit``: all of them from
    events when the daily rollups are in another zone; else the top rows by an additive
    first metric, or, when visitors rank, the values whose most visitors possible (the
    sum of their days) reaches the ``limit``-th largest fewest possible (their best day)."""
    dim = dimension.value
    values: list[Any] | None = None
    parts: list[rollup.Part] | None = None
    if rollup.days_usable(scope.span, scope.site):
        first = metrics[0]
        if first in _SORT_COLUMNS[column]:
            name = _SORT_COLUMNS[column][first]
            ranked = sorted(rows, key=lambda r: (-(r[name] or 0), r["k"] is None, r["k"] or ""))
            values = [r["k"] for r in ranked[:limit]]
        elif first == "visitors":
            parts = await rollup.day_parts(db, scope.site.id, dim, scope.span)
            bounds = rollup.part_bounds(parts)
            floors = sorted((low for low, _ in bounds.values()), reverse=True)
            bar = floors[limit - 1] if len(floors) >= limit else 0
            values = [v for v, (_, high) in bounds.items() if high >= bar]
    counts: dict[tuple[Any, Any], int] = {}
    if values is None or values:  # [] when no value has visitors
        counts = await _visitors_by(db, scope, scope.span, dim, None, values, parts)
    for row in rows:
        row[column] = counts.get((row["k"], None), 0)


def _session_row(row: dict[str, Any], metrics: list[str]) -> dict[str, Any]:
    values = {
        "pageviews": int(row["session_pageviews"] or 0),
        "visitors": int(row.get("session_visitors") or 0),
        "events": int(row["session_events"] or 0),
        **_session_values(row),
    }
    return {"value": row["k"], **{m: values[m] for m in metrics}}


async def realtime(db: ReadStore, site: Site, now: datetime) -> dict[str, Any]:
    (count,), *_ = await db.fetch(*build_realtime(site.id, now - timedelta(minutes=5)))
    return {"site_id": site.id, "visitors": int(count)}


def parse_dimension(text: str) -> Dimension:
    try:
        return Dimension(text)
    except ValueError as exc:
        raise validation_error(
            [ErrorDetail("dimension", f"use one of {[d.value for d in Dimension]}")],
            "Invalid parameter 'dimension'.",
        ) from exc


def utc_now() -> datetime:
    return datetime.now(UTC)
