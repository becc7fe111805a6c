"""The production worker: Redis Streams consumer group → bulk writes → XACK.

Entries are acknowledged only after the write that holds them has committed. A store
outage keeps the batch in hand and backs off; a write that failed for meeting other
transactions (Store.is_transient: a deadlock, a serialization failure, a lock timeout)
is written again whole after a short pause, as nothing is wrong with its data; data the
store rejects is isolated entry by entry, retried, and after ``max_deliveries`` moved
to the dead-letter stream.

Up to ``max_inflight`` batches are in hand at once (two by default): while the store
writes one the worker reads and decodes the next, so its CPU and the store's overlap.
Before it reads its own pending entries or claims stale ones, it lets the batches in hand
finish, so that no entry is ever in two batches of one worker.

An entry whose records are of a later version, holding a field this worker cannot keep
(queue/record.py, NewerRecord), is left pending, neither acknowledged nor dead-lettered:
a worker of that version claims it once it has been idle ``claim_idle_ms``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from redis.exceptions import RedisError

from tapioca import metrics
from tapioca.logging import get_logger
from tapioca.queue.record import NewerRecord, count, event_lines
from tapioca.queue.redis_stream import Entry, StreamConsumer
from tapioca.sites.catalog import SiteCatalog
from tapioca.sites.spellings import SourceSpellings
from tapioca.storage.base import Store
from tapioca.storage.rows import EventRow
from tapioca.worker.transform import PoisonRecord, decode_payload
from tapioca.worker.writer import observe

log = get_logger(__name__)
T = TypeVar("T")

# The first pauses before a batch is written again: after an outage, and after a conflict
# with other writers (which clears within moments); each doubles up to max_backoff_s.
_OUTAGE_PAUSE_S = 0.1
_CONFLICT_PAUSE_S = 0.05


@dataclass
class WorkerOptions:
    batch_max_events: int = 10_000
    batch_max_wait_ms: int = 200
    max_deliveries: int = 5
    claim_idle_ms: int = 30_000
    trim_every_s: float = 10.0
    max_backoff_s: float = 5.0
    max_inflight: int = 2


@dataclass
class _Decoded:
    entry: Entry
    rows: list[EventRow] = field(default_factory=list)


class Worker:
    def __init__(self, consumer: StreamConsumer, store: Store, options: WorkerOptions) -> None:
        self._consumer = consumer
        self._store = store
        self._opt = options
        self._sites = SiteCatalog(store)
        self._spellings = SourceSpellings(store)
        self._stopping = asyncio.Event()
        self._last_claim = 0.0
        self._own_pending = True
        self._pending_from = b"0"  # where the reading of this consumer's own pending is
        self._last_trim = time.monotonic()
        self._inflight: set[asyncio.Task[None]] = set()
        self._backlog = False
        self._per_entry = 10_000  # events per entry of the last batch (none yet: the most)
        self._recent: deque[tuple[float, int]] = deque()  # (when, events) of the reads
        self._retried = 0  # batch writes tried again since the last acknowledgement

    def stop(self) -> None:
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def has_backlog(self) -> bool:
        """A batch is being written, events come faster than a batch a second, or the last
        read filled a whole batch: more are waiting to be written (the derive job waits
        meanwhile, derive/jobs.py). The first batches of a burst tell nothing by their
        rate yet (the first writes of a cold start take a second or more), but they are
        being written."""
        if any(not task.done() for task in self._inflight):
            return True
        horizon = time.monotonic() - 1.0
        while self._recent and self._recent[0][0] < horizon:
            self._recent.popleft()
        recent = sum(events for _, events in self._recent)
        return self._backlog or recent >= self._opt.batch_max_events

    async def run(self, *, burst: bool = False) -> None:
        """Process batches until stopped; with ``burst`` also stop when the queue is empty."""
        await self._with_redis_retry(self._consumer.ensure_group)
        log.info("worker_started", consumer=self._consumer.consumer)
        while not self.stopping:
            try:
                entries = await self._collect()
            except (RedisError, OSError) as exc:
                log.warning("queue_unavailable", error=type(exc).__name__)
                self._own_pending = True  # what was read before the error is ours: re-read it
                await self._sleep(1.0)
                continue
            if entries:
                await self._start(entries)
            elif burst:
                await self._settle()
                break
            await self._maybe_trim()
        await self._settle()
        log.info("worker_stopped", consumer=self._consumer.consumer)

    async def _start(self, entries: list[Entry]) -> None:
        """Process a batch in the background once fewer than ``max_inflight`` are."""
        while len(self._inflight) >= self._opt.max_inflight:
            await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)
            self._reap()
        self._inflight.add(asyncio.create_task(self._process(entries)))

    async def _settle(self) -> None:
        """Wait for every batch in hand."""
        if self._inflight:
            await asyncio.wait(self._inflight)
            self._reap()

    def _reap(self) -> None:
        """Forget finished batches; a batch that failed unexpectedly fails the worker, as
        it did before batches overlapped (its entries stay pending for the next one)."""
        done = {task for task in self._inflight if task.done()}
        self._inflight -= done
        for task in done:
            if (exc := task.exception()) is not None:
                raise exc

    async def _collect(self) -> list[Entry]:
        """Up to a batch of entries: this consumer's own pending ones first (after a start or
        a Redis error), then stale ones of dead workers, then new ones."""
        entries: list[Entry] = []
        if self._own_pending:
            await self._settle()
            entries, self._pending_from = await self._consumer.read_own_pending(
                100, self._pending_from
            )
            self._own_pending = bool(entries)
            if not entries:
                self._pending_from = b"0"  # all read: the next time, from the start
            if entries:
                self._backlog = sum(_count(e) for e in entries) >= self._opt.batch_max_events
                return entries
        now = time.monotonic()
        if now - self._last_claim >= min(self._opt.claim_idle_ms / 2000, 5.0):
            self._last_claim = now
            await self._settle()  # a batch in hand may be older than claim_idle_ms
            entries += await self._consumer.claim_stale(self._opt.claim_idle_ms, 100)
        events = sum(_count(e) for e in entries)
        deadline = time.monotonic() + self._opt.batch_max_wait_ms / 1000
        while events < self._opt.batch_max_events and not self.stopping:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                break
            try:
                count = self._read_size(events, len(entries))
                new = await self._consumer.read_new(count, remaining_ms if not entries else 1)
            except (RedisError, OSError):
                if not entries:
                    raise
                self._own_pending = True
                break  # write what is in hand; the acknowledgement waits for Redis
            if not new:
                if entries:
                    break
                continue
            entries += new
            events += sum(_count(e) for e in new)
        self._backlog = events >= self._opt.batch_max_events
        if entries:
            self._per_entry = max(1, events // len(entries))
            self._recent.append((time.monotonic(), events))
        else:
            self._recent.clear()  # the stream is empty: no backlog, whatever the last second
        return entries

    def _read_size(self, events: int, entries: int) -> int:
        """How many entries to ask for: an entry holds one request's events (1 to 10,000),
        so the count follows the events per entry seen so far (at first, those of the
        last batch), keeping a batch (and the worker's memory) near ``batch_max_events``."""
        per_entry = max(1, events // entries) if entries else self._per_entry
        return max(1, min(100, (self._opt.batch_max_events - events) // per_entry))

    async def _process(self, entries: list[Entry]) -> None:
        try:
            await self._sites.refresh()
        except Exception as exc:  # enrich with the rules known so far; the store may be down
            log.warning("sites_not_refreshed", error=type(exc).__name__)
        decoded: list[_Decoded] = []
        for entry in entries:
            try:
                rows = decode_payload(entry.payload, self._sites.rules, entry.version)
            except PoisonRecord as exc:
                await self._dead_letter_entry(entry, str(exc))
            except NewerRecord as exc:  # left pending for a worker of its version
                metrics.ENTRIES_LEFT.inc()
                log.warning("entry_left_for_newer_worker", entry=entry.entry_id.decode(),
                            version=entry.version, reason=str(exc)[:200])  # fmt: skip
            else:
                decoded.append(_Decoded(entry, rows))
        if decoded:
            await self._write(decoded)

    async def _write(self, batch: list[_Decoded]) -> None:
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                await self._spell(batch)
                rows = [row for item in batch for row in item.rows]
                result = await self._store.write_events(rows)
            except Exception as exc:
                if self._rejects(exc):
                    log.warning("batch_rejected", entries=len(batch), error=type(exc).__name__)
                    await self._isolate(batch)
                    return
                if self.stopping:
                    log.warning("worker_stopped_with_pending", entries=len(batch))
                    return  # not acknowledged: another worker claims them
                await self._pause_after(exc, attempt, len(batch))
                attempt += 1
                continue
            seconds = time.perf_counter() - started
            await self._ack(
                [i.entry.entry_id for i in batch], result.inserted, result.duplicates, 0, seconds
            )
            observe(result, seconds)
            log.info(
                "batch_written",
                rows=result.inserted,
                duplicates=result.duplicates,
                entries=len(batch),
                ms=round(seconds * 1000, 1),
            )
            return

    async def _spell(self, batch: list[_Decoded]) -> None:
        """Each unknown source in its site's first spelling (sites/spellings.py)."""
        spelled = await self._spellings.apply([row for item in batch for row in item.rows])
        start = 0
        for item in batch:
            item.rows, start = spelled[start : start + len(item.rows)], start + len(item.rows)

    def _rejects(self, exc: Exception) -> bool:
        """The store refused the data: it is neither unreachable nor in a passing conflict
        with other writers."""
        return not (self._store.is_unavailable(exc) or self._store.is_transient(exc))

    async def _pause_after(self, exc: Exception, attempt: int, entries: int) -> None:
        """Wait before writing a batch again, the ``attempt``-th time: a conflict briefly,
        with jitter so that the writers that met do not meet again; an outage longer."""
        if self._store.is_transient(exc):
            pause = min(_CONFLICT_PAUSE_S * 2 ** min(attempt, 10), self._opt.max_backoff_s)
            pause *= random.uniform(0.5, 1.5)
            self._retried += 1
            metrics.BATCHES_RETRIED.inc()
            log.warning("batch_retried", entries=entries, error=type(exc).__name__,
                        retry_in_s=round(pause, 3))  # fmt: skip
        else:
            pause = min(_OUTAGE_PAUSE_S * 2 ** min(attempt, 10), self._opt.max_backoff_s)
            log.warning("store_unavailable", error=type(exc).__name__, retry_in_s=pause)
        await self._sleep(pause)

    async def _isolate(self, batch: list[_Decoded]) -> None:
        """Write entry by entry; retry a rejected entry, then dead-letter its bad events."""
        for item in batch:
            deliveries = item.entry.deliveries
            while True:
                try:
                    result = await self._store.write_events(item.rows)
                except Exception as exc:
                    if not self._rejects(exc):
                        await self._write([item])  # back to waiting out the outage or conflict
                        break
                    if deliveries >= self._opt.max_deliveries:
                        if not await self._dead_letter_rows(item, exc):
                            await self._write([item])  # an outage or conflict meanwhile
                        break
                    deliveries = await self._with_redis_retry(
                        partial(self._consumer.redeliver, item.entry.entry_id)
                    )
                    continue
                await self._ack([item.entry.entry_id], result.inserted, result.duplicates, 0, 0.0)
                observe(result, 0.0)
                break

    async def _dead_letter_rows(self, item: _Decoded, batch_error: Exception) -> bool:
        """Keep every event of the entry the store accepts; dead-letter the others.

        Returns False, acknowledging nothing, if the store becomes unreachable meanwhile
        (or a write meets a conflict: the entry is then written again whole).
        """
        lines = event_lines(item.entry.payload, item.entry.version)
        written = dead = 0
        for line, row in zip(lines, item.rows, strict=True):
            try:
                written += (await self._store.write_events([row])).inserted
            except Exception as exc:
                if not self._rejects(exc):
                    return False
                reason = f"{type(exc).__name__}: {exc}"[:500]
                await self._with_redis_retry(
                    partial(self._consumer.dead_letter, item.entry.entry_id, line, reason)
                )
                dead += 1
        if dead == 0:  # the whole entry failed only together: keep the entry's reason
            log.warning(
                "entry_accepted_alone",
                entry=item.entry.entry_id.decode(),
                error=str(batch_error)[:200],
            )
        metrics.EVENTS_DEAD_LETTERED.inc(dead)
        await self._ack([item.entry.entry_id], written, len(lines) - written - dead, dead, 0.0)
        log.warning("events_dead_lettered", entry=item.entry.entry_id.decode(), events=dead)
        return True

    async def _dead_letter_entry(self, entry: Entry, reason: str) -> None:
        await self._with_redis_retry(
            lambda: self._consumer.dead_letter(entry.entry_id, entry.payload, reason)
        )
        metrics.EVENTS_DEAD_LETTERED.inc(max(_count(entry), 1))
        await self._ack([entry.entry_id], 0, 0, max(_count(entry), 1), 0.0)
        log.warning("entry_dead_lettered", entry=entry.entry_id.decode(), reason=reason[:200])

    async def _ack(
        self, ids: list[bytes], written: int, duplicates: int, dead: int, seconds: float
    ) -> None:
        stats: dict[str, float] = {
            "written": written,
            "duplicates": duplicates,
            "dead_lettered": dead,
            "batches": 1,
            "batch_seconds": float(seconds),
            "retried": self._retried,
        }
        self._retried = 0
        await self._with_redis_retry(lambda: self._consumer.ack(ids, stats))

    async def _with_redis_retry(self, call: Callable[[], Awaitable[T]]) -> T:
        """Redis calls after a commit must happen: retry them until Redis answers."""
        backoff, attempts = 0.1, 0
        while True:
            try:
                return await call()
            except (RedisError, OSError) as exc:
                attempts += 1
                if self.stopping and attempts > 3:
                    raise
                log.warning("queue_unavailable", error=type(exc).__name__, retry_in_s=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._opt.max_backoff_s)

    async def _maybe_trim(self) -> None:
        if time.monotonic() - self._last_trim < self._opt.trim_every_s:
            return
        self._last_trim = time.monotonic()
        try:
            await self._consumer.trim_acknowledged()
        except (RedisError, OSError) as exc:
            log.warning("trim_failed", error=type(exc).__name__)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


def _count(entry: Entry) -> int:
    return count(entry.payload)
