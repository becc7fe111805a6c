"""The I/O half of the worker: rows in, one idempotent bulk write, counters out."""

from __future__ import annotations

import time

import orjson

from tapioca import metrics
from tapioca.storage.base import EventStore, WriteResult
from tapioca.worker.transform import to_row


class EventWriter:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    async def write_records(self, records: list[bytes]) -> WriteResult:
        """Write JSON records (embedded group commit and imports)."""
        rows = [to_row(orjson.loads(r)) for r in records]
        started = time.perf_counter()
        result = await self._store.write_events(rows)
        observe(result, time.perf_counter() - started)
        return result


def observe(result: WriteResult, seconds: float) -> None:
    metrics.EVENTS_WRITTEN.inc(result.inserted)
    metrics.EVENTS_DUPLICATE.inc(result.duplicates)
    metrics.BATCH_SECONDS.observe(seconds)
