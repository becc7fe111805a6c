"""Seconds from the last 202 to every report exact, on both stores.

A 90-day backfill of ``--events`` events (bench/generator.py, bodies of 1,000) is POSTed
over 4 connections as fast as the server takes it; meanwhile, and after the last 202,
four reports over the 90 days (overview, daily timeseries with visitors, path and source
breakdowns ranked by visitors) are asked for in a loop and every answer is kept with its
time. Once the queue is drained and the derive job idle (daily rollups included), the
answers are asked for once more: those are the exact ones (the test suite holds the
settled answers to the independent reference). The figure is the time from the last 202
to the first poll from which on every answer equals its exact one. Then moderate load: 20
requests of 10 events a second for 10 s, measured the same way.

    python -m bench.freshness [--events 1000000] [--modes embedded,production]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.generator import generate
from bench.procs import Proc, base_env, production_env, wait_ready
from bench.run import batches, post_all, wait_derived, wait_drained
from support.servers import PostgresServer, RedisServer, free_port

SITE = "fresh"
FIRST = date(2025, 10, 1)
DAYS = 90
RANGE = {"site_id": SITE, "start_date": FIRST.isoformat(),
         "end_date": (FIRST + timedelta(days=DAYS - 1)).isoformat()}  # fmt: skip
REPORTS = [
    ("/api/v1/stats/overview", {}),
    ("/api/v1/stats/timeseries", {"interval": "day", "metrics": "visitors,pageviews,sessions"}),
    ("/api/v1/stats/breakdown", {"dimension": "path", "metrics": "visitors,pageviews"}),
    ("/api/v1/stats/breakdown", {"dimension": "source", "metrics": "visitors,sessions"}),
]


@dataclass
class Polls:
    """Every answer of every report, with the time it came back."""

    answers: list[tuple[float, list[Any]]] = field(default_factory=list)
    stop: bool = False


async def ask_all(client: httpx.AsyncClient, url: str) -> list[Any]:
    out = []
    for path, extra in REPORTS:
        response = await client.get(f"{url}{path}", params={**RANGE, **extra}, timeout=60)
        out.append(response.json() if response.status_code == 200 else response.status_code)
    return out


async def poller(url: str, polls: Polls) -> None:
    async with httpx.AsyncClient() as client:
        while not polls.stop:
            answer = await ask_all(client, url)
            polls.answers.append((time.monotonic(), answer))
            await asyncio.sleep(0.05)


def exact_after(polls: Polls, last_202: float, exact: list[Any]) -> float:
    """Seconds from ``last_202`` to the first poll from which on every answer is exact."""
    since = None
    for at, answer in polls.answers:
        if answer != exact:
            since = None
        elif since is None:
            since = at
    if since is None:
        raise RuntimeError("no poll was exact")
    return max(since - last_202, 0.0)


async def measure(
    url: str, bodies: list[bytes], concurrency: int, rate: float = 0
) -> dict[str, float]:
    polls = Polls()
    watching = asyncio.create_task(poller(url, polls))
    started = time.monotonic()
    if rate:  # requests a second, one connection each
        for i, body in enumerate(bodies):
            await post_all(url, [body], 1)
            await asyncio.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))
    else:
        await post_all(url, bodies, concurrency)
    last_202 = time.monotonic()
    await wait_drained(url, 1200)
    await wait_derived(url, 1200)
    await asyncio.sleep(1.0)
    polls.stop = True
    await watching
    async with httpx.AsyncClient() as client:
        exact = await ask_all(client, url)
    return {
        "post_s": last_202 - started,
        "exact_after_s": exact_after(polls, last_202, exact),
        "polls": len(polls.answers),
    }


def moderate(seed: int) -> list[bytes]:
    """200 requests of 10 events: today's traffic on the site, 10 s at 20 requests/s."""
    return list(batches(seed, 2_000, 10, SITE))


async def run_mode(mode: str, work: Path, events: int) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    procs: list[Proc] = []
    pg = redis = None
    try:
        if mode == "embedded":
            data = work / "embedded"
            data.mkdir()
            env = base_env({"TAPIOCA_DATA_DIR": str(data), "TAPIOCA_PORT": str(port)})
            procs.append(Proc("serve", ["serve"], env, work))
        else:
            pg, redis = PostgresServer(work / "pg"), RedisServer(work / "redis")
            pg.init()
            pg._append(pg.data_dir / "postgresql.conf",
                       ["shared_buffers = 512MB", "max_wal_size = 8GB"])  # fmt: skip
            pg.start()
            pg.create_database("bench")
            redis.start()
            settings = {"TAPIOCA_API_WORKERS": "2", "TAPIOCA_AUTO_CREATE_SITES": "true"}
            env = production_env(pg.dsn("bench"), redis.url, port, settings)
            procs.append(Proc("api", ["api"], env, work))
            procs.append(Proc("worker", ["worker"], env, work))
        wait_ready(url, procs[0])
        bodies = list(_backfill(events))
        backfill = await measure(url, bodies, 4)
        steady = await measure(url, moderate(99), 1, rate=20)
        return {"mode": mode, "backfill": backfill, "moderate": steady}
    finally:
        for proc in reversed(procs):
            proc.stop()
        if redis is not None:
            redis.cleanup()
        if pg is not None:
            pg.cleanup()


def _backfill(events: int) -> list[bytes]:
    chunk: list[dict[str, Any]] = []
    out = []
    start = datetime.combine(FIRST, datetime.min.time(), UTC)
    for event in generate(17, events, site=SITE, start=start, days=DAYS):
        chunk.append(event)
        if len(chunk) == 1_000:
            out.append(orjson.dumps(chunk))
            chunk = []
    if chunk:
        out.append(orjson.dumps(chunk))
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--modes", default="embedded,production")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tapioca-fresh-") as tmp:
        for mode in args.modes.split(","):
            work = Path(tmp) / mode
            work.mkdir()
            result = await run_mode(mode, work, args.events)
            print(orjson.dumps(result).decode(), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
