"""Two or more source trees, measured in turns in one run, for a figure of `bench.run`
that moved between two runs: the machine is shared and noisy, and a figure taken once per
tree, minutes apart, can differ by a third for reasons that are not the code's.

    python -m bench.ab single --tree before=/path/a --tree after=/path/b [--rounds 3]
    python -m bench.ab batch --tree ... [--rounds 3]
    python -m bench.ab lag --tree ... [--rounds 3]
    python -m bench.ab derive --tree ... [--events 300000] [--rounds 2]
    python -m bench.ab stats --tree ... [--events 1000000] [--rounds 2]
    python -m bench.ab single-embedded --tree ... [--rounds 3]

- ``single``, ``batch``: production single-event POST /event, or POST /events of 1,000
  events (wrk as in bench.run), on one PostgreSQL and Redis, each run on a stream of its
  own (no backlog of the previous one), once PostgreSQL has vacuumed and checkpointed
  the previous run's rows;
- ``lag``: embedded `serve`, the end-to-end lag scenario of bench.run (p95 latency of
  100-event requests at 5,000 events/s);
- ``derive``: the bulk load and the derive of bench.run's big site, in PostgreSQL, each
  run into a new database (the tree's own python runs its own code);
- ``stats``: embedded: the big site loaded and derived into a new DuckDB file by the
  tree's own code (the "derive before serving" figure), then `serve` with no answers kept
  (TAPIOCA_ANSWER_CACHE_SLOTS=0) and /stats of one day under wrk, as bench.run measures
  "every answer computed";
- ``single-embedded``: embedded `serve`, single-event POST /event as in bench.run.

Each tree is a checkout with its own ``.venv`` (``make venv``).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from bench.figures import ModeResult
from bench.procs import Proc, base_env, production_env, wait_ready
from bench.run import bench_batch, bench_lag, bench_single, bench_stats, pg_quiet
from support.servers import PostgresServer, RedisServer, free_port

# The big site loaded and derived by a tree's own code: argv = store (postgres DSN or a
# DuckDB file), events; prints "<load s> <derive s>".
_LOAD = """
import asyncio, sys
from pathlib import Path
from bench.run import load_big_site, derive_all
async def main():
    if sys.argv[1].startswith("postgresql://"):
        from tapioca.storage.postgres_store import PostgresStore
        store = PostgresStore(sys.argv[1])
    else:
        from tapioca.storage.duckdb_store import DuckDBStore
        store = DuckDBStore(Path(sys.argv[1]))
    await store.migrate()
    load = await load_big_site(store, int(sys.argv[2])); derive = await derive_all(store)
    await store.close(); print(f"{load:.2f} {derive:.2f}")
asyncio.run(main())
"""


def _in_tree(tree: Path, script: str, *args: str) -> list[str]:
    """``script`` run by the tree's own python on its own code; its last line's words."""
    return subprocess.run(
        [str(tree / ".venv/bin/python"), "-c", script, *args],
        cwd=tree, capture_output=True, text=True, check=True,
        env={**base_env({}), "PYTHONPATH": f"{tree}:{tree / 'tests'}"},
    ).stdout.splitlines()[-1].split()  # fmt: skip


async def vacuumed(dsn: str) -> None:
    """PostgreSQL with nothing left to do of the previous run: its rows vacuumed and
    checkpointed, no autovacuum running. (A batch run stores over a million events; left
    to autovacuum and the next checkpoint, that work fell in the next run, and every
    other run was a third slower.)"""
    con = await asyncpg.connect(dsn)
    try:
        await con.execute("VACUUM ANALYZE")
        await con.execute("CHECKPOINT")
    finally:
        await con.close()
    await pg_quiet(dsn)


def pipeline(
    trees: dict[str, Path], rounds: int, work: Path, batch: bool = False, swap: bool = False
) -> dict[str, list[float]]:
    """Each round runs every tree once (with ``swap``, in the other order every other
    round); returns each tree's first figure (req/s or events/s), run by run."""
    figures: dict[str, list[float]] = {name: [] for name in trees}
    pg, redis = PostgresServer(work / "pg"), RedisServer(work / "redis")
    pg.init()
    pg._append(pg.data_dir / "postgresql.conf",
               ["fsync = on", "shared_buffers = 512MB", "max_wal_size = 8GB"])  # fmt: skip
    pg.start()
    pg.create_database("bench")
    redis.start()
    scenario = bench_batch if batch else bench_single
    try:
        for n in range(rounds):
            order = list(trees.items())
            for name, tree in order[::-1] if swap and n % 2 else order:
                asyncio.run(vacuumed(pg.dsn("bench")))
                port = free_port()
                env = production_env(pg.dsn("bench"), redis.url, port, {
                    "TAPIOCA_API_WORKERS": "2", "TAPIOCA_AUTO_CREATE_SITES": "true",
                    "TAPIOCA_STREAM": f"ab-{n}-{name}"})  # fmt: skip
                exe = tree / ".venv/bin/tapioca"
                procs = [Proc(f"{role}-{name}-{n}", [role], env, work, exe)
                         for role in ("api", "worker")]  # fmt: skip
                url = f"http://127.0.0.1:{port}"
                result = ModeResult("production")
                try:
                    wait_ready(url, procs[0])
                    time.sleep(2)
                    asyncio.run(scenario(url, None, result, 10))
                finally:
                    for proc in procs:
                        proc.stop()
                shown = ", ".join(f"{f.value:,.2f} {f.unit}" for f in result.figures)
                print(f"round {n} {name}: {shown}", flush=True)
                figures[name].append(result.figures[0].value)
                time.sleep(3)
    finally:
        redis.cleanup()
        pg.cleanup()
    return figures


def lag(trees: dict[str, Path], rounds: int, work: Path) -> None:
    for n in range(rounds):
        for name, tree in trees.items():
            data = work / f"lag-{name}-{n}"
            data.mkdir()
            port = free_port()
            env = base_env({"TAPIOCA_DATA_DIR": str(data), "TAPIOCA_PORT": str(port)})
            serve = Proc(f"serve-{name}-{n}", ["serve"], env, work, tree / ".venv/bin/tapioca")
            url = f"http://127.0.0.1:{port}"
            try:
                wait_ready(url, serve)
                result = ModeResult("embedded")
                asyncio.run(bench_lag(url, None, result, 10))
            finally:
                serve.stop()
            print(f"round {n} {name}: lag p95 {result.figures[0].value:.3f} s", flush=True)


def derive(trees: dict[str, Path], rounds: int, work: Path, events: int) -> None:
    pg = PostgresServer(work / "pg")
    pg.init()
    pg._append(pg.data_dir / "postgresql.conf",
               ["fsync = on", "shared_buffers = 512MB", "max_wal_size = 8GB"])  # fmt: skip
    pg.start()
    try:
        for n in range(rounds):
            for name, tree in trees.items():
                database = f"ab_{n}_{re.sub(r'[^a-z0-9]', '_', name.lower())}"
                pg.create_database(database)
                out = _in_tree(tree, _LOAD, pg.dsn(database), str(events))
                print(f"round {n} {name}: load {out[0]} s, derive {out[1]} s", flush=True)
    finally:
        pg.cleanup()


def embedded(trees: dict[str, Path], rounds: int, work: Path, events: int, stats: bool) -> None:
    for n in range(rounds):
        for name, tree in trees.items():
            data = work / f"{name}-{n}"
            data.mkdir()
            env = {"TAPIOCA_DATA_DIR": str(data)}
            if stats:
                out = _in_tree(tree, _LOAD, str(data / "tapioca.duckdb"), str(events))
                print(f"round {n} {name}: load {out[0]} s, derive {out[1]} s", flush=True)
                env["TAPIOCA_ANSWER_CACHE_SLOTS"] = "0"
            port = free_port()
            env["TAPIOCA_PORT"] = str(port)
            exe = tree / ".venv/bin/tapioca"
            serve = Proc(f"serve-{name}-{n}", ["serve"], base_env(env), work, exe)
            url = f"http://127.0.0.1:{port}"
            result = ModeResult("embedded")
            try:
                wait_ready(url, serve)
                time.sleep(2)
                if stats:
                    bench_stats(url, result, 10, events, kept=False)
                else:
                    asyncio.run(bench_single(url, None, result, 10))
            finally:
                serve.stop()
            shown = ", ".join(f"{f.name.rsplit(' ', 1)[-1]} {f.value:,.2f} {f.unit}"
                              for f in result.figures)  # fmt: skip
            print(f"round {n} {name}: {shown}", flush=True)
            time.sleep(3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    scenarios = ["single", "batch", "lag", "derive", "stats", "single-embedded"]
    parser.add_argument("scenario", choices=scenarios)
    parser.add_argument("--tree", action="append", required=True, help="name=path")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, help="derive: 300,000; stats: 1,000,000")
    args = parser.parse_args()
    trees = {k: Path(v).resolve() for k, v in (t.split("=", 1) for t in args.tree)}
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tapioca-ab-") as tmp:
        work = Path(tmp)
        if args.scenario in ("single", "batch"):
            pipeline(trees, args.rounds, work, batch=args.scenario == "batch")
        elif args.scenario == "lag":
            lag(trees, args.rounds, work)
        elif args.scenario in ("stats", "single-embedded"):
            stats = args.scenario == "stats"
            embedded(trees, args.rounds, work, args.events or 1_000_000, stats)
        else:
            derive(trees, args.rounds, work, args.events or 300_000)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
