"""Fixtures of the fault suite: real `tapioca` processes on real servers, broken on purpose.

Tests that stop or kill a server get a server of their own (``own_pg``, ``own_redis``);
request such a fixture *before* ``launcher`` so the processes are stopped first at
teardown, while their servers still answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.servers import PostgresServer, RedisServer


@pytest.fixture
def own_pg(tmp_path: Path) -> Iterator[PostgresServer]:
    """A PostgreSQL cluster of the test's own (it is going to be stopped)."""
    server = PostgresServer(tmp_path / "own-pg")
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def own_pg_dsn(own_pg: PostgresServer) -> str:
    name = f"fault_{uuid.uuid4().hex[:12]}"
    own_pg.create_database(name)
    return own_pg.dsn(name)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server of the test's own (AOF on; it is going to be killed)."""
    server = RedisServer(tmp_path / "own-redis")
    try:
        server.start()
        yield server
    finally:
        server.cleanup()
