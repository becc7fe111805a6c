"""Generated events into a migrated store, the way each store loads in bulk: DuckDB by an
INSERT from the Parquet file, PostgreSQL by COPY from a CSV written from it first."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import asyncpg
import duckdb

from tapioca.model.event import COLUMNS


async def load_events(store: Any, parquet: Path, work: Path, dsn: str | None = None) -> float:
    """Seconds to load the events of ``parquet`` into ``store`` in time order (PostgreSQL,
    at ``dsn``: the COPY and a VACUUM ANALYZE of the events; writing the CSV into ``work``
    is not counted)."""
    columns = ", ".join(COLUMNS)
    if dsn is None:
        started = time.perf_counter()
        await store.execute(
            f"INSERT INTO event ({columns}) SELECT {columns} FROM read_parquet($1) ORDER BY ts",
            [str(parquet)],
        )
        return time.perf_counter() - started
    csv = work / "events.csv"
    duckdb.execute(
        f"COPY (SELECT {columns} FROM read_parquet('{parquet}') ORDER BY ts) "
        f"TO '{csv}' (FORMAT csv, HEADER false)"
    )
    started = time.perf_counter()
    await copy_csv(dsn, csv)
    loaded = time.perf_counter() - started
    csv.unlink()
    return loaded


async def copy_csv(dsn: str, csv: Path) -> None:
    con = await asyncpg.connect(dsn)
    try:
        await con.copy_to_table("event", source=str(csv), columns=list(COLUMNS), format="csv")
        await con.execute("VACUUM ANALYZE event")
    finally:
        await con.close()


async def vacuum_analyze(dsn: str) -> None:
    """Fresh statistics of every table (after a derive from scratch)."""
    con = await asyncpg.connect(dsn)
    try:
        await con.execute("VACUUM ANALYZE")
    finally:
        await con.close()
