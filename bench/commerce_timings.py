"""Time the reports of bench/bench_commerce.py in process, statement by statement.

Against a store that already holds the bench shop (the DuckDB file `bench_commerce
--keep-duckdb FILE` keeps, or a PostgreSQL holding it): one request at a time, so the
figures are the time one request takes alone, without the HTTP layer or other clients.

    python -m bench.commerce_timings --duckdb shop.duckdb [--reports "commerce summary"]
    python -m bench.commerce_timings --dsn postgresql://... --runs 15
    python -m bench.commerce_timings --duckdb shop.duckdb --explain plans.txt

With ``--explain FILE``, the plan of every statement of each report, run once more
under EXPLAIN ANALYZE, is written to FILE (DuckDB: once the timings are done, on a
read-only connection of its own).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bench.bench_commerce import routes
from bench.report_timings import Timed, time_runs
from bench.report_timings import one as web_report
from tapioca.reports import commerce
from tapioca.reports.executor import Executor
from tapioca.reports.scope import Scope, resolve_scope

Report = Callable[[Executor, Scope], Awaitable[Any]]


class Kept(Timed):
    """A timed read store that also keeps each statement with its parameters."""

    def __init__(self, db: Any) -> None:
        super().__init__(db)
        self.statements: list[tuple[str, list[Any]]] = []

    async def fetch(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        self.statements.append((sql, list(params)))
        return await super().fetch(sql, params)


COMMERCE: dict[str, Report] = {
    "summary": commerce.summary,
    "carts": commerce.carts,
}


def report_for(path: str) -> tuple[str, dict[str, str]] | None:
    """The kind of report a bench path asks for, and its query (None: not timed here)."""
    parts = urlsplit(path)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    if parts.path.startswith("/api/v1/stats/"):
        return parts.path.rsplit("/", 1)[1], q
    if parts.path.startswith("/api/v1/commerce/") and parts.path.count("/") == 4:
        return parts.path.rsplit("/", 1)[1], q
    return None


async def run_one(ex: Executor, kind: str, q: dict[str, str]) -> None:
    if kind in ("overview", "timeseries", "breakdown"):
        query = "&".join(f"{k}={v}" for k, v in q.items())
        await web_report(ex, f"/x?{query}", kind)
        return
    scope = await resolve_scope(ex.db, q["site_id"], None, q.get("start_date"),
                                q.get("end_date"), None, None, datetime.now(UTC))  # fmt: skip
    if kind == "products":
        await commerce.products(ex, scope, q.get("sort", "revenue"), int(q.get("limit", 10)))
    elif kind == "transactions":
        await commerce.transactions(ex, scope, int(q.get("limit", 50)), q.get("cursor"))
    else:
        await COMMERCE[kind](ex, scope)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duckdb", type=Path)
    parser.add_argument("--dsn")
    parser.add_argument("--reports", help="comma-separated names (default: every one timed here)")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--explain", type=Path, help="write each statement's plan there")
    args = parser.parse_args()
    if args.duckdb:
        from tapioca.storage.duckdb_store import DuckDBStore

        store: Any = DuckDBStore(args.duckdb)
    else:
        from tapioca.storage.postgres_store import PostgresStore

        store = PostgresStore(args.dsn)
    paths = routes("none")
    names = args.reports.split(",") if args.reports else list(paths)
    kept: dict[str, list[tuple[str, list[Any]]]] = {}
    try:
        for name in names:
            found = report_for(paths[name])
            if found is None:
                continue  # the BobaShop routes are these reports under other names
            db = Kept(store)
            ex = Executor(db)
            await time_runs(name, db, partial(run_one, ex, *found), args.runs)
            distinct: dict[tuple[str, str], tuple[str, list[Any]]] = {}
            for sql, values in db.statements:
                distinct.setdefault((sql, repr(values)), (sql, values))
            kept[name] = list(distinct.values())
    finally:
        await store.close()
    if args.explain:
        await explain(args, kept)


async def explain(args: argparse.Namespace, kept: dict[str, list[tuple[str, list[Any]]]]) -> None:
    """Each report's distinct statements under EXPLAIN ANALYZE, into ``args.explain``."""
    with args.explain.open("w") as out:
        if args.duckdb:
            import duckdb

            con = duckdb.connect(str(args.duckdb), read_only=True)
            con.execute("SET TimeZone = 'UTC'")
            for name, statements in kept.items():
                for sql, params in statements:
                    plan = con.execute("EXPLAIN ANALYZE " + sql, params).fetchall()[0][1]
                    out.write(f"==== {name}\n{sql}\n{params!r}\n{plan}\n")
            con.close()
        else:
            import asyncpg

            con = await asyncpg.connect(args.dsn)
            try:
                for name, statements in kept.items():
                    for sql, params in statements:
                        rows = await con.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *params)
                        plan = "\n".join(r[0] for r in rows)
                        out.write(f"==== {name}\n{sql}\n{params!r}\n{plan}\n")
            finally:
                await con.close()
    print(f"plans: {args.explain}")


if __name__ == "__main__":
    asyncio.run(main())
