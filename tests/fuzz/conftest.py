"""Fixtures of the fuzz suite: real `tapioca` processes, each started once.

``served`` is `tapioca serve` (embedded, DuckDB) with the default limits (10 MiB per
request, 10,000 events, 64 KiB per event), one per test module. ``production_api`` is
`tapioca api` plus one `tapioca worker` on a database and a Redis server of their own,
started once for the whole directory (the costliest start; every test uses sites of its
own, so sharing it is safe). Each launcher stops its processes (SIGTERM by PID) before
the servers they depend on go away.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from support.procs import BROWSER_UA, Launcher, Server
from support.servers import PostgresServer, RedisServer


def _close(launcher: Launcher) -> None:
    problems = launcher.close()
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`tapioca serve` with default settings, for the whole module."""
    launcher = Launcher(tmp_path_factory.mktemp("fuzz-serve"))
    try:
        yield launcher.serve()
    finally:
        _close(launcher)


@pytest.fixture(scope="package")
def fuzz_pg_dsn(pg_server: PostgresServer) -> Iterator[str]:
    name = f"fuzz_{uuid.uuid4().hex[:16]}"
    pg_server.create_database(name)
    try:
        yield pg_server.dsn(name)
    finally:
        pg_server.drop_database(name, force=True)


@pytest.fixture(scope="package")
def fuzz_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = RedisServer(tmp_path_factory.mktemp("fuzz-redis"))
    try:
        server.start()
        yield server.url
    finally:
        server.cleanup()


@pytest.fixture(scope="package")
def production_api(
    fuzz_pg_dsn: str, fuzz_redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """`tapioca api` + one `tapioca worker` (PostgreSQL + Redis), for the whole directory.

    Depends on the database and Redis fixtures, so its processes stop before they do.
    """
    launcher = Launcher(tmp_path_factory.mktemp("fuzz-production"))
    try:
        yield launcher.production(fuzz_pg_dsn, fuzz_redis_url)
    finally:
        _close(launcher)


@pytest.fixture
def fresh_client() -> Iterator[httpx.Client]:
    """A client of its own for one test: a 500 makes uvicorn drop the keep-alive connection,
    which must not be blamed on the next test."""
    with httpx.Client(timeout=60.0, headers={"User-Agent": BROWSER_UA}) as client:
        yield client
