"""Shared fixtures: throw-away PostgreSQL and Redis servers (see tests/support/servers.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from support.servers import PostgresServer, RedisServer


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
