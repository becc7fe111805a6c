"""The I/O half of the worker: rows in, one idempotent bulk write, counters out."""

from __future__ import annotations

import time

from tapioca import metrics
from tapioca.sites.catalog import SiteCatalog
from tapioca.sites.spellings import SourceSpellings
from tapioca.storage.base import Store, WriteResult
from tapioca.worker.transform import decode_records


class EventWriter:
    def __init__(self, store: Store, sites: SiteCatalog | None = None) -> None:
        self._store = store
        self._sites = sites or SiteCatalog(store)
        self._spellings = SourceSpellings(store)

    async def write_records(self, records: list[bytes]) -> WriteResult:
        """Write JSON records (embedded group commit and imports)."""
        await self._sites.refresh()
        rows = await self._spellings.apply(decode_records(records, self._sites.rules))
        started = time.perf_counter()
        result = await self._store.write_events(rows)
        observe(result, time.perf_counter() - started)
        return result


def observe(result: WriteResult, seconds: float) -> None:
    metrics.EVENTS_WRITTEN.inc(result.inserted)
    metrics.EVENTS_DUPLICATE.inc(result.duplicates)
    metrics.BATCH_SECONDS.observe(seconds)
