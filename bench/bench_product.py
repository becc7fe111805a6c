"""Product reports on the 10M-event, 90-day bench site (bench/bench_reports.py builds and
loads it): active users per day over 90 days, retention of 12 weekly cohorts, a 4-step
funnel over 30 days, lifecycle over 12 weeks, and the rest, under wrk with 4 clients, on
each store. Before timing, the answers are compared with SQL over the raw events that
never reads the derived tables: daily active users of every day, the 30-day users of the
last one, the whole retention matrix, lifecycle's new users per week and the funnel's
first step. Figures go under "product" in bench/results (unless --no-save).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from itertools import groupby
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.bench_reports import SITE, ZONE, load_duckdb, load_postgres, parquet_for, worker_rows
from bench.figures import Figure, ModeResult, finish
from bench.generator import generate
from bench.procs import Proc, bench_servers, credential, start_api, start_serve
from bench.run import OUT, wrk

DAYS = "start_date=2025-10-01&end_date=2025-12-29"  # the site's 90 days
WEEKS = "start_date=2025-10-06&end_date=2025-12-28"  # 12 whole weeks
MONTH = "start_date=2025-11-15&end_date=2025-12-14"  # 30 days
STEPS = "page_view,add_to_cart,view_cart,purchase"
BASE = f"site_id={SITE}"
# name → (path, p95 target in ms or None)
REPORTS: dict[str, tuple[str, float | None]] = {
    "active users per day, 90 days": (
        f"/api/v1/product/active-users?{BASE}&{DAYS}&interval=day", 50.0),
    "retention, 12 weekly cohorts": (
        f"/api/v1/product/retention?{BASE}&{WEEKS}&cohort=week&periods=11", 150.0),
    "funnel of 4 steps, 30 days": (
        f"/api/v1/product/funnel?{BASE}&{MONTH}&steps={STEPS}&window=7d", 250.0),
    "lifecycle, 12 weeks": (f"/api/v1/product/lifecycle?{BASE}&{WEEKS}&interval=week", 200.0),
    "active users per week, 90 days": (
        f"/api/v1/product/active-users?{BASE}&{DAYS}&interval=week", None),
    "top events, 30 days": (f"/api/v1/product/top-events?{BASE}&{MONTH}", None),
    "stickiness, 30 days": (f"/api/v1/product/stickiness?{BASE}&{MONTH}", None),
    "seed 003 retention, 4 weeks from 2025-11-03": (
        f"/api/stats/retention?{BASE}&start_date=2025-11-03&windows=4", None),
    "seed 003 dau, 30 days": (
        f"/api/stats/dau?{BASE}&from_date=2025-11-15&to_date=2025-12-14", None),
}  # fmt: skip

# -- the independent answers (SQL over the events, the dialect both stores share) ------
LOCAL = f"CAST(ts AT TIME ZONE '{ZONE}' AS DATE)"
EVENTS = f"FROM event WHERE site_id = '{SITE}' AND NOT is_bot"
DAU_SQL = f"SELECT {LOCAL} AS d, count(DISTINCT visitor_id) {EVENTS} GROUP BY 1 ORDER BY 1"
MAU_SQL = (f"SELECT count(DISTINCT visitor_id) {EVENTS} "
           f"AND {LOCAL} BETWEEN DATE '2025-11-30' AND DATE '2025-12-29'")  # fmt: skip
RETENTION_SQL = f"""
WITH f AS (SELECT visitor_id, CAST(date_trunc('week', min(ts) AT TIME ZONE '{ZONE}') AS DATE)
                  AS cohort {EVENTS} GROUP BY visitor_id),
a AS (SELECT DISTINCT visitor_id, CAST(date_trunc('week', {LOCAL}) AS DATE) AS week {EVENTS})
SELECT f.cohort, a.week, count(*) FROM f JOIN a ON a.visitor_id = f.visitor_id
WHERE f.cohort >= DATE '2025-10-06' AND f.cohort <= DATE '2025-12-22' AND a.week >= f.cohort
GROUP BY 1, 2"""
STEP1_SQL = (f"SELECT count(DISTINCT visitor_id) {EVENTS} AND event_type = 'page_view' "
             f"AND {LOCAL} BETWEEN DATE '2025-11-15' AND DATE '2025-12-14'")  # fmt: skip
# the step events of the funnel's 30 days and the 7 after, read into plain Python
STEP_ROWS_SQL = (
    f"SELECT visitor_id, ts, event_id, event_type, {LOCAL} <= DATE '2025-12-14' {EVENTS} "
    f"AND event_type IN ({', '.join(repr(s) for s in STEPS.split(','))}) "
    f"AND {LOCAL} >= DATE '2025-11-15' AND ts <= "
    f"(TIMESTAMP '2025-12-15 00:00' AT TIME ZONE '{ZONE}') + INTERVAL '7 days' "
    "ORDER BY visitor_id, ts, event_id"
)


def funnel_of(rows: list[tuple[Any, ...]], window: timedelta) -> list[int]:
    """Users per step of the bench funnel: for each user, a try from every step-1 event in
    the range, each later event taking the next step when it matches, within the window
    (every step is one event type, and the bench's users have no two events at one
    moment, so this is exact here)."""
    steps = STEPS.split(",")
    reached = [0] * len(steps)
    for _user, group in groupby(rows, key=lambda row: row[0]):
        events = [(ts, kind, inside) for _, ts, _, kind, inside in group]
        assert len({ts for ts, _, _ in events}) == len(events), "two events at one moment"
        best = 0
        for i, (ts, kind, inside) in enumerate(events):
            if not inside or kind != steps[0]:
                continue
            depth = 1
            for later, other, _ in events[i + 1 :]:
                if later > ts + window or depth == len(steps):
                    break
                depth += other == steps[depth]
            best = max(best, depth)
        for k in range(best):
            reached[k] += 1
    return reached


Fetch = Callable[[str], Awaitable[list[tuple[Any, ...]]]]


async def check(url: str, fetch: Fetch, result: ModeResult) -> None:
    """Each report's answer against the SQL over the events."""
    async with httpx.AsyncClient(timeout=600, headers=credential(url)) as client:

        async def ask(name: str) -> Any:
            answer = await client.get(url + REPORTS[name][0])
            answer.raise_for_status()
            return answer.json()

        checks: list[tuple[str, Any, Any]] = []
        active = (await ask("active users per day, 90 days"))["results"]
        dau = {d.isoformat(): int(n) for d, n in await fetch(DAU_SQL)}
        days = [r["bucket"] for r in active]
        checks.append(("dau of each of the 90 days", {r["bucket"]: r["dau"] for r in active},
                       {day: dau.get(day, 0) for day in days}))  # fmt: skip
        checks.append(("mau of the last day", active[-1]["mau"], (await fetch(MAU_SQL))[0][0]))
        cohorts = (await ask("retention, 12 weekly cohorts"))["results"]
        matrix: dict[tuple[str, int], int] = {}
        for cohort, week, n in await fetch(RETENTION_SQL):
            k = (week - cohort).days // 7
            if k <= 11:
                matrix[(cohort.isoformat(), k)] = int(n)
        got = {(c["cohort_start"], k): n for c in cohorts for k, n in enumerate(c["retained"])}
        checks.append(("retention matrix (12 cohorts)", got,
                       {key: matrix.get(key, 0) for key in got}))  # fmt: skip
        lifecycle = (await ask("lifecycle, 12 weeks"))["results"]
        checks.append(("lifecycle new users per week", [r["new"] for r in lifecycle],
                       [matrix.get((r["bucket"], 0), 0) for r in lifecycle]))  # fmt: skip
        funnel = (await ask("funnel of 4 steps, 30 days"))["steps"]
        checks.append(("funnel step 1 users", funnel[0]["users"], (await fetch(STEP1_SQL))[0][0]))
        checks.append(("funnel users per step", [s["users"] for s in funnel],
                       funnel_of(await fetch(STEP_ROWS_SQL), timedelta(days=7))))  # fmt: skip
    for name, got, want in checks:
        ok = got == want
        result.add(Figure(f"exact: {name}", 0.0 if ok else 1.0, "differ", "= 0", ok))


async def time_kept_funnel(store: Any, result: ModeResult) -> None:
    """The funnel of the table below as one API process answers it in turn: its first
    answer (every step event of the 30 days), the same again (kept, no new events), and
    after 1,000 new events inside the range are written and derived (the kept counts
    moved by the users with new events), which is checked against plain Python."""
    from tapioca.derive.jobs import derive_once
    from tapioca.reports import product
    from tapioca.reports.executor import Executor
    from tapioca.reports.funnel import parse_steps, parse_window
    from tapioca.reports.scope import resolve_scope

    ex = Executor(store)

    async def ask() -> tuple[float, list[int]]:
        scope = await resolve_scope(store, SITE, None, "2025-11-15", "2025-12-14", None, None,
                                    datetime.now(UTC))  # fmt: skip
        began = time.perf_counter()
        got = await product.funnel(ex, scope, parse_steps(STEPS), parse_window("7d"), "7d")
        return (time.perf_counter() - began) * 1000, [s["users"] for s in got["steps"]]

    first, _ = await ask()
    again, _ = await ask()
    new = generate(92, 1_000, site=SITE, start=datetime(2025, 12, 1, 12, tzinfo=UTC), days=1)
    await store.write_events(worker_rows(list(new)))
    await derive_once(store)
    moved, users = await ask()
    want = funnel_of(await store.fetch(STEP_ROWS_SQL), timedelta(days=7))
    result.add(Figure("funnel of 4 steps, 30 days: first answer, one request", first, "ms"))
    result.add(Figure("funnel: the kept answer, no new events", again, "ms"))
    result.add(Figure("funnel after 1,000 new events: the kept answer moved", moved, "ms",
                      "≤ 250", moved <= 250))  # fmt: skip
    ok = users == want
    result.add(Figure("exact: funnel after new events", 0.0 if ok else 1.0, "differ", "= 0", ok))


def measure(url: str, result: ModeResult, seconds: int) -> None:
    headers = credential(url)
    for name, (path, target) in REPORTS.items():
        began = time.perf_counter()
        httpx.get(url + path, headers=headers, timeout=600).raise_for_status()
        alone = (time.perf_counter() - began) * 1000
        r = wrk(url, "wrk_get.lua", threads=1, conns=4, seconds=seconds, env={"BENCH_PATH": path},
                headers=headers)  # fmt: skip
        if r["non2xx"]:
            raise RuntimeError(f"{name}: {r['non2xx']} answers not 2xx")
        p95 = r["p95_us"] / 1000
        late = f", {r['socket_errors']} requests over wrk's 5 s" if r["socket_errors"] else ""
        if not r["rps"]:  # not one answer within the run: the time of one request alone
            p95, late = alone, f", no answer within {seconds} s: one request alone took this"
        met = p95 <= target and not late if target else None
        result.add(Figure(
            f"{name} p95 (p50 {r['p50_us'] / 1000:.1f} ms)", p95, "ms",
            f"≤ {target:.0f}" if target else "", met,
            f"wrk -t1 -c4 -d{seconds}s, {r['rps']:.1f} req/s{late}",
        ))  # fmt: skip


async def run_embedded(work: Path, parquet: Path, count: int, seconds: int) -> ModeResult:
    result = ModeResult(f"embedded, {count:,} events in 90 days")
    data = work / "embedded"
    data.mkdir(parents=True)
    _, derived, _ = await load_duckdb(data / "tapioca.duckdb", parquet)
    result.add(Figure("derive from scratch (sessions, rollups, product state)", derived, "s"))
    from tapioca.storage.duckdb_store import DuckDBStore

    store = DuckDBStore(data / "tapioca.duckdb", max_rows=100_000_000)  # the check reads rows
    try:
        await time_kept_funnel(store, result)
    finally:
        await store.close()
    fetch = _duckdb_rows(data / "tapioca.duckdb")  # while no server holds the file
    url, serve = start_serve(data)
    try:
        await check(url, fetch, result)
        measure(url, result, seconds)
    finally:
        serve.stop()
    return result


def _duckdb_rows(path: Path) -> Fetch:
    import duckdb

    cache: dict[str, list[tuple[Any, ...]]] = {}
    con = duckdb.connect(str(path), read_only=True)
    for sql in (DAU_SQL, MAU_SQL, RETENTION_SQL, STEP1_SQL, STEP_ROWS_SQL):
        cache[sql] = con.execute(sql).fetchall()
    con.close()

    async def fetch(sql: str) -> list[tuple[Any, ...]]:
        return cache[sql]

    return fetch


async def run_production(work: Path, parquet: Path, count: int, seconds: int) -> ModeResult:
    result = ModeResult(f"production, {count:,} events in 90 days")
    procs: list[Proc] = []
    with bench_servers(work) as (_pg, dsn, redis):
        try:
            _, derived, _ = await load_postgres(dsn, parquet, work)
            result.add(
                Figure("derive from scratch (sessions, rollups, product state)", derived, "s")
            )
            from tapioca.storage.postgres_store import PostgresStore

            store = PostgresStore(dsn)
            try:
                await time_kept_funnel(store, result)
            finally:
                await store.close()
            url, api = start_api(dsn, redis.url, work)
            procs.append(api)
            con = await asyncpg.connect(dsn)
            try:

                async def fetch(sql: str) -> list[tuple[Any, ...]]:
                    return [tuple(r) for r in await con.fetch(sql)]

                await check(url, fetch, result)
            finally:
                await con.close()
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
    parser.add_argument("--no-save", action="store_true", help="print only")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    parquet = parquet_for(args.events)
    results = []
    with tempfile.TemporaryDirectory(prefix="tapioca-product-") as tmp:
        os.chmod(tmp, 0o755)
        for mode in args.modes.split(","):
            runner = run_embedded if mode == "embedded" else run_production
            results.append(await runner(Path(tmp) / mode, parquet, args.events, args.seconds))
            print(f"{mode} done {date.today()}", flush=True)
    command = "python -m bench.bench_product " + " ".join(sys.argv[1:])
    finish("product", results, command.strip(), keep=not args.no_save)


if __name__ == "__main__":
    asyncio.run(main())
