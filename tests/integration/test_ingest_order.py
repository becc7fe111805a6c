"""Events of one request without a timestamp keep their order in it (metrics.md, Time):
through ingest (both validation paths), the store and the derived sessions, against the
reference (support/reference.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from support.reference import from_request, sessionize
from tapioca.derive.jobs import derive_once
from tapioca.ingest.fast import GiveUp, decode_batch
from tapioca.ingest.salt import SaltProvider
from tapioca.ingest.service import IngestRequest, IngestService
from tapioca.queue.inprocess import GroupCommitQueue
from tapioca.storage.base import Store
from tapioca.worker.writer import EventWriter

pytestmark = pytest.mark.integration

NOW = datetime(2025, 11, 14, 12, 0, tzinfo=UTC)
PATHS = ("/a", "/b", "/c")


def page_views(**extra: Any) -> list[dict[str, Any]]:
    """Three page views without a timestamp; their ids sort against the order they are
    sent in, so a tie on time would make /c the first."""
    return [
        {"site_id": "shop", "event_id": f"ev-{9 - n}", "event_type": "page_view",
         "user_id": "u-1", "path": path, **extra}
        for n, path in enumerate(PATHS)
    ]  # fmt: skip


def ndjson(events: list[dict[str, Any]]) -> bytes:
    return b"\n".join(orjson.dumps(event) for event in events)


# (how the batch is sent, its events, its body); screen_width 1280.0 is a JSON integer
# that only the general path (EventIn) takes: the fast one hands the body over.
BODIES: dict[str, tuple[list[dict[str, Any]], Callable[[list[dict[str, Any]]], bytes]]] = {
    "array": (page_views(), orjson.dumps),
    "ndjson": (page_views(), ndjson),
    "general path": (page_views(screen_width=1280.0), orjson.dumps),
}


async def _fixed_salt(_day: object) -> bytes:
    return b"salt"


async def send(store: Store, body: bytes) -> None:
    """POST /events through the embedded ingest path: group commit into ``store``."""
    writer = EventWriter(store)

    async def commit(records: list[bytes]) -> None:
        await writer.write_records(records)

    queue = GroupCommitQueue(commit)
    service = IngestService(
        queue, SaltProvider(_fixed_salt), max_events=100, max_event_bytes=4096,
        max_future_seconds=300, retry_after_seconds=1,
    )  # fmt: skip
    queue.start()
    try:
        request = IngestRequest("/events", {"user-agent": "agent"}, "10.0.0.1", "agent")
        answer = await service.accept(request, body, NOW)
        assert answer["accepted"] == len(PATHS)
    finally:
        await queue.close()


@pytest.mark.parametrize("how", list(BODIES))
async def test_untimestamped_events_of_a_batch_keep_their_order(
    migrated_store: Store, how: str
) -> None:
    events, encode = BODIES[how]
    body = encode(events)
    if how == "general path":
        with pytest.raises(GiveUp):
            decode_batch(body)
    else:
        assert len(decode_batch(body)) == len(PATHS)
    await send(migrated_store, body)
    await derive_once(migrated_store)

    [expected] = sessionize(from_request(events, NOW))
    assert (expected.first.path, expected.events[-1].path) == ("/a", "/c")
    rows = await migrated_store.fetch("SELECT path, ts FROM event ORDER BY ts, event_id")
    assert [(r[0], r[1]) for r in rows] == [(e.path, e.ts) for e in expected.events]
    sessions = await migrated_store.fetch(
        "SELECT landing_path, started_at, ended_at, events, pageviews FROM session"
    )
    assert [tuple(s) for s in sessions] == [("/a", expected.start, expected.end, 3, 3)]
    exit_page = rows[-1][0]
    assert exit_page == "/c"
