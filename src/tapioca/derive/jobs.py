"""The derive jobs and the loop that keeps them current."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tapioca.derive import commerce, commerce_rollups, product, rollups, sessions
from tapioca.derive.days import day_steps
from tapioca.derive.runner import Split, Step, reset_derived, run_derive
from tapioca.kit.clock import SYSTEM_CLOCK, Clock
from tapioca.logging import get_logger
from tapioca.model import commerce as facts
from tapioca.model.derived import WEB_JOB
from tapioca.storage.base import Store

log = get_logger(__name__)

WEB = WEB_JOB
DERIVED_TABLES = {
    WEB: ["session", *facts.TABLES, *commerce_rollups.TABLES, *rollups.TABLES, *product.TABLES]
}
# Events per derive transaction: bounds its memory and time when a backlog (an import,
# a first start on old data) is worked off.
CHUNK = 1_000_000
# The serving processes derive in smaller transactions: in embedded mode a derive run
# holds the one DuckDB writer, and ingest commits wait behind it.
LIVE_CHUNK = 100_000


def web_steps(days: bool, budget: int, split: bool = False) -> Callable[[int, int], list[Step]]:
    """Sessions first, then the transactions, carts and refunds (with the sessions that
    hold them), then the rollups of every hour they or the new events touched, then the
    users' first events and active days (product_steps), and (``days``) the marked days
    that fit in ``budget`` (events; derive/days.py): a day redone in a site's new zone
    writes its users' active days again, after the new events' (product.redo_steps).
    ``split``: the run's own steps when the event rollups and the users' days are made on
    a second connection (WEB_SPLIT)."""

    def build(last: int, upto: int) -> list[Step]:
        steps = sessions.session_steps(last, upto) + commerce.commerce_steps(last, upto)
        steps += sessions.session_cleanup() + rollups.rollup_steps(last, upto, not split)
        if not split:
            steps += product.product_steps(last, upto)
        if days:
            steps += day_steps(upto, budget)
        return steps

    return build


# A run of new events without days over two connections (runner.Split): the hourly event
# rollups ahead, the users' first events and active days (which nothing else of the run
# reads or writes) beside.
WEB_SPLIT = Split(
    steps=web_steps(False, 0, split=True),
    ahead=rollups.event_rows_ahead,
    merge=rollups.merge_ahead,
    beside=product.product_steps,
)


async def _run(store: Store, days: bool, chunk: int) -> int:
    """One run: at most ``chunk`` new events, and (``days``) as many marked days as a
    chunk's worth of events holds. Without days, the run is split over two connections
    where the store has them (WEB_SPLIT)."""
    return await run_derive(
        store, WEB, web_steps(days, chunk), split=None if days else WEB_SPLIT,
        pending_sql=rollups.pending_sql(days), max_seqs=chunk,
    )  # fmt: skip


async def derive_once(store: Store, chunk: int = CHUNK, days: bool = True) -> int:
    """Bring sessions and hourly rollups up to the events stored so far, in chunks of
    ``chunk`` events, then (``days``) the daily and weekly visitor rollups."""
    total = 0
    while True:
        done = await _run(store, False, chunk)
        total += done
        if done < chunk:
            break
    while days:  # each run redoes the days a chunk holds; a larger backlog takes several
        total += await _run(store, True, chunk)
        (left,), *_ = await store.fetch(rollups.DAYS_PENDING_SQL)
        days = bool(left)
    if total:
        log.info("web_derived", seqs=total)
    return total


async def rebuild(store: Store) -> int:
    """Drop everything derived and recompute it from the event table."""
    for name, tables in DERIVED_TABLES.items():
        await reset_derived(store, name, tables)
    return await derive_once(store)


# The share of the time the daily rollups may take: each recomputes whole days of events,
# so on a large site they run less often than the derive interval (a few seconds apart).
DAYS_SHARE = 0.2
# The share of the time derive runs may take while they work off a backlog (a burst of
# ingest): they run in the store's CPU beside the writes and the API, and yield to them.
LIVE_SHARE = 0.5
# While a burst is being written (``busy``: the worker's batches in hand or its backlog,
# Worker.has_backlog; embedded, the group commit's requests, GroupCommitQueue.busy),
# derive runs wait: the events become durable first, and the derived tables catch up
# after the burst (embedded, a run would also hold the one writer). They wait
# at most this long, so that the rollups stay at most a few seconds behind under any load.
MAX_DEFER_S = 5.0


async def defer(busy: Callable[[], bool], stop: asyncio.Event, clock: Clock = SYSTEM_CLOCK) -> None:
    """Wait while ``busy`` (looking every 50 ms), at most MAX_DEFER_S, until ``stop``."""
    deadline = clock.monotonic() + MAX_DEFER_S
    while busy() and clock.monotonic() < deadline and not stop.is_set():
        await clock.pause(0.05, stop)


async def derive_forever(
    store: Store,
    interval_s: float,
    stop: asyncio.Event,
    busy: Callable[[], bool] = lambda: False,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """Run the jobs every ``interval_s`` until ``stop``; failures are logged and retried.
    While new events come, the daily rollups run when due (after one took t seconds, the
    next waits t / DAYS_SHARE), and a pass that took t seconds is followed by a pause of
    at least t (1 / LIVE_SHARE - 1): they leave the store's CPU to the writes and the API.
    A pass with no new event runs the days left at once, a run every ``interval_s``.
    A pass waits while ``busy`` (the writes have a backlog), for at most MAX_DEFER_S."""
    days_due = 0.0
    while not stop.is_set():
        await defer(busy, stop, clock)
        if stop.is_set():
            break
        began = clock.monotonic()
        new = 0
        try:
            new = await derive_once(store, LIVE_CHUNK, days=False)
            if not new or clock.monotonic() >= days_due:  # the days a chunk holds
                started = clock.monotonic()
                await _run(store, True, LIVE_CHUNK)
                days_due = started + (clock.monotonic() - started) / DAYS_SHARE
        except Exception as exc:
            log.warning("derive_failed", error=type(exc).__name__, detail=str(exc)[:300])
        share = (clock.monotonic() - began) * (1 / LIVE_SHARE - 1) if new else 0.0
        await clock.pause(max(interval_s, share), stop)
