"""GET /stats of one day in the site's zone: answered from the rollups plus the events the
derive job has not folded in yet, and still exact, on both stores. The expected numbers
come from the reference (support/reference.py) over every event written."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI

from support.credentials import install_gate
from support.factories import make_row
from support.reference import from_row, from_rows, stats
from tapioca.api.reports import router
from tapioca.derive import jobs
from tapioca.derive.jobs import derive_once
from tapioca.kit.timerange import DateRange
from tapioca.reports.executor import Executor
from tapioca.reports.stats import Stats, site_stats, stats_from_rollups
from tapioca.sites.service import SiteChanges, update_site
from tapioca.sites.site import Site
from tapioca.storage.base import Store
from tapioca.storage.duckdb_store import DuckDBStore
from tapioca.storage.rows import EventRow

pytestmark = pytest.mark.integration
BERLIN = ZoneInfo("Europe/Berlin")
# a 25-hour day (Berlin leaves summer time), two more, and one with no rollups
DAYS = [date(2025, 10, 26), date(2025, 11, 13), date(2025, 11, 14), date(2025, 11, 15)]
SITE = Site("shop", timezone=BERLIN)


def events(seed: int, count: int, days: list[date], visitors: int, prefix: str) -> list[EventRow]:
    """Several visitors over the hours of ``days`` (Berlin), with bots, other event types,
    views without a path, and views near both midnights."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        day = rng.choice(days)
        start = datetime(day.year, day.month, day.day, tzinfo=BERLIN)
        offset = rng.choice([0, 1, 86_399, rng.randrange(86_400)])
        rows.append(
            make_row(
                event_id=f"{prefix}{i}",
                visitor_id=f"u{rng.randrange(visitors)}",
                ts=(start + timedelta(seconds=offset)).astimezone(UTC),
                event_type=rng.choice(["page_view", "page_view", "click"]),
                path=rng.choice(["/", "/a", "/b", "/c", None]),
                is_bot=rng.random() < 0.08,
            )
        )
    return rows


def reference_stats(rows: list[EventRow], day: date, zone: ZoneInfo, limit: int) -> dict[str, Any]:
    """The /stats answer for "shop" on ``day`` in ``zone`` (support/reference.py)."""
    return stats(from_rows(rows), "shop", day, zone.key, limit)


def expected(rows: list[EventRow], day: date, limit: int, zone: ZoneInfo = BERLIN) -> Stats:
    """The same answer as the rollups give it: (views, users, [(path, views)])."""
    ref = reference_stats(rows, day, zone, limit)
    paths = [(p["path"], p["views"]) for p in ref["top_paths"]]
    return ref["total_views"], ref["unique_users"], paths


async def fast(
    store: Store, day: date, limit: int, zone: ZoneInfo = BERLIN, site: Site = SITE
) -> Stats | None:
    return await stats_from_rollups(Executor(store), site, DateRange(day, day, zone), limit)


async def over_http(store: Store, day: date, limit: int) -> object:
    app = FastAPI()
    app.include_router(router)
    app.state.reports = Executor(store)
    headers = await install_gate(app, store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tapioca") as client:
        query = {"site_id": "shop", "date": day.isoformat(), "limit": str(limit)}
        response = await client.get("/stats", params=query, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def check(store: Store, rows: list[EventRow], days: list[date], rolled: bool) -> None:
    """Every answer equals the reference; ``rolled``: the rollups gave it."""
    for day in days:
        for limit in (1, 2, 10):
            want = reference_stats(rows, day, BERLIN, limit)
            assert await site_stats(Executor(store), "shop", day.isoformat(), None, limit) == want
            got = await fast(store, day, limit)
            assert (got == expected(rows, day, limit)) if rolled else got is None, (day, limit)
        assert await over_http(store, day, 10) == reference_stats(rows, day, BERLIN, 10)


async def test_stats_add_the_events_not_derived_yet(migrated_store: Store) -> None:
    store = migrated_store
    await store.execute("INSERT INTO site (id, timezone) VALUES ($1, $2)", ["shop", BERLIN.key])
    noon = datetime(2025, 11, 14, 12, tzinfo=BERLIN)
    first = [*events(1, 1200, DAYS[:3], 40, "a"),
             make_row(event_id="bot", visitor_id="u-bot", ts=noon, is_bot=True)]  # fmt: skip
    await store.write_events(first)
    await derive_once(store)
    await check(store, first, DAYS, rolled=True)

    # more events into the derived days and a new one, not derived: visitors seen that
    # day, seen only on other days, seen that day only as a bot, and new ones
    human = make_row(event_id="human", visitor_id="u-bot", ts=noon + timedelta(hours=1))
    late = [*events(2, 600, DAYS, 60, "b"), human]
    rows = first + late
    await store.write_events(late)
    assert not await store.fetch("SELECT 1 FROM rollup_dirty_day")
    assert await fast(store, DAYS[1], 10) != expected(first, DAYS[1], 10)  # the tail counts
    await check(store, rows, DAYS, rolled=True)

    # other zones (the daily rows are in the site's), and half-hour zones read the events
    for zone in (ZoneInfo("UTC"), ZoneInfo("Asia/Kolkata")):
        assert await fast(store, DAYS[1], 10, zone) is None
        got = await site_stats(Executor(store), "shop", DAYS[1].isoformat(), zone.key, 10)
        assert got == reference_stats(rows, DAYS[1], zone, 10)

    # hourly rollups current, daily ones not redone yet: those days read the events
    await derive_once(store, days=False)
    await check(store, rows, DAYS, rolled=False)
    await derive_once(store)
    await check(store, rows, DAYS, rolled=True)

    # a late event marks its day only: the other days keep the rollups
    old = make_row(event_id="old", visitor_id="u-new", ts=first[5].ts, path="/z")
    rows.append(old)
    await store.write_events([old])
    await derive_once(store, days=False)
    marked = from_row(old).ts.astimezone(BERLIN).date()
    await check(store, rows, [marked], rolled=False)
    await check(store, rows, [d for d in DAYS if d != marked], rolled=True)
    clean = next(d for d in DAYS if d != marked)
    await store.execute("INSERT INTO rollup_redo (site_id) VALUES ('shop')")
    assert await fast(store, clean, 10) is None  # the site's days are being redone
    await store.execute("DELETE FROM rollup_redo")

    # a new site zone: until its days are redone in it, the events answer
    paris = ZoneInfo("Europe/Paris")
    await derive_once(store)
    await update_site(store, "shop", SiteChanges(timezone=paris.key))
    assert await fast(store, DAYS[1], 10, paris, Site("shop", timezone=paris)) is None
    await derive_once(store)
    rolled = await fast(store, DAYS[1], 10, paris, Site("shop", timezone=paris))
    assert rolled == expected(rows, DAYS[1], 10, paris)

    # a zone set behind the service's back, no day marked: no daily rows in it
    york = ZoneInfo("America/New_York")
    await store.execute("UPDATE site SET timezone = $1 WHERE id = 'shop'", [york.key])
    assert await fast(store, DAYS[1], 10, york, Site("shop", timezone=york)) is None
    got = await site_stats(Executor(store), "shop", DAYS[1].isoformat(), None, 10)
    assert got == reference_stats(rows, DAYS[1], york, 10)


async def test_a_run_cut_at_a_chunk_leaves_later_events_to_the_tail(
    migrated_store: Store,
) -> None:
    """A run that stops at a chunk recomputes hours and days that hold later events too:
    those must stay out of the rollups, or /stats would count them twice."""
    store = migrated_store
    await store.execute("INSERT INTO site (id, timezone) VALUES ($1, $2)", ["shop", BERLIN.key])
    rows = events(3, 800, DAYS[1:2], 30, "c")
    await store.write_events(rows)  # seq in write order: both halves span the same hours
    await jobs._run(store, True, 400)
    assert await store.fetch("SELECT last_seq FROM derive_state WHERE name = 'web'") == [(400,)]
    await check(store, rows, DAYS[1:2], rolled=True)
    await derive_once(store)
    await check(store, rows, DAYS[1:2], rolled=True)


async def test_top_paths_merge_rollups_and_new_events_ties_by_path(
    migrated_store: Store,
) -> None:
    store = migrated_store
    await store.execute("INSERT INTO site (id, timezone) VALUES ($1, $2)", ["shop", BERLIN.key])
    noon = datetime(2025, 11, 14, 11, tzinfo=UTC)

    def view(n: int, path: str | None, event_type: str = "page_view") -> EventRow:
        ts = noon + timedelta(minutes=7 * n)
        return make_row(event_id=f"p{n}", visitor_id=f"u{n % 3}", ts=ts, path=path,
                        event_type=event_type)  # fmt: skip

    derived = [view(0, "/y"), view(1, "/y"), view(2, "/x"), view(3, "/w", "click"), view(4, None)]
    await store.write_events(derived)
    await derive_once(store)
    tail = [view(5, "/x"), view(6, "/x"), view(7, "/y"), view(8, "/w", "click"), view(9, None)]
    await store.write_events(tail)
    day = date(2025, 11, 14)
    assert await fast(store, day, 1) == (8, 3, [("/x", 3)])  # ties by path, /w never viewed
    assert await fast(store, day, 5) == (8, 3, [("/x", 3), ("/y", 3)])
    await check(store, derived + tail, [day], rolled=True)


async def test_ranges_and_all_time_count_the_events_in_one_scan(migrated_store: Store) -> None:
    """/stats of several days, and of all time, counts the events (one scan, grouped per
    visitor and per path at once): exact before and after the derive job, with bots,
    views without a path, other event types, a visitor seen only as a bot, and top paths
    tied (byte order: "/a" < "/b" < "/é") and a path only clicked."""
    store = migrated_store
    for site, zone in (("shop", BERLIN.key), ("ties", "UTC")):
        await store.execute("INSERT INTO site (id, timezone) VALUES ($1, $2)", [site, zone])
    rows = [*events(4, 900, DAYS, 35, "r"),
            make_row(event_id="only-bot", visitor_id="u-bot", ts=datetime(2025, 11, 13, 9,
                     tzinfo=UTC), is_bot=True)]  # fmt: skip
    noon = datetime(2025, 11, 14, 12, tzinfo=UTC)
    paths = ["/é", "/b", "/a", "/é", "/b", "/a", "/z", None]
    ties = [make_row(site_id="ties", event_id=f"t{n}", visitor_id=f"v{n % 3}",
                     ts=noon + timedelta(hours=n * 13), path=path)
            for n, path in enumerate(paths)]  # fmt: skip
    ties.append(make_row(site_id="ties", event_id="click", visitor_id="v0", ts=noon,
                         event_type="click", path="/w"))  # a path never viewed  # fmt: skip
    await store.write_events(rows + ties)
    spans = [(DAYS[0], DAYS[-1]), (DAYS[1], DAYS[2]), (DAYS[2], DAYS[3]), (None, None)]
    for _ in range(2):  # not derived, then derived
        for first, last in spans:
            for limit in (1, 2, 10):
                dates = [str(d) if d else None for d in (first, last)]
                got = await site_stats(Executor(store), "shop", None, None, limit, *dates)
                want = stats(from_rows(rows), "shop", first, BERLIN.key, limit, last)
                assert got == want, (first, last, limit)
        for limit, top in ((1, ["/a"]), (2, ["/a", "/b"]), (10, ["/a", "/b", "/é", "/z"])):
            got = await site_stats(Executor(store), "ties", None, None, limit, "2025-11-14",
                                   "2025-11-19")  # fmt: skip
            assert [p["path"] for p in got["top_paths"]] == top
            assert got["total_views"] == 8 and got["unique_users"] == 3
            assert got == stats(from_rows(ties), "ties", date(2025, 11, 14), "UTC", limit,
                                date(2025, 11, 19))  # fmt: skip
        await derive_once(store)


async def test_embedded_answers_are_given_again_only_until_the_next_write(
    tmp_path: Path,
) -> None:
    """The embedded store keeps /stats answers until its next commit: a repeated question
    is answered without reading, any write or derive run makes the next answer fresh."""
    store = DuckDBStore(tmp_path / "a.duckdb", readers=2)
    try:
        await store.migrate()
        await store.execute("INSERT INTO site (id, timezone) VALUES ($1, $2)", ["shop", BERLIN.key])
        rows = events(7, 400, DAYS[:2], 20, "k")
        await store.write_events(rows)
        await derive_once(store)
        day = DAYS[1].isoformat()
        first = await site_stats(Executor(store), "shop", day, None, 5)
        assert first == reference_stats(rows, DAYS[1], BERLIN, 5)
        hits = store.answers.hits
        assert await site_stats(Executor(store), "shop", day, None, 5) == first
        assert store.answers.hits == hits + 1
        other = await site_stats(Executor(store), "shop", day, None, 2)  # another question
        assert other == reference_stats(rows, DAYS[1], BERLIN, 2) != first

        noon = datetime(2025, 11, 13, 12, tzinfo=BERLIN)
        late = make_row(event_id="late", visitor_id="u-late", ts=noon, path="/new")
        rows.append(late)
        await store.write_events([late])  # not derived: the answer reads the new event
        second = await site_stats(Executor(store), "shop", day, None, 5)
        assert second == reference_stats(rows, DAYS[1], BERLIN, 5)
        assert second["unique_users"] == first["unique_users"] + 1
        await derive_once(store)
        assert await site_stats(Executor(store), "shop", day, None, 5) == second
        assert store.answers.hits == hits + 1
    finally:
        await store.close()

    off = DuckDBStore(tmp_path / "a.duckdb", readers=1, answer_slots=0)
    try:
        for _ in range(3):
            assert await site_stats(Executor(off), "shop", day, None, 5) == second
        assert off.answers.hits == 0
    finally:
        await off.close()
