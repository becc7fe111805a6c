"""Sessions on both stores: exact against the reference's sessions (support/reference.py),
whatever the arrival order."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from support.factories import burst_rows, make_row
from support.reference import from_rows, sessionize
from tapioca.derive.jobs import derive_once, rebuild
from tapioca.storage.base import Store
from tapioca.storage.rows import EventRow

pytestmark = pytest.mark.integration
T0 = datetime(2025, 11, 14, 8, 0, tzinfo=UTC)


def expected(rows: list[EventRow]) -> dict[tuple[str, str, datetime], tuple[Any, ...]]:
    """(site, visitor, start) → (end, events, pageviews, bounce, landing, channel) of the
    reference's sessions (support/reference.py)."""
    return {
        (s.first.site_id, s.first.user, s.start): (
            s.end,
            len(s.events),
            s.pageviews,
            s.is_bounce,
            s.first.path,
            s.first.channel,
        )
        for s in sessionize(from_rows(rows))
    }


async def stored(store: Store) -> dict[tuple[str, str, datetime], tuple[Any, ...]]:
    rows = await store.fetch(
        "SELECT site_id, visitor_id, started_at, ended_at, events, pageviews, is_bounce, "
        "landing_path, channel FROM session"
    )
    return {(r[0], r[1], r[2]): tuple(r[3:]) for r in rows}


@pytest.mark.parametrize("seed", [1, 2])
async def test_shuffled_arrival_gives_the_ordered_sessions(
    migrated_store: Store, seed: int
) -> None:
    store = migrated_store
    rows = burst_rows(seed, 1000)
    want = expected(rows)
    shuffled = rows[:]
    random.Random(seed).shuffle(shuffled)
    for start in range(0, len(shuffled), 97):  # many small out-of-order batches
        await store.write_events(shuffled[start : start + 97])
        if start % 3 == 0:
            await derive_once(store)
    await store.write_events(shuffled[:200])  # replays change nothing
    await derive_once(store)
    assert await stored(store) == want
    assert len(want) > 100


async def test_a_late_event_bridges_two_sessions(migrated_store: Store) -> None:
    store = migrated_store

    def at(minutes: int, name: str) -> EventRow:
        return make_row(event_id=name, visitor_id="v", ts=T0 + timedelta(minutes=minutes))

    await store.write_events([at(0, "a"), at(50, "c")])
    await derive_once(store)
    assert len(await stored(store)) == 2
    await store.write_events([at(25, "b")])  # within 30 minutes of both
    await derive_once(store)
    assert list((await stored(store)).values()) == [
        (T0 + timedelta(minutes=50), 3, 3, False, "/", None)
    ]
    ids = await store.fetch("SELECT session_id FROM session")
    await store.write_events([at(200, "d")])  # an unrelated later session
    await derive_once(store)
    assert ids[0] in await store.fetch("SELECT session_id FROM session")  # stable id


async def test_rebuild_equals_incremental(migrated_store: Store) -> None:
    store = migrated_store
    rows = burst_rows(3, 600)
    for start in range(0, len(rows), 50):
        await store.write_events(rows[start : start + 50])
        await derive_once(store)
    incremental = await stored(store)
    ids = sorted(await store.fetch("SELECT session_id FROM session"))
    await rebuild(store)
    assert await stored(store) == incremental == expected(rows)
    assert sorted(await store.fetch("SELECT session_id FROM session")) == ids
