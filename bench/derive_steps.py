"""The derive run of bench/e2e_ab.py's burst, on a quiet server: its time, and its
statements' times.

One production run of bench/e2e_ab.py (its events, client, poller and servers); once the
derive job is idle, its database is dumped (``pg_dump -Fc``) and restored into a
throw-away PostgreSQL of the same settings. Then, ``--rounds`` times: the derived tables
emptied (TRUNCATE, VACUUM ANALYZE: a fresh store once the burst is written) and the run
over every event timed as the worker makes it (``derive_once``, days apart); and each
statement of that run's steps timed, one after the other in one transaction that is
rolled back (the steps made beside the run included, runner.run_derive). The medians are
printed: the run's, and the statements' of ``--min-ms`` or more. Without the poller, the
API and the writes beside it, the run takes less than in bench/e2e_ab.py; trees compared
with it are compared on the same dump (``--dump FILE`` keeps it; given an existing FILE,
the e2e run is skipped).

    python -m bench.derive_steps [--dump FILE] [--rounds 3] [--min-ms 40]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.e2e_ab import bodies, run_tapioca, start_pg
from support.servers import PostgresServer, RedisServer
from tapioca.derive.jobs import DERIVED_TABLES, derive_once, web_steps
from tapioca.derive.product import product_steps
from tapioca.derive.runner import Transform, run_steps
from tapioca.storage.base import Lock
from tapioca.storage.postgres_store import PostgresStore


class _Dump:
    """A watch of bench/e2e_ab.py's production run: dumps its database once derived."""

    pg_settings = ()

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pg: PostgresServer | None = None

    async def begin(self, procs: list[Any], pg: PostgresServer, redis: RedisServer) -> None:
        self.pg = pg

    async def end(self, started: float, polls: Any) -> None:
        assert self.pg is not None
        self.pg.run_tool("pg_dump", "-Fc", "-f", str(self.path), self.pg.dsn("bench"))


class _Undo(Exception):
    """Rolls a timed run back."""


def _label(step: Any) -> str:
    sql = step.rows_sql if isinstance(step, Transform) else step[0]
    return " ".join(sql.split())[:100]


async def _timed_run(store: PostgresStore) -> list[tuple[str, float]]:
    """One derive run over every event, timed per statement, rolled back."""
    times: list[tuple[str, float]] = []
    async with store.locked(Lock.DERIVE) as session:
        (upto,), *_ = await session.fetch("SELECT max(seq) FROM event")
        try:
            async with session.transaction():
                for statement in session.dialect.background:
                    await session.execute(statement)
                began = time.perf_counter()
                steps = web_steps(False, 0)(0, int(upto))
                if not any(_label(step).startswith("INSERT INTO user_first") for step in steps):
                    steps += product_steps(0, int(upto))  # made beside the run's steps
                for step in steps:
                    at = time.perf_counter()
                    await run_steps(session, [step])
                    times.append((_label(step), time.perf_counter() - at))
                times.append(("every statement, one after the other", time.perf_counter() - began))
                raise _Undo
        except _Undo:
            pass
    return times


async def _emptied(store: PostgresStore) -> None:
    """The derived tables emptied and the job's position forgotten, as in a fresh store."""
    tables = ", ".join([*(t for ts in DERIVED_TABLES.values() for t in ts), "derive_state"])
    async with store.locked(Lock.DERIVE) as session:
        await session.execute(f"TRUNCATE {tables}")
        await session.execute("VACUUM ANALYZE")


async def _measure(
    dump: Path, dumped: bool, work: Path, rounds: int
) -> list[list[tuple[str, float]]]:
    if not dumped:
        run = argparse.Namespace(events=100_000, batch=1_000, concurrency=4, days=90,
                                 api_workers=2, poll_pause=0.05)  # fmt: skip
        requests = bodies(run.events, run.batch, run.days)
        await run_tapioca("production", work / "run", requests, run, _Dump(dump))
    pg = start_pg(work / "quiet")
    try:
        dsn = pg.dsn("bench")
        pg.run_tool("pg_restore", "-d", dsn, str(dump))
        store = PostgresStore(dsn)
        await store.migrate()  # a dump of an older tree: this tree's tables
        runs = []
        for _ in range(rounds):
            await _emptied(store)
            began = time.perf_counter()
            await derive_once(store, days=False)
            whole = [("the run (derive_once, days apart)", time.perf_counter() - began)]
            await _emptied(store)
            runs.append(whole + await _timed_run(store))
        await store.close()
    finally:
        pg.cleanup()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dump", type=Path, help="keep the dump here (reused if it exists)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--min-ms", type=float, default=40.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tapioca-derive-steps-") as tmp:
        work = Path(tmp)
        work.chmod(0o777)  # PostgreSQL's user writes the dump here
        for part in ("run", "quiet"):
            (work / part).mkdir()
        dump = args.dump or work / "e2e.dump"
        runs = asyncio.run(_measure(dump, dump.exists(), work, args.rounds))
    print(f"median of {args.rounds} runs, statements of {args.min_ms:.0f} ms or more:")
    for n, (label, _) in enumerate(runs[0]):
        ms = statistics.median(run[n][1] for run in runs) * 1000
        if ms >= args.min_ms or n in (0, len(runs[0]) - 1):
            print(f"{ms:8.0f} ms  {label}")


if __name__ == "__main__":
    main()
