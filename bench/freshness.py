"""Seconds from the last 202 to every report exact, on both stores.

A 90-day backfill of ``--events`` events (bench/generator.py, bodies of 1,000) is POSTed
over 4 connections as fast as the server takes it; meanwhile, and after the last 202,
four reports over the 90 days (overview, daily timeseries with visitors, path and source
breakdowns ranked by visitors) are asked for one after the other in a loop and every
answer is kept with the time it came back. Once the queue is drained and the derive job
idle (daily rollups included), the answers are asked for once more: those are the exact
ones (the test suite holds the settled answers to the independent reference). The figure
is the time from the last 202 until every report answers exactly: per report, the
return of its first answer from which on all are exact (a report's own time included);
the latest. Then moderate load: 20 requests of 10 events a second for 10 s, on the site's
last day, measured the same way. The results are printed and kept under "freshness" in
bench/results/latest.json and latest.md.

    python -m bench.freshness [--events 1000000] [--modes embedded,production] [--no-save]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.figures import Figure, ModeResult, finish
from bench.generator import generate
from bench.procs import Proc, credential, production_env, serve, wait_ready
from bench.run import post_all, wait_derived, wait_drained
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

    answers: list[tuple[float, int, Any]] = field(default_factory=list)  # (time, report, answer)
    stop: bool = False


async def ask(client: httpx.AsyncClient, url: str, report: int) -> Any:
    path, extra = REPORTS[report]
    response = await client.get(f"{url}{path}", params={**RANGE, **extra}, timeout=60)
    return response.json() if response.status_code == 200 else response.status_code


async def poller(url: str, polls: Polls) -> None:
    """The reports one after the other, again and again."""
    async with httpx.AsyncClient(headers=credential(url)) as client:
        while not polls.stop:
            for report in range(len(REPORTS)):
                answer = await ask(client, url, report)
                polls.answers.append((time.monotonic(), report, answer))
            await asyncio.sleep(0.05)


def exact_after(polls: Polls, last_202: float, exact: list[Any]) -> float:
    """Seconds from ``last_202`` until every report answers exactly: per report, the time
    its first answer came back from which on all its answers are exact; the latest."""
    since: dict[int, float | None] = dict.fromkeys(range(len(REPORTS)))
    for at, report, answer in polls.answers:
        if answer != exact[report]:
            since[report] = None
        elif since[report] is None:
            since[report] = at
    if any(at is None for at in since.values()):
        raise RuntimeError("a report was never exact")
    return max(max(at for at in since.values() if at is not None) - last_202, 0.0)


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
    async with httpx.AsyncClient(headers=credential(url)) as client:
        exact = [await ask(client, url, report) for report in range(len(REPORTS))]
    return {
        "post_s": last_202 - started,
        "exact_after_s": exact_after(polls, last_202, exact),
        "polls": len(polls.answers),
    }


def moderate(seed: int) -> list[bytes]:
    """200 requests of 10 events on the range's last day (the site's today), sent over
    10 s at 20 requests/s."""
    last = datetime.combine(FIRST + timedelta(days=DAYS - 1), datetime.min.time(), UTC)
    events = list(generate(seed, 2_000, site=SITE, start=last, days=1))
    return [orjson.dumps(events[i : i + 10]) for i in range(0, len(events), 10)]


async def run_mode(mode: str, work: Path, events: int) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    procs: list[Proc] = []
    pg = redis = None
    try:
        if mode == "embedded":
            data = work / "embedded"
            data.mkdir()
            procs.append(serve(data, port, work))
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


GOAL_S = 2.0  # every report exact this soon after the last 202, at moderate load


def figures(measured: dict[str, Any], events: int) -> ModeResult:
    """The figures of one store's run (run_mode)."""
    backfill, moderate = measured["backfill"], measured["moderate"]
    result = ModeResult(measured["mode"])
    posted = f"backfill: {events:,} events over {DAYS} days posted in"
    result.add(Figure(posted, backfill["post_s"], "s", note="1,000 a request, 4 connections"))
    polled = f"{backfill['polls']:,} answers polled"
    exact = "every report exact after the last 202"
    result.add(Figure(f"backfill: {exact}", backfill["exact_after_s"], "s", note=polled))
    after = moderate["exact_after_s"]
    load = "20 requests of 10 events a second for 10 s, on the site's last day"
    result.add(
        Figure(f"moderate load: {exact}", after, "s", f"≤ {GOAL_S:.0f}", after <= GOAL_S, load)
    )
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--modes", default="embedded,production")
    parser.add_argument(
        "--no-save", action="store_true", help="print the figures only (bench/results unchanged)"
    )
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="tapioca-fresh-") as tmp:
        for mode in args.modes.split(","):
            work = Path(tmp) / mode
            work.mkdir()
            results.append(figures(await run_mode(mode, work, args.events), args.events))
    command = " ".join(["python -m bench.freshness", *sys.argv[1:]])
    finish("freshness", results, command, keep=not args.no_save)


if __name__ == "__main__":
    asyncio.run(main())
