"""End to end beside seed 003: the same 100k events sent to seed 003's ingest
(bench/seed003.py) and to Tapioca, in turns, fresh servers every run.

The client is the same for every system: ``--events`` generated events (bench/generator.py:
page views, carts and purchases of identified users over ``--days`` days) in bodies of
``--batch``, POSTed over ``--concurrency`` keep-alive connections as fast as the server
answers. Each system runs on its own fresh throw-away servers (PostgreSQL durable like
production: fsync and full page writes on, 512 MB of shared buffers; Redis with AOF), and
the systems take turns, ``--rounds`` runs each, the order turned by one every round.

- baseline (seed 003): ``python -m bench.seed003``, uvicorn with ``--api-workers``
  processes; its answer means stored. Timed: first POST sent → last 200; then
  ``count(*)`` of its ``events`` table must be ``--events``.
- production: ``tapioca api`` (``--api-workers`` processes) + one ``tapioca worker`` on
  PostgreSQL and Redis. Timed: first POST → last 202 (accepted), and first POST → every
  report exact.
- embedded: ``tapioca serve`` (DuckDB). Timed as production.

"Every report exact": five reports over those days (``/stats``, overview, path
breakdown, commerce summary, daily product active users) are asked for one after the
other in a loop from the first POST on, and each answer is kept with the time it came
back. Once the queue is drained and the derive job idle, each is asked once more: that
is its exact answer. A report is exact from the return of its first answer from which on
all its answers are exact (freshness.py); the figure is the latest of the five. The
reports' own time counts, and so does the poller's load on the two cores: ``--poll-pause``
(0.05 s between rounds of the five) trades the one for the other.

The results are printed side by side and kept under "e2e_ab" in bench/results/latest.json
and latest.md.

    python -m bench.e2e_ab [--rounds 3] [--events 100000] [--batch 1000]
        [--concurrency 4] [--days 90] [--api-workers 2]
        [--systems baseline,production,embedded]
        [--poll-pause 0.05] [--no-save]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import httpx
import orjson

from bench.figures import Figure, ModeResult, finish
from bench.generator import generate
from bench.lean_http import LeanConnection
from bench.procs import ROOT, Proc, base_env, credential, production_env, serve, wait_ready
from bench.run import wait_derived, wait_drained
from support.servers import PostgresServer, RedisServer, free_port

PYTHON = ROOT / ".venv" / "bin" / "python"
SITE = "e2e"
FIRST = date(2025, 10, 1)
REPORTS = [
    ("/stats", "/stats", {}),
    ("overview", "/api/v1/stats/overview", {}),
    ("path breakdown", "/api/v1/stats/breakdown",
     {"dimension": "path", "metrics": "visitors,pageviews"}),
    ("commerce summary", "/api/v1/commerce/summary", {}),
    ("product active users", "/api/v1/product/active-users", {"interval": "day"}),
]  # fmt: skip
SYSTEMS = ("baseline", "production", "embedded")
LABELS = {
    "baseline": "baseline (seed 003)",
    "production": "Tapioca production",
    "embedded": "Tapioca embedded",
}
# durable like production, as bench.run's production (docs/operations.md)
PG_SETTINGS = ["fsync = on", "full_page_writes = on", "shared_buffers = 512MB",
               "max_wal_size = 8GB"]  # fmt: skip


def bodies(events: int, batch: int, days: int) -> list[bytes]:
    """The requests' bodies: the site's events over ``days`` days, ``batch`` a body."""
    start = datetime.combine(FIRST, datetime.min.time(), UTC)
    chunk: list[dict[str, Any]] = []
    out = []
    for event in generate(17, events, site=SITE, start=start, days=days):
        chunk.append(event)
        if len(chunk) == batch:
            out.append(orjson.dumps(chunk))
            chunk = []
    if chunk:
        out.append(orjson.dumps(chunk))
    return out


async def post_all(
    url: str, path: str, requests: list[bytes], concurrency: int, status: int
) -> tuple[float, float]:
    """POST every body to ``path`` over ``concurrency`` connections; fails on an answer
    other than ``status``. Returns when the first was sent and the last answered."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in requests:
        queue.put_nowait(body)
    connections = [await LeanConnection(url).__aenter__() for _ in range(concurrency)]

    async def sender(connection: LeanConnection) -> None:
        while not queue.empty():
            got, answer = await connection.post(path, queue.get_nowait(), "application/json")
            if got != status:
                raise RuntimeError(f"{got}: {answer[:300]!r}")

    try:
        started = time.monotonic()
        await asyncio.gather(*(sender(connection) for connection in connections))
        return started, time.monotonic()
    finally:
        for connection in connections:
            await connection.__aexit__()


# -- the reports, polled ------------------------------------------------------------------
@dataclass
class Polls:
    """Every answer of every report, with the time it came back."""

    answers: list[tuple[float, int, Any]] = field(default_factory=list)  # (time, report, answer)
    stop: bool = False


async def ask(client: httpx.AsyncClient, url: str, report: int, days: int) -> Any:
    """One report over the site's ``days`` days: its answer, or its status if not 200."""
    _, path, extra = REPORTS[report]
    last = FIRST + timedelta(days=days - 1)
    scope = {"site_id": SITE, "start_date": FIRST.isoformat(), "end_date": last.isoformat()}
    response = await client.get(f"{url}{path}", params={**scope, **extra}, timeout=60)
    return response.json() if response.status_code == 200 else response.status_code


async def poller(url: str, polls: Polls, pause: float, days: int) -> None:
    """The reports one after the other, again and again, ``pause`` seconds between rounds."""
    async with httpx.AsyncClient(headers=credential(url)) as client:
        while not polls.stop:
            for report in range(len(REPORTS)):
                answer = await ask(client, url, report, days)
                polls.answers.append((time.monotonic(), report, answer))  # when it came back
            await asyncio.sleep(pause)


def exact_since(polls: Polls, exact: list[Any]) -> list[float]:
    """Per report, the return of its first answer from which on all are exact."""
    since: list[float | None] = [None] * len(REPORTS)
    for at, report, answer in polls.answers:
        if answer != exact[report]:
            since[report] = None
        elif since[report] is None:
            since[report] = at
    missing = [REPORTS[n][0] for n, at in enumerate(since) if at is None]
    if missing:
        raise RuntimeError(f"never exact: {', '.join(missing)}")
    return [at for at in since if at is not None]


# -- one run of each system ------------------------------------------------------------
def start_pg(work: Path, extra: Sequence[str] = ()) -> PostgresServer:
    pg = PostgresServer(work / "pg")
    try:
        pg.init()
        pg._append(pg.data_dir / "postgresql.conf", [*PG_SETTINGS, *extra])
        pg.start()
        pg.create_database("bench")
    except BaseException:
        pg.cleanup()
        raise
    return pg


async def count_rows(dsn: str, sql: str, *args: Any) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return int(await connection.fetchval(sql, *args))
    finally:
        await connection.close()


async def run_baseline(work: Path, requests: list[bytes], args: argparse.Namespace) -> Run:
    pg = start_pg(work)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**base_env({}), "PYTHONPATH": str(ROOT)}
    command = ["-m", "bench.seed003", "--dsn", pg.dsn("bench"), "--port", str(port),
               "--workers", str(args.api_workers)]  # fmt: skip
    proc = Proc("seed003", command, env, work, exe=PYTHON)
    try:
        wait_ready(url, proc, sign_in=False)  # seed 003 has no accounts here
        started, last = await post_all(url, "/api/events", requests, args.concurrency, 200)
        stored = await count_rows(pg.dsn("bench"), "SELECT count(*) FROM events")
        if stored != args.events:
            raise RuntimeError(f"baseline: {stored:,} rows stored, not {args.events:,}")
        return Run(accepted_s=last - started, exact_s=last - started)
    finally:
        proc.stop()
        pg.cleanup()


class Watch(Protocol):
    """Looks on at a production run (bench/e2e_profile.py): ``pg_settings`` go into the
    server's configuration; ``begin`` is called once the processes are ready, before the
    first POST; ``end`` once the derive job is idle, before anything is stopped, with the
    time the first POST was sent and the reports' answers so far."""

    @property
    def pg_settings(self) -> Sequence[str]: ...

    async def begin(self, procs: list[Proc], pg: PostgresServer, redis: RedisServer) -> None: ...

    async def end(self, started: float, polls: Polls) -> None: ...


async def run_tapioca(
    mode: str, work: Path, requests: list[bytes], args: argparse.Namespace,
    watch: Watch | None = None,
) -> Run:  # fmt: skip
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
            pg = start_pg(work, watch.pg_settings if watch else ())
            redis = RedisServer(work / "redis")
            redis.start()
            settings = {"TAPIOCA_API_WORKERS": str(args.api_workers),
                        "TAPIOCA_AUTO_CREATE_SITES": "true"}  # fmt: skip
            env = production_env(pg.dsn("bench"), redis.url, port, settings)
            procs.append(Proc("api", ["api"], env, work))
            procs.append(Proc("worker", ["worker"], env, work))
        wait_ready(url, procs[0])
        if watch is not None:
            assert pg is not None and redis is not None, "a watch looks on at production"
            await watch.begin(procs, pg, redis)
        polls = Polls()
        watching = asyncio.create_task(poller(url, polls, args.poll_pause, args.days))
        started, last = await post_all(url, "/events", requests, args.concurrency, 202)
        await wait_drained(url, 1200)
        drained = time.monotonic()
        await wait_derived(url, 1200)
        derived = time.monotonic()
        if watch is not None:
            await watch.end(started, polls)
        await asyncio.sleep(1.0)
        polls.stop = True
        await watching
        async with httpx.AsyncClient(headers=credential(url)) as client:
            exact = [await ask(client, url, report, args.days) for report in range(len(REPORTS))]
        since = exact_since(polls, exact)
        if pg is not None:
            sql = "SELECT count(*) FROM event WHERE site_id = $1"
            stored = await count_rows(pg.dsn("bench"), sql, SITE)
            if stored != args.events:
                raise RuntimeError(f"{mode}: {stored:,} events stored, not {args.events:,}")
        return Run(
            accepted_s=last - started,
            exact_s=max(since) - started,
            reports_s=[at - started for at in since],
            drained_s=drained - started,
            derived_s=derived - started,
            polls=len(polls.answers),
        )
    finally:
        for proc in reversed(procs):
            proc.stop()
        if redis is not None:
            redis.cleanup()
        if pg is not None:
            pg.cleanup()


@dataclass
class Run:
    accepted_s: float  # first POST sent → last answer (202, or the baseline's 200)
    exact_s: float  # → every report exact (the baseline: → the last 200, all stored)
    reports_s: list[float] = field(default_factory=list)  # per report, → exact
    drained_s: float = 0.0  # → /health saw the queue drained (polled every 0.2 s)
    derived_s: float = 0.0  # → /health saw the derive job idle
    polls: int = 0

    def last_report(self) -> str:
        return REPORTS[self.reports_s.index(max(self.reports_s))][0] if self.reports_s else ""


# -- figures ------------------------------------------------------------------------------
def median(runs: list[Run], of: Callable[[Run], float]) -> float:
    return statistics.median(of(run) for run in runs)


def each(runs: list[Run], of: Callable[[Run], float]) -> str:
    return ", ".join(f"{of(run):.2f}" for run in runs)


def timed(result: ModeResult, name: str, runs: list[Run], of: Callable[[Run], float],
          note: str = "", limit: float | None = None) -> float:  # fmt: skip
    """Add the median of ``of`` over ``runs``, each run in the note, with its target
    (at most ``limit`` seconds) when given; returns the median."""
    value = median(runs, of)
    shown = f"median of {len(runs)}: {each(runs, of)} s"
    target, ok = ("", None) if limit is None else (f"≤ {limit}", value <= limit)
    result.add(Figure(name, value, "s", target, ok, f"{shown}; {note}" if note else shown))
    return value


# The targets of the end-to-end time: first POST → every report exact, in seconds; and in
# production, at least so many times faster than the baseline stores its rows.
EXACT_WITHIN = {"production": 0.8, "embedded": 0.5}
BASELINE_RATIO = 3.0


def results(runs: dict[str, list[Run]], args: argparse.Namespace) -> list[ModeResult]:
    """One ModeResult per system: medians, each run in the note, and the baseline's
    time over this system's."""
    sent = f"{args.events:,} events, {args.batch:,} a request, {args.concurrency} connections"
    baseline = median(runs["baseline"], finished) if "baseline" in runs else None
    out = []
    for system, done in runs.items():
        result = ModeResult(LABELS[system])
        out.append(result)
        if system == "baseline":
            name = f"{sent}: first POST → last 200 (all stored)"
            timed(result, name, done, finished, f"count(*) = {args.events:,} after each")
            continue
        accepted = timed(result, f"{sent}: first POST → last 202 (accepted)", done, accepting)
        lasts = ", ".join(run.last_report() for run in done)
        exact = timed(result, "first POST → every report exact", done, finished,
                      f"exact last: {lasts}", EXACT_WITHIN.get(system))  # fmt: skip
        for k, (report, _, _) in enumerate(REPORTS):
            timed(result, f"first POST → {report} exact", done, report_exact(k))
        timed(result, "first POST → queue drained (/health, every 0.2 s)", done, draining)
        timed(result, "first POST → derive idle (/health)", done, deriving)
        if baseline is not None:
            ratio = baseline / exact
            target, ok = ((f"≥ {BASELINE_RATIO:g}", ratio >= BASELINE_RATIO)
                          if system == "production" else ("", None))  # fmt: skip
            result.add(Figure("baseline stored / every report exact", ratio, "x", target, ok,
                              "above 1: every report exact before the baseline has stored "
                              "its rows"))  # fmt: skip
            result.add(Figure("baseline stored / last 202", baseline / accepted, "x"))
    return out


def finished(run: Run) -> float:
    return run.exact_s


def accepting(run: Run) -> float:
    return run.accepted_s


def draining(run: Run) -> float:
    return run.drained_s


def deriving(run: Run) -> float:
    return run.derived_s


def report_exact(k: int) -> Callable[[Run], float]:
    return lambda run: run.reports_s[k]


def side_by_side(runs: dict[str, list[Run]]) -> str:
    """Each run and the median, per system and measure; the baseline's median over each
    median."""
    baseline = median(runs["baseline"], finished) if "baseline" in runs else None
    rows: list[tuple[str, list[float]]] = []
    for system, done in runs.items():
        if system == "baseline":
            rows.append((f"{LABELS[system]}: first POST → all stored", [r.exact_s for r in done]))
        else:
            label = LABELS[system]
            rows.append((f"{label}: first POST → last 202", [r.accepted_s for r in done]))
            rows.append((f"{label}: first POST → every report exact", [r.exact_s for r in done]))
    count = max(len(values) for _, values in rows)
    head = ["measure", *(f"run {n + 1}" for n in range(count)), "median", "baseline / this"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, values in rows:
        mid = statistics.median(values)
        ratio = f"{baseline / mid:.2f}x" if baseline else ""
        cells = [f"{v:.2f} s" for v in values] + [""] * (count - len(values))
        lines.append("| " + " | ".join([label, *cells, f"{mid:.2f} s", ratio]) + " |")
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--api-workers", type=int, default=2,
                        help="HTTP processes of Tapioca's API and of the baseline")  # fmt: skip
    parser.add_argument("--days", type=int, default=90, help="the span of the events")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--poll-pause", type=float, default=0.05,
                        help="seconds between two rounds of the five reports")  # fmt: skip
    parser.add_argument(
        "--no-save", action="store_true", help="print the figures only (bench/results unchanged)"
    )
    args = parser.parse_args()
    systems = args.systems.split(",")
    if unknown := set(systems) - set(SYSTEMS):
        parser.error(f"unknown systems: {', '.join(sorted(unknown))}")
    requests = bodies(args.events, args.batch, args.days)
    runs: dict[str, list[Run]] = {system: [] for system in systems}
    with tempfile.TemporaryDirectory(prefix="tapioca-e2e-") as tmp:
        for n in range(args.rounds):
            turn = systems[n % len(systems) :] + systems[: n % len(systems)]
            for system in turn:
                work = Path(tmp) / f"{system}-{n}"
                work.mkdir()
                if system == "baseline":
                    run = await run_baseline(work, requests, args)
                else:
                    run = await run_tapioca(system, work, requests, args)
                runs[system].append(run)
                shown = f"accepted {run.accepted_s:.2f} s, exact {run.exact_s:.2f} s"
                if run.reports_s:
                    per = ", ".join(f"{REPORTS[k][0]} {at:.2f}" for k, at in
                                    enumerate(run.reports_s))  # fmt: skip
                    shown += (f" ({per}; drained {run.drained_s:.2f}, derive idle "
                              f"{run.derived_s:.2f}; {run.polls} answers polled)")  # fmt: skip
                print(f"round {n + 1} {system}: {shown}", flush=True)
                await asyncio.sleep(2)
    print(side_by_side(runs), flush=True)
    command = " ".join(["python -m bench.e2e_ab", *sys.argv[1:]])
    finish("e2e_ab", results(runs, args), command, keep=not args.no_save)


if __name__ == "__main__":
    asyncio.run(main())
