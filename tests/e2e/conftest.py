"""Fixtures of the end-to-end suite: `tapioca` processes started per test or per module.

See support/procs.py: each process runs the project's CLI with a private working directory and
a clean TAPIOCA_* environment, is stopped with SIGTERM by PID at teardown (SIGKILL after
a timeout), and a worker must exit with status 0.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from support.procs import Launcher, Server
from support.servers import PostgresServer, RedisServer


@pytest.fixture
def embedded(launcher: Launcher) -> Server:
    """`tapioca serve` with default settings."""
    return launcher.serve()


@pytest.fixture
def production(launcher: Launcher, pg_dsn: str, redis_url: str) -> Server:
    """`tapioca api` + one `tapioca worker` on a fresh database and an empty Redis."""
    return launcher.production(pg_dsn, redis_url)


@pytest.fixture(scope="module")
def module_launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    """A launcher whose processes live for a whole test module."""
    launcher = Launcher(tmp_path_factory.mktemp("procs"))
    try:
        yield launcher
    finally:
        problems = launcher.close()
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def module_pg_dsn(pg_server: PostgresServer) -> Iterator[str]:
    """A database of its own for a module's processes (pg_dsn is per test)."""
    name = f"e2e_{uuid.uuid4().hex[:16]}"
    pg_server.create_database(name)
    try:
        yield pg_server.dsn(name)
    finally:
        pg_server.drop_database(name, force=True)


@pytest.fixture(scope="module")
def module_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis server of its own (the shared one is flushed before every test using it)."""
    server = RedisServer(tmp_path_factory.mktemp("redis-e2e"))
    try:
        server.start()
        yield server.url
    finally:
        server.cleanup()
