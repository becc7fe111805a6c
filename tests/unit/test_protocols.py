"""The ingest protocols' registry: every route is served by its protocol's pure parse and
listed in /openapi.json; the authorize hook sees the sites of each request and can refuse
it before anything is queued."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import orjson
import pytest

from tapioca.api.app import create_app
from tapioca.config import Settings
from tapioca.errors import TapiocaError
from tapioca.ingest.protocols import PROTOCOLS, ROUTES
from tapioca.ingest.protocols.base import Shape
from tapioca.ingest.salt import SaltProvider
from tapioca.ingest.service import IngestRequest, IngestService
from tapioca.queue.inprocess import GroupCommitQueue
from tapioca.queue.record import decode_one

NOW = datetime(2025, 11, 14, 12, 0, tzinfo=UTC)


def test_every_route_is_in_the_openapi_document() -> None:
    document = create_app(Settings()).openapi()
    for path, (_, route) in ROUTES.items():
        operation = document["paths"][path]["post"]
        assert operation["summary"] == route.summary
        assert set(operation["requestBody"]["content"]) == set(route.body)
        answer = operation["responses"]["202"]["content"]["application/json"]["schema"]
        assert answer == {"$ref": f"#/components/schemas/{route.answer.__name__}"}
        assert route.answer.__name__ in document["components"]["schemas"]
        refused = operation["responses"]["403"]  # an origin the event's site does not accept
        assert refused["content"] == operation["responses"]["422"]["content"]
    assert sum(len(p.routes) for p in PROTOCOLS) == len(ROUTES)  # no path served twice


def test_the_native_routes() -> None:
    shapes = {path: route.shape for path, (protocol, route) in ROUTES.items()
              if protocol.name == "native"}  # fmt: skip
    assert shapes == {"/event": Shape.ONE, "/events": Shape.BATCH, "/api/events": Shape.BATCH}


async def _fixed_salt(_day: date) -> bytes:
    return b"salt"


@pytest.fixture
async def committed() -> AsyncIterator[tuple[GroupCommitQueue, list[bytes]]]:
    records: list[bytes] = []

    async def commit(batch: list[bytes]) -> None:
        records.extend(batch)

    queue = GroupCommitQueue(commit)
    queue.start()
    try:
        yield queue, records
    finally:
        await queue.close()


def service(queue: GroupCommitQueue, authorize: object) -> IngestService:
    return IngestService(
        queue, SaltProvider(_fixed_salt), max_events=100, max_event_bytes=65536,
        max_future_seconds=300, retry_after_seconds=1, authorize=authorize,  # type: ignore[arg-type]
    )  # fmt: skip


async def test_authorize_sees_the_sites_and_can_refuse(
    committed: tuple[GroupCommitQueue, list[bytes]],
) -> None:
    queue, records = committed
    seen: list[tuple[str, frozenset[str]]] = []

    async def authorize(request: IngestRequest, sites: frozenset[str]) -> None:
        seen.append((request.headers.get("x-key", ""), sites))
        if "locked" in sites:
            raise TapiocaError(403, "forbidden", "No key for site 'locked'.")

    ingest = service(queue, authorize)
    body = orjson.dumps([
        {"site_id": "open", "event_type": "a", "event_id": "1"},
        {"site_id": "other", "event_type": "b", "event_id": "2"},
    ])  # fmt: skip
    request = IngestRequest("/events", {"x-key": "k1"}, "10.0.0.1")
    answer = await ingest.accept(request, body, NOW)
    assert answer == {"status": "accepted", "accepted": 2, "event_ids": ["1", "2"]}
    assert [decode_one(r).site_id for r in records] == ["open", "other"]

    locked = orjson.dumps({"site_id": "locked", "event_type": "a", "event_id": "3"})
    with pytest.raises(TapiocaError) as refused:
        await ingest.accept(IngestRequest("/event", {"x-key": "k2"}, "10.0.0.1"), locked, NOW)
    assert refused.value.status == 403
    await asyncio.sleep(0)
    assert len(records) == 2  # nothing of the refused request was queued
    assert seen == [("k1", frozenset({"open", "other"})), ("k2", frozenset({"locked"}))]
