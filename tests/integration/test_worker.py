"""The production pipeline on real Redis and PostgreSQL: stream → worker → event table."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import msgspec
import orjson
import pytest
import redis.asyncio as aioredis

from support.servers import free_port
from tapioca.errors import QueueUnavailable
from tapioca.ingest.normalize import RequestContext
from tapioca.ingest.protocols.native import encode_events
from tapioca.queue.record import decode_entry, decode_one, encode
from tapioca.queue.redis_stream import STATS_KEY, Entry, StreamConsumer, StreamProducer, connect
from tapioca.storage.postgres_store import PostgresStore
from tapioca.worker.loop import Worker, WorkerOptions

pytestmark = pytest.mark.integration

STREAM, GROUP, DEAD = "tapioca:events", "workers", "tapioca:events:dead"
NOW = datetime(2025, 11, 14, 12, 0, tzinfo=UTC)


def records(prefix: str, count: int, **extra: object) -> list[bytes]:
    ctx = RequestContext(NOW, "127.0.0.1", "test-agent", b"salt", timedelta(minutes=5), 65536)
    raw = [
        {
            "site_id": "shop",
            "event_id": f"{prefix}-{i}",
            "event_type": "page_view",
            "path": f"/p/{i % 7}",
            "user_id": f"u{i % 13}",
            "timestamp": (NOW - timedelta(minutes=i)).isoformat(),
            **extra,
        }
        for i in range(count)
    ]
    return [payload for _, payload in encode_events(raw, ctx, indexed=True)]


Entries = list[tuple[bytes, dict[bytes, bytes]]]


async def read_stream(client: aioredis.Redis, stream: str) -> Entries:
    """XRANGE - + of ``stream``: (entry id, fields), all bytes (the client does not decode)."""
    entries: Entries = []
    for entry_id, fields in await client.xrange(stream) or []:
        assert isinstance(entry_id, bytes) and fields is not None, (entry_id, fields)
        pairs = [(k, v) for k, v in fields.items() if isinstance(k, bytes) and isinstance(v, bytes)]
        assert len(pairs) == len(fields), fields
        entries.append((entry_id, dict(pairs)))
    return entries


def make_worker(
    client: aioredis.Redis, pg_store: PostgresStore, name: str = "w1", **options: int
) -> Worker:
    consumer = StreamConsumer(client, STREAM, GROUP, name, DEAD)
    opts = WorkerOptions(batch_max_events=500, batch_max_wait_ms=20, **options)
    return Worker(consumer, pg_store, opts)


async def stored(pg_store: PostgresStore) -> set[str]:
    return {r[0] for r in await pg_store.fetch("SELECT event_id FROM event")}


@pytest.mark.parametrize("in_hand", [1, 2])
async def test_entries_are_written_once_and_acknowledged(
    redis_client: aioredis.Redis, pg_store: PostgresStore, in_hand: int
) -> None:
    producer = StreamProducer(redis_client, STREAM, require_aof=True)
    for batch in range(5):
        await producer.publish(records(f"b{batch}", 300))
    await producer.publish(records("b1", 300))  # the same events again, a later entry
    await make_worker(redis_client, pg_store, max_inflight=in_hand).run(burst=True)
    assert len(await stored(pg_store)) == 1500
    assert await producer.lag() == 0
    stats = await redis_client.hgetall(STATS_KEY)
    assert int(stats[b"written"]) == 1500
    assert int(stats[b"duplicates"]) == 300


async def test_a_full_read_tells_of_a_backlog(
    redis_client: aioredis.Redis, pg_store: PostgresStore
) -> None:
    """The derive job waits while the worker reads whole batches (derive/jobs.py)."""
    producer = StreamProducer(redis_client, STREAM, require_aof=True)
    for entry in range(11):
        await producer.publish(records(f"k{entry}", 250))
    worker = make_worker(redis_client, pg_store)  # 500 events a batch
    seen: list[tuple[int, bool]] = []
    start = worker._start

    async def noting(entries: list[Entry]) -> None:
        seen.append((len(entries), worker.has_backlog()))
        await start(entries)

    worker._start = noting  # type: ignore[method-assign]
    await worker.run(burst=True)
    # batches of 500 events, two entries each (the first read is one entry: nothing told
    # its size yet), then the last 250: 2,750 events within a second is a backlog even
    # where a read was not full
    assert seen == [(2, True)] * 5 + [(1, True)]
    assert len(await stored(pg_store)) == 2750
    # the run ended on a read that found the stream empty: no backlog from then on, though
    # 2,750 events were read within the second (the derive job need not wait)
    assert not worker.has_backlog()
    await producer.publish(records("trickle", 100))
    await worker.run(burst=True)
    assert not worker.has_backlog()  # 100 events a second: no backlog
    assert len(await stored(pg_store)) == 2850


async def test_a_batch_being_written_is_a_backlog(
    redis_client: aioredis.Redis, pg_store: PostgresStore
) -> None:
    """Few events read, but still being written: the derive job waits for them."""
    producer = StreamProducer(redis_client, STREAM, require_aof=True)
    await producer.publish(records("w", 100))  # a fifth of a batch
    worker = make_worker(redis_client, pg_store)
    writing, release = asyncio.Event(), asyncio.Event()
    process = worker._process

    async def held(entries: list[Entry]) -> None:
        writing.set()
        await release.wait()
        await process(entries)

    worker._process = held  # type: ignore[method-assign]
    assert not worker.has_backlog()
    run = asyncio.create_task(worker.run(burst=True))
    await asyncio.wait_for(writing.wait(), 10)
    assert worker.has_backlog()
    release.set()
    await asyncio.wait_for(run, 10)
    assert not worker.has_backlog()
    assert len(await stored(pg_store)) == 100


async def test_entries_of_a_dead_worker_are_reclaimed(
    redis_client: aioredis.Redis, pg_store: PostgresStore
) -> None:
    producer = StreamProducer(redis_client, STREAM, require_aof=True)
    await producer.publish(records("a", 50))
    await producer.publish(records("b", 50))
    dead = StreamConsumer(redis_client, STREAM, GROUP, "dead-worker", DEAD)
    await dead.ensure_group()
    taken = await dead.read_new(10, 100)  # read, never acknowledged: the worker "died"
    assert len(taken) == 2
    worker = make_worker(redis_client, pg_store, "w2", claim_idle_ms=100)
    await worker.run(burst=True)  # nothing new, nothing idle long enough yet
    assert await stored(pg_store) == set()
    assert (await redis_client.xpending(STREAM, GROUP))["pending"] == 2
    await asyncio.sleep(0.3)
    await make_worker(redis_client, pg_store, "w2", claim_idle_ms=100).run(burst=True)
    assert len(await stored(pg_store)) == 100
    assert (await redis_client.xpending(STREAM, GROUP))["pending"] == 0


async def test_poison_events_are_dead_lettered_and_the_rest_written(
    redis_client: aioredis.Redis, pg_store: PostgresStore
) -> None:
    producer = StreamProducer(redis_client, STREAM, require_aof=True)
    good = records("ok", 3)
    # PostgreSQL refuses NUL in text
    poison = encode(msgspec.structs.replace(decode_one(records("bad", 1)[0]), path="/nul\x00b"))
    await producer.publish([good[0], poison, good[1]])
    await redis_client.xadd(STREAM, {b"e": b"not json at all"})
    await producer.publish([good[2]])
    await make_worker(redis_client, pg_store, max_deliveries=3).run(burst=True)

    assert await stored(pg_store) == {"ok-0", "ok-1", "ok-2"}
    dead = await read_stream(redis_client, DEAD)
    reasons = sorted(fields[b"reason"].decode() for _, fields in dead)
    assert len(dead) == 2
    assert any("undecodable" in r for r in reasons)
    json_letters = [orjson.loads(f[b"e"]) for _, f in dead if f[b"e"].startswith(b"{")]
    assert [letter["event_id"] for letter in json_letters] == ["bad-0"]
    assert any("CharacterNotInRepertoire" in r for r in reasons)
    assert (await redis_client.xpending(STREAM, GROUP))["pending"] == 0
    stats = await redis_client.hgetall(STATS_KEY)
    assert int(stats[b"dead_lettered"]) == 2
    assert int(stats[b"written"]) == 3


async def test_pending_entries_are_never_trimmed(
    redis_client: aioredis.Redis, pg_store: PostgresStore
) -> None:
    producer = StreamProducer(redis_client, STREAM, require_aof=True)
    for i in range(4):
        await producer.publish(records(f"t{i}", 5))
    await make_worker(redis_client, pg_store).run(burst=True)
    laggard = StreamConsumer(redis_client, STREAM, GROUP, "slow", DEAD)
    await producer.publish(records("late", 5))
    held = await laggard.read_new(1, 100)
    await producer.publish(records("later", 5))
    await laggard.trim_acknowledged()
    remaining = [entry_id for entry_id, _ in await read_stream(redis_client, STREAM)]
    assert held[0].entry_id in remaining
    assert len(remaining) == 2  # the pending entry and the undelivered one
    await asyncio.sleep(0.3)  # the laggard's entry is now idle long enough to be claimed
    await make_worker(redis_client, pg_store, "w3", claim_idle_ms=100).run(burst=True)
    assert len(await stored(pg_store)) == 30
    assert (await redis_client.xpending(STREAM, GROUP))["pending"] == 0


async def test_concurrent_publishes_share_round_trips_and_keep_one_entry_each(
    redis_client: aioredis.Redis, pg_store: PostgresStore
) -> None:
    """Requests that publish together go in one pipeline, each as its own entry."""
    producer = StreamProducer(redis_client, STREAM, require_aof=True)
    sizes = [1 + i % 5 for i in range(200)]
    await asyncio.gather(
        *(producer.publish(records(f"c{i}", size)) for i, size in enumerate(sizes))
    )
    entries = await read_stream(redis_client, STREAM)
    assert len(entries) == len(sizes)
    by_first = {decode_entry(f[b"e"])[0].event_id: f for _, f in entries}
    for i, size in enumerate(sizes):
        fields = by_first[f"c{i}-0"]
        assert int(fields[b"n"]) == size == len(decode_entry(fields[b"e"]))
    await make_worker(redis_client, pg_store).run(burst=True)
    assert len(await stored(pg_store)) == sum(sizes)


async def test_publishes_fail_together_when_redis_is_unreachable() -> None:
    """No request is told its events are held when Redis never answered."""
    client = connect(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)  # nothing listens
    producer = StreamProducer(client, STREAM, require_aof=False)
    try:
        results = await asyncio.gather(
            *(producer.publish(records(f"x{i}", 2)) for i in range(20)), return_exceptions=True
        )
    finally:
        await client.aclose()
    assert all(isinstance(r, QueueUnavailable) for r in results), results


async def test_workers_name_an_unknown_source_by_its_first_spelling(
    redis_client: aioredis.Redis, pg_store: PostgresStore
) -> None:
    """The second worker has never seen the source: the store tells it the spelling."""
    producer = StreamProducer(redis_client, STREAM, require_aof=True)
    await producer.publish(records("a", 3, utm_source="Partner"))
    await make_worker(redis_client, pg_store, "w1").run(burst=True)
    await producer.publish(records("b", 3, utm_source="PARTNER"))
    await producer.publish(records("c", 3, utm_source="Google"))
    await make_worker(redis_client, pg_store, "w2").run(burst=True)
    rows = await pg_store.fetch("SELECT source, count(*) FROM event GROUP BY 1 ORDER BY 1")
    assert [tuple(r) for r in rows] == [("Google", 3), ("Partner", 6)]
