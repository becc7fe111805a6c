"""An unknown source keeps its first spelling (metrics.md, Source and channel): per site,
whatever process writes the later events, on both stores; known sources keep their name."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from support.reference import first_spellings, from_wire, source_of
from tapioca.ingest.normalize import RequestContext
from tapioca.ingest.protocols.native import encode_events
from tapioca.storage.base import Store
from tapioca.worker.writer import EventWriter

pytestmark = pytest.mark.integration

NOW = datetime(2025, 11, 14, 12, 0, tzinfo=UTC)
# (site, utm_source, referrer) in the order they are written, one request each
SENT = [
    ("shop", "Partner", None),
    ("shop", "partner", None),
    ("blog", "PARTNER", None),
    ("shop", " PARTNER ", None),
    ("shop", "google", None),
    ("shop", None, "https://www.Tea-Blog.example/post"),
    ("shop", "Tea-Blog.Example", None),
    ("blog", "partner", None),
    ("blog", "GOOGLE", None),
]


def event(n: int, site: str, utm_source: str | None, referrer: str | None) -> dict[str, Any]:
    return {
        "site_id": site, "event_id": f"e{n}", "event_type": "page_view", "user_id": f"u{n}",
        "path": "/", "url": "https://shop.example/", "utm_source": utm_source,
        "referrer": referrer, "timestamp": (NOW - timedelta(minutes=n)).isoformat(),
    }  # fmt: skip


def payloads(raw: list[dict[str, Any]]) -> list[bytes]:
    ctx = RequestContext(NOW, "127.0.0.1", "test-agent", b"salt", timedelta(minutes=5), 65536)
    return [payload for _, payload in encode_events(raw, ctx, indexed=True)]


async def test_the_first_spelling_of_an_unknown_source_names_it(migrated_store: Store) -> None:
    sent = [event(n, *fields) for n, fields in enumerate(SENT)]
    for n, raw in enumerate(sent):
        # every second request through a new writer: a process that has seen nothing
        if n % 2 == 0:
            writer = EventWriter(migrated_store)
        await writer.write_records(payloads([raw]))

    rows = await migrated_store.fetch("SELECT event_id, source FROM event")
    stored = {str(r[0]): r[1] for r in rows}
    expected = first_spellings(
        [
            replace(from_wire(raw, NOW), source=source_of(u, r))
            for raw, (_, u, r) in zip(sent, SENT, strict=True)
        ]
    )
    assert stored == {e.event_id: e.source for e in expected}
    assert stored == {
        "e0": "Partner", "e1": "Partner", "e2": "PARTNER", "e3": "Partner", "e4": "Google",
        "e5": "tea-blog.example", "e6": "tea-blog.example", "e7": "PARTNER", "e8": "Google",
    }  # fmt: skip


async def test_one_batch_takes_its_first_row_spelling(migrated_store: Store) -> None:
    raw = [event(n, "shop", spelling, None) for n, spelling in enumerate(["PaRtNeR", "partner"])]
    await EventWriter(migrated_store).write_records(payloads(raw))
    rows = await migrated_store.fetch("SELECT DISTINCT source FROM event")
    assert rows == [("PaRtNeR",)]
