"""The web reports every tree has, on the bench shop, embedded, for two or more trees in
turns: what the overview (and a session breakdown) cost before and after a change.

    python -m bench.commerce_ab --tree before=/path/a --tree after=. [--rounds 2]

Each tree loads bench_commerce's shop (its Parquet, built once) into a DuckDB file of its
own with its own code (migrate, INSERT from Parquet, derive), then, in turns, its own
`tapioca serve` answers each report under wrk -t1 -c4 (as bench_commerce measures it)
and with one client. Each tree is a checkout with its own ``.venv`` (``make venv``).
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.bench_commerce import RANGE, SITE, ZONE, shop_for
from bench.generator import SHOP_CURRENCY
from bench.procs import Proc, base_env, credential, wait_ready
from bench.run import wrk
from support.servers import free_port

# The shop loaded and derived by a tree's own code: argv = DuckDB file, Parquet, site,
# zone, currency; prints the seconds of the derive.
_LOAD = """
import asyncio, sys, time
from pathlib import Path
from tapioca.derive.jobs import derive_once
from tapioca.model.event import COLUMNS
from tapioca.storage.duckdb_store import DuckDBStore
async def main():
    store = DuckDBStore(Path(sys.argv[1]))
    await store.migrate()
    await store.execute("INSERT INTO site (id, timezone, currency) VALUES ($1, $2, $3)",
                        sys.argv[3:6])
    columns = ", ".join(COLUMNS)
    await store.execute(f"INSERT INTO event ({columns}) SELECT {columns} "
                        "FROM read_parquet($1) ORDER BY ts", [sys.argv[2]])
    started = time.perf_counter()
    await derive_once(store)
    print(f"{time.perf_counter() - started:.2f}")
    await store.close()
asyncio.run(main())
"""

REPORTS = {
    "overview": f"/api/v1/stats/overview?site_id={SITE}&{RANGE}",
    "breakdown channel (visitors, sessions)": f"/api/v1/stats/breakdown?site_id={SITE}&{RANGE}"
    "&dimension=channel&metrics=visitors,sessions",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", action="append", required=True, help="name=path")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=1_000_000)
    args = parser.parse_args()
    trees = {k: Path(v).resolve() for k, v in (t.split("=", 1) for t in args.tree)}
    parquet, _ledger = shop_for(args.sessions)
    with tempfile.TemporaryDirectory(prefix="tapioca-commerce-ab-") as tmp:
        data: dict[str, Path] = {}
        for name, tree in trees.items():
            data[name] = Path(tmp) / name
            data[name].mkdir()
            out = subprocess.run(
                [str(tree / ".venv/bin/python"), "-c", _LOAD, str(data[name] / "tapioca.duckdb"),
                 str(parquet), SITE, ZONE, SHOP_CURRENCY],
                cwd=tree, capture_output=True, text=True, check=True, env=base_env({}),
            ).stdout.splitlines()[-1]  # fmt: skip
            print(f"{name}: derived in {out} s", flush=True)
        for n in range(args.rounds):
            order = list(trees.items())
            for name, tree in order[::-1] if n % 2 else order:
                port = free_port()
                env = base_env({"TAPIOCA_DATA_DIR": str(data[name]), "TAPIOCA_PORT": str(port)})
                serve = Proc(f"serve-{name}-{n}", ["serve"], env, data[name],
                             tree / ".venv/bin/tapioca")  # fmt: skip
                url = f"http://127.0.0.1:{port}"
                try:
                    wait_ready(url, serve)
                    headers = credential(url)
                    shown = []
                    for report, path in REPORTS.items():
                        httpx.get(url + path, headers=headers, timeout=300).raise_for_status()
                        for conns in (4, 1):
                            r = wrk(url, "wrk_get.lua", threads=1, conns=conns,
                                    seconds=args.seconds, env={"BENCH_PATH": path},
                                    headers=headers)  # fmt: skip
                            shown.append(f"{report} -c{conns} p95 {r['p95_us'] / 1000:.1f} ms "
                                         f"(p50 {r['p50_us'] / 1000:.1f})")  # fmt: skip
                finally:
                    serve.stop()
                print(f"round {n} {name}: " + "; ".join(shown), flush=True)
                time.sleep(3)


if __name__ == "__main__":
    main()
