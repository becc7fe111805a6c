"""The derive jobs and the loop that keeps them current."""

from __future__ import annotations

import asyncio
import contextlib

from tapioca.derive import rollups, sessions
from tapioca.logging import get_logger
from tapioca.storage.base import EventStore, Step

log = get_logger(__name__)

WEB = "web"
DERIVED_TABLES = {WEB: ["session", *rollups.TABLES]}
# Events per derive transaction: bounds its memory and time when a backlog (an import,
# a first start on old data) is worked off.
CHUNK = 1_000_000


def web_steps(last: int, upto: int) -> list[Step]:
    """Sessions first, then the rollups of every hour they or the new events touched."""
    return sessions.session_steps(last, upto) + rollups.rollup_steps(last, upto)


async def derive_once(store: EventStore, chunk: int = CHUNK) -> int:
    """Bring every derived table up to the events stored so far."""
    total = 0
    while True:
        done = await store.run_derive(
            WEB, web_steps, pending_sql=rollups.PENDING_SQL, max_seqs=chunk
        )
        total += done
        if done < chunk:
            break
    if total:
        log.info("web_derived", seqs=total)
    return total


async def rebuild(store: EventStore) -> int:
    """Drop everything derived and recompute it from the event table."""
    for name, tables in DERIVED_TABLES.items():
        await store.reset_derived(name, tables)
    return await derive_once(store)


async def derive_forever(store: EventStore, interval_s: float, stop: asyncio.Event) -> None:
    """Run the jobs every ``interval_s`` until ``stop``; failures are logged and retried."""
    while not stop.is_set():
        try:
            await derive_once(store)
        except Exception as exc:
            log.warning("derive_failed", error=type(exc).__name__, detail=str(exc)[:300])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
