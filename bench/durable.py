"""The 100k-durable scenario of bench.run, repeated, with the CPU each process used.

Compares source trees in one run (the machine is shared: only ratios measured together
mean something). Each tree is given as a `src` directory; the `tapioca` processes run it
through PYTHONPATH. For example, the previous commit against the working tree:

    git worktree add /tmp/before HEAD~1
    python -m bench.durable --tree before=/tmp/before/src --tree after=src --runs 3

PostgreSQL (fsync on) and Redis (AOF) are started once, with a 1M-event site loaded and
derived as in bench.run; each run posts 100k new events of a new site, in batches of
1,000 over 4 connections, and waits until all are in the event table. The CPU seconds
are those of the api processes, the worker, every PostgreSQL process, Redis and this
load generator, from the start of the run until the last event is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench.procs import Proc, wait_ready
from bench.run import (
    batches,
    last_ids,
    pipeline_env,
    post_all,
    start_production_stores,
    wait_count,
    wait_derived,
    wait_drained,
)
from support.processes import child_pids, cpu_seconds
from support.servers import PostgresServer, RedisServer, free_port


def cpu_of(pids: list[int]) -> dict[int, float]:
    """CPU seconds of each of ``pids`` still running."""
    out = {}
    for pid in pids:
        try:
            out[pid] = cpu_seconds(pid)
        except OSError:
            continue
    return out


def postgres_pids(pg: PostgresServer) -> list[int]:
    postmaster = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
    return [postmaster, *child_pids(postmaster)]


async def run_tree(
    name: str,
    src: Path,
    runs: int,
    dsn: str,
    pg: PostgresServer,
    redis: RedisServer,
    work: Path,
    round_no: int,
    workers: int = 1,
    settings: dict[str, str] | None = None,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = pipeline_env(dsn, redis.url, port, {"PYTHONPATH": str(src), **(settings or {})})
    api = Proc(f"api-{name}-{round_no}", ["api"], env, work)
    pool = [
        Proc(f"worker-{name}-{round_no}-{i}", ["worker", "--name", f"w{i}"], env, work)
        for i in range(workers)
    ]
    try:
        wait_ready(url, api)
        for run in range(runs):
            await wait_drained(url, 600)
            await wait_derived(url, 600)
            site = f"durable-{name}-{round_no}-{run}"
            bodies = list(batches(21 + run, 100_000, 1000, site))
            groups = {
                "api": api.tree(),
                "worker": [worker.pid for worker in pool],
                "postgres": postgres_pids(pg),
                "redis": [redis.pid],
                "load": [os.getpid()],
            }
            before = {group: cpu_of(pids) for group, pids in groups.items()}
            started = time.perf_counter()
            await post_all(url, bodies, concurrency=4)
            accepted = time.perf_counter()
            done = await wait_count(dsn, site, 100_000, 120, last_ids(bodies))
            groups["postgres"] = postgres_pids(pg)  # with the backends opened meanwhile
            used = {
                group: sum(
                    seconds - before[group].get(pid, 0.0) for pid, seconds in cpu_of(pids).items()
                )
                for group, pids in groups.items()
            }
            cpu = ", ".join(f"{group} {seconds:.2f}" for group, seconds in used.items())
            print(
                f"{name} run {run}: durable {done - started:.2f} s (all 202s after "
                f"{accepted - started:.2f} s); CPU s: {cpu}; total {sum(used.values()):.2f}",
                flush=True,
            )
    finally:
        for worker in pool:
            worker.stop()
        api.stop()


def keep_logs(work: Path, keep: Path) -> None:
    keep.mkdir(parents=True, exist_ok=True)
    for log in work.glob("*.log"):
        shutil.copy(log, keep / log.name)


def trees_of(specs: list[str]) -> list[tuple[str, Path, dict[str, str]]]:
    """``name=path`` or ``name=path@TAPIOCA_X=V@...`` (settings of that tree only)."""
    trees = []
    for spec in specs:
        name, _, rest = spec.partition("=")
        path, *settings = rest.split("@")
        trees.append((name, Path(path).resolve(), dict(s.split("=", 1) for s in settings)))
    return trees


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", action="append", required=True, help="name=path/to/src")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument(
        "--set", action="append", default=[], metavar="TAPIOCA_X=V", help="a setting of every tree"
    )
    parser.add_argument("--keep", type=Path, help="copy the processes' logs here")
    parser.add_argument("--rounds", type=int, default=1, help="times through all trees")
    args = parser.parse_args()
    trees = trees_of(args.tree)
    settings = dict(item.split("=", 1) for item in args.set)
    with tempfile.TemporaryDirectory(prefix="tapioca-durable-") as tmp:
        os.chmod(tmp, 0o755)
        work = Path(tmp)
        pg, redis = PostgresServer(work / "pg"), RedisServer(work / "redis")
        try:
            dsn, _, _ = await start_production_stores(pg, redis, args.big)
            for round_no in range(args.rounds):
                for name, src, own in trees:
                    await run_tree(
                        name,
                        src,
                        args.runs,
                        dsn,
                        pg,
                        redis,
                        work,
                        round_no,
                        args.workers,
                        {**settings, **own},
                    )
        finally:
            if args.keep:
                keep_logs(work, args.keep)
            redis.cleanup()
            pg.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
