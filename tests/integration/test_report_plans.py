"""How the reports' rollup statements find their rows on PostgreSQL right after a burst.

Once a burst's hours are derived, their days wait for the daily job, and a report reads
those days' hourly rows (reports/queries/rollup.py, build_sums). PostgreSQL has no
statistics of rows written a moment ago: if it made the test "this hour's day waits" a
join, it planned it as a loop over the waiting days for every hour (2.4M comparisons and
half a second for the 53k path rows of 90 days); looked up in the hashed days, it is one
pass over the hours."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from support.factories import make_row
from tapioca.derive.jobs import derive_once
from tapioca.kit.timerange import DateRange
from tapioca.model.figures import Source
from tapioca.reports.queries.rollup import build_sums, by_value
from tapioca.storage.base import Lock
from tapioca.storage.postgres_store import PostgresStore

pytestmark = pytest.mark.integration

DAYS = 20
PATHS = ("/", "/shop", "/cart")


async def test_a_waiting_days_hours_are_kept_by_a_hashed_lookup(pg_store: PostgresStore) -> None:
    await pg_store.execute("INSERT INTO site (id, timezone, currency) VALUES ('web', 'UTC', 'EUR')")
    start = datetime(2025, 10, 1, tzinfo=UTC)
    rows = []
    for hour in range(DAYS * 24):
        for i, path in enumerate(PATHS[: 1 + hour % len(PATHS)]):
            ts = start + timedelta(hours=hour, minutes=i)
            rows.append(make_row(site_id="web", event_id=f"e{hour}-{i}", visitor_id=f"v{hour}",
                                 path=path, ts=ts, received_at=ts))  # fmt: skip
    await pg_store.write_events(rows)
    await derive_once(pg_store, days=False)  # the hours are derived, every day waits
    (waiting,), *_ = await pg_store.fetch("SELECT count(*) FROM rollup_dirty_day")
    assert waiting == DAYS * 24

    span = DateRange(date(2025, 10, 1), date(2025, 10, DAYS), ZoneInfo("UTC"))
    query = build_sums(Source.EVENT, "web", "path", span, by_value, days=True)
    expected = Counter(row.path for row in rows)
    answer = await pg_store.fetch(query.sql, query.params)
    assert {k: (events, pageviews) for k, events, pageviews in answer} == {
        path: (n, n) for path, n in expected.items()
    }

    async with pg_store.leading(Lock.DERIVE) as session:
        assert session is not None
        async with session.transaction():
            # the plan PostgreSQL picks when it believes the hours are few
            await session.execute("SET LOCAL enable_hashjoin = off")
            await session.execute("SET LOCAL enable_mergejoin = off")
            plan = "\n".join(row[0] for row in await session.fetch(f"EXPLAIN {query.sql}",
                                                                  *query.params))  # fmt: skip
    assert plan.count("hashed SubPlan") == 2, plan  # the waiting days, and the others
    assert "Nested Loop" not in plan, plan
