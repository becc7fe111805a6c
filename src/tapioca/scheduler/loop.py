"""The scheduler: `tapioca scheduler` (production, as many as wanted) and inside `serve`.

Every tick it says it is alive (scheduler_beat, shown in /health), then, per job and
site, claims the times due since the last claimed one (cron in the site's zone, at most
``catch_up`` back: missed runs are caught up at start) and runs the latest of them (one
run of the batch counts every day since the last; the older times are claimed with it,
so they are not run again). Then it takes over runs due again: failed ones whose backoff
has passed, and running ones whose process died (their lease ran out)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from datetime import timedelta

from tapioca.config import Settings
from tapioca.logging import get_logger
from tapioca.scheduler import cron, runs
from tapioca.scheduler.jobs import Context, Job, jobs, run_job
from tapioca.scheduler.runs import Run

log = get_logger(__name__)

_BEAT = (
    "INSERT INTO scheduler_beat (scheduler_id, host, pid, started_at, beat_at) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scheduler_id) DO UPDATE SET beat_at = $5"
)
# beats older than this are of schedulers gone
FORGET_AFTER = timedelta(days=1)


class Scheduler:
    def __init__(
        self,
        ctx: Context,
        jobs: list[Job],
        catch_up: timedelta = timedelta(days=7),
        tick_s: float = 15.0,
    ) -> None:
        self.ctx = ctx
        self.jobs = jobs
        self.catch_up = catch_up
        self.tick_s = tick_s
        self.clock = ctx.clock
        self.id = uuid.uuid4().hex[:12]
        self.started_at = self.clock()

    async def beat(self) -> None:
        now = self.clock()
        await self.ctx.store.execute(
            _BEAT, (self.id, socket.gethostname(), os.getpid(), self.started_at, now)
        )
        await self.ctx.store.execute(
            "DELETE FROM scheduler_beat WHERE beat_at < $1", (now - FORGET_AFTER,)
        )

    async def tick(self) -> list[Run]:
        """One look: the runs this scheduler ran."""
        await self.beat()
        ran: list[Run] = []
        for job in self.jobs:
            for site_id, zone in await job.sites(self.ctx.store):
                ran.extend(await self._due(job, site_id, zone))
        ran.extend(await self._again())
        return ran

    async def _due(self, job: Job, site_id: str, zone: object) -> list[Run]:
        now = self.clock()
        last = await runs.latest_claimed(self.ctx.store, job.name, site_id)
        times = cron.due_times(job.cron, zone, now, last, self.catch_up)  # type: ignore[arg-type]
        if not times:
            return []
        cause = (
            "schedule" if len(times) == 1 and now - times[-1] < timedelta(hours=1) else "catch_up"
        )
        # claim the older missed times first, so no other scheduler runs them: the
        # latest run covers them
        for moment in times[:-1]:
            covered = await runs.claim(
                self.ctx.store, job.name, site_id, moment, cause, job.lease, now
            )
            if covered is not None:
                await runs.finish(
                    self.ctx.store, covered, {"covered_by": times[-1].isoformat()}, now=now
                )
        done = await run_job(self.ctx, job, site_id, times[-1], cause)
        if done is not None:
            log.info("job_ran", job=job.name, site_id=site_id, status=done.status, cause=cause)
            return [done]
        return []

    async def _again(self) -> list[Run]:
        by_name = {job.name: job for job in self.jobs}
        ran = []
        for run in await runs.due_again(self.ctx.store, self.clock()):
            job = by_name.get(run.job)
            if job is None:
                continue
            taken = await runs.retake(self.ctx.store, run, job.lease, self.clock())
            if taken is None:
                continue
            done = await run_job(self.ctx, job, run.site_id, claimed=taken)
            if done is not None:
                ran.append(done)
        return ran

    async def run_forever(self, stop: asyncio.Event) -> None:
        log.info("scheduler_started", scheduler_id=self.id, jobs=[j.name for j in self.jobs])
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:
                # the store is down, say: look again next tick
                log.exception("scheduler_tick_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.tick_s)
        with contextlib.suppress(Exception):
            await self.ctx.store.execute(
                "DELETE FROM scheduler_beat WHERE scheduler_id = $1", (self.id,)
            )
        log.info("scheduler_stopped", scheduler_id=self.id)


def scheduler_of(ctx: Context, settings: Settings) -> Scheduler:
    """The scheduler the settings describe."""
    return Scheduler(
        ctx,
        jobs(settings.orders_cron, settings.forecast_cron),
        catch_up=timedelta(days=settings.catch_up_days),
        tick_s=settings.scheduler_tick_s,
    )
