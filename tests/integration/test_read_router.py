"""The read router on real streaming replication: failover, failback, lag, timeouts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from support.cutting_proxy import CuttingProxy
from support.replication import Replicated, replicated_pair
from tapioca.errors import QueryTimeout, StoreUnavailable
from tapioca.reports.executor import Executor
from tapioca.storage.read_router import PoolOptions, ReadRouter

pytestmark = pytest.mark.integration

WHERE = "SELECT CASE WHEN pg_is_in_recovery() THEN 'replica' ELSE 'primary' END"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicated]:
    with replicated_pair(tmp_path_factory.mktemp("replication")) as replicated:
        replicated.primary.psql(
            "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10)", "tapioca"
        )
        replicated.wait_replayed()
        yield replicated


@pytest.fixture
async def router(pair: Replicated) -> AsyncIterator[ReadRouter]:
    for server in (pair.primary, pair.replica):  # earlier tests may have stopped one
        if not server.is_running():
            server.start()
    pair.replica.psql("SELECT pg_wal_replay_resume()")
    engine = ReadRouter(
        pair.primary_dsn,
        [pair.replica_dsn],
        options=PoolOptions(max_size=3, statement_timeout_ms=500, acquire_timeout_s=2),
        max_lag_seconds=1.0,
    )
    await engine.check_replicas()
    try:
        yield engine
    finally:
        await engine.close()


async def where(router: ReadRouter) -> str:
    rows = await router.fetch(WHERE)
    return str(rows[0][0])


async def test_reads_prefer_the_healthy_replica(router: ReadRouter) -> None:
    assert router.describe()[0]["state"] == "healthy"
    assert router.reading_from == "replica"
    assert [await where(router) for _ in range(5)] == ["replica"] * 5
    assert await router.fetch("SELECT count(*) FROM t") == [(10,)]


async def test_a_dead_replica_fails_over_at_once_and_comes_back(
    router: ReadRouter, pair: Replicated
) -> None:
    assert await where(router) == "replica"
    pair.replica.stop(mode="immediate")
    started = time.monotonic()
    answers = [await where(router) for _ in range(5)]
    assert answers == ["primary"] * 5  # the failed read itself was answered by the primary
    assert time.monotonic() - started < 3
    assert router.describe()[0]["state"] == "down"
    assert router.reading_from == "primary"

    pair.replica.start()
    await router.check_replicas()
    assert router.describe()[0]["state"] == "healthy"
    assert await where(router) == "replica"


async def test_query_errors_do_not_change_routing(router: ReadRouter) -> None:
    with pytest.raises(asyncpg.exceptions.UndefinedTableError):
        await router.fetch("SELECT * FROM no_such_table")
    with pytest.raises(asyncpg.exceptions.DataError):
        await router.fetch("SELECT $1::int", ["not a number"])
    assert router.describe()[0]["state"] == "healthy"
    assert await where(router) == "replica"


async def test_statement_timeout_applies_and_is_not_a_failover(router: ReadRouter) -> None:
    started = time.monotonic()
    with pytest.raises(QueryTimeout):  # the store names it, not the driver
        await router.fetch("SELECT pg_sleep(5)")
    assert time.monotonic() - started < 2.5
    assert router.describe()[0]["state"] == "healthy"
    assert await where(router) == "replica"


async def test_a_lagging_replica_is_skipped_until_it_catches_up(
    router: ReadRouter, pair: Replicated
) -> None:
    pair.replica.psql("SELECT pg_wal_replay_pause()")
    try:
        deadline = time.monotonic() + 20
        while router.describe()[0]["state"] != "lagging":
            assert time.monotonic() < deadline, router.describe()
            pair.primary.psql("INSERT INTO t VALUES (0)", "tapioca")  # WAL to replay
            await asyncio.sleep(0.3)
            await router.check_replicas()
        assert router.describe()[0]["lag_seconds"] > 1.0
        assert await where(router) == "primary"
    finally:
        pair.replica.psql("SELECT pg_wal_replay_resume()")
    pair.wait_replayed()
    await router.check_replicas()
    assert router.describe()[0] == {**router.describe()[0], "state": "healthy", "lag_seconds": 0}
    assert await where(router) == "replica"


async def test_an_idle_primary_does_not_make_the_replica_look_late(
    router: ReadRouter, pair: Replicated
) -> None:
    pair.wait_replayed()
    await asyncio.sleep(1.5)  # longer than the lag bound, with nothing written
    await router.check_replicas()
    assert router.describe()[0]["state"] == "healthy"
    assert router.describe()[0]["lag_seconds"] == 0


async def test_primary_down_replica_answers(router: ReadRouter, pair: Replicated) -> None:
    pair.primary.stop(mode="immediate")
    try:
        await router.check_replicas()
        assert router.describe()[0]["state"] == "healthy"
        assert await router.fetch("SELECT count(*) > 0 FROM t") == [(True,)]
        assert await where(router) == "replica"
    finally:
        pair.primary.start()


async def test_no_database_answers_is_store_unavailable(
    router: ReadRouter, pair: Replicated
) -> None:
    pair.replica.stop(mode="immediate")
    pair.primary.stop(mode="immediate")
    try:
        with pytest.raises(StoreUnavailable):
            await router.fetch("SELECT 1")
    finally:
        pair.primary.start()
        pair.replica.start()


async def test_reads_on_the_primary_are_read_only(pair: Replicated, tmp_path: Path) -> None:
    only_primary = ReadRouter(pair.primary_dsn, [], options=PoolOptions(max_size=1))
    try:
        with pytest.raises(asyncpg.exceptions.ReadOnlySQLTransactionError):
            await only_primary.fetch("CREATE TABLE sneaky (id int)")
        assert await only_primary.fetch(WHERE) == [("primary",)]
    finally:
        await only_primary.close()


async def _end_backend(dsn: str, pid: int) -> None:
    con = await asyncpg.connect(dsn)
    try:
        assert await con.fetchval("SELECT pg_terminate_backend($1)", pid) is True
    finally:
        await con.close()


async def test_a_replica_lost_mid_answer_is_asked_again_on_the_primary(
    router: ReadRouter, pair: Replicated
) -> None:
    tries: list[str] = []

    async def report(executor: Executor) -> tuple[str, int]:
        ((place, pid),) = await executor.db.fetch(WHERE + ", pg_backend_pid()")
        tries.append(str(place))
        if place == "replica":  # the replica's connection ends between two reads
            await _end_backend(pair.replica_dsn, int(pid))
            await asyncio.sleep(0.2)  # the server's goodbye reaches the client
        ((count,),) = await executor.db.fetch("SELECT count(*) FROM t")
        return str(place), int(count)

    place, count = await Executor(router).answer(report)
    assert tries == ["replica", "primary"]
    assert (place, count) == ("primary", await _count(pair.primary_dsn))
    assert router.describe()[0]["state"] == "down"  # until the next check finds it well
    await router.check_replicas()
    assert router.reading_from == "replica"


async def test_an_answer_read_in_full_stands_when_its_connection_ends(
    router: ReadRouter, pair: Replicated
) -> None:
    async def report(executor: Executor) -> int:
        ((pid,),) = await executor.db.fetch("SELECT pg_backend_pid()")
        ((count,),) = await executor.db.fetch("SELECT count(*) FROM t")
        await _end_backend(pair.replica_dsn, int(pid))
        await asyncio.sleep(0.2)  # the server's goodbye reaches the client
        return int(count)

    assert await Executor(router).answer(report) == await _count(pair.primary_dsn)
    assert await where(router) == "replica"


async def _count(dsn: str) -> int:
    con = await asyncpg.connect(dsn)
    try:
        return int(await con.fetchval("SELECT count(*) FROM t"))
    finally:
        await con.close()


async def test_an_answer_stands_when_the_server_ends_as_its_connection_is_given_back(
    pair: Replicated,
) -> None:
    """The replica goes away after the answer's last read and its ROLLBACK, as the pool
    resets the connection to take it back: the pool drops the connection, the answer
    stands, and the next answer gets a fresh connection."""
    for server in (pair.primary, pair.replica):
        if not server.is_running():
            server.start()
    pair.replica.psql("SELECT pg_wal_replay_resume()")
    rows = await _count(pair.replica_dsn)
    async with CuttingProxy(pair.replica.port).running() as proxy:
        dsn = pair.replica_dsn.replace(f":{pair.replica.port}/", f":{proxy.port}/")
        engine = ReadRouter(
            pair.primary_dsn, [dsn], options=PoolOptions(max_size=1, acquire_timeout_s=2)
        )
        try:
            await engine.check_replicas()
            assert engine.reading_from == "replica"

            async def report(executor: Executor) -> tuple[str, int]:
                ((place,),) = await executor.db.fetch(WHERE)
                ((count,),) = await executor.db.fetch("SELECT count(*) FROM t")
                proxy.cut_on = b"RESET ALL"  # the pool's reset, after the ROLLBACK
                return str(place), int(count)

            assert await Executor(engine).answer(report) == ("replica", rows)
            assert proxy.cuts == 1
            proxy.cut_on = b"RESET ALL"  # a plain read's connection too
            assert await engine.fetch(WHERE) == [("replica",)]
            assert proxy.cuts == 2
            assert await engine.fetch("SELECT count(*) FROM t") == [(rows,)]
            assert engine.reading_from == "replica"
        finally:
            await engine.close()
