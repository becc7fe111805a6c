"""Embedded mode: group commit. Requests wait until their events are committed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from tapioca.errors import QueueUnavailable
from tapioca.logging import get_logger

log = get_logger(__name__)

Committer = Callable[[list[bytes]], Awaitable[None]]

# A burst's requests follow each other within milliseconds (each client sends its next one
# on its 202): quiet this long after the last one, the burst is over.
QUIET_S = 0.05


class GroupCommitQueue:
    """Collects the records of concurrent requests and commits them in one write.

    ``publish`` returns only after the write that holds its records has committed,
    so a 202 always means "in the store". A failed write fails every waiting request.
    """

    def __init__(self, commit: Committer, *, max_events: int = 50_000) -> None:
        self._commit = commit
        self._max_events = max_events
        self._pending: list[tuple[list[bytes], asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._committing = False
        self._last_activity = float("-inf")  # monotonic time of the last publish or commit
        self.last_commit_seconds = 0.0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="group-commit")

    async def publish(self, records: list[bytes]) -> None:
        if self._closing or self._task is None:
            raise QueueUnavailable("the server is shutting down")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((records, future))
        self._last_activity = time.monotonic()
        self._wakeup.set()
        await future

    def _take(self) -> list[tuple[list[bytes], asyncio.Future[None]]]:
        taken: list[tuple[list[bytes], asyncio.Future[None]]] = []
        size = 0
        while self._pending and (not taken or size + len(self._pending[0][0]) <= self._max_events):
            item = self._pending.pop(0)
            taken.append(item)
            size += len(item[0])
        return taken

    async def _run(self) -> None:
        while not (self._closing and not self._pending):
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            group = self._take()
            records = [r for recs, _ in group for r in recs]
            started = time.perf_counter()
            self._committing = True
            try:
                await self._commit(records)
            except Exception as exc:
                log.error("group_commit_failed", events=len(records), error=type(exc).__name__)
                for _, future in group:
                    if not future.done():
                        future.set_exception(QueueUnavailable("the store did not commit"))
            else:
                for _, future in group:
                    if not future.done():
                        future.set_result(None)
            finally:
                self._committing = False
                self._last_activity = time.monotonic()
            self.last_commit_seconds = time.perf_counter() - started

    def busy(self) -> bool:
        """Requests are waiting or being committed, or the last was less than QUIET_S ago:
        a burst is under way. The derive job waits meanwhile (derive/jobs.py): its run
        holds the store's one writer, and every request of the burst would wait for it."""
        if self._pending or self._committing:
            return True
        return time.monotonic() - self._last_activity < QUIET_S

    async def lag(self) -> int:
        return sum(len(records) for records, _ in self._pending)

    async def ping(self) -> None:
        if self._task is None or self._task.done():
            raise QueueUnavailable("the committer is not running")

    async def close(self) -> None:
        """Commit what is waiting, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
