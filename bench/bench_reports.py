"""`make bench`, reports part: every web report over 30 days of a 10M-event, 90-day site.

The site comes from the bench generator, through the real ingest encoding and worker
enrichment, and is cached as Parquet in bench/out (built once). It is loaded into a
fresh DuckDB file and a fresh PostgreSQL, the derive job builds sessions and rollups
(timed), and `tapioca serve` / `tapioca api` answer each report under wrk. The visitor
counts of the rollups are checked against an exact count over the events. The results are
printed and kept under "reports" in bench/results/latest.json and latest.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.figures import Figure, ModeResult, finish
from bench.generator import generate
from bench.loading import load_events, vacuum_analyze
from bench.procs import Proc, bench_servers, credential, start_api, start_serve
from bench.run import OUT, wrk

SITE = "big90"
ZONE = "Europe/Berlin"
START = datetime(2025, 10, 1, tzinfo=UTC)
DAYS = 90
RANGE = "start_date=2025-11-15&end_date=2025-12-14"  # 30 days, no clock change inside
TARGET_MS = 100.0
LIVE = "after 1,000 new events on a day of ~110k: derive run (sessions, hourly rollups)"
LIVE_DAYS = "then the run that redoes that day's and week's visitor rollups"

REPORTS = {
    "overview": f"/api/v1/stats/overview?site_id={SITE}&{RANGE}",
    "timeseries day": f"/api/v1/stats/timeseries?site_id={SITE}&{RANGE}&interval=day"
    "&metrics=pageviews,visitors,sessions,bounce_rate",
    "timeseries hour": f"/api/v1/stats/timeseries?site_id={SITE}&{RANGE}&interval=hour"
    "&metrics=pageviews,visitors",
    "timeseries week": f"/api/v1/stats/timeseries?site_id={SITE}&{RANGE}&interval=week"
    "&metrics=pageviews,visitors,sessions",
    "timeseries month": f"/api/v1/stats/timeseries?site_id={SITE}&{RANGE}&interval=month"
    "&metrics=visitors,pageviews,views_per_session",
    **{
        f"breakdown {dim}": f"/api/v1/stats/breakdown?site_id={SITE}&{RANGE}&dimension={dim}"
        + ("&metrics=visitors,sessions,bounce_rate" if session else "&metrics=pageviews,visitors")
        for dim, session in [
            ("path", False),
            ("page_type", False),
            ("event_type", False),
            ("referrer", False),
            ("utm_content", False),
            ("channel", True),
            ("source", True),
            ("device", True),
            ("browser", True),
            ("os", True),
            ("utm_source", True),
            ("utm_medium", True),
            ("utm_campaign", True),
            ("landing_page", True),
        ]
    },
    "realtime": f"/api/v1/stats/realtime?site_id={SITE}",
}


# -- the site -------------------------------------------------------------------------
def worker_rows(events: list[dict[str, Any]]) -> list[Any]:
    """Events encoded as ingest does and enriched as the worker does."""
    from tapioca.enrich.enrichment import SiteRules
    from tapioca.ingest.normalize import RequestContext
    from tapioca.ingest.protocols.native import encode_events
    from tapioca.worker.transform import decode_records

    ctx = RequestContext(datetime.now(UTC), "10.0.0.1", None, b"bench", timedelta(minutes=5), 65536)
    records = [p for _, p in encode_events(events, ctx, indexed=True)]
    rules = SiteRules(domains=("boba.example",))
    return decode_records(records, lambda _site: rules)


def build_parquet(count: int, path: Path) -> float:
    """Generate ``count`` events, make them the worker's rows; write Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tapioca.storage.duckdb_store import _ARROW_SCHEMA

    started = time.perf_counter()
    tmp = path.with_suffix(".tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(tmp, _ARROW_SCHEMA) as out:
        chunk: list[dict[str, Any]] = []

        def flush() -> None:
            columns = list(zip(*worker_rows(chunk), strict=True))
            out.write_table(
                pa.Table.from_arrays(
                    [pa.array(c, type=_ARROW_SCHEMA.field(i).type) for i, c in enumerate(columns)],
                    schema=_ARROW_SCHEMA,
                )
            )
            chunk.clear()

        for event in generate(90, count, site=SITE, start=START, days=DAYS):
            chunk.append(event)
            if len(chunk) == 100_000:
                flush()
        if chunk:
            flush()
    tmp.rename(path)
    return time.perf_counter() - started


def parquet_for(count: int) -> Path:
    path = OUT / f"site-{SITE}-{count}.parquet"
    if not path.exists():
        seconds = build_parquet(count, path)
        print(f"generated {count:,} events in {seconds:.0f} s → {path}", flush=True)
    return path


def live_rows(count: int = 1_000) -> list[Any]:
    """``count`` more events on the busiest stretch of the last day, as the worker writes them."""
    start = START + timedelta(days=DAYS - 1, hours=12)
    return worker_rows(list(generate(91, count, site=SITE, start=start, days=1)))


async def time_live_derive(store: Any) -> tuple[float, float]:
    """After 1,000 new events land on a day of ~110k: one derive run of sessions and
    hourly rollups, then the run that redoes that day's and week's visitor rollups."""
    from tapioca.derive.jobs import derive_once

    await store.write_events(live_rows())
    started = time.perf_counter()
    await derive_once(store, days=False)
    hours = time.perf_counter() - started
    started = time.perf_counter()
    await derive_once(store)
    return hours, time.perf_counter() - started


async def load_duckdb(db_file: Path, parquet: Path) -> tuple[float, float, tuple[float, float]]:
    from tapioca.derive.jobs import derive_once
    from tapioca.storage.duckdb_store import DuckDBStore

    store = DuckDBStore(db_file, threads=os.cpu_count() or 2)  # loads as an import would
    await store.migrate()
    await store.execute("INSERT INTO site (id, timezone) VALUES ($1, $2)", [SITE, ZONE])
    loaded = await load_events(store, parquet, db_file.parent)
    started = time.perf_counter()
    await derive_once(store)
    derived = time.perf_counter() - started
    live = await time_live_derive(store)
    await store.close()
    return loaded, derived, live


async def load_postgres(
    dsn: str, parquet: Path, work: Path
) -> tuple[float, float, tuple[float, float]]:
    from tapioca.derive.jobs import derive_once
    from tapioca.storage.postgres_store import PostgresStore

    store = PostgresStore(dsn)
    await store.migrate()
    await store.execute("INSERT INTO site (id, timezone) VALUES ($1, $2)", [SITE, ZONE])
    loaded = await load_events(store, parquet, work, dsn)
    started = time.perf_counter()
    await derive_once(store)
    derived = time.perf_counter() - started
    await vacuum_analyze(dsn)
    live = await time_live_derive(store)
    await store.close()
    return loaded, derived, live


# -- measuring ------------------------------------------------------------------------
def measure(url: str, result: ModeResult, seconds: int) -> None:
    headers = credential(url)
    for name, path in REPORTS.items():
        answer = httpx.get(url + path, headers=headers, timeout=60)
        answer.raise_for_status()
        r = wrk(url, "wrk_get.lua", threads=1, conns=4, seconds=seconds, env={"BENCH_PATH": path},
                headers=headers)  # fmt: skip
        if r["non2xx"] or r["socket_errors"]:
            raise RuntimeError(f"{name}: {r['non2xx']} non-2xx, {r['socket_errors']} errors")
        p95 = r["p95_us"] / 1000
        result.add(
            Figure(
                f"{name} p95 (p50 {r['p50_us'] / 1000:.1f} ms)",
                p95,
                "ms",
                f"≤ {TARGET_MS:.0f}",
                p95 <= TARGET_MS,
                f"wrk -t1 -c4 -d{seconds}s, {r['rps']:.0f} req/s",
            )
        )


async def check_visitors(url: str, exact: int, result: ModeResult) -> None:
    async with httpx.AsyncClient(timeout=60, headers=credential(url)) as client:
        got = (await client.get(url + REPORTS["overview"])).json()["visitors"]
    error = abs(got - exact) / exact * 100
    result.add(
        Figure(
            "visitors over the 30 days: sketch error",
            error,
            "%",
            "≤ 1",
            error <= 1,
            f"{got:,} reported, {exact:,} exact (count distinct over the events)",
        )
    )


EXACT_VISITORS = (
    "SELECT count(DISTINCT visitor_id) FROM event WHERE site_id = $1 AND NOT is_bot "
    "AND ts >= $2 AND ts < $3"
)
FIRST = datetime(2025, 11, 15)
AFTER = datetime(2025, 12, 15)


def _bounds() -> tuple[datetime, datetime]:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(ZONE)
    return FIRST.replace(tzinfo=zone), AFTER.replace(tzinfo=zone)


async def run_embedded(work: Path, parquet: Path, count: int, seconds: int) -> ModeResult:
    import duckdb

    result = ModeResult(f"embedded, {count:,} events in {DAYS} days")
    data = work / "embedded"
    data.mkdir(parents=True)
    loaded, derived, live = await load_duckdb(data / "tapioca.duckdb", parquet)
    result.add(Figure("load the events (INSERT from Parquet)", loaded, "s"))
    result.add(Figure("derive sessions and rollups from scratch", derived, "s"))
    result.add(Figure(LIVE, live[0], "s"))
    result.add(Figure(LIVE_DAYS, live[1], "s"))
    con = duckdb.connect(str(data / "tapioca.duckdb"), read_only=True)
    lo, hi = _bounds()
    exact = con.execute(EXACT_VISITORS, [SITE, lo, hi]).fetchone()[0]  # type: ignore[index]
    con.close()
    url, serve = start_serve(data)
    try:
        await check_visitors(url, int(exact), result)
        measure(url, result, seconds)
        result.add(Figure("peak RSS of serve", serve.peak_rss_mb(), "MB"))
    finally:
        serve.stop()
    return result


async def run_production(work: Path, parquet: Path, count: int, seconds: int) -> ModeResult:
    result = ModeResult(f"production, {count:,} events in {DAYS} days")
    procs: list[Proc] = []
    with bench_servers(work) as (_pg, dsn, redis):
        try:
            loaded, derived, live = await load_postgres(dsn, parquet, work)
            result.add(Figure("load the events (COPY from CSV)", loaded, "s"))
            result.add(Figure("derive sessions and rollups from scratch", derived, "s"))
            result.add(Figure(LIVE, live[0], "s"))
            result.add(Figure(LIVE_DAYS, live[1], "s"))
            con = await asyncpg.connect(dsn)
            lo, hi = _bounds()
            exact = await con.fetchval(EXACT_VISITORS, SITE, lo, hi)
            await con.close()
            url, api = start_api(dsn, redis.url, work)
            procs.append(api)
            await check_visitors(url, int(exact), result)
            measure(url, result, seconds)
        finally:
            for proc in procs:
                proc.stop()
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--modes", default="embedded,production")
    parser.add_argument(
        "--no-save", action="store_true", help="print the figures only (bench/results unchanged)"
    )
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    parquet = parquet_for(args.events)
    import tempfile

    results = []
    with tempfile.TemporaryDirectory(prefix="tapioca-reports-") as tmp:
        import os

        os.chmod(tmp, 0o755)
        for mode in args.modes.split(","):
            runner = run_embedded if mode == "embedded" else run_production
            results.append(await runner(Path(tmp) / mode, parquet, args.events, args.seconds))
    command = "python -m bench.bench_reports " + " ".join(a for a in __import__("sys").argv[1:])
    finish("reports", results, command.strip(), keep=not args.no_save)


if __name__ == "__main__":
    asyncio.run(main())
