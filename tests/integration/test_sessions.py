"""Sessions on both stores: exact against a Python sessionizer, whatever the arrival order."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from support.factories import make_row
from tapioca.derive.jobs import derive_once, rebuild
from tapioca.storage.base import EventStore
from tapioca.storage.rows import EventRow

pytestmark = pytest.mark.integration
GAP = timedelta(minutes=30)
T0 = datetime(2025, 11, 14, 8, 0, tzinfo=UTC)


def traffic(seed: int, count: int) -> list[EventRow]:
    """Visitors with bursts of activity: gaps around the 30-minute edge on purpose."""
    rng = random.Random(seed)
    rows = []
    for v in range(25):
        ts = T0 + timedelta(minutes=rng.randrange(600))
        for i in range(count // 25):
            gap = rng.choice([1, 5, 29, 30, 31, 45, 200, 2]) * 60 + rng.choice([-1, 0, 1])
            ts += timedelta(seconds=gap)
            client = f"c{v}-{i // 7}" if v % 5 == 0 else None  # some sites send session ids
            rows.append(
                make_row(
                    site_id="shop" if v % 2 else "blog",
                    event_id=f"e{v}-{i}",
                    visitor_id=f"u{v}",
                    ts=ts,
                    event_type=rng.choice(["page_view", "page_view", "click"]),
                    path=rng.choice(["/", "/a", "/b"]),
                    channel=rng.choice(["Direct", "Organic Search"]),
                    session_id=client,
                    is_bot=rng.random() < 0.03,
                )
            )
    return rows


def reference(rows: list[EventRow]) -> dict[tuple[str, str, datetime], tuple[Any, ...]]:
    """(site, visitor, start) → (end, events, pageviews, bounce, landing, channel)."""
    groups: dict[tuple[str, ...], list[EventRow]] = defaultdict(list)
    for row in rows:
        if not row.is_bot:
            key = ("c", row.site_id, row.session_id) if row.session_id else (
                "a", row.site_id, row.visitor_id)  # fmt: skip
            groups[key].append(row)
    sessions = {}
    for key, events in groups.items():
        events.sort(key=lambda r: (r.ts, r.event_id))
        runs: list[list[EventRow]] = []
        for event in events:
            same = key[0] == "c" or (runs and event.ts - runs[-1][-1].ts <= GAP)
            if runs and same:
                runs[-1].append(event)
            else:
                runs.append([event])
        for run in runs:
            views = sum(1 for e in run if e.event_type == "page_view")
            sessions[(run[0].site_id, run[0].visitor_id, run[0].ts)] = (
                run[-1].ts, len(run), views, len(run) == 1 and views == 1,
                run[0].path, run[0].channel)  # fmt: skip
    return sessions


async def stored(store: EventStore) -> dict[tuple[str, str, datetime], tuple[Any, ...]]:
    rows = await store.fetch(
        "SELECT site_id, visitor_id, started_at, ended_at, events, pageviews, is_bounce, "
        "landing_path, channel FROM session"
    )
    return {(r[0], r[1], r[2]): tuple(r[3:]) for r in rows}


@pytest.mark.parametrize("seed", [1, 2])
async def test_shuffled_arrival_gives_the_ordered_sessions(
    migrated_store: EventStore, seed: int
) -> None:
    store = migrated_store
    rows = traffic(seed, 1000)
    expected = reference(rows)
    shuffled = rows[:]
    random.Random(seed).shuffle(shuffled)
    for start in range(0, len(shuffled), 97):  # many small out-of-order batches
        await store.write_events(shuffled[start : start + 97])
        if start % 3 == 0:
            await derive_once(store)
    await store.write_events(shuffled[:200])  # replays change nothing
    await derive_once(store)
    assert await stored(store) == expected
    assert len(expected) > 100


async def test_a_late_event_bridges_two_sessions(migrated_store: EventStore) -> None:
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


async def test_rebuild_equals_incremental(migrated_store: EventStore) -> None:
    store = migrated_store
    rows = traffic(3, 600)
    for start in range(0, len(rows), 50):
        await store.write_events(rows[start : start + 50])
        await derive_once(store)
    incremental = await stored(store)
    ids = sorted(await store.fetch("SELECT session_id FROM session"))
    await rebuild(store)
    assert await stored(store) == incremental == reference(rows)
    assert sorted(await store.fetch("SELECT session_id FROM session")) == ids
