"""The jobs: the order batch of each site with an order source, and the forecast refresh
of every site. A run of either, whoever asks for it, goes through ``run_job``: claimed
once by its key, run within its lease, its end recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tapioca.errors import TapiocaError, not_found
from tapioca.logging import get_logger
from tapioca.orders.batch import run_batch
from tapioca.orders.connectors import SourceUnavailable
from tapioca.orders.source import Sealer, load_source
from tapioca.reports.web import utc_now
from tapioca.scheduler import runs
from tapioca.scheduler.runs import Run
from tapioca.sites.lookup import resolve_site
from tapioca.storage.base import ReadStore, Store

log = get_logger(__name__)

ORDERS, FORECAST = "orders", "forecast"


@dataclass(frozen=True, slots=True)
class Context:
    """What jobs work with."""

    store: Store
    reader: ReadStore
    sealer: Sealer
    forecast_deadline_s: float = 20.0
    clock: Callable[[], datetime] = lambda: utc_now()  # looked up when called


Work = Callable[[Context, str, date | None, date | None], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    cron: str
    lease: timedelta
    work: Work
    sites: Callable[[ReadStore], Awaitable[list[tuple[str, ZoneInfo]]]]


async def _orders(
    ctx: Context, site_id: str, start: date | None, end: date | None
) -> dict[str, Any]:
    source = await load_source(ctx.store, ctx.sealer, site_id)
    if source is None:
        raise not_found("order_source", f"Site '{site_id}' has no order source.")
    zone = (await resolve_site(ctx.store, site_id)).site.timezone
    asked = (start, end) if start is not None and end is not None else None
    result = await run_batch(ctx.store, source, zone.key, now=ctx.clock(), asked=asked)
    return result.details()


async def _forecast(
    ctx: Context, site_id: str, _start: date | None, _end: date | None
) -> dict[str, Any]:
    from tapioca.forecast.refresh import refresh  # statsmodels loads when a forecast is made

    return await refresh(
        ctx.store, ctx.store, site_id, now=ctx.clock(), deadline_s=ctx.forecast_deadline_s
    )


async def _source_sites(db: ReadStore) -> list[tuple[str, ZoneInfo]]:
    rows = await db.fetch(
        "SELECT s.id, s.timezone FROM order_source o JOIN site s ON s.id = o.site_id ORDER BY s.id"
    )
    return [(row[0], ZoneInfo(row[1] or "UTC")) for row in rows]


async def _all_sites(db: ReadStore) -> list[tuple[str, ZoneInfo]]:
    rows = await db.fetch("SELECT id, timezone FROM site ORDER BY id")
    return [(row[0], ZoneInfo(row[1] or "UTC")) for row in rows]


def jobs(orders_cron: str, forecast_cron: str) -> list[Job]:
    return [
        Job(ORDERS, orders_cron, timedelta(minutes=30), _orders, _source_sites),
        Job(FORECAST, forecast_cron, timedelta(minutes=30), _forecast, _all_sites),
    ]


def job_named(name: str) -> Job:
    return {job.name: job for job in jobs("5 0 * * *", "15 0 * * *")}[name]


async def run_job(
    ctx: Context,
    job: Job,
    site_id: str,
    scheduled_for: datetime | None = None,
    cause: str = "schedule",
    span: tuple[date, date] | None = None,
    claimed: Run | None = None,
) -> Run | None:
    """Claim (job, site, scheduled_for) and run it; its recorded end, or None when the
    run was claimed before. A scheduled run that fails is tried again later (runs.py);
    one asked for by a person is not (they see its error)."""
    if claimed is None:
        # a run asked for by a person is keyed by the moment asked
        moment = scheduled_for or datetime.now(UTC)
        claimed = await runs.claim(
            ctx.store, job.name, site_id, moment, cause, job.lease, ctx.clock()
        )
        if claimed is None:
            return None
    retry = claimed.cause in ("schedule", "catch_up")
    start, end = span if span is not None else (None, None)
    try:
        details = await asyncio.wait_for(
            job.work(ctx, site_id, start, end), job.lease.total_seconds()
        )
    except SourceUnavailable as exc:
        return await runs.finish(ctx.store, claimed, error=str(exc), retry=retry, now=ctx.clock())
    except TapiocaError as exc:
        return await runs.finish(
            ctx.store, claimed, error=exc.message, retry=False, now=ctx.clock()
        )
    except TimeoutError:
        error = f"did not finish within {job.lease}"
        return await runs.finish(ctx.store, claimed, error=error, retry=retry, now=ctx.clock())
    except Exception as exc:  # recorded and retried, never lost in a log alone
        log.exception("job_failed", job=job.name, site_id=site_id)
        error = f"{type(exc).__name__}: {exc}"[:500]
        return await runs.finish(ctx.store, claimed, error=error, retry=retry, now=ctx.clock())
    return await runs.finish(ctx.store, claimed, details, now=ctx.clock())


def run_answer(run: Run) -> dict[str, Any]:
    """A run as the sync route and `tapioca batch run` answer it (api.md)."""
    public = run.public()
    public.setdefault("days_recomputed", None)
    public.setdefault("orders_read", None)
    return public


async def sync_site(
    ctx: Context,
    site_id: str,
    cause: str,
    span: tuple[date, date] | None = None,
    forecast: bool = True,
) -> dict[str, Any]:
    """The order batch of one site now (a backfill of ``span``), and its forecasts after a
    good run: the batch's run, with the forecasts' under "forecast"."""
    run = await run_job(ctx, job_named(ORDERS), site_id, cause=cause, span=span)
    if run is None:
        raise TapiocaError(409, "run_exists", "A run with this key exists already; ask again.")
    answer = run_answer(run)
    if forecast and run.status == runs.SUCCEEDED:
        made = await run_job(ctx, job_named(FORECAST), site_id, cause=cause)
        answer["forecast"] = run_answer(made) if made is not None else None
    return answer
