"""A derive run over two connections (runner.Split, jobs.WEB_SPLIT): on a second
PostgreSQL connection the hourly event rollups are made ahead (committed at once, moved
into rollup_hour by the run) and the users' first events and active days beside, while
the sessions, commerce and the other rollups are made on the run's own; the embedded
store, and a pool of one connection, run it all in the one session. A failure on either
side undoes the run's position; what the other side committed is made again, exactly, by
the run that follows."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from support.factories import make_row
from tapioca.derive import jobs
from tapioca.derive.jobs import WEB, WEB_SPLIT, derive_once, rebuild, web_steps
from tapioca.derive.runner import Split, Step, run_derive
from tapioca.storage.base import Store
from tapioca.storage.postgres_store import PostgresStore
from tapioca.storage.rows import EventRow

pytestmark = pytest.mark.integration

T0 = datetime(2025, 11, 3, 9, tzinfo=UTC)
PRODUCT_TABLES = {
    "user_first": "site_id, visitor_id, ts, event_id",
    "user_day": "site_id, day, visitor_id, gap",
    "active_gap": "site_id, day, gap, users",
    "cohort_period": "site_id, unit, cohort, period, users",
    "lifecycle_period": "site_id, unit, period, kind, users",
}


def visits(first: int, count: int) -> list[EventRow]:
    """Users u0..u9, each with a page view on days first..first+count-1 (every other day
    for odd users: gaps of 1 and 2 days)."""
    rows = []
    for day in range(first, first + count):
        for user in range(10):
            if user % 2 and day % 2:
                continue
            ts = T0 + timedelta(days=day, minutes=user)
            rows.append(make_row(event_id=f"e{day}-{user}", visitor_id=f"u{user}", ts=ts,
                                 received_at=ts, session_id=f"s{day}-{user}"))  # fmt: skip
    return rows


async def product_state(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """The product tables' rows; counts moved to 0 are kept as rows, and left out here."""
    state = {}
    for table, columns in PRODUCT_TABLES.items():
        kept = " WHERE users <> 0" if columns.endswith("users") else ""
        state[table] = await store.fetch(f"SELECT {columns} FROM {table}{kept} ORDER BY {columns}")
    return state


async def web_position(store: Store) -> list[tuple[Any, ...]]:
    return await store.fetch("SELECT last_seq FROM derive_state WHERE name = $1", [WEB])


def failing(build: Any) -> Any:
    def steps(last: int, upto: int) -> list[Step]:
        return [*build(last, upto), ("SELECT 1 / 0", [])]

    return steps


async def setup_site(store: Store) -> None:
    await store.execute("INSERT INTO site (id, timezone, currency) VALUES ('shop', 'UTC', 'EUR')")


async def test_the_sides_run_on_two_postgresql_connections_and_merge_sees_ahead(
    pg_store: PostgresStore,
) -> None:
    await setup_site(pg_store)
    await pg_store.execute("CREATE TABLE backends (side text, pid int, seen int)")
    await pg_store.write_events(visits(0, 2))

    def side(name: str) -> Any:
        def steps(last: int, upto: int) -> list[Step]:
            seen = "(SELECT count(*) FROM backends WHERE side = 'ahead')"
            return [(f"INSERT INTO backends SELECT '{name}', pg_backend_pid(), {seen}", [])]

        return steps

    split = Split(steps=side("run"), ahead=side("ahead"), merge=side("merge"),
                  beside=side("beside"))  # fmt: skip
    assert await run_derive(pg_store, WEB, side("alone"), split=split) > 0
    rows = {name: (pid, seen) for name, pid, seen in await pg_store.fetch("SELECT * FROM backends")}
    assert set(rows) == {"run", "ahead", "merge", "beside"}
    assert rows["run"][0] == rows["merge"][0] != rows["ahead"][0] == rows["beside"][0]
    assert rows["merge"][1] == 1  # ahead had committed when merge ran


async def test_product_rows_made_beside_or_in_the_run_are_those_of_a_rebuild(
    migrated_store: Store,
) -> None:
    """Beside the run (PostgreSQL) or in it (the embedded store): as a rebuild makes them."""
    await setup_site(migrated_store)
    await migrated_store.write_events(visits(0, 6))
    await derive_once(migrated_store)
    await migrated_store.write_events(visits(4, 5))  # later days of the same users
    await derive_once(migrated_store)
    derived = await product_state(migrated_store)
    assert len(derived["user_day"]) == 5 * 9 + 5 * 5  # even users every day, odd ones even days
    await rebuild(migrated_store)
    assert await product_state(migrated_store) == derived


@pytest.mark.parametrize("side", ["ahead", "beside", "steps"])
async def test_a_failure_on_either_side_undoes_the_run(pg_store: PostgresStore, side: str) -> None:
    await setup_site(pg_store)
    await pg_store.write_events(visits(0, 3))
    split = replace(WEB_SPLIT, **{side: failing(getattr(WEB_SPLIT, side))})
    with pytest.raises(asyncpg.DivisionByZeroError):
        await run_derive(pg_store, WEB, web_steps(False, 0), split=split)
    assert await web_position(pg_store) == []
    for table in ("session", "rollup_hour", "rollup_session_hour"):
        assert await pg_store.fetch(f"SELECT count(*) FROM {table}") == [(0,)]
    if side == "ahead":  # beside follows it; it runs to its end when the run's side fails
        assert await pg_store.fetch("SELECT count(*) FROM user_day") == [(0,)]
    await derive_once(pg_store)  # a failed run leaves nothing that stops the next one
    assert await pg_store.fetch("SELECT count(*) FROM rollup_hour_ahead") == [(0,)]
    assert await web_position(pg_store) == await pg_store.fetch("SELECT max(seq) FROM event")


async def test_a_run_undone_after_its_other_side_committed_is_done_again_exactly(
    pg_store: PostgresStore,
) -> None:
    await setup_site(pg_store)
    await pg_store.write_events(visits(0, 4))
    await derive_once(pg_store, days=False)
    await pg_store.write_events(visits(3, 4))
    split = replace(WEB_SPLIT, merge=failing(WEB_SPLIT.merge))  # after both sides committed
    with pytest.raises(asyncpg.DivisionByZeroError):
        await run_derive(pg_store, WEB, web_steps(False, 0), split=split)
    first = await web_position(pg_store)
    assert first and first[0][0] < (await pg_store.fetch("SELECT max(seq) FROM event"))[0][0]
    assert await pg_store.fetch("SELECT count(*) FROM rollup_hour_ahead") != [(0,)]
    committed = await product_state(pg_store)
    assert ("shop", T0.date() + timedelta(days=6), "u0") in {r[:3] for r in committed["user_day"]}
    await derive_once(pg_store)  # the same range again, with the product rows already made
    again = await product_state(pg_store)
    assert again == committed  # made once: a range run again changes nothing
    hours = await rollup_state(pg_store)
    await rebuild(pg_store)
    assert await product_state(pg_store) == again
    assert await rollup_state(pg_store) == hours


ROLLUP_TABLES = {
    "rollup_hour": "site_id, hour, dim, value, events, pageviews, visitors",
    "rollup_session_hour": "site_id, hour, dim, value, sessions, bounces, duration_seconds, "
    "pageviews, events, visitors",
    "rollup_day": "site_id, day, tz, dim, value, pageviews, visitors",
}


async def rollup_state(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: await store.fetch(f"SELECT {columns} FROM {table} ORDER BY {columns}")
        for table, columns in ROLLUP_TABLES.items()
    }


def traffic(seed: int, count: int) -> list[EventRow]:
    """Visitors over a few hours, in no order of time: sessions that cross hours, late
    events into hours derived before, bots, other event types."""
    rng = random.Random(seed)
    return [
        make_row(event_id=f"t{seed}-{i}", visitor_id=f"v{rng.randrange(25)}",
                 ts=T0 + timedelta(minutes=rng.randrange(6 * 60)),
                 event_type=rng.choice(["page_view", "page_view", "click"]),
                 path=rng.choice(["/", "/a", "/b", None]), is_bot=rng.random() < 0.05)
        for i in range(count)
    ]  # fmt: skip


async def test_the_hourly_rows_made_ahead_are_those_made_in_the_run(
    pg_store: PostgresStore, pg_dsn: str
) -> None:
    """The same writes and runs (chunks, late events, sessions that cross hours) on a
    store that splits its runs and on one whose only connection makes them whole."""
    await setup_site(pg_store)
    batches = [traffic(1, 300), traffic(2, 200), traffic(3, 250)]
    states = []
    for split in (True, False):
        (stored,), *_ = await pg_store.fetch("SELECT coalesce(max(seq), 0) FROM event")
        await pg_store.execute("DELETE FROM event")
        await rebuild(pg_store)  # nothing derived, nothing stored: the same writes again,
        await pg_store.execute(  # their chunks cut at the same events
            "INSERT INTO derive_state (name, last_seq) VALUES ($1, $2)", [WEB, stored]
        )
        store = pg_store if split else PostgresStore(pg_dsn, max_size=1)
        try:
            seen = []
            for batch in batches:
                await store.write_events(batch)
                await jobs._run(store, False, 120)  # a chunk: later events stay out
                seen.append(await rollup_state(store))
                await derive_once(store)
                seen.append(await rollup_state(store))
            states.append(seen)
        finally:
            if store is not pg_store:
                await store.close()
    split_state, whole_state = states
    assert split_state == whole_state
    assert len(split_state[-1]["rollup_hour"]) > 6 * 5  # every hour, several values


async def test_a_pool_of_one_connection_derives_in_the_run(
    pg_store: PostgresStore, pg_dsn: str
) -> None:
    await setup_site(pg_store)
    await pg_store.write_events(visits(0, 3))
    single = PostgresStore(pg_dsn, max_size=1, acquire_timeout_s=2)
    try:
        assert await derive_once(single) == len(visits(0, 3))
    finally:
        await single.close()
    assert await pg_store.fetch("SELECT count(*) FROM user_day") == [(5 * 3 + 5 * 2,)]
    assert await pg_store.fetch("SELECT count(*) FROM session") == [(len(visits(0, 3)),)]
