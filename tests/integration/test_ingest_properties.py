"""Property tests: any input gets a 4xx or is accepted, and whatever is accepted is storable."""

from __future__ import annotations

import asyncio
import gzip
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.strategies import event_like, good_event
from tapioca.errors import TapiocaError
from tapioca.ingest.body import decompress
from tapioca.ingest.salt import SaltProvider
from tapioca.ingest.service import IngestRequest, IngestService
from tapioca.queue.inprocess import GroupCommitQueue
from tapioca.storage.base import Store
from tapioca.worker.transform import decode_records

pytestmark = pytest.mark.integration

NOW = datetime(2025, 11, 14, 12, 0, tzinfo=UTC)


class Collected:
    def __init__(self) -> None:
        self.records: list[bytes] = []

    async def commit(self, records: list[bytes]) -> None:
        self.records.extend(records)


async def _fixed_salt(_day: object) -> bytes:
    return b"salt"


def make_service(collected: Collected) -> tuple[IngestService, GroupCommitQueue]:
    queue = GroupCommitQueue(collected.commit)
    service = IngestService(
        queue,
        SaltProvider(_fixed_salt),
        max_events=100,
        max_event_bytes=4096,
        max_future_seconds=300,
        retry_after_seconds=1,
    )
    return service, queue


async def accept(body: bytes, collected: Collected) -> list[str] | TapiocaError:
    service, queue = make_service(collected)
    queue.start()
    try:
        request = IngestRequest("/events", {"user-agent": "agent"}, "10.0.0.1", "agent")
        answer = await service.accept(request, body, NOW)
        ids: list[str] = answer["event_ids"]
        return ids
    except TapiocaError as exc:
        assert 400 <= exc.status < 500, exc
        assert exc.code and exc.message
        return exc
    finally:
        await queue.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=300))
def test_arbitrary_bytes_never_fail_with_anything_but_4xx(body: bytes) -> None:
    asyncio.run(accept(body, Collected()))


@settings(max_examples=100, deadline=None)
@given(body=st.binary(max_size=200))
def test_arbitrary_gzip_bodies_are_4xx_or_decoded(body: bytes) -> None:
    try:
        decompress(gzip.compress(body) + body[:3], "gzip", 10_000)
    except TapiocaError as exc:
        assert exc.status in (413, 422)


async def test_everything_accepted_is_storable(migrated_store: Store) -> None:
    """Events that pass validation must never become poison for either store."""
    store = migrated_store
    collected = Collected()
    strategy = st.lists(good_event, min_size=1, max_size=5) | st.lists(event_like, max_size=5)
    accepted = 0

    @settings(max_examples=250, deadline=None, database=None)
    @given(events=strategy)
    def collect(events: list[dict[str, Any]]) -> None:
        nonlocal accepted
        body = json.dumps(events).encode()  # big integers and lone surrogates included
        outcome = asyncio.run(accept(body, collected))
        if isinstance(outcome, list):
            accepted += len(outcome)

    await asyncio.to_thread(collect)
    assert accepted >= 25, "the strategy must produce storable events too"
    rows = decode_records(collected.records)
    assert len(rows) == accepted
    if rows:
        result = await store.write_events(rows)
        assert result.received == len(rows)
        stored = await store.fetch("SELECT count(*) FROM event")
        assert stored[0][0] == result.inserted
