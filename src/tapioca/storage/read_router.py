"""Reads prefer a healthy streaming replica and fall back to the primary, per query.

A report asks for rows; the router picks a replica (round robin over the healthy ones),
and when that read fails for a connection-class reason (refused, reset, acquire or
connect timeout) it marks the replica down and runs the same query on the primary at
once, so the client still gets its answer. A background check probes every replica
(connect, ``pg_is_in_recovery()``, replay lag) and brings it back when it is healthy;
a replica lagging more than the bound is skipped. An error that is the query's own fault
(bad parameters, statement timeout) is raised as it is and changes no routing.

Every pool here is read-only: the primary's read pool runs with
``default_transaction_read_only``, so even a mistaken write from a report fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from tapioca import metrics
from tapioca.errors import ReadsMoved, StoreUnavailable
from tapioca.logging import get_logger
from tapioca.storage.base import Params, Rows
from tapioca.storage.postgres_store import (
    Snapshot,
    is_connection_error,
    open_snapshot,
    reading,
    reraise,
)

log = get_logger(__name__)

# Replay lag that an idle primary does not inflate: when everything received has been
# replayed, the replica is current (0), whatever the time of the last transaction.
LAG_SQL = """
SELECT pg_is_in_recovery(),
       CASE WHEN NOT pg_is_in_recovery() THEN 0
            WHEN pg_last_wal_receive_lsn() IS NULL THEN NULL
            WHEN pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
            ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)
       END::float8
"""


def display_name(dsn: str) -> str:
    parts = urlsplit(dsn)
    return f"{parts.hostname or 'local'}:{parts.port or 5432}"


@dataclass
class Replica:
    dsn: str
    name: str
    state: str = "unknown"  # healthy | down | lagging | not_in_recovery | unknown
    lag_seconds: float | None = None
    checked_at: float | None = None
    pool: asyncpg.Pool | None = field(default=None, repr=False)

    @property
    def usable(self) -> bool:
        return self.state == "healthy"


@dataclass(frozen=True)
class PoolOptions:
    min_size: int = 1
    max_size: int = 10
    statement_timeout_ms: int = 30_000
    acquire_timeout_s: float = 5.0


async def _open_pool(dsn: str, opts: PoolOptions, *, read_only: bool) -> asyncpg.Pool:
    settings = {
        "statement_timeout": str(opts.statement_timeout_ms),
        "application_name": "tapioca-reports",
        # A report's plan depends on its values (a day or a year, one site or a large
        # one): plan each with its values, never a generic plan for any value.
        "plan_cache_mode": "force_custom_plan",
        # Compiling a plan takes tens of milliseconds: more than a report over rollups
        # takes to run, and the planner's costs cannot tell the two apart.
        "jit": "off",
        # Nor do parallel workers pay off: they take longer to start than a report over
        # rollups takes to read its few thousand rows, the more so while other requests
        # hold the cores.
        "max_parallel_workers_per_gather": "0",
    }
    if read_only:
        settings["default_transaction_read_only"] = "on"
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn,
        min_size=opts.min_size,
        max_size=opts.max_size,
        timeout=opts.acquire_timeout_s,
        command_timeout=opts.statement_timeout_ms / 1000 + 5,
        server_settings=settings,
    )
    return pool


class ReadRouter:
    """The only way reports reach PostgreSQL: a read-only ``fetch`` or ``snapshot``."""

    def __init__(
        self,
        primary_dsn: str,
        replica_dsns: list[str],
        *,
        options: PoolOptions | None = None,
        check_seconds: float = 15.0,
        max_lag_seconds: float = 30.0,
    ) -> None:
        self._primary_dsn = primary_dsn
        self._opts = options or PoolOptions()
        self._primary: asyncpg.Pool | None = None
        self._primary_lock = asyncio.Lock()
        self.replicas = [Replica(dsn, display_name(dsn)) for dsn in replica_dsns]
        self._turn = itertools.count()
        self._check_seconds = check_seconds
        self._max_lag = max_lag_seconds
        self._task: asyncio.Task[None] | None = None
        self.last_source = "primary"

    # -- routing ----------------------------------------------------------------------
    @property
    def reading_from(self) -> str:
        return "replica" if any(r.usable for r in self.replicas) else "primary"

    def _next_replica(self) -> Replica | None:
        usable = [r for r in self.replicas if r.usable and r.pool is not None]
        if not usable:
            return None
        return usable[next(self._turn) % len(usable)]

    async def fetch(self, sql: str, params: Params = ()) -> Rows:
        replica = self._next_replica()
        if replica is not None and replica.pool is not None:
            try:
                rows = await self._run(replica.pool, sql, params)
            except Exception as exc:
                if not is_connection_error(exc):  # the query's own fault: no failover
                    reraise(exc)
                await self._mark_down(replica, exc)
            else:
                self._count("replica")
                return rows
        try:
            rows = await self._run(await self._primary_pool(), sql, params)
        except Exception as exc:
            if is_connection_error(exc):
                raise StoreUnavailable(f"no database answers reads: {type(exc).__name__}") from exc
            reraise(exc)
        self._count("primary")
        return rows

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Snapshot]:
        """The reads of one answer in one transaction, on a replica when one is healthy
        (else the primary). A replica that fails as the snapshot opens is marked down and
        the primary answers; one that fails mid-answer is marked down and the answer is
        asked again (ReadsMoved)."""
        replica = self._next_replica()
        timeout = self._opts.acquire_timeout_s
        async with AsyncExitStack() as stack:
            snap: Snapshot | None = None
            if replica is not None and replica.pool is not None:
                try:
                    snap = await stack.enter_async_context(
                        open_snapshot(replica.pool, timeout, moved=True)
                    )
                except Exception as exc:
                    if not is_connection_error(exc):
                        reraise(exc)
                    await self._mark_down(replica, exc)
            if snap is None:
                replica = None
                try:
                    pool = await self._primary_pool()
                    snap = await stack.enter_async_context(open_snapshot(pool, timeout))
                except Exception as exc:
                    if is_connection_error(exc):
                        raise StoreUnavailable(
                            f"no database answers reads: {type(exc).__name__}"
                        ) from exc
                    reraise(exc)
            self._count("primary" if replica is None else "replica")
            try:
                yield snap
            except ReadsMoved as exc:
                if replica is not None:
                    await self._mark_down(replica, exc)
                raise

    async def _run(self, pool: asyncpg.Pool, sql: str, params: Params) -> list[tuple[Any, ...]]:
        async with reading(pool, self._opts.acquire_timeout_s) as con:
            records = await con.fetch(sql, *params)
        return [tuple(r) for r in records]

    def _count(self, source: str) -> None:
        self.last_source = source
        metrics.READS.labels(source).inc()

    async def _mark_down(self, replica: Replica, exc: BaseException) -> None:
        if replica.pool is not None:
            await replica.pool.expire_connections()  # the next check starts from fresh ones
        if replica.state != "down":
            metrics.READ_FAILOVERS.inc()
            log.warning("replica_unhealthy", replica=replica.name, error=type(exc).__name__)
        replica.state = "down"

    async def _primary_pool(self) -> asyncpg.Pool:
        if self._primary is None:
            async with self._primary_lock:
                if self._primary is None:
                    try:
                        self._primary = await _open_pool(
                            self._primary_dsn, self._opts, read_only=True
                        )
                    except Exception as exc:
                        if is_connection_error(exc):
                            raise StoreUnavailable("the primary does not answer") from exc
                        raise
        return self._primary

    # -- health checks ----------------------------------------------------------------
    def start(self) -> None:
        if self.replicas and self._task is None:
            self._task = asyncio.create_task(self._check_loop(), name="replica-check")

    async def _check_loop(self) -> None:
        while True:
            await self.check_replicas()
            await asyncio.sleep(self._check_seconds)

    async def check_replicas(self) -> None:
        await asyncio.gather(*(self._check(r) for r in self.replicas))

    async def _check(self, replica: Replica) -> None:
        before = replica.state
        try:
            if replica.pool is None:
                replica.pool = await _open_pool(replica.dsn, self._opts, read_only=True)
            async with replica.pool.acquire(timeout=self._opts.acquire_timeout_s) as con:
                in_recovery, lag = await con.fetchrow(LAG_SQL, timeout=self._opts.acquire_timeout_s)
        except Exception as exc:
            if replica.pool is not None:
                await replica.pool.expire_connections()
            replica.state, replica.lag_seconds = "down", None
            if before != "down":
                metrics.READ_FAILOVERS.inc()
                log.warning("replica_unhealthy", replica=replica.name, error=type(exc).__name__)
            return
        finally:
            replica.checked_at = time.time()
        replica.lag_seconds = lag
        if not in_recovery:
            replica.state = "not_in_recovery"
        elif lag is None or lag > self._max_lag:
            replica.state = "lagging"
        else:
            replica.state = "healthy"
        metrics.REPLICA_LAG.labels(replica.name).set(lag if lag is not None else float("nan"))
        if replica.state != before:
            event = "replica_recovered" if replica.state == "healthy" else "replica_unhealthy"
            log.info(event, replica=replica.name, state=replica.state, lag_seconds=lag)

    # -- status -------------------------------------------------------------------------
    async def ping_primary(self) -> None:
        await self._run(await self._primary_pool(), "SELECT 1", ())

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "name": r.name,
                "state": r.state,
                "lag_seconds": None if r.lag_seconds is None else round(r.lag_seconds, 3),
            }
            for r in self.replicas
        ]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        pools = [r.pool for r in self.replicas if r.pool is not None]
        if self._primary is not None:
            pools.append(self._primary)
        for pool in pools:
            await _close(pool)


async def _close(pool: asyncpg.Pool) -> None:
    try:
        await asyncio.wait_for(pool.close(), 5)
    except (TimeoutError, OSError):
        pool.terminate()
