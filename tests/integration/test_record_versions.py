"""Queue records of several versions in one stream (queue/record.py): a worker writes the
records of its own and earlier versions, and those of a later version whose new fields are
all null; an entry of a later version holding a value in a field it does not know stays
pending, unacknowledged and never dead-lettered, however often it is delivered."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis

from tapioca.ingest.normalize import RequestContext
from tapioca.ingest.protocols.native import encode_events
from tapioca.model.event import QUEUED, RECORD_VERSION
from tapioca.queue.record import NewerRecord, as_json, decode_entry, decode_one, pack
from tapioca.queue.redis_stream import COUNT, PAYLOAD, VERSION, StreamConsumer
from tapioca.storage.postgres_store import PostgresStore
from tapioca.worker.loop import Worker, WorkerOptions

pytestmark = pytest.mark.integration

STREAM, GROUP, DEAD = "tapioca:events", "workers", "tapioca:events:dead"
NOW = datetime(2025, 11, 14, 12, 0, tzinfo=UTC)
CTX = RequestContext(NOW, "127.0.0.1", "test-agent", b"salt", timedelta(minutes=5), 65536)


def records(prefix: str, count: int) -> list[bytes]:
    raw = [
        {"site_id": "shop", "event_id": f"{prefix}-{i}", "event_type": "page_view",
         "path": f"/p/{i}", "user_id": f"u{i}"}
        for i in range(count)
    ]  # fmt: skip
    return [payload for _, payload in encode_events(raw, CTX, indexed=True)]


def later_version(encoded: list[bytes], extra: Any) -> bytes:
    """The entry a version with one more record field would queue: each record with the
    value ``extra`` appended."""
    values = [msgspec.msgpack.decode(record) for record in encoded]
    return msgspec.msgpack.encode([[*record, extra] for record in values])


def test_a_record_of_a_later_version_is_read_when_its_new_fields_are_null() -> None:
    encoded = records("n", 3)
    entry = later_version(encoded, None)
    assert [as_json(r) for r in decode_entry(entry, RECORD_VERSION + 1)] == [
        as_json(decode_one(e)) for e in encoded
    ]


def test_a_record_of_a_later_version_with_a_new_value_is_not_read() -> None:
    entry = later_version(records("x", 2), "a value this version cannot store")
    with pytest.raises(NewerRecord):
        decode_entry(entry, RECORD_VERSION + 1)


def test_an_entry_without_a_version_is_of_the_first() -> None:
    encoded = records("v1", 2)
    assert len(msgspec.msgpack.decode(encoded[0])) == len(QUEUED)  # today's layout
    assert [as_json(r) for r in decode_entry(pack(encoded))] == [
        as_json(decode_one(e)) for e in encoded
    ]


async def test_a_worker_writes_what_it_can_and_leaves_newer_entries_pending(
    redis_client: aioredis.Redis, pg_store: PostgresStore
) -> None:
    unversioned = records("old", 3)  # as an earlier release queued them: no version field
    current = records("cur", 4)
    newer_null = records("nul", 2)
    newer_value = records("new", 2)
    await redis_client.xadd(STREAM, {PAYLOAD: pack(unversioned), COUNT: 3})
    await redis_client.xadd(STREAM, {PAYLOAD: pack(current), COUNT: 4, VERSION: RECORD_VERSION})
    later = RECORD_VERSION + 1
    await redis_client.xadd(
        STREAM, {PAYLOAD: later_version(newer_null, None), COUNT: 2, VERSION: later}
    )
    kept_id = await redis_client.xadd(
        STREAM, {PAYLOAD: later_version(newer_value, "new"), COUNT: 2, VERSION: later}
    )
    options = WorkerOptions(batch_max_events=500, batch_max_wait_ms=20, max_deliveries=2,
                            claim_idle_ms=100)  # fmt: skip
    # Several workers of this version in turn, each claiming what the one before left: the
    # newer entry is delivered far more often than max_deliveries.
    for turn in range(6):
        consumer = StreamConsumer(redis_client, STREAM, GROUP, f"w{turn}", DEAD)
        if turn:
            await asyncio.sleep(0.15)  # the entry left pending idles past claim_idle_ms
        await Worker(consumer, pg_store, options).run(burst=True)

    rows = await pg_store.fetch("SELECT event_id FROM event ORDER BY event_id")
    expected = {f"old-{i}" for i in range(3)} | {f"cur-{i}" for i in range(4)}
    expected |= {f"nul-{i}" for i in range(2)}
    assert {r[0] for r in rows} == expected
    assert await redis_client.xlen(DEAD) == 0  # nothing dead-lettered
    pending = await redis_client.xpending_range(STREAM, GROUP, min="-", max="+", count=10)
    assert [p["message_id"] for p in pending] == [kept_id]
    assert int(pending[0]["times_delivered"]) > options.max_deliveries
