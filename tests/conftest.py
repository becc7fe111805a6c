"""Shared fixtures: throw-away PostgreSQL and Redis servers (see tests/support/servers.py);
and the rule that each suite folder's tests carry that suite's marker, and only that one."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from support.mariadb import MariaDBServer
from support.order_db import (
    Order,
    OrderItem,
    load_mariadb,
    load_postgres,
    mariadb_database,
    postgres_database,
    retail_orders,
    running_mariadb,
)
from support.procs import Launcher, PsqlRunner
from support.servers import PostgresServer, RedisServer

TESTS = Path(__file__).parent
SUITE_MARKERS = ("integration", "e2e", "faults", "fuzz")  # tests/unit has none
# apps built in tests run no scheduler unless a test asks (support/procs.py says why)
os.environ.setdefault("TAPIOCA_SCHEDULER_IN_SERVE", "false")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``pytest -m <suite>`` selects exactly the folder tests/<suite>: a test missing its
    folder's marker, or carrying another suite's, stops the run."""
    wrong = []
    for item in items:
        suite = item.path.relative_to(TESTS).parts[0] if item.path.is_relative_to(TESTS) else ""
        marks = {mark.name for mark in item.iter_markers() if mark.name in SUITE_MARKERS}
        if marks != ({suite} & set(SUITE_MARKERS)):
            wrong.append(f"{item.nodeid}: marked {sorted(marks) or 'with no suite'}")
    if wrong:
        raise pytest.UsageError("tests marked for another suite:\n" + "\n".join(wrong))


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path_factory.mktemp("postgres"))
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def pg_dsn(pg_server: PostgresServer) -> Iterator[str]:
    """DSN of a fresh, uniquely named database, dropped (WITH (FORCE)) after the test."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    pg_server.create_database(name)
    try:
        yield pg_server.dsn(name)
    finally:
        pg_server.drop_database(name, force=True)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of the session Redis server, emptied (FLUSHALL) before the test."""
    redis_server.flushall()
    return redis_server.url


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    """`tapioca` processes of one test (support/procs.py); each one still running at the
    end gets SIGTERM by PID, and a worker must exit with status 0."""
    launcher = Launcher(tmp_path / "procs")
    try:
        yield launcher
    finally:
        problems = launcher.close()
    assert not problems, "\n".join(problems)


@pytest.fixture
def psql(pg_server: PostgresServer, pg_dsn: str) -> PsqlRunner:
    """Reads the test's database on the session PostgreSQL directly."""
    return PsqlRunner(pg_server, pg_dsn.rsplit("/", 1)[1])


@pytest.fixture(scope="session")
def mariadb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    """A throw-away MariaDB server for the session (order databases of shops)."""
    with running_mariadb(tmp_path_factory.mktemp("mariadb")) as server:
        yield server


@pytest.fixture(scope="session")
def retail_data() -> tuple[list[Order], list[OrderItem]]:
    """The UCI Online Retail data as seed 004's orders and items (support/order_db.py)."""
    return retail_orders()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def retail_mariadb(
    mariadb_server: MariaDBServer, retail_data: tuple[list[Order], list[OrderItem]]
) -> AsyncIterator[str]:
    """The database name of the retail data on the session MariaDB, loaded once."""
    with mariadb_database(mariadb_server) as db:
        await load_mariadb(mariadb_server, db, *retail_data)
        yield db


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def retail_pg(
    pg_server: PostgresServer, retail_data: tuple[list[Order], list[OrderItem]]
) -> AsyncIterator[str]:
    """Superuser DSN of the retail data on the session PostgreSQL, loaded once."""
    with postgres_database(pg_server) as dsn:
        await load_postgres(dsn, *retail_data)
        yield dsn
