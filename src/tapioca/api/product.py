"""Product report routes (api.md, Product): Tapioca's own, and seed 003's with its
parameter names and answers, ``site_id`` and ``tz`` added. Thin handlers over
reports/product.py.

Seed 003's README documents POST for its three reports. A POST takes the GET's query
parameters (as a FastAPI handler with plain parameters does), and the same names in an
optional JSON body, which wins over the query; ``site_id`` and ``tz`` stay in the query,
where the access check reads the site."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from tapioca.api.access import Access, access
from tapioca.api.reports import (
    Reader,
    ReportScope,
    ScopeQuery,
    SiteParam,
    StartParam,
    TzParam,
    known_parameters_only,
)
from tapioca.api.responses import JSONBody
from tapioca.errors import TapiocaError
from tapioca.kit.timerange import DATE_PATTERN, Interval
from tapioca.reports import funnel, product, web
from tapioca.reports.executor import Executor
from tapioca.reports.scope import Scope

router = APIRouter(tags=["product"], dependencies=[Depends(known_parameters_only)])

Limit = Annotated[int, Query(ge=1, le=1000)]
Buckets = Annotated[str, Query(pattern="^(day|week|month)$")]


def _today(scope: Scope) -> date:
    return web.utc_now().astimezone(scope.span.tz).date()


@router.get(
    "/api/v1/product/active-users",
    summary="Distinct users per day, week or month: dau, wau, mau",
    **access(Access.READ),
)
async def get_active_users(
    reader: Reader, scope: ReportScope, interval: Buckets = "day"
) -> JSONBody:
    unit = Interval(interval)
    return await scope.answer(reader, lambda ex, s: product.active_users(ex, s, unit))


@router.get(
    "/api/v1/product/top-events",
    summary="Event types by events, with their users",
    **access(Access.READ),
)
async def get_top_events(reader: Reader, scope: ReportScope, limit: Limit = 10) -> JSONBody:
    return await scope.answer(reader, lambda ex, s: product.top_events(ex, s, limit))


@router.get(
    "/api/v1/product/retention",
    summary="Cohorts by first activity: size, and users retained per later period",
    **access(Access.READ),
)
async def get_retention(
    reader: Reader,
    scope: ReportScope,
    cohort: Annotated[str, Query(pattern="^(day|week)$")] = "week",
    periods: Annotated[int, Query(ge=1, le=product.MAX_PERIODS)] = 8,
) -> JSONBody:
    unit = Interval(cohort)
    return await scope.answer(
        reader, lambda ex, s: product.retention(ex, s, unit, periods, _today(s))
    )


@router.get(
    "/api/v1/product/funnel",
    summary="Users at each ordered step, and their conversion",
    **access(Access.READ),
)
async def get_funnel(
    reader: Reader,
    scope: ReportScope,
    steps: Annotated[str, Query(max_length=4096, description="event types or /paths, by commas")],
    window: Annotated[str, Query(max_length=8, description="30m, 24h, 7d")] = "7d",
    breakdown: Annotated[str | None, Query(pattern="^(channel|device)$")] = None,
) -> JSONBody:
    asked, within = funnel.parse_steps(steps), funnel.parse_window(window)
    return await scope.answer(
        reader, lambda ex, s: product.funnel(ex, s, asked, within, window, breakdown)
    )


@router.get(
    "/api/v1/product/lifecycle",
    summary="New, returning, resurrecting and dormant users per day, week or month",
    **access(Access.READ),
)
async def get_lifecycle(reader: Reader, scope: ReportScope, interval: Buckets = "week") -> JSONBody:
    unit = Interval(interval)
    return await scope.answer(reader, lambda ex, s: product.lifecycle(ex, s, unit))


@router.get(
    "/api/v1/product/stickiness",
    summary="Users by their number of active days (or weeks) in the range",
    **access(Access.READ),
)
async def get_stickiness(
    reader: Reader,
    scope: ReportScope,
    interval: Annotated[str, Query(pattern="^(day|week)$")] = "day",
) -> JSONBody:
    unit = Interval(interval)
    return await scope.answer(reader, lambda ex, s: product.stickiness(ex, s, unit))


# == seed 003: {"data": [...], "response_time_sec": ...} ==============================


Report = Callable[[Executor, Scope], Awaitable[list[dict[str, Any]]]]


# seed 003's names of the range's bounds (errors name the parameter as it was sent)
_RANGE_NAMES = {"start_date": "from_date", "end_date": "to_date"}


def _rename(exc: TapiocaError, names: dict[str, str]) -> None:
    def spelt(text: str) -> str:
        for ours, theirs in names.items():
            text = text.replace(ours, theirs)
        return text

    exc.message = spelt(exc.message)
    exc.details = [replace(d, field=names.get(d.field, d.field), message=spelt(d.message))
                   for d in exc.details]  # fmt: skip


async def _timed(
    reader: Reader, scope: ScopeQuery, report: Report, names: dict[str, str] | None = None
) -> JSONBody:
    """Seed 003's answer: the report's rows, and the seconds it took; an error about the
    range names its bounds as ``names`` say."""
    began = time.perf_counter()

    async def data(ex: Executor, s: Scope) -> dict[str, Any]:
        return {"data": await report(ex, s)}

    try:
        answer = await scope.result(reader, data)
    except TapiocaError as exc:
        _rename(exc, names or {})
        raise
    return JSONBody({**answer, "response_time_sec": round(time.perf_counter() - began, 4)})


def _dau() -> Report:
    async def dau(ex: Executor, s: Scope) -> list[dict[str, Any]]:
        found = await product.active_users(ex, s, Interval.DAY, ("dau",))
        return [{"date": row["bucket"], "dau": row["dau"]} for row in found["results"]]

    return dau


def _top(limit: int) -> Report:
    async def top(ex: Executor, s: Scope) -> list[dict[str, Any]]:
        found = await product.top_events(ex, s, limit, users=False)
        return [{"event_type": r["event_type"], "total_count": r["events"]}
                for r in found["results"]]  # fmt: skip

    return top


def _retention(windows: int) -> Report:
    async def weeks(ex: Executor, s: Scope) -> list[dict[str, Any]]:
        found = await product.retention(ex, s, Interval.WEEK, windows - 1, _today(s))
        return [
            {"cohort_week": c["cohort_start"], "week_number": k, "retained_users": n}
            for c in found["results"] if c["size"]
            for k, n in enumerate(c["retained"])
        ]  # fmt: skip

    return weeks


FromParam = Annotated[str | None, Query(description="YYYY-MM-DD, inclusive")]
ToParam = Annotated[str | None, Query(description="YYYY-MM-DD, inclusive")]
Windows = Annotated[int, Query(ge=2, le=product.MAX_PERIODS, description="weeks, from 0")]
SEED = "Seed 003: "


def _range(site_id: str | None, tz: str | None, start: str | None, end: str | None) -> ScopeQuery:
    return ScopeQuery(site_id, None, start, end, tz, None)


@router.get("/api/stats/dau", summary=SEED + "distinct users per day", **access(Access.READ))
async def seed_dau(
    reader: Reader, site_id: SiteParam = None, tz: TzParam = None, from_date: FromParam = None,
    to_date: ToParam = None,
) -> JSONBody:  # fmt: skip
    names = {**_RANGE_NAMES, "interval": "from_date"}  # too many days: the range is too long
    return await _timed(reader, _range(site_id, tz, from_date, to_date), _dau(), names)


@router.get("/api/stats/top-events", summary=SEED + "event types by count", **access(Access.READ))
async def seed_top(
    reader: Reader, site_id: SiteParam = None, tz: TzParam = None, from_date: FromParam = None,
    to_date: ToParam = None, limit: Limit = 10,
) -> JSONBody:  # fmt: skip
    return await _timed(reader, _range(site_id, tz, from_date, to_date), _top(limit), _RANGE_NAMES)


@router.get(
    "/api/stats/retention", summary=SEED + "weekly first-activity cohorts", **access(Access.READ)
)
async def seed_retention(
    reader: Reader, site_id: SiteParam = None, tz: TzParam = None, start_date: StartParam = None,
    windows: Windows = 4,
) -> JSONBody:  # fmt: skip
    names = {"cohort": "start_date"}  # too many weeks up to today: the start is too early
    return await _timed(reader, _range(site_id, tz, start_date, None), _retention(windows), names)


# -- the POST form ---------------------------------------------------------------------

_Day = Annotated[
    str | None,
    Field(default=None, pattern=f"^{DATE_PATTERN}$", json_schema_extra={"format": "date"}),
]


class _Posted(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a site_id here would bypass the access check


class RangeBody(_Posted):
    from_date: _Day = None
    to_date: _Day = None


class TopBody(RangeBody):
    limit: int | None = Field(default=None, ge=1, le=1000)


class RetentionBody(_Posted):
    start_date: _Day = None
    windows: int | None = Field(default=None, ge=2, le=product.MAX_PERIODS)


@router.post("/api/stats/dau", summary=SEED + "distinct users per day", **access(Access.READ))
async def seed_dau_posted(
    reader: Reader, body: Annotated[RangeBody | None, Body()] = None, site_id: SiteParam = None,
    tz: TzParam = None, from_date: FromParam = None, to_date: ToParam = None,
) -> JSONBody:  # fmt: skip
    b = body or RangeBody()
    return await seed_dau(reader, site_id, tz, b.from_date or from_date, b.to_date or to_date)


@router.post("/api/stats/top-events", summary=SEED + "event types by count", **access(Access.READ))
async def seed_top_posted(
    reader: Reader, body: Annotated[TopBody | None, Body()] = None, site_id: SiteParam = None,
    tz: TzParam = None, from_date: FromParam = None, to_date: ToParam = None, limit: Limit = 10,
) -> JSONBody:  # fmt: skip
    b = body or TopBody()
    return await seed_top(
        reader, site_id, tz, b.from_date or from_date, b.to_date or to_date, b.limit or limit
    )


@router.post(
    "/api/stats/retention", summary=SEED + "weekly first-activity cohorts", **access(Access.READ)
)
async def seed_retention_posted(
    reader: Reader, body: Annotated[RetentionBody | None, Body()] = None,
    site_id: SiteParam = None, tz: TzParam = None, start_date: StartParam = None,
    windows: Windows = 4,
) -> JSONBody:  # fmt: skip
    b = body or RetentionBody()
    return await seed_retention(reader, site_id, tz, b.start_date or start_date,
                                b.windows or windows)  # fmt: skip
