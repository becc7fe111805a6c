"""Time each web report of bench/bench_reports.py in process, statement by statement.

Against a store that already holds the bench site (for instance a copy of the DuckDB
file bench_reports builds, or its PostgreSQL): one request at a time, so the figures are
the time one request takes alone, without the HTTP layer or other clients.

    python -m bench.report_timings --duckdb site.duckdb [--reports "breakdown path"]
    python -m bench.report_timings --dsn postgresql://... --runs 15
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bench.bench_reports import REPORTS
from tapioca.kit.timerange import Interval
from tapioca.model.dimensions import Dimension
from tapioca.reports import web
from tapioca.reports.executor import Executor
from tapioca.reports.metrics import ALL_METRICS
from tapioca.reports.params import parse_metrics
from tapioca.reports.scope import resolve_scope


class Timed:
    """A read store that records the time of every statement."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.log: list[tuple[float, str]] = []

    async def fetch(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        started = time.perf_counter()
        rows: list[tuple[Any, ...]] = await self.db.fetch(sql, params)
        self.log.append((time.perf_counter() - started, " ".join(sql.split())[:80]))
        return rows

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Timed]:
        yield self


async def one(ex: Executor, path: str, name: str) -> None:
    q = {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
    scope = await resolve_scope(
        ex.db,
        q["site_id"],
        None,
        q.get("start_date"),
        q.get("end_date"),
        None,
        None,
        datetime.now(UTC),
    )
    metrics = parse_metrics(q.get("metrics"), ALL_METRICS)
    if name.startswith("timeseries"):
        await web.timeseries(ex, scope, Interval(q["interval"]), metrics)
    elif name.startswith("breakdown"):
        await web.breakdown(ex, scope, Dimension(q["dimension"]), metrics, 10)
    else:
        await web.overview(ex, scope)


async def time_runs(name: str, db: Timed, run: Callable[[], Awaitable[Any]], runs: int) -> None:
    """Run one report ``runs`` times on ``db``; print its median time and the median of
    each of its statements (by position; a statement some runs skip, such as a sketch
    read once and then kept, says in how many runs it ran)."""
    totals: list[float] = []
    statements: dict[tuple[int, str], list[float]] = defaultdict(list)
    for _ in range(runs):
        db.log.clear()
        started = time.perf_counter()
        await run()
        totals.append(time.perf_counter() - started)
        for i, (seconds, sql) in enumerate(db.log):
            statements[(i, sql)].append(seconds)
    totals.sort()
    print(f"{name}: median {totals[len(totals) // 2] * 1000:.1f} ms, "
          f"min {totals[0] * 1000:.1f} ms")  # fmt: skip
    for (_, sql), times in statements.items():
        times.sort()
        ran = f"{len(times)}/{runs} runs"
        print(f"    {times[len(times) // 2] * 1000:7.2f} ms  {ran:>10}  {sql}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duckdb", type=Path)
    parser.add_argument("--dsn")
    parser.add_argument("--reports", help="comma-separated names (default: all but realtime)")
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    if args.duckdb:
        from tapioca.storage.duckdb_store import DuckDBStore

        store: Any = DuckDBStore(args.duckdb)
    else:
        from tapioca.storage.postgres_store import PostgresStore

        store = PostgresStore(args.dsn)
    names = args.reports.split(",") if args.reports else [n for n in REPORTS if n != "realtime"]
    try:
        for name in names:
            db = Timed(store)
            ex = Executor(db)  # keeps the sketches it reads, as a serving process does
            await time_runs(name, db, partial(one, ex, REPORTS[name], name), args.runs)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
