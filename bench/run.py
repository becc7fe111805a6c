"""`make bench`: ingest, durability, lag, report latency and memory, on both stores.

Everything runs on this machine: the `tapioca` processes, throw-away PostgreSQL (fsync on)
and Redis (AOF, appendfsync everysec) started from the local binaries, and the load
generators (wrk for HTTP load, Python for the timed scenarios). The results are printed
and kept under "ingest" in bench/results/latest.json and latest.md (bench/figures.py).

The ingest targets are those of the production pipeline (api + worker + PostgreSQL +
Redis); the embedded figures are recorded beside them without a target. /stats has its
target on both stores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from bench.figures import Figure, ModeResult, finish
from bench.generator import generate
from bench.lean_http import LeanConnection
from bench.procs import Proc, base_env, credential, production_env, wait_ready
from support.servers import PostgresServer, RedisServer, free_port

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"


# -- load generators ------------------------------------------------------------------
def wrk(
    url: str,
    script: str,
    *,
    threads: int,
    conns: int,
    seconds: int,
    env: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    OUT.mkdir(exist_ok=True)
    combined = OUT / f"wrk-{Path(script).stem}.lua"
    combined.write_text(
        (BENCH / script).read_text() + "\n" + (BENCH / "wrk_report.lua").read_text()
    )
    proc = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{conns}",
            f"-d{seconds}s",
            "--timeout",
            "5s",
            "-s",
            str(combined),
            *[arg for name, value in (headers or {}).items() for arg in ("-H", f"{name}: {value}")],
            url,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=True,
    )
    match = re.search(r"BENCH_JSON (\{.*\})", proc.stdout)
    if not match:
        raise RuntimeError(f"wrk printed no summary:\n{proc.stdout}\n{proc.stderr}")
    result: dict[str, Any] = json.loads(match[1])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def batches(seed: int, count: int, size: int, site: str) -> Iterator[bytes]:
    chunk: list[dict[str, Any]] = []
    for event in generate(seed, count, site=site):
        chunk.append(event)
        if len(chunk) == size:
            yield orjson.dumps(chunk)
            chunk = []
    if chunk:
        yield orjson.dumps(chunk)


async def post_all(url: str, bodies: list[bytes], concurrency: int) -> list[float]:
    """POST every body to /events; returns each request's latency; fails on non-202."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []

    async def sender() -> None:
        async with LeanConnection(url) as connection:
            while not queue.empty():
                body = queue.get_nowait()
                started = time.perf_counter()
                status, answer = await connection.post("/events", body, "application/json")
                latencies.append(time.perf_counter() - started)
                if status != 202:
                    raise RuntimeError(f"{status}: {answer[:300]!r}")

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


# -- scenarios --------------------------------------------------------------------------
async def bench_single(url: str, _dsn: str | None, result: ModeResult, seconds: int) -> None:
    r = wrk(url, "wrk_single.lua", threads=2, conns=64, seconds=seconds)
    ok = r["non2xx"] == 0 and r["socket_errors"] == 0
    result.add(
        Figure(
            "single-event POST /event",
            r["rps"],
            "req/s",
            "≥ 20,000",
            ok and r["rps"] >= 20_000,
            f"wrk -t2 -c64 -d{seconds}s; non-2xx {r['non2xx']}",
            pipeline=True,
        )
    )
    result.add(Figure("single-event POST p50", r["p50_us"] / 1000, "ms"))
    result.add(
        Figure(
            "single-event POST p99",
            r["p99_us"] / 1000,
            "ms",
            "≤ 15",
            r["p99_us"] <= 15_000,
            pipeline=True,
        )
    )


async def bench_batch(url: str, _dsn: str | None, result: ModeResult, seconds: int) -> None:
    events = [dict(e) for e in generate(11, 1000, site="batch")]
    for event in events:
        event.pop("event_id")  # every request stores 1,000 new events
    body = OUT / "batch-1000.json"
    body.write_bytes(orjson.dumps(events))
    # Eight connections: the kernel spreads connections over the API processes by hash,
    # and four over two processes put three or four on one process in 11 of 16 trials.
    r = wrk(
        url, "wrk_batch.lua", threads=1, conns=8, seconds=seconds, env={"BENCH_BODY": str(body)}
    )
    events_per_s = r["requests"] * 1000 / (r["duration_us"] / 1e6)
    result.add(
        Figure(
            "batch ingest (1,000 events/request)",
            events_per_s,
            "events/s",
            "≥ 300,000",
            events_per_s >= 300_000 and r["non2xx"] == 0,
            f"wrk -t1 -c8 -d{seconds}s; p99 {r['p99_us'] / 1000:.1f} ms",
            pipeline=True,
        )
    )


async def wait_count(
    dsn: str, site: str, expected: int, limit_s: float, markers: list[str] | None = None
) -> float:
    """The time at which ``expected`` events of ``site`` were seen stored.

    Counting 100k rows takes PostgreSQL tens of milliseconds; done every 10 ms it would
    keep a core busy and slow down what it measures. With ``markers`` (the last event id
    of every request) the poll looks those few ids up by primary key, and counts only
    once they are all there; the figure is the start of a count that found them all. The
    lookups use a generic plan: planned for a site with no statistics yet, they would scan
    all of its rows."""
    con = await asyncpg.connect(dsn, server_settings={"plan_cache_mode": "force_generic_plan"})
    try:
        deadline = time.perf_counter() + limit_s
        while time.perf_counter() < deadline:
            if markers:
                found = await con.fetchval(
                    "SELECT count(*) FROM event WHERE site_id = $1 AND event_id = ANY($2)",
                    site,
                    markers,
                )
                if found < len(markers):
                    await asyncio.sleep(0.01)
                    continue
            started = time.perf_counter()
            count = await con.fetchval("SELECT count(*) FROM event WHERE site_id = $1", site)
            if count >= expected:
                return started
            await asyncio.sleep(0.01)
    finally:
        await con.close()
    raise RuntimeError(f"{site}: fewer than {expected} events after {limit_s}s")


def last_ids(bodies: list[bytes]) -> list[str]:
    return [str(orjson.loads(body)[-1]["event_id"]) for body in bodies]


DURABLE_RUNS = 3


async def pg_quiet(dsn: str, limit_s: float = 120) -> None:
    """Wait until PostgreSQL runs no autovacuum (the previous scenario's millions of rows
    leave some), so that a timed run measures the pipeline, not maintenance left over."""
    con = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            busy = await con.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
            )
            if not busy:
                return
            await asyncio.sleep(0.2)
    finally:
        await con.close()


async def bench_durable(url: str, dsn: str | None, result: ModeResult, _seconds: int) -> None:
    """Three runs, each 100k new events of a new site; the figure is their median."""
    runs: list[tuple[float, float]] = []
    for run in range(DURABLE_RUNS):
        site = f"durable-{run}"
        bodies = list(batches(21 + run, 100_000, 1000, site))
        markers = last_ids(bodies)
        await settle(url)
        if dsn:
            await pg_quiet(dsn)
        started = time.perf_counter()
        await post_all(url, bodies, concurrency=4)
        accepted = time.perf_counter()
        done = await wait_count(dsn, site, 100_000, 120, markers) if dsn else accepted
        runs.append((done - started, accepted - started))
    seconds = sorted(runs)[len(runs) // 2][0]
    each = ", ".join(
        f"{durable:.2f} s (all 202s after {accepted:.2f} s)" for durable, accepted in runs
    )
    result.add(
        Figure(
            "100k events (batches of 1,000) durable in the store",
            seconds,
            "s",
            "≤ 1.5",
            seconds <= 1.5,
            f"median of {DURABLE_RUNS} runs: {each}",
            pipeline=True,
        )
    )


async def bench_lag(url: str, dsn: str | None, result: ModeResult, seconds: int) -> None:
    """5,000 events/s as 50 requests/s of 100 events; lag = visible in the store - sent."""
    rate_batches, size = 50, 100
    sent_at: dict[str, float] = {}
    seen: list[float] = []
    stop = asyncio.Event()
    latencies: list[float] = []

    async def sender() -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            tick = time.perf_counter()
            tasks = []
            for n in range(seconds * rate_batches):
                events = [
                    {
                        "site_id": "lag",
                        "event_id": f"lag-{n}-{i}",
                        "event_type": "page_view",
                        "user_id": f"u{i}",
                        "path": f"/l/{i % 20}",
                    }
                    for i in range(size)
                ]
                now = time.perf_counter()
                for e in events:
                    sent_at[e["event_id"]] = now
                tasks.append(asyncio.create_task(post(client, orjson.dumps(events))))
                tick += 1 / rate_batches
                await asyncio.sleep(max(0, tick - time.perf_counter()))
            await asyncio.gather(*tasks)

    async def post(client: httpx.AsyncClient, body: bytes) -> None:
        started = time.perf_counter()
        response = await client.post(f"{url}/events", content=body)
        latencies.append(time.perf_counter() - started)
        if response.status_code != 202:
            raise RuntimeError(response.text)

    async def poller() -> None:
        """Batches written at once (several workers, or batches in hand) may commit out of
        seq order: every 25th poll also reads back a window below the highest seq seen,
        so that such an event is found (its lag then counts up to 0.5 s too long)."""
        assert dsn is not None
        con = await asyncpg.connect(dsn)
        last = 0
        found: set[str] = set()
        polls = 0
        try:
            while not (stop.is_set() and len(seen) >= len(sent_at)):
                polls += 1
                rows = await con.fetch(
                    "SELECT seq, event_id FROM event WHERE seq > $1 AND "
                    "site_id = 'lag' ORDER BY seq",
                    last - (20_000 if polls % 25 == 0 else 0),
                )
                now = time.perf_counter()
                for seq, event_id in rows:
                    last = max(last, seq)
                    if event_id not in found:
                        found.add(event_id)
                        seen.append(now - sent_at[event_id])
                await asyncio.sleep(0.02)
        finally:
            await con.close()

    if dsn:
        poll = asyncio.create_task(poller())
        await sender()
        stop.set()
        await asyncio.wait_for(poll, 60)
        lags = seen
        how = "event visible in PostgreSQL - sent (poll every 20 ms)"
    else:
        await sender()
        lags = latencies  # embedded: visible = committed = answered
        how = "202 = committed and visible; lag = request latency"
    p95 = percentile(lags, 95)
    result.add(
        Figure(
            "end-to-end lag p95 at 5,000 events/s",
            p95,
            "s",
            "≤ 0.5",
            p95 <= 0.5,
            f"{seconds} s, {len(lags):,} events; {how}",
            pipeline=True,
        )
    )


async def load_big_site(store: Any, count: int) -> float:
    from tapioca.ingest.normalize import RequestContext
    from tapioca.ingest.protocols.native import encode_events
    from tapioca.worker.writer import EventWriter

    ctx = RequestContext(
        datetime.now(UTC),
        "10.0.0.1",
        None,
        b"bench",
        __import__("datetime").timedelta(minutes=5),
        65536,
    )
    writer = EventWriter(store)
    started = time.perf_counter()
    chunk: list[dict[str, Any]] = []
    for event in generate(31, count, site="big"):
        chunk.append(event)
        if len(chunk) == 50_000:
            await writer.write_records([p for _, p in encode_events(chunk, ctx, indexed=True)])
            chunk = []
    if chunk:
        await writer.write_records([p for _, p in encode_events(chunk, ctx, indexed=True)])
    return time.perf_counter() - started


async def derive_all(store: Any) -> float:
    """Derive the loaded site up front: the ingest figures are for a store in steady
    state, not one working off a backlog."""
    from tapioca.derive.jobs import derive_once

    started = time.perf_counter()
    await derive_once(store)
    return time.perf_counter() - started


def bench_stats(url: str, result: ModeResult, seconds: int, events: int, kept: bool = True) -> None:
    """/stats of one day; ``kept=False``: the embedded store computing every answer (the
    figure without a target, beside the one users get)."""
    path = "/stats?site_id=big&date=2025-10-15"
    headers = credential(url)
    expected = httpx.get(url + path, headers=headers, timeout=30).json()
    r = wrk(url, "wrk_get.lua", threads=1, conns=4, seconds=seconds, env={"BENCH_PATH": path},
            headers=headers)  # fmt: skip
    p95 = r["p95_us"] / 1000
    label = f"/stats one day of a {events:,}-event site"
    if not kept:
        label += ", every answer computed (TAPIOCA_ANSWER_CACHE_SLOTS=0)"
    result.add(
        Figure(
            f"{label} p50",
            r["p50_us"] / 1000,
            "ms",
            note=f"{expected['total_views']:,} views, {expected['unique_users']:,} users that day",
        )
    )
    load = f"wrk -t1 -c4 -d{seconds}s, {r['rps']:.0f} req/s"
    if kept:
        result.add(Figure(f"{label} p95", p95, "ms", "≤ 20", p95 <= 20, load))
    else:
        result.add(Figure(f"{label} p95", p95, "ms", note=load))


SCENARIOS = (bench_single, bench_batch, bench_durable, bench_lag)


# -- modes ------------------------------------------------------------------------------
async def run_embedded(work: Path, args: argparse.Namespace) -> ModeResult:
    from tapioca.storage.duckdb_store import DuckDBStore

    result = ModeResult("embedded")
    data = work / "embedded"
    data.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = base_env({"TAPIOCA_DATA_DIR": str(data), "TAPIOCA_PORT": str(port), **args.settings})

    store = DuckDBStore(data / "tapioca.duckdb", threads=os.cpu_count() or 2)  # as an import
    await store.migrate()
    load_s = await load_big_site(store, args.big)
    derive_s = await derive_all(store)
    await store.close()
    result.add(Figure(f"load {args.big:,} events (bulk writer)", load_s, "s"))
    result.add(Figure("derive their sessions and rollups (before serving)", derive_s, "s"))

    serve = Proc("serve", ["serve"], env, data)
    try:
        wait_ready(url, serve)
        for scenario in SCENARIOS:
            await settle(url)
            await scenario(url, None, result, args.seconds)
        await wait_derived(url, 300)  # reports are measured once the derive job is idle
        bench_stats(url, result, args.seconds, args.big)
        result.add(Figure("peak RSS of serve (api + writer)", serve.peak_rss_mb(), "MB"))
    finally:
        serve.stop()
    # The same /stats with every answer computed (none kept until the next write).
    env["TAPIOCA_ANSWER_CACHE_SLOTS"] = "0"
    serve = Proc("serve-computed", ["serve"], env, data)
    try:
        wait_ready(url, serve)
        await wait_derived(url, 300)
        bench_stats(url, result, args.seconds, args.big, kept=False)
    finally:
        serve.stop()
    return result


async def start_production_stores(
    pg: PostgresServer, redis: RedisServer, big: int
) -> tuple[str, float, float]:
    """PostgreSQL (durable like production) and Redis, with the ``big``-event site loaded
    and derived; returns the DSN and the seconds the load and the derive took."""
    from tapioca.storage.postgres_store import PostgresStore

    pg.init()
    pg._append(
        pg.data_dir / "postgresql.conf",
        # durable like production; WAL sized for bulk ingest (docs/operations.md)
        ["fsync = on", "full_page_writes = on", "shared_buffers = 512MB", "max_wal_size = 8GB"],
    )
    pg.start()
    pg.create_database("bench")
    redis.start()
    dsn = pg.dsn("bench")
    store = PostgresStore(dsn)
    await store.migrate()
    load_s = await load_big_site(store, big)
    derive_s = await derive_all(store)
    await store.close()
    con = await asyncpg.connect(dsn)
    await con.execute("VACUUM ANALYZE event")
    await con.close()
    return dsn, load_s, derive_s


def pipeline_env(dsn: str, redis_url: str, port: int, settings: dict[str, str]) -> dict[str, str]:
    """The settings of the measured api and worker processes."""
    return production_env(
        dsn,
        redis_url,
        port,
        {"TAPIOCA_API_WORKERS": "2", "TAPIOCA_AUTO_CREATE_SITES": "true", **settings},
    )


async def run_production(work: Path, args: argparse.Namespace) -> ModeResult:
    result = ModeResult("production")
    pg = PostgresServer(work / "pg")
    redis = RedisServer(work / "redis")
    procs: list[Proc] = []
    try:
        dsn, load_s, derive_s = await start_production_stores(pg, redis, args.big)
        result.add(Figure(f"load {args.big:,} events (bulk writer)", load_s, "s"))
        result.add(Figure("derive their sessions and rollups (before serving)", derive_s, "s"))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        settings = {"TAPIOCA_API_WORKERS": str(args.api_workers), **args.settings}
        env = pipeline_env(dsn, redis.url, port, settings)
        procs.append(Proc("api", ["api"], env, work))
        procs.append(Proc("worker", ["worker"], env, work))
        wait_ready(url, procs[0])
        for scenario in SCENARIOS:
            await settle(url)
            await scenario(url, dsn, result, args.seconds)
        await wait_derived(url, 300)  # reports are measured once the derive job is idle
        bench_stats(url, result, args.seconds, args.big)
        result.add(Figure("peak RSS of api (largest process)", procs[0].peak_rss_mb(), "MB"))
        worker_rss = procs[1].peak_rss_mb()
        result.add(Figure("peak RSS of worker", worker_rss, "MB", "≤ 200", worker_rss <= 200))
    finally:
        for proc in reversed(procs):
            proc.stop()
        redis.cleanup()
        pg.cleanup()
    return result


async def settle(url: str) -> None:
    """Each scenario starts from a steady state: the previous one's events written and
    derived (they would otherwise compete with it for the two cores)."""
    await wait_drained(url, 600)
    await wait_derived(url, 600)


async def wait_derived(url: str, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            derive = (await client.get(f"{url}/health")).json().get("derive")
            if derive == {"lag": 0, "days_pending": False}:
                return
            await asyncio.sleep(0.2)
    raise RuntimeError("the derive job did not catch up")


async def wait_drained(url: str, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if (await client.get(f"{url}/health")).json().get("queue_lag") == 0:
                return
            await asyncio.sleep(0.2)
    raise RuntimeError("the worker did not drain the queue")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--modes", default="embedded,production")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--big", type=int, default=1_000_000, help="events of the /stats site")
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument(
        "--no-save", action="store_true", help="print the figures only (bench/results unchanged)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="TAPIOCA_NAME=VALUE",
        help="a setting for the tapioca processes (to compare settings; implies --no-save)",
    )
    args = parser.parse_args()
    args.settings = dict(item.split("=", 1) for item in args.set)
    if args.settings:
        args.no_save = True
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: run `make bench` (it installs it)")
    OUT.mkdir(exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="tapioca-bench-") as tmp:
        os.chmod(tmp, 0o755)
        for mode in args.modes.split(","):
            work = Path(tmp) / mode
            work.mkdir()
            runner = run_embedded if mode == "embedded" else run_production
            results.append(await runner(work, args))
    command = " ".join(["python -m bench.run", *sys.argv[1:]])  # one part of `make bench`
    finish("ingest", results, command, keep=not args.no_save)


if __name__ == "__main__":
    asyncio.run(main())
