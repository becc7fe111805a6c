"""Report routes: thin handlers over the report use cases (reports/)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

from tapioca.api.access import Access, access
from tapioca.api.responses import JSONBody
from tapioca.errors import ErrorDetail, validation_error
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


_KNOWN: dict[int, frozenset[str]] = {}  # route → the query parameters it declares


def _query_names(dependant: Dependant) -> frozenset[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return frozenset(names)


async def known_parameters_only(request: Request) -> None:
    """A query parameter a report does not take is a 422 naming it (a misspelt
    ``start_date`` would otherwise be an answer about another range)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _KNOWN.get(id(route))
    if known is None:
        known = _KNOWN[id(route)] = _query_names(route.dependant)
    unknown = [name for name in dict.fromkeys(request.query_params) if name not in known]
    if unknown:
        raise validation_error(
            [ErrorDetail(name, f"unknown parameter; use {sorted(known)}") for name in unknown],
            f"Unknown query parameter(s): {', '.join(unknown)}.",
        )


Reader = Annotated[Executor, Depends(get_reports)]
router = APIRouter(tags=["reports"], dependencies=[Depends(known_parameters_only)])


class PathViews(BaseModel):
    path: str
    views: int


class Stats(BaseModel):
    site_id: str
    date: str | None
    start_date: str | None
    end_date: str | None
    total_views: int
    unique_users: int
    top_paths: list[PathViews]


@router.get(
    "/stats",
    response_model=Stats,
    summary="Views, visitors and top paths of a day",
    **access(Access.READ),
)
async def get_stats(
    reader: Reader,
    site_id: Annotated[str | None, Query(max_length=100)] = None,
    date: Annotated[str | None, Query(description="YYYY-MM-DD; omit for all time")] = None,
    tz: Annotated[str | None, Query(description="IANA time zone; default the site's")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    start_date: Annotated[str | None, Query(description="YYYY-MM-DD, inclusive")] = None,
    end_date: Annotated[str | None, Query(description="YYYY-MM-DD, inclusive")] = None,
) -> JSONBody:
    return JSONBody(await site_stats(reader, site_id, date, tz, limit, start_date, end_date))


SiteParam = Annotated[str | None, Query(max_length=100, description="required unless one site")]
DateParam = Annotated[str | None, Query(description="YYYY-MM-DD: start_date = end_date")]
StartParam = Annotated[str | None, Query(description="YYYY-MM-DD, inclusive")]
EndParam = Annotated[str | None, Query(description="YYYY-MM-DD, inclusive")]
TzParam = Annotated[str | None, Query(max_length=64, description="IANA zone; default the site's")]
FiltersParam = Annotated[
    str | None, Query(max_length=4096, description="dim==value;dim2==value2 (path, channel, …)")
]


@dataclass(frozen=True, slots=True)
class ScopeQuery:
    """The site, range and filters every web report takes, as asked."""

    site_id: str | None
    date: str | None
    start_date: str | None
    end_date: str | None
    tz: str | None
    filters: str | None
    open_ends: bool = False  # a missing bound is open (else: 30 days up to today)

    async def answer(
        self, reader: Executor, report: Callable[[Executor, Scope], Awaitable[dict[str, Any]]]
    ) -> JSONBody:
        """``report`` over this scope, on one snapshot of the store."""
        return JSONBody(await self.result(reader, report))

    async def result(
        self, reader: Executor, report: Callable[[Executor, Scope], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        """What ``answer`` answers, before it is rendered."""
        now = web.utc_now()

        async def run(ex: Executor) -> dict[str, Any]:
            scope = await resolve_scope(ex.db, self.site_id, self.date, self.start_date,
                                        self.end_date, self.tz, self.filters, now,
                                        self.open_ends)  # fmt: skip
            return await report(ex, scope)

        return await reader.answer(run)


# async: FastAPI hands a plain function to a thread of its pool, a cost on every report
async def get_scope(
    site_id: SiteParam = None,
    date: DateParam = None,
    start_date: StartParam = None,
    end_date: EndParam = None,
    tz: TzParam = None,
    filters: FiltersParam = None,
) -> ScopeQuery:
    return ScopeQuery(site_id, date, start_date, end_date, tz, filters)


ReportScope = Annotated[ScopeQuery, Depends(get_scope)]


@router.get(
    "/api/v1/stats/overview",
    summary="Pageviews, visitors, sessions, bounce rate, …",
    **access(Access.READ),
)
async def get_overview(reader: Reader, scope: ReportScope) -> JSONBody:
    return await scope.answer(reader, web.overview)


@router.get(
    "/api/v1/stats/timeseries",
    summary="Metrics per hour, day, week or month",
    **access(Access.READ),
)
async def get_timeseries(
    reader: Reader,
    scope: ReportScope,
    metrics: Annotated[str | None, Query(max_length=200)] = "pageviews,visitors",
    interval: Interval = Interval.DAY,
) -> JSONBody:
    names = parse_metrics(metrics, ("pageviews", "visitors"))
    return await scope.answer(reader, lambda ex, s: web.timeseries(ex, s, interval, names))


@router.get(
    "/api/v1/stats/breakdown",
    summary="Metrics per value of one dimension",
    **access(Access.READ),
)
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
    return await scope.answer(reader, lambda ex, s: web.breakdown(ex, s, dim, names, limit))


@router.get(
    "/api/v1/stats/realtime",
    summary="Visitors in the last 5 minutes",
    **access(Access.READ),
)
async def get_realtime(reader: Reader, site_id: SiteParam = None) -> JSONBody:
    site = (await resolve_site(reader.db, site_id)).site
    return JSONBody(await web.realtime(reader, site, web.utc_now()))
