"""Rollups on both stores: equal to the reference's figures over the events
(support/reference.py), and the same whether built incrementally from shuffled batches
or rebuilt from scratch."""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from support.factories import burst_rows, make_row
from support.reference import (
    Event,
    Question,
    WebReports,
    counted,
    event_figures,
    from_rows,
)
from tapioca.derive import jobs
from tapioca.derive.days import DAY_COST
from tapioca.derive.jobs import derive_once, rebuild
from tapioca.kit.sketch import Sketch
from tapioca.reports import web
from tapioca.reports.executor import Executor
from tapioca.reports.scope import resolve_scope
from tapioca.storage.base import Store
from tapioca.storage.duckdb_store import DuckDBStore
from tapioca.storage.rows import EventRow

pytestmark = pytest.mark.integration
BERLIN = ZoneInfo("Europe/Berlin")


def _hour(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def expected_hours(rows: list[EventRow]) -> dict[tuple[Any, ...], tuple[int, int, int]]:
    """(site, hour, dim, value) → (events, pageviews, visitors) for the dimensions
    the traffic varies (total, path, event_type), by the reference's figures."""
    cells: dict[tuple[Any, ...], list[Event]] = defaultdict(list)
    for e in counted(from_rows(rows)):
        hour = _hour(e.ts)
        cells[(e.site_id, hour, "", None)].append(e)
        cells[(e.site_id, hour, "path", e.path)].append(e)
        cells[(e.site_id, hour, "event_type", e.event_type)].append(e)
    figures = {key: event_figures(events) for key, events in cells.items()}
    return {key: (f["events"], f["pageviews"], f["visitors"]) for key, f in figures.items()}


def expected_days(rows: list[EventRow], zone: ZoneInfo) -> dict[tuple[Any, ...], int]:
    """(site, local day, value) → visitors of the path dimension, by the reference."""
    cells: dict[tuple[Any, ...], list[Event]] = defaultdict(list)
    for e in counted(from_rows(rows)):
        cells[(e.site_id, e.ts.astimezone(zone).date(), e.path)].append(e)
    return {key: event_figures(events)["visitors"] for key, events in cells.items()}


async def hours(store: Store, dims: tuple[str, ...]) -> dict[tuple[Any, ...], Any]:
    marks = ", ".join(f"'{d}'" for d in dims)
    rows = await store.fetch(
        "SELECT site_id, hour, dim, value, events, pageviews, visitors FROM rollup_hour "
        f"WHERE dim IN ({marks})"
    )
    return {(r[0], r[1], r[2], r[3]): tuple(r[4:]) for r in rows}


async def everything(store: Store) -> list[Any]:
    out = []
    for table in ("rollup_hour", "rollup_session_hour", "rollup_day", "rollup_week",
                  "rollup_sketch"):  # fmt: skip
        rows = await store.fetch(f"SELECT * FROM {table}")
        out.append(sorted((tuple(bytes(v) if isinstance(v, memoryview) else v
                                 for v in r) for r in rows), key=repr))  # fmt: skip
    return out


async def test_hourly_and_daily_rollups_match_the_events(migrated_store: Store) -> None:
    store = migrated_store
    rows = burst_rows(5, 1500)
    await store.execute("INSERT INTO site (id, timezone) VALUES ($1, $2)", ["shop", BERLIN.key])
    shuffled = rows[:]
    random.Random(5).shuffle(shuffled)
    for start in range(0, len(shuffled), 113):
        await store.write_events(shuffled[start : start + 113])
        if start % 2:
            await derive_once(store)
    await store.write_events(shuffled[:300])  # replays change nothing
    await derive_once(store)

    assert await hours(store, ("", "path", "event_type")) == expected_hours(rows)

    days = await store.fetch(
        "SELECT d.site_id, d.day, d.tz, d.value, d.visitors, k.sketch FROM rollup_day d "
        "JOIN rollup_sketch k ON k.id = d.sketch_id WHERE d.dim = 'path'"
    )
    zones = {"shop": BERLIN, "blog": ZoneInfo("UTC")}
    got = {}
    for site, day, tz, value, visitors, blob in days:
        assert tz == zones[site].key
        assert Sketch.from_bytes(bytes(blob)).count() == visitors
        got[(site, day, value)] = visitors
    want = {k: v for k, v in expected_days(rows, BERLIN).items() if k[0] == "shop"}
    want |= {k: v for k, v in expected_days(rows, ZoneInfo("UTC")).items() if k[0] == "blog"}
    assert got == want
    assert any(isinstance(k[1], date) and k[0] == "shop" for k in got)

    incremental = await everything(store)
    await rebuild(store)
    assert await everything(store) == incremental


async def test_session_rollups_follow_a_bridging_late_event(migrated_store: Store) -> None:
    store = migrated_store

    t0 = datetime(2025, 11, 14, 9, 50, tzinfo=ZoneInfo("UTC"))

    def at(minutes: int, name: str, channel: str) -> EventRow:
        return make_row(event_id=name, visitor_id="v", ts=t0 + timedelta(minutes=minutes),
                        channel=channel)  # fmt: skip

    await store.write_events([at(0, "a", "Direct"), at(50, "c", "Email")])
    await derive_once(store)
    sessions = await store.fetch(
        "SELECT hour, value, sessions FROM rollup_session_hour WHERE dim = 'channel' ORDER BY hour"
    )
    assert [(r[1], r[2]) for r in sessions] == [("Direct", 1), ("Email", 1)]
    await store.write_events([at(25, "b", "Email")])  # joins both into the 09:50 session
    await derive_once(store)
    sessions = await store.fetch(
        "SELECT hour, value, sessions, events FROM rollup_session_hour WHERE dim = 'channel'"
    )
    assert [(r[1], r[2], r[3]) for r in sessions] == [("Direct", 1, 3)]


async def test_a_new_site_zone_recomputes_the_daily_rows(migrated_store: Store) -> None:
    store = migrated_store
    from tapioca.sites.service import SiteChanges, update_site

    rows = [r for r in burst_rows(6, 800) if r.site_id == "shop"]
    await store.write_events(rows)
    await derive_once(store)
    utc_days = {(r[0], r[1]) for r in await store.fetch("SELECT tz, day FROM rollup_day")}
    assert {tz for tz, _ in utc_days} == {"UTC"}

    await update_site(store, "shop", SiteChanges(timezone="Asia/Tokyo"))
    # until every day is redone in the new zone, visitors over days come from events
    now = max(r.ts for r in rows)  # the default range: the 30 days up to it
    scope = await resolve_scope(store, "shop", None, None, None, None, None, now)
    want = WebReports(from_rows(rows), {"shop": "Asia/Tokyo"}, now).overview(Question(tz=None))
    assert want["pageviews"] > 0
    assert await store.fetch("SELECT site_id FROM rollup_redo") == [("shop",)]
    assert await web.overview(Executor(store), scope) == want
    assert await derive_once(store) == 0  # no new events, but the dirty hours are redone
    assert not await store.fetch("SELECT 1 FROM rollup_redo")
    assert await web.overview(Executor(store), scope) == want
    got = {
        (r[0], r[1], r[2]): r[3]
        for r in await store.fetch(
            "SELECT site_id, day, value, visitors FROM rollup_day "
            "WHERE dim = 'path' AND tz = 'Asia/Tokyo'"
        )
    }
    assert got == expected_days(rows, ZoneInfo("Asia/Tokyo"))
    assert not await store.fetch("SELECT 1 FROM rollup_dirty")


async def test_visitors_over_weeks_of_a_large_site(migrated_store: Store) -> None:
    """Past 4,096 visitors the sketches estimate: within 1 % over three weeks, exact for
    a single day, and the week rows are the union of their days."""
    store = migrated_store
    t0 = datetime(2025, 11, 3, tzinfo=ZoneInfo("UTC"))  # a Monday
    rows = [
        make_row(
            event_id=f"e{i}",
            visitor_id=f"u{(i * 7919) % 12_000}",
            ts=t0 + timedelta(seconds=i * 60),
        )
        for i in range(30_240)  # 21 days, one event a minute
    ]
    for start in range(0, len(rows), 5_000):
        await store.write_events(rows[start : start + 5_000])
    await derive_once(store)

    weeks = await store.fetch("SELECT DISTINCT week FROM rollup_week WHERE site_id = 'shop'")
    assert len(weeks) == 3
    ref = WebReports(from_rows(rows))
    # three weeks; one day; ten days: one whole week (Mon 10 to Sun 16) and three other days
    for q, estimated in [
        (Question(start="2025-11-03", end="2025-11-23"), True),
        (Question(day="2025-11-10"), False),
        (Question(start="2025-11-08", end="2025-11-17"), True),
    ]:
        scope = await resolve_scope(store, q.site, q.day, q.start, q.end, None, None, t0)
        got, want = await web.overview(Executor(store), scope), ref.overview(q)
        if estimated:
            assert want["visitors"] > 4_096
            assert abs(got["visitors"] - want["visitors"]) / want["visitors"] <= 0.01, q
            got["visitors"] = want["visitors"]
        assert got == want, q  # every other figure is exact


async def test_daily_rollups_can_wait_while_hours_stay_current(migrated_store: Store) -> None:
    store = migrated_store
    rows = [r for r in burst_rows(8, 1000) if r.site_id == "shop"]
    half = len(rows) // 2
    await store.write_events(rows[:half])
    await derive_once(store)
    before = await store.fetch("SELECT day, value, visitors FROM rollup_day ORDER BY 1, 2")
    await store.write_events(rows[half:])
    assert await derive_once(store, days=False) > 0
    assert await hours(store, ("", "path")) == {
        k: v for k, v in expected_hours(rows).items() if k[2] in ("", "path")
    }
    assert await store.fetch("SELECT day, value, visitors FROM rollup_day ORDER BY 1, 2") == before
    assert await store.fetch("SELECT 1 FROM rollup_dirty_day")
    assert await derive_once(store) == 0  # no new events: only the days that waited
    days = await store.fetch(
        "SELECT site_id, day, value, visitors FROM rollup_day WHERE dim = 'path'"
    )
    assert {(r[0], r[1], r[2]): r[3] for r in days} == expected_days(rows, ZoneInfo("UTC"))
    assert not await store.fetch("SELECT 1 FROM rollup_dirty_day")


async def test_a_run_redoes_the_newest_days_its_budget_holds(migrated_store: Store) -> None:
    store = migrated_store
    t0 = datetime(2025, 11, 3, 12, tzinfo=ZoneInfo("UTC"))
    rows = [make_row(event_id=f"e{i}", visitor_id=f"u{i % 5}", ts=t0 + timedelta(hours=6 * i))
            for i in range(40)]  # fmt: skip
    await store.write_events(rows)
    await derive_once(store, days=False)
    each = DAY_COST + 4  # four events a day
    await jobs._run(store, True, 2 * each + 1)  # room before the third: it is taken too
    done = sorted({r[0] for r in await store.fetch("SELECT day FROM rollup_day")})
    newest = sorted({e.ts.date() for e in from_rows(rows)})[-3:]
    assert done == newest
    assert await store.fetch("SELECT 1 FROM rollup_dirty_day")
    await jobs._run(store, True, 1)  # at least one day, however small the budget
    assert len({r[0] for r in await store.fetch("SELECT day FROM rollup_day")}) == 4
    await derive_once(store)
    assert await hours(store, ("path",)) == {
        k: v for k, v in expected_hours(rows).items() if k[2] == "path"
    }
    days = await store.fetch(
        "SELECT site_id, day, value, visitors FROM rollup_day WHERE dim = 'path'"
    )
    assert {(r[0], r[1], r[2]): r[3] for r in days} == expected_days(rows, ZoneInfo("UTC"))


async def test_one_live_run_catches_up_a_flood_of_sites_and_a_backfill(
    migrated_store: Store,
) -> None:
    """300 new sites of one event and 90 days of one site: 390 site-days, redone by one
    run of the serving loop, equal to a rebuild from the events."""
    store = migrated_store
    t0 = datetime(2025, 11, 3, 12, tzinfo=ZoneInfo("UTC"))
    flood = [make_row(site_id=f"s-{i:03d}", event_id=f"f{i}", visitor_id=f"u{i}", ts=t0,
                      path=f"/p{i % 7}") for i in range(300)]  # fmt: skip
    backfill = [make_row(event_id=f"b{d}-{k}", visitor_id=f"u{(d + k) % 9}", path=f"/b{k}",
                         ts=t0 - timedelta(days=d, hours=3 * k))
                for d in range(90) for k in range(2)]  # fmt: skip
    rows = flood + backfill
    await store.write_events(rows)
    await derive_once(store, days=False)
    (marked,), *_ = await store.fetch(
        "SELECT count(DISTINCT site_id || CAST(CAST(hour AS DATE) AS VARCHAR)) "
        "FROM rollup_dirty_day"
    )
    assert marked >= 390
    await jobs._run(store, True, jobs.LIVE_CHUNK)
    assert not await store.fetch("SELECT 1 FROM rollup_dirty_day")
    days = await store.fetch(
        "SELECT site_id, day, value, visitors FROM rollup_day WHERE dim = 'path'"
    )
    assert {(r[0], r[1], r[2]): r[3] for r in days} == expected_days(rows, ZoneInfo("UTC"))
    (weeks,), *_ = await store.fetch("SELECT count(DISTINCT site_id) FROM rollup_week")
    assert weeks == 301
    incremental = await everything(store)
    await rebuild(store)
    assert await everything(store) == incremental


async def test_visitors_read_again_when_a_derive_run_replaces_their_sketches(
    migrated_store: Store,
) -> None:
    """A sketch id names its content: a redone day gets a new id and the old sketch is
    deleted. A report holding the day rows read before that reads them again."""
    from tapioca.reports import visitors
    from tapioca.reports.executor import SketchGone

    store = migrated_store
    t0 = datetime(2025, 11, 13, 12, tzinfo=ZoneInfo("UTC"))
    rows = [make_row(event_id=f"e{i}", visitor_id=f"u{i}", ts=t0 + timedelta(hours=20 * (i % 2)))
            for i in range(10)]  # fmt: skip
    await store.write_events(rows)
    await derive_once(store)
    scope = await resolve_scope(store, "shop", None, "2025-11-13", "2025-11-14", None, None, t0)
    span = scope.span
    ex = Executor(store)
    before = await visitors.read_days(ex, scope, "", span)
    assert not before.fresh
    assert await visitors.day_visitors(ex, scope, "", span, days=before) == {(None, None): 10}

    await store.write_events([make_row(event_id="late", visitor_id="u-late", ts=t0)])
    await derive_once(store)
    scope = await resolve_scope(store, "shop", None, "2025-11-13", "2025-11-14", None, None, t0)
    after = await visitors.read_days(ex, scope, "", span)
    assert {p[3] for p in after.parts} != {p[3] for p in before.parts}  # day 13: a new sketch
    ex = Executor(store)  # nothing kept: the old sketches must be read from the store
    with pytest.raises(SketchGone):
        await visitors._count(ex, before, None)
    assert await visitors.day_visitors(ex, scope, "", span, days=before) == {(None, None): 11}


async def test_visitors_of_several_waiting_days_do_not_move_when_the_days_are_redone(
    migrated_store: Store,
) -> None:
    """6,000 visitors over 3 days (an estimate past 4,096): while the days wait to be redone
    the report reads them from events, and counts their sketch, as the union of the daily
    sketches will be, not the exact number it could count then; the answer is the same
    before and after the daily job."""
    from tapioca.kit.sketch import EXPLICIT_MAX, hashes_from_hex
    from tapioca.reports import visitors

    store = migrated_store
    t0 = datetime(2025, 11, 13, 12, tzinfo=ZoneInfo("UTC"))
    rows = [make_row(event_id=f"e{i}", visitor_id=f"u{i}", ts=t0 + timedelta(days=i % 3))
            for i in range(6000)]  # fmt: skip
    await store.write_events(rows)
    await derive_once(store, days=False)
    first, last = "2025-11-13", "2025-11-15"

    async def count() -> tuple[visitors.Days, int]:
        scope = await resolve_scope(store, "shop", None, first, last, None, None, t0)
        ex = Executor(store)
        days = await visitors.read_days(ex, scope, "", scope.span)
        counted = await visitors.day_visitors(ex, scope, "", scope.span, days=days)
        return days, counted[(None, None)]

    waiting, before = await count()
    assert waiting.waiting == 3 and not waiting.parts and len(waiting.fresh) == 1
    assert waiting.fresh[0][2] == 6000  # the exact count, which the answer is not
    digests = [hashlib.md5(f"u{i}".encode()).hexdigest()[:16] for i in range(6000)]
    sketched = Sketch.of(hashes_from_hex(digests)).count()
    assert sketched != 6000 and EXPLICIT_MAX < 6000
    assert before == sketched
    await derive_once(store)
    redone, after = await count()
    assert redone.parts and not redone.fresh
    assert after == before


async def test_embedded_rollups_give_back_the_room_of_replaced_rows(tmp_path: Path) -> None:
    """Every derive run replaces the rows of the hours it touched. On the embedded store
    a checkpoint reclaims the deleted ones (DuckDB does so only in a table without an
    index), so the rollups of a live site keep the size of their live rows instead of
    growing with every run."""
    store = DuckDBStore(tmp_path / "live.duckdb", readers=1)
    await store.migrate()
    t0 = datetime(2025, 11, 13, 12, tzinfo=ZoneInfo("UTC"))
    tables = ("rollup_hour", "rollup_session_hour", "rollup_sales_hour", "rollup_commerce_hour")

    async def stored(table: str) -> int:
        """Rows the table's storage holds, deleted ones not reclaimed included."""
        ((n,),) = await store.fetch(
            f"SELECT coalesce(sum(count), 0) FROM pragma_storage_info('{table}') "
            "WHERE column_id = 0 AND segment_type <> 'VALIDITY'"
        )
        return int(n)

    try:
        runs = 30
        for phase in range(2):
            for i in range(runs):  # one new event a run, all in the same hour
                n = phase * runs + i
                row = make_row(event_id=f"e{n}", visitor_id=f"u{n % 7}", path=f"/p{n % 5}",
                               ts=t0 + timedelta(seconds=n))  # fmt: skip
                if n % 3 == 0:
                    row = row._replace(event_type="purchase", transaction_id=f"T{n}",
                                       revenue=Decimal(5))  # fmt: skip
                await store.write_events([row])
                await derive_once(store, days=False)
            await store.execute("CHECKPOINT")
        for table in tables:
            ((live,),) = await store.fetch(f"SELECT count(*) FROM {table}")
            assert live > 0
            # every run rewrote the hour's rows: kept without reclaiming, 2 * runs * live
            assert await stored(table) <= (runs + 1) * live, table
    finally:
        await store.close()
