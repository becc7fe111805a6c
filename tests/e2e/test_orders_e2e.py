"""Order analytics with real processes: `tapioca serve` runs the scheduler, which catches
up a newly connected source; `tapioca orders connect` and `tapioca batch run` work while
the server holds the store; in production two `tapioca scheduler` processes run each
scheduled run once, and /health shows their heartbeats and the jobs' last runs."""

from __future__ import annotations

import json
import random
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio

from support.mariadb import MariaDBServer
from support.order_db import create_reader_mariadb, load_mariadb, mariadb_database, sample_orders
from support.procs import Launcher, PsqlRunner, Server

pytestmark = pytest.mark.e2e

SITE = "bistro"
ZONE = "Europe/Paris"
PASSWORD = "order-db-s3cret-2f9a"  # nowhere in an answer or a log line
FAST = {"TAPIOCA_SCHEDULER_IN_SERVE": "true", "TAPIOCA_SCHEDULER_TICK_S": "0.5"}
ORDERS, ITEMS = sample_orders(800)


@pytest_asyncio.fixture
async def source_url(mariadb_server: MariaDBServer) -> AsyncIterator[str]:
    with mariadb_database(mariadb_server) as db:
        await load_mariadb(mariadb_server, db, ORDERS, ITEMS)
        user = f"r{random.randrange(10**8)}"
        yield await create_reader_mariadb(mariadb_server, db, user, PASSWORD)


def cli(launcher: Launcher, server: Server, *args: str) -> Any:
    done = launcher.run(list(args), server.env, cwd=server.workdir, timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(done.stdout) if done.stdout.startswith(("{", "[")) else done.stdout


def connect(launcher: Launcher, server: Server, url: str) -> None:
    cli(launcher, server, "sites", "create", SITE, "--timezone", ZONE)
    source = cli(launcher, server, "orders", "connect", SITE, url, "--timezone", ZONE)
    assert source["url"].startswith("mysql://r") and PASSWORD not in json.dumps(source)
    assert source["counted_statuses"] == ["SERVED"]


def runs_of(server: Server) -> list[dict[str, Any]]:
    answer = server.client.get(f"/api/v1/sites/{SITE}/runs")
    assert answer.status_code == 200, answer.text
    runs: list[dict[str, Any]] = answer.json()["runs"]
    return runs


def wait_for(server: Server, done: Any, timeout: float = 90) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        runs = runs_of(server)
        if done(runs):
            return runs
        if time.monotonic() > deadline:
            pytest.fail(f"runs: {runs}\n{server.output()}")
        time.sleep(0.3)


def march_revenue(server: Server) -> tuple[int, Decimal]:
    answer = server.client.get(
        "/api/admin/analytics/summary",
        params={"site_id": SITE, "start_date": "2026-03-01", "end_date": "2026-04-30",
                "limit": 100},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    rows = answer.json()["daily_summaries"]
    return (
        sum(r["order_count"] for r in rows),
        sum((Decimal(str(r["total_revenue"])) for r in rows), Decimal(0)),
    )


EXPECTED = (len(ORDERS), sum((o.total_amount for o in ORDERS), Decimal(0)))


def test_serve_catches_up_a_new_source_and_batch_run_goes_through_it(
    launcher: Launcher, source_url: str
) -> None:
    server = launcher.serve(FAST)
    connect(launcher, server, source_url)
    runs = wait_for(server, lambda runs: any(
        r["job"] == "orders" and r.get("orders_read") is not None for r in runs))  # fmt: skip
    caught = [r for r in runs if r["job"] == "orders" and r.get("orders_read") is not None]
    assert [(r["cause"], r["orders_read"]) for r in caught] == [("catch_up", len(ORDERS))], runs
    assert march_revenue(server) == EXPECTED

    done = cli(launcher, server, "batch", "run", "--site", SITE)
    [run] = done["runs"]
    # serve holds the store: the command asked it over HTTP, as its sync route
    assert (run["status"], run["cause"], run["forecast"]["status"]) == (
        "succeeded", "http", "succeeded",
    )  # fmt: skip
    assert march_revenue(server) == EXPECTED

    shown = server.client.get(f"/api/v1/sites/{SITE}/order-source")
    assert shown.status_code == 200 and PASSWORD not in shown.text
    assert PASSWORD not in json.dumps(runs_of(server)) + server.output()
    health = server.client.get("/health").json()
    [beat] = health["scheduler"]["schedulers"]
    assert beat["seconds_since_beat"] < 10
    assert {job["job"] for job in health["scheduler"]["jobs"]} == {"orders", "forecast"}


def test_two_schedulers_in_production_run_each_scheduled_run_once(
    launcher: Launcher, pg_dsn: str, redis_url: str, psql: PsqlRunner, source_url: str
) -> None:
    server = launcher.production(pg_dsn, redis_url)
    connect(launcher, server, source_url)
    env = {**server.env, **FAST}
    schedulers = [
        launcher.spawn(f"scheduler{n}", ["scheduler"], env, server.workdir) for n in (1, 2)
    ]
    wait_for(server, lambda runs: {r["job"] for r in runs if "covered_by" not in r and
             r["status"] == "succeeded"} >= {"orders", "forecast"})  # fmt: skip
    time.sleep(3)  # several more ticks of each: nothing more is due
    rows = psql(
        "SELECT job, count(*), count(*) FILTER (WHERE details::text LIKE '%orders_read%' "
        "OR (job = 'forecast' AND details::text LIKE '%series%')), "
        "count(DISTINCT claimed_by) FROM job_run GROUP BY job ORDER BY job"
    )
    # the catch-up claimed the missed times of the last week once each; one batch and one
    # forecast ran, the other times are covered by them
    assert [row[0] for row in rows] == ["forecast", "orders"]
    for _job, claimed, ran, _claimers in rows:
        assert int(ran) == 1, rows
        assert int(claimed) >= 1
    health = server.client.get("/health").json()
    assert len(health["scheduler"]["schedulers"]) == 2
    assert march_revenue(server) == EXPECTED
    for proc in schedulers:
        assert proc.stop() == 0, proc.output()
        assert PASSWORD not in proc.output()
    assert PASSWORD not in server.output()
