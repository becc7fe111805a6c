"""Smoke tests for the throw-away server fixtures in tests/support/servers.py."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from support.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.integration


async def test_pg_dsn_select_1(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert await conn.fetchval("select 1") == 1
    finally:
        await conn.close()


async def test_pg_dsn_is_a_fresh_database(pg_dsn: str, pg_server: PostgresServer) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert await conn.fetchval("select current_database()") == pg_dsn.rsplit("/", 1)[1]
        tables = await conn.fetchval(
            "select count(*) from information_schema.tables where table_schema = 'public'"
        )
        assert tables == 0
    finally:
        await conn.close()
    assert pg_server.dsn().startswith("postgresql://postgres@127.0.0.1:")


async def test_redis_ping(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert await client.ping() is True
        assert await client.dbsize() == 0
        await client.set("leftover", "1")  # must be gone for the next test (FLUSHALL)
    finally:
        await client.aclose()


async def test_redis_url_is_flushed(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert await client.dbsize() == 0
    finally:
        await client.aclose()


async def test_postgres_immediate_stop_keeps_data(tmp_path: Path) -> None:
    server = PostgresServer(tmp_path)
    try:
        server.init()
        server.start()
        assert server.is_running()
        conn = await asyncpg.connect(server.dsn())
        try:
            await conn.execute("create table t (v int)")
            await conn.execute("insert into t values (42)")
        finally:
            await conn.close()

        server.stop(mode="immediate")
        assert not server.is_running()
        server.start()
        assert server.is_running()

        conn = await asyncpg.connect(server.dsn())
        try:
            assert await conn.fetchval("select v from t") == 42
        finally:
            await conn.close()

        server.restart()
        assert server.is_running()
    finally:
        server.cleanup()
    assert not server.root_dir.exists()


async def test_postgres_streaming_replica(tmp_path: Path) -> None:
    primary = PostgresServer(tmp_path / "primary")
    replica: PostgresServer | None = None
    try:
        primary.init()
        primary.start()
        replica = primary.make_replica(tmp_path / "replica")
        assert replica.port != primary.port
        assert not replica.is_running()
        replica.start()

        conn = await asyncpg.connect(primary.dsn())
        try:
            await conn.execute("create table events (id int primary key, name text)")
            await conn.execute("insert into events values (1, 'hello')")
            assert await conn.fetchval("select pg_is_in_recovery()") is False
        finally:
            await conn.close()

        rconn = await asyncpg.connect(replica.dsn())
        try:
            assert await rconn.fetchval("select pg_is_in_recovery()") is True
            deadline = time.monotonic() + 10
            name = None
            while time.monotonic() < deadline:
                try:
                    name = await rconn.fetchval("select name from events where id = 1")
                except asyncpg.UndefinedTableError:
                    name = None
                if name is not None:
                    break
                await asyncio.sleep(0.1)
            assert name == "hello"
        finally:
            await rconn.close()
    finally:
        if replica is not None:
            replica.cleanup()
        primary.cleanup()


async def test_redis_kill_and_restart_keeps_aof_data(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    try:
        server.start()
        port, first_pid = server.port, server.pid
        client = aioredis.Redis.from_url(server.url)
        try:
            await client.set("survivor", "yes")
        finally:
            await client.aclose()
        await asyncio.sleep(1.5)  # appendfsync everysec

        server.kill()
        assert not server.is_running()
        server.start()
        assert server.port == port
        assert server.pid != first_pid

        client = aioredis.Redis.from_url(server.url)
        try:
            assert await client.get("survivor") == b"yes"
        finally:
            await client.aclose()

        server.restart()
        assert server.is_running()
    finally:
        server.cleanup()
    assert not server.is_running()
