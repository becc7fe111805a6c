"""How the derive job's statements find their rows on PostgreSQL.

A redone client session reads its carts and transactions again by the session id their
event carried: an index on (site_id, event_session_id) serves that lookup, or, without
it, a join that PostgreSQL misjudges looks each session up among every cart of the site
(minutes for tens of thousands of sessions). The temp tables the job joins with carry
their statistics, so such joins are judged by their real size.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from support.factories import make_row
from tapioca.derive.commerce import commerce_steps
from tapioca.derive.jobs import derive_once
from tapioca.derive.runner import run_steps, temp_table
from tapioca.derive.sessions import KEYS, client_steps
from tapioca.model.commerce import FACT_TABLES
from tapioca.storage.base import Lock, Store
from tapioca.storage.postgres_store import PostgresStore
from tapioca.storage.rows import EventRow

pytestmark = pytest.mark.integration

T0 = datetime(2025, 11, 14, tzinfo=UTC)
SESSIONS = 300


def shop_rows(wave: int) -> list[EventRow]:
    """Per client session: a page view, and in the first wave a cart and a purchase."""
    rows = []
    for i in range(SESSIONS):
        ts = T0 + timedelta(minutes=i, seconds=wave)
        base = {"visitor_id": f"u{i}", "session_id": f"s{i}", "received_at": ts}
        rows.append(make_row(event_id=f"p{wave}-{i}", ts=ts, **base))
        if wave == 0:
            rows.append(make_row(event_id=f"c{i}", event_type="view_cart", revenue=5,
                                 currency="EUR", ts=ts + timedelta(seconds=5), **base))  # fmt: skip
            rows.append(make_row(event_id=f"b{i}", event_type="purchase", revenue=9,
                                 currency="EUR", transaction_id=f"t{i}",
                                 ts=ts + timedelta(seconds=9), **base))  # fmt: skip
    return rows


async def test_a_redone_client_session_finds_its_facts_by_index(pg_store: PostgresStore) -> None:
    await pg_store.execute(
        "INSERT INTO site (id, timezone, currency) VALUES ('shop', 'UTC', 'EUR')"
    )
    await pg_store.write_events(shop_rows(0))
    await derive_once(pg_store, days=False)
    assert await pg_store.fetch("SELECT count(*) FROM cart WHERE event_session_id IS NOT NULL") == [
        (SESSIONS,)
    ]
    last = (await pg_store.fetch("SELECT max(seq) FROM event"))[0][0]
    await pg_store.write_events(shop_rows(1))  # a later page view redoes every session
    upto = (await pg_store.fetch("SELECT max(seq) FROM event"))[0][0]
    plain = [step[0] for step in commerce_steps(last, upto) if isinstance(step, tuple)]
    refresh = {
        table: next(
            sql for sql in plain if sql.lstrip().startswith(f"UPDATE {table} ") and KEYS in sql
        )
        for table in FACT_TABLES
    }
    async with pg_store.leading(Lock.DERIVE) as session:
        assert session is not None
        async with session.transaction():
            await run_steps(session, client_steps(last, upto))
            # the plan PostgreSQL picks when it believes few sessions were redone
            await session.execute("SET LOCAL enable_hashjoin = off")
            await session.execute("SET LOCAL enable_mergejoin = off")
            for table, sql in refresh.items():
                plan = "\n".join(row[0] for row in await session.fetch(f"EXPLAIN {sql}"))
                assert f"Index Scan using {table}_site_event_session on {table}" in plan, plan
                assert "event_session_id = k.session_id" in plan, plan


async def test_a_derive_temp_table_has_its_statistics(migrated_store: Store) -> None:
    select = "SELECT i AS n, i % 7 AS kind FROM generate_series(1, 5000) AS g(i)"
    async with migrated_store.locked(Lock.DERIVE) as session, session.transaction():
        await run_steps(session, temp_table("derive_numbers", select, []))
        assert await session.fetch("SELECT count(*), count(DISTINCT kind) FROM derive_numbers") == [
            (5000, 7)
        ]
        if isinstance(migrated_store, PostgresStore):
            found = await session.fetch(
                "SELECT c.reltuples, s.n_distinct FROM pg_class c JOIN pg_stats s "
                "ON s.tablename = c.relname AND s.attname = 'kind' "
                "WHERE c.relname = 'derive_numbers'"
            )
            assert found == [(5000.0, 7.0)]
        await session.execute("DROP TABLE derive_numbers")


async def test_a_run_over_many_new_events_has_them_counted_first(pg_store: PostgresStore) -> None:
    """A burst into a young event table: the run has PostgreSQL count the table before it
    reads the new events (else they are planned as a few rows, and sorted where they would
    be hashed); a run over few new events for the table's size does not."""
    await pg_store.execute("ALTER TABLE event SET (autovacuum_enabled = false)")
    await pg_store.execute(
        "INSERT INTO site (id, timezone, currency) VALUES ('shop', 'UTC', 'EUR')"
    )
    counted = "SELECT reltuples FROM pg_class WHERE relname = 'event'"
    assert (await pg_store.fetch(counted))[0][0] <= 0  # never counted

    def rows(wave: int, n: int) -> list[EventRow]:
        return [make_row(event_id=f"w{wave}-{i}", visitor_id=f"u{i % 50}",
                         ts=T0 + timedelta(seconds=i)) for i in range(n)]  # fmt: skip

    await pg_store.write_events(rows(0, 1_500))
    await derive_once(pg_store, days=False)
    assert (await pg_store.fetch(counted))[0][0] == 1_500
    await pg_store.write_events(rows(1, 400))  # under a tenth of 1,500 + 1,000
    await derive_once(pg_store, days=False)
    assert (await pg_store.fetch(counted))[0][0] == 1_500
    assert await pg_store.fetch("SELECT count(*) FROM session") == [(50,)]


async def test_a_run_does_not_wait_for_a_vacuum_to_count(
    pg_store: PostgresStore, pg_dsn: str
) -> None:
    """A vacuum of the event table under way (here a lock of the same mode, held) does not
    stall the run: it goes on with the counts there are, and derives every event."""
    await pg_store.execute("ALTER TABLE event SET (autovacuum_enabled = false)")
    await pg_store.execute(
        "INSERT INTO site (id, timezone, currency) VALUES ('shop', 'UTC', 'EUR')"
    )
    rows = [make_row(event_id=f"e{i}", visitor_id=f"u{i % 40}", ts=T0 + timedelta(seconds=i))
            for i in range(2_000)]  # fmt: skip
    await pg_store.write_events(rows)
    holder = await asyncpg.connect(pg_dsn)
    try:
        await holder.execute("BEGIN; LOCK TABLE event IN SHARE UPDATE EXCLUSIVE MODE")
        await asyncio.wait_for(derive_once(pg_store, days=False), timeout=30)
    finally:
        await holder.close()
    counted = await pg_store.fetch("SELECT reltuples FROM pg_class WHERE relname = 'event'")
    assert counted[0][0] <= 0  # not counted: the lock was not waited for
    assert await pg_store.fetch("SELECT count(*), sum(events) FROM session") == [(40, 2_000)]
