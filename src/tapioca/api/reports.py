"""Report routes: thin handlers over the report use cases (reports/)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from tapioca.api.responses import JSONBody
from tapioca.kit.timerange import Interval
from tapioca.model.dimensions import SESSION_DIMENSIONS
from tapioca.reports import web
from tapioca.reports.executor import Executor
from tapioca.reports.params import parse_dimension, parse_metrics
from tapioca.reports.scope import Scope, resolve_scope
from tapioca.reports.stats import site_stats
from tapioca.sites.lookup import resolve_site


async def get_reports(request: Request) -> Executor:
    reports: Executor = request.app.state.reports
    return reports


Reader = Annotated[Executor, Depends(get_reports)]
router = APIRouter(tags=["reports"])


class PathViews(BaseModel):
    path: str
    views: int


class Stats(BaseModel):
    site_id: str
    date: str | None
    total_views: int
    unique_users: int
    top_paths: list[PathViews]


@router.get("/stats", response_model=Stats, summary="Views, visitors and top paths of a day")
async def get_stats(
    reader: Reader,
    site_id: Annotated[str | None, Query(max_length=100)] = None,
    date: Annotated[str | None, Query(description="YYYY-MM-DD; omit for all time")] = None,
    tz: Annotated[str | None, Query(description="IANA time zone; default the site's")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
) -> JSONBody:
    return JSONBody(await site_stats(reader, site_id, date, tz, limit))


SiteParam = Annotated[str | None, Query(max_length=100, description="required unless one site")]
DateParam = Annotated[str | None, Query(description="YYYY-MM-DD: start_date = end_date")]
StartParam = Annotated[str | None, Query(description="YYYY-MM-DD, inclusive")]
EndParam = Annotated[str | None, Query(description="YYYY-MM-DD, inclusive")]
TzParam = Annotated[str | None, Query(max_length=64, description="IANA zone; default the site's")]
FiltersParam = Annotated[
    str | None, Query(max_length=4096, description="dim==value;dim2==value2 (path, channel, …)")
]


async def get_scope(
    reader: Reader,
    site_id: SiteParam = None,
    date: DateParam = None,
    start_date: StartParam = None,
    end_date: EndParam = None,
    tz: TzParam = None,
    filters: FiltersParam = None,
) -> Scope:
    """The site, range and filters every web report takes."""
    return await resolve_scope(reader.db, site_id, date, start_date, end_date, tz, filters)


ReportScope = Annotated[Scope, Depends(get_scope)]


@router.get("/api/v1/stats/overview", summary="Pageviews, visitors, sessions, bounce rate, …")
async def get_overview(reader: Reader, scope: ReportScope) -> JSONBody:
    return JSONBody(await web.overview(reader, scope))


@router.get("/api/v1/stats/timeseries", summary="Metrics per hour, day, week or month")
async def get_timeseries(
    reader: Reader,
    scope: ReportScope,
    metrics: Annotated[str | None, Query(max_length=200)] = "pageviews,visitors",
    interval: Interval = Interval.DAY,
) -> JSONBody:
    names = parse_metrics(metrics, ("pageviews", "visitors"))
    return JSONBody(await web.timeseries(reader, scope, interval, names, web.utc_now()))


@router.get("/api/v1/stats/breakdown", summary="Metrics per value of one dimension")
async def get_breakdown(
    reader: Reader,
    dimension: Annotated[str, Query(max_length=40)],
    scope: ReportScope,
    metrics: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
) -> JSONBody:
    dim = parse_dimension(dimension)
    default = (
        ("visitors", "pageviews") if dim not in SESSION_DIMENSIONS else ("visitors", "sessions")
    )
    names = parse_metrics(metrics, default)
    return JSONBody(await web.breakdown(reader, scope, dim, names, limit))


@router.get("/api/v1/stats/realtime", summary="Visitors in the last 5 minutes")
async def get_realtime(reader: Reader, site_id: SiteParam = None) -> JSONBody:
    site, _ = await resolve_site(reader.db, site_id)
    return JSONBody(await web.realtime(reader, site, web.utc_now()))
