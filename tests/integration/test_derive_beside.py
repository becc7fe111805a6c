"""Steps run beside a derive run (runner.run_derive, ``beside``): the users' first events
and active days are made on a second PostgreSQL connection while the sessions, commerce
and rollups are made on the run's own; the embedded store runs them in the one session.
A failure on either side undoes the run's position; what the other side committed is
made again, exactly, by the run that follows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from support.factories import make_row
from tapioca.derive import product
from tapioca.derive.jobs import WEB, derive_once, rebuild, web_steps
from tapioca.derive.runner import Step, run_derive
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


async def test_steps_beside_run_on_a_second_postgresql_connection(pg_store: PostgresStore) -> None:
    await setup_site(pg_store)
    await pg_store.execute("CREATE TABLE backends (side text, pid int)")
    await pg_store.write_events(visits(0, 2))

    def main(last: int, upto: int) -> list[Step]:
        return [("INSERT INTO backends SELECT 'run', pg_backend_pid()", [])]

    def beside(last: int, upto: int) -> list[Step]:
        return [("INSERT INTO backends SELECT 'beside', pg_backend_pid()", [])]

    assert await run_derive(pg_store, WEB, main, beside=beside) > 0
    pids = dict(await pg_store.fetch("SELECT side, pid FROM backends"))
    assert set(pids) == {"run", "beside"}
    assert pids["run"] != pids["beside"]


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


async def test_a_failure_beside_undoes_the_run(pg_store: PostgresStore) -> None:
    await setup_site(pg_store)
    await pg_store.write_events(visits(0, 3))
    with pytest.raises(asyncpg.DivisionByZeroError):
        await run_derive(pg_store, WEB, web_steps(False, 0), beside=failing(product.product_steps))
    assert await web_position(pg_store) == []
    assert await pg_store.fetch("SELECT count(*) FROM session") == [(0,)]
    assert await pg_store.fetch("SELECT count(*) FROM user_day") == [(0,)]


async def test_a_run_undone_after_its_product_rows_committed_is_done_again_exactly(
    pg_store: PostgresStore,
) -> None:
    await setup_site(pg_store)
    await pg_store.write_events(visits(0, 4))
    await derive_once(pg_store, days=False)
    await pg_store.write_events(visits(3, 4))
    with pytest.raises(asyncpg.DivisionByZeroError):
        await run_derive(pg_store, WEB, failing(web_steps(False, 0)), beside=product.product_steps)
    first = await web_position(pg_store)
    assert first and first[0][0] < (await pg_store.fetch("SELECT max(seq) FROM event"))[0][0]
    committed = await product_state(pg_store)
    assert ("shop", T0.date() + timedelta(days=6), "u0") in {r[:3] for r in committed["user_day"]}
    await derive_once(pg_store)  # the same range again, with the product rows already made
    again = await product_state(pg_store)
    assert again == committed  # made once: a range run again changes nothing
    await rebuild(pg_store)
    assert await product_state(pg_store) == again


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
