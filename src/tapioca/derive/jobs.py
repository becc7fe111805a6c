"""The derive jobs and the loop that keeps them current."""

from __future__ import annotations

import asyncio
import contextlib

from tapioca.derive import sessions
from tapioca.logging import get_logger
from tapioca.storage.base import EventStore

log = get_logger(__name__)

DERIVED_TABLES = {sessions.NAME: ["session"]}


async def derive_once(store: EventStore) -> int:
    """Bring every derived table up to the events stored so far."""
    done = await store.run_derive(sessions.NAME, sessions.session_steps)
    if done:
        log.info("sessions_derived", seqs=done)
    return done


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
