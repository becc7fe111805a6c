"""A site on its own domains only takes events from pages there: the browser's Origin
says where a page is, and without one (sendBeacon and image requests of some browsers)
the Referer does. A request with neither names no page (a server) and is not refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import httpx
import pytest

from support.error_shape import assert_error
from tapioca.api.app import create_app
from tapioca.config import Settings
from tapioca.ingest.origins import OriginCheck
from tapioca.ingest.salt import SaltProvider
from tapioca.ingest.service import IngestService
from tapioca.queue.inprocess import GroupCommitQueue
from tapioca.queue.record import decode_one
from tapioca.sites.catalog import SiteCatalog
from tapioca.sites.service import SiteChanges, create_site
from tapioca.storage.base import Store

pytestmark = pytest.mark.integration

EVENT = {"site_id": "shop", "event_type": "page_view", "path": "/"}


async def _salt(_day: date) -> bytes:
    return b"salt"


@pytest.fixture
async def front(migrated_store: Store) -> AsyncIterator[tuple[httpx.AsyncClient, list[bytes]]]:
    await create_site(
        migrated_store, "shop", SiteChanges(domains=["shop.example"], any_origin=False)
    )
    queued: list[bytes] = []

    async def commit(records: list[bytes]) -> None:
        queued.extend(records)

    catalog = SiteCatalog(migrated_store)
    queue = GroupCommitQueue(commit)
    app = create_app(Settings(auto_create_sites=False))
    app.state.ingest = IngestService(
        queue, SaltProvider(_salt), max_events=100, max_event_bytes=65536,
        max_future_seconds=300, retry_after_seconds=1, sites=catalog,
        origins=OriginCheck(catalog, any_by_default=True, new_sites=False),
    )  # fmt: skip
    queue.start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tapioca") as client:
            yield client, queued
    finally:
        await queue.close()


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"referer": "https://www.shop.example/cart?x=1"}, 202),
        ({"referer": "https://elsewhere.example/page"}, 403),
        ({"origin": "https://shop.example", "referer": "https://elsewhere.example/"}, 202),
        ({"origin": "https://elsewhere.example", "referer": "https://shop.example/"}, 403),
        ({}, 202),
    ],
)
async def test_the_referer_stands_for_a_missing_origin(
    front: tuple[httpx.AsyncClient, list[bytes]], headers: dict[str, str], status: int
) -> None:
    client, queued = front
    answer = await client.post("/event", json=EVENT, headers=headers)
    assert answer.status_code == status, answer.text
    if status == 403:
        assert_error(answer, 403, "origin_not_allowed")
        assert queued == []
    else:
        assert [decode_one(record).site_id for record in queued] == ["shop"]
