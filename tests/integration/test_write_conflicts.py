"""Writers that meet on PostgreSQL: batches sharing events never deadlock each other, and a
conflict with another transaction (a deadlock, a serialization failure, a lock timeout) is
written again whole by the worker, never rejected, isolated or dead-lettered."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from support.factories import make_row
from tapioca.ingest.normalize import RequestContext
from tapioca.ingest.protocols.native import encode_events
from tapioca.queue.redis_stream import STATS_KEY, StreamConsumer, StreamProducer
from tapioca.storage import postgres_store
from tapioca.storage.postgres_store import PostgresStore
from tapioca.storage.rows import EventRow, in_key_order
from tapioca.worker.loop import Worker, WorkerOptions

pytestmark = pytest.mark.integration

STREAM, GROUP, DEAD = "tapioca:events", "workers", "tapioca:events:dead"
NOW = datetime(2025, 11, 14, 12, 0, tzinfo=UTC)
WRITERS, ROUNDS, KEYS = 4, 8, 1200


def records(event_ids: list[str]) -> list[bytes]:
    """Queue records of page views on "shop" with these event ids."""
    ctx = RequestContext(NOW, "127.0.0.1", "test-agent", b"salt", timedelta(minutes=5), 65536)
    raw = [
        {"site_id": "shop", "event_id": event_id, "event_type": "page_view", "path": "/",
         "user_id": f"u{i % 13}", "timestamp": (NOW - timedelta(seconds=i)).isoformat()}
        for i, event_id in enumerate(event_ids)
    ]  # fmt: skip
    return [payload for _, payload in encode_events(raw, ctx, indexed=True)]


def overlapping_batches(rng: random.Random, round_no: int) -> list[list[EventRow]]:
    """One batch a writer: three quarters of the round's events (on three sites new this
    round), each batch in its own order; the first batch holds some events twice."""
    keys = [(f"site-{round_no}-{i % 3}", f"ev-{i}") for i in range(KEYS)]
    batches = []
    for writer in range(WRITERS):
        chosen = rng.sample(keys, KEYS * 3 // 4)
        batches.append([make_row(site_id=s, event_id=e, path=f"/w{writer}") for s, e in chosen])
    batches[0] += rng.sample(batches[0], 50)
    return batches


@pytest.mark.parametrize("idempotent_for_s", [0.0, 3600.0])
async def test_writers_on_overlapping_keys_never_deadlock(
    pg_dsn: str, pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch, idempotent_for_s: float
) -> None:
    """Four writers (as four worker processes: a store each) write batches sharing most of
    their events at once, round after round. With 0 s every write tries the direct COPY
    first; with an hour a writer that once met a stored event goes the idempotent way at
    once, while the others still COPY directly: both ways meet."""
    monkeypatch.setattr(postgres_store, "_IDEMPOTENT_FOR_S", idempotent_for_s)
    writers = [PostgresStore(pg_dsn, max_size=1) for _ in range(WRITERS)]
    rng = random.Random(11)
    expected = 0
    try:
        for round_no in range(ROUNDS):
            batches = overlapping_batches(rng, round_no)
            results = await asyncio.gather(
                *(writer.write_events(b) for writer, b in zip(writers, batches, strict=True))
            )
            keys = {(row.site_id, row.event_id) for batch in batches for row in batch}
            assert sum(r.inserted for r in results) == len(keys), round_no
            assert sum(r.received for r in results) == sum(len(b) for b in batches)
            expected += len(keys)
    finally:
        for writer in writers:
            await writer.close()
    counts = "SELECT count(*), count(DISTINCT (site_id, event_id)) FROM event"
    assert await pg_store.fetch(counts) == [(expected, expected)]
    assert await pg_store.fetch("SELECT count(*) FROM site") == [(ROUNDS * 3,)]


async def test_python_and_postgresql_agree_on_the_key_order(pg_store: PostgresStore) -> None:
    """The direct COPY goes in Python's order, the idempotent INSERT in PostgreSQL's: two
    writers going the two ways must take the keys in one order."""
    ids = ["b", "B", "a-10", "a-9", "a_1", "é", "z", "Ω", "e\u0301", "ß", "😀", "~", " x"]
    rows = [make_row(site_id=site, event_id=event) for event in ids for site in ("sh", "s", "S")]
    rng = random.Random(2)
    rng.shuffle(rows)
    python = [(row.site_id, row.event_id) for row in in_key_order(rows)]
    sql = (
        "SELECT s, e FROM unnest($1::text[], $2::text[]) AS k(s, e) "
        'ORDER BY s COLLATE "C", e COLLATE "C"'
    )
    postgresql = await pg_store.fetch(sql, [[r.site_id for r in rows], [r.event_id for r in rows]])
    assert python == postgresql


Provoke = Callable[[asyncpg.Connection, asyncpg.Connection], Awaitable[BaseException]]
_INSERT_SITE = "INSERT INTO site (id) VALUES ($1)"


async def deadlock(a: asyncpg.Connection, b: asyncpg.Connection) -> BaseException:
    """Two transactions insert the same two sites in opposite orders."""
    await a.execute(_INSERT_SITE, "x")
    await b.execute(_INSERT_SITE, "y")
    results = await asyncio.gather(
        a.execute(_INSERT_SITE, "y"), b.execute(_INSERT_SITE, "x"), return_exceptions=True
    )
    (error,) = [r for r in results if isinstance(r, BaseException)]
    return error


async def serialization_failure(a: asyncpg.Connection, b: asyncpg.Connection) -> BaseException:
    """Two serializable transactions each count the sites, then insert one (write skew)."""
    for con in (a, b):
        await con.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        await con.fetchval("SELECT count(*) FROM site")
    await a.execute(_INSERT_SITE, "x")
    with pytest.raises(asyncpg.PostgresError) as caught:  # at the insert or at a commit
        await b.execute(_INSERT_SITE, "y")
        await a.execute("COMMIT")
        await b.execute("COMMIT")
    error: BaseException = caught.value  # asyncpg's errors are untyped
    return error


async def lock_timeout(a: asyncpg.Connection, b: asyncpg.Connection) -> BaseException:
    """A transaction waits longer than lock_timeout for another's uncommitted site."""
    await a.execute(_INSERT_SITE, "x")
    await b.execute("SET LOCAL lock_timeout = '50ms'")
    with pytest.raises(asyncpg.PostgresError) as caught:
        await b.execute(_INSERT_SITE, "x")
    error: BaseException = caught.value  # asyncpg's errors are untyped
    return error


@pytest.mark.parametrize(
    ("provoke", "sqlstate"),
    [(deadlock, "40P01"), (serialization_failure, "40001"), (lock_timeout, "55P03")],
)
async def test_conflicts_with_other_transactions_are_transient(
    pg_dsn: str, pg_store: PostgresStore, provoke: Provoke, sqlstate: str
) -> None:
    a, b = await asyncpg.connect(pg_dsn), await asyncpg.connect(pg_dsn)
    try:
        await a.execute("BEGIN")
        await b.execute("BEGIN")
        error = await provoke(a, b)
        for con in (a, b):
            if con.is_in_transaction():
                await con.execute("ROLLBACK")
    finally:
        await a.close()
        await b.close()
    assert getattr(error, "sqlstate", None) == sqlstate
    assert pg_store.is_transient(error)
    assert not pg_store.is_unavailable(error)


async def test_bad_data_is_not_transient(pg_store: PostgresStore) -> None:
    with pytest.raises(asyncpg.PostgresError) as caught:
        await pg_store.write_events([make_row(path="/nul\x00b")])  # PostgreSQL refuses NUL
    assert not pg_store.is_transient(caught.value)


async def wait_for_lock_wait(watch: asyncpg.Connection, application: str) -> None:
    """Until a backend of ``application`` waits for a lock."""
    sql = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE application_name = $1 AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 10
    while not await watch.fetchval(sql, application):
        assert time.monotonic() < deadline, "the worker never waited for the lock"
        await asyncio.sleep(0.01)


def retried_total() -> float:
    return float(REGISTRY.get_sample_value("tapioca_batches_retried_total") or 0.0)


async def test_the_worker_writes_a_deadlocked_batch_again_whole(
    redis_client: aioredis.Redis, pg_dsn: str, pg_store: PostgresStore
) -> None:
    """A transaction holding one event of the batch (d-2) inserts another (d-0) while the
    worker's COPY waits for it: PostgreSQL ends the worker's transaction with a deadlock.
    The worker writes the batch again as it was, one batch of two entries."""
    producer = StreamProducer(redis_client, STREAM, require_aof=True)
    await producer.publish(records(["d-0", "d-1", "d-2"]))
    await producer.publish(records(["e-0", "e-1", "e-2"]))
    consumer = StreamConsumer(redis_client, STREAM, GROUP, "w1", DEAD)
    worker = Worker(consumer, pg_store, WorkerOptions(batch_max_events=500, batch_max_wait_ms=50))
    other, watch = await asyncpg.connect(pg_dsn), await asyncpg.connect(pg_dsn)
    insert = (
        "INSERT INTO event (site_id, event_id, event_type, ts, received_at, visitor_id) "
        "VALUES ('shop', $1, 'page_view', now(), now(), 'other')"
    )
    retried_before = retried_total()
    try:
        await other.execute("SET deadlock_timeout = '30s'")  # the worker's backend finds it
        await other.execute("BEGIN")
        await other.execute(insert, "d-2")
        running = asyncio.create_task(worker.run(burst=True))
        await wait_for_lock_wait(watch, "tapioca")  # the worker's COPY holds d-0, waits for d-2
        await other.execute(insert, "d-0")  # returns once the worker's transaction is ended
        await other.execute("ROLLBACK")
        await running
    finally:
        await other.close()
        await watch.close()
    stored = await pg_store.fetch("SELECT event_id, visitor_id <> 'other' FROM event")
    assert sorted(stored) == [(f"{p}-{i}", True) for p in "de" for i in range(3)]
    stats = await redis_client.hgetall(STATS_KEY)
    assert int(stats[b"retried"]) == 1
    assert int(stats[b"batches"]) == 1  # written whole: not entry by entry
    assert int(stats[b"written"]) == 6
    assert b"dead_lettered" not in stats
    assert retried_total() - retried_before == 1
    assert (await redis_client.xpending(STREAM, GROUP))["pending"] == 0
    assert await redis_client.xlen(DEAD) == 0


async def test_four_workers_on_one_stream_never_meet_in_a_deadlock(
    redis_client: aioredis.Redis, pg_dsn: str, pg_store: PostgresStore
) -> None:
    """Entries sharing most of their events (a client's retries, in another order) read by
    four workers at once, each with its own store: none of their writes is tried again,
    rejected or dead-lettered, and each event is stored once."""
    producer = StreamProducer(redis_client, STREAM, require_aof=True)
    rng = random.Random(7)
    published, distinct = 0, set()
    for round_no in range(10):
        events = [f"r{round_no}-{i}" for i in range(800)]
        for _ in range(WRITERS):
            chosen = rng.sample(events, 600)
            await producer.publish(records(chosen))
            published += len(chosen)
            distinct.update(chosen)
    stores = [PostgresStore(pg_dsn, max_size=2) for _ in range(WRITERS)]
    workers = [
        Worker(
            StreamConsumer(redis_client, STREAM, GROUP, f"w{n}", DEAD),
            store,
            WorkerOptions(batch_max_events=1200, batch_max_wait_ms=20),
        )
        for n, store in enumerate(stores)
    ]
    try:
        await asyncio.gather(*(worker.run(burst=True) for worker in workers))
    finally:
        for store in stores:
            await store.close()
    assert {event for (event,) in await pg_store.fetch("SELECT event_id FROM event")} == distinct
    assert await pg_store.fetch("SELECT count(*) FROM event") == [(len(distinct),)]
    stats = await redis_client.hgetall(STATS_KEY)
    assert int(stats[b"written"]) == len(distinct)
    assert int(stats[b"duplicates"]) == published - len(distinct)
    assert b"retried" not in stats
    assert b"dead_lettered" not in stats
    assert (await redis_client.xpending(STREAM, GROUP))["pending"] == 0
