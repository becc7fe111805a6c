"""Report routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from tapioca.kit.jsonresponse import JSONBody
from tapioca.reports.service import site_stats
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
