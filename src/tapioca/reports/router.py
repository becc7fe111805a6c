"""Report routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from tapioca.kit.jsonresponse import JSONBody
from tapioca.reports import web
from tapioca.reports.filters import SESSION_DIMENSIONS
from tapioca.reports.service import site_stats
from tapioca.reports.sites import resolve_site
from tapioca.storage.base import ReadStore


async def get_reader(request: Request) -> ReadStore:
    reader: ReadStore = request.app.state.reader
    return reader


Reader = Annotated[ReadStore, Depends(get_reader)]
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
) -> web.Scope:
    """The site, range and filters every web report takes."""
    return await web.resolve_scope(reader, site_id, date, start_date, end_date, tz, filters)


ReportScope = Annotated[web.Scope, Depends(get_scope)]


@router.get("/api/v1/stats/overview", summary="Pageviews, visitors, sessions, bounce rate, …")
async def get_overview(reader: Reader, scope: ReportScope) -> JSONBody:
    return JSONBody(await web.overview(reader, scope))


@router.get("/api/v1/stats/timeseries", summary="Metrics per hour, day, week or month")
async def get_timeseries(
    reader: Reader,
    scope: ReportScope,
    metrics: Annotated[str | None, Query(max_length=200)] = "pageviews,visitors",
    interval: web.Interval = web.Interval.DAY,
) -> JSONBody:
    names = web.parse_metrics(metrics, ("pageviews", "visitors"))
    return JSONBody(await web.timeseries(reader, scope, interval, names, web.utc_now()))


@router.get("/api/v1/stats/breakdown", summary="Metrics per value of one dimension")
async def get_breakdown(
    reader: Reader,
    dimension: Annotated[str, Query(max_length=40)],
    scope: ReportScope,
    metrics: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
) -> JSONBody:
    dim = web.parse_dimension(dimension)
    default = (
        ("visitors", "pageviews") if dim not in SESSION_DIMENSIONS else ("visitors", "sessions")
    )
    names = web.parse_metrics(metrics, default)
    return JSONBody(await web.breakdown(reader, scope, dim, names, limit))


@router.get("/api/v1/stats/realtime", summary="Visitors in the last 5 minutes")
async def get_realtime(reader: Reader, site_id: SiteParam = None) -> JSONBody:
    site = await resolve_site(reader, site_id)
    return JSONBody(await web.realtime(reader, site, web.utc_now()))
