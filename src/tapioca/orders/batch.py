"""The order batch: brings a site's order analytics up to date with its order database.

A run finds the days (in the site's zone) that need counting again:

- its first run: every day from the first counted order's to today;
- then: the days since the last run's, back ``lookback_days`` more when the source maps
  no ``updated_at`` (an order served after midnight, a status changed late);
- the days of orders whose ``updated_at`` is at or after the largest one the last run
  read (when mapped);
- the days whose count, Σ total_amount or Σ id of counted orders differ from what the
  last run saw (one grouped read of the whole history finds a change of any age);
- or the days asked for (``tapioca batch run --from --to``).

It reads those days' counted orders by range on ``created_at``, page by page, and their
lines, counts them in memory, and replaces the days' rows in one transaction: a source
that fails mid-run leaves every day as it was. Counting again is idempotent.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from tapioca.logging import get_logger
from tapioca.orders.connectors import DayCheck, OrderReader, open_reader
from tapioca.orders.source import OrderSource
from tapioca.storage.base import Lock, Session, Store
from tapioca.storage.statements import insert_values

log = get_logger(__name__)

# updated_at values read again at the edge of the last run: a clock a little behind, a
# transaction that committed late
UPDATED_OVERLAP = timedelta(minutes=5)
_ZERO = Decimal(0)


@dataclass
class DayCounts:
    orders: int = 0
    revenue: Decimal = _ZERO
    hours: list[int] = field(default_factory=lambda: [0] * 24)


@dataclass
class ItemCounts:
    quantity: Decimal = _ZERO
    revenue: Decimal = _ZERO
    name: str | None = None
    named_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class BatchResult:
    days_recomputed: int
    orders_read: int
    first_day: date | None
    last_day: date | None

    def details(self) -> dict[str, Any]:
        return {
            "days_recomputed": self.days_recomputed,
            "orders_read": self.orders_read,
            "first_day": self.first_day.isoformat() if self.first_day else None,
            "last_day": self.last_day.isoformat() if self.last_day else None,
        }


@dataclass(frozen=True, slots=True)
class SyncState:
    synced_at: datetime | None
    through_day: date | None
    seen_updated: datetime | None
    first_day: date | None


_STATE = "SELECT synced_at, through_day, seen_updated, first_day FROM order_sync WHERE site_id = $1"


async def sync_state(db: Any, site_id: str) -> SyncState | None:
    rows = await db.fetch(_STATE, (site_id,))
    return SyncState(*rows[0]) if rows else None


class Zones:
    """The source's zone (its naive timestamps) and the site's (its days)."""

    def __init__(self, source: str, site: str) -> None:
        self.source, self.site = ZoneInfo(source), ZoneInfo(site)
        self.same = source == site

    def site_moment(self, local: datetime) -> datetime:
        """A naive source-local timestamp as a naive site-local one."""
        if self.same:
            return local
        return local.replace(tzinfo=self.source).astimezone(self.site).replace(tzinfo=None)

    def source_start(self, day: date) -> datetime:
        """The site day's first moment as a naive source-local timestamp."""
        if self.same:
            return datetime.combine(day, time())
        start = datetime.combine(day, time(), self.site)
        return start.astimezone(self.source).replace(tzinfo=None)

    def site_days_of(self, source_day: date) -> set[date]:
        """The site days a day of the source's calendar overlaps."""
        start = datetime.combine(source_day, time(), self.source)
        end = start + timedelta(days=1) - timedelta(microseconds=1)
        first, last = start.astimezone(self.site).date(), end.astimezone(self.site).date()
        return {first, last}


def day_ranges(days: Iterable[date]) -> list[tuple[date, date]]:
    """Sorted days as inclusive ranges of consecutive days."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if ranges and ranges[-1][1] + timedelta(days=1) == day:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def every_day(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def changed_checks(seen: dict[date, DayCheck], now: dict[date, DayCheck]) -> set[date]:
    """The source days whose counted orders differ from those the last run saw."""
    return {day for day in seen.keys() | now.keys() if seen.get(day) != now.get(day)}


@dataclass
class Plan:
    days: list[date]
    first_day: date | None


async def plan_days(
    reader: OrderReader,
    state: SyncState | None,
    stored: dict[date, DayCheck],
    checks: dict[date, DayCheck],
    today: date,
    zones: Zones,
    asked: tuple[date, date] | None,
) -> Plan:
    span = await reader.span()
    if asked is not None:
        first = zones.site_moment(span[0]).date() if span else None
        return Plan(every_day(*asked), first)
    if span is None:
        return Plan([], None)
    first, last = (zones.site_moment(moment).date() for moment in span)
    last = max(today, last)
    if state is None or state.through_day is None or state.first_day is None:
        return Plan(every_day(first, last), first)
    days: set[date] = set()
    since = state.through_day
    if reader.source.mapping.get("updated_at") is None:
        since -= timedelta(days=reader.source.lookback_days)
    elif state.seen_updated is not None:
        touched, _ = await reader.changed_since(state.seen_updated - UPDATED_OVERLAP)
        for source_day in touched:
            days |= zones.site_days_of(source_day)
    days.update(every_day(max(since, first), last))
    for source_day in changed_checks(stored, checks):
        days |= zones.site_days_of(source_day)
    if first < state.first_day:  # an order older than any before
        days.update(every_day(first, state.first_day))
    return Plan(sorted(day for day in days if first <= day <= last), first)


def checks_kept(
    plan: Plan, zones: Zones, stored: dict[date, DayCheck], checks: dict[date, DayCheck]
) -> dict[date, DayCheck]:
    """The checks to keep after a run: the source's for the source days the run counted
    whole (every site day they overlap, but those before the first order), the stored ones
    for the others, so that a change the run did not count is still found next time."""
    planned = set(plan.days)
    first = plan.first_day

    def whole(source_day: date) -> bool:
        return all(
            day in planned or (first is not None and day < first)
            for day in zones.site_days_of(source_day)
        )

    kept = {day: check for day, check in stored.items() if not whole(day)}
    kept.update((day, check) for day, check in checks.items() if whole(day))
    return kept


async def count_days(
    reader: OrderReader, ranges: list[tuple[date, date]], zones: Zones
) -> tuple[dict[date, DayCounts], dict[tuple[date, str], ItemCounts], int]:
    """The counted orders of the days in ``ranges``, their hours and items."""
    days: dict[date, DayCounts] = defaultdict(DayCounts)
    items: dict[tuple[date, str], ItemCounts] = defaultdict(ItemCounts)
    read = 0
    for first, last in ranges:
        lo, hi = zones.source_start(first), zones.source_start(last + timedelta(days=1))
        async for page in reader.orders(lo, hi):
            read += len(page)
            when: dict[Any, datetime] = {}
            for order_id, created, total in page:
                moment = zones.site_moment(created)
                when[order_id] = moment
                counts = days[moment.date()]
                counts.orders += 1
                counts.revenue += Decimal(total or 0)
                counts.hours[moment.hour] += 1
            for order_id, item_id, name, quantity, price in await reader.items(list(when)):
                moment = when[order_id]
                item = items[(moment.date(), str(item_id))]
                quantity = Decimal(quantity or 0)
                item.quantity += quantity
                item.revenue += quantity * Decimal(price or 0)
                if item.named_at is None or moment >= item.named_at:
                    item.name, item.named_at = name, moment
    return days, items, read


def write_statements(
    site_id: str,
    plan: Plan,
    counted: tuple[dict[date, DayCounts], dict[tuple[date, str], ItemCounts]],
    checks: dict[date, DayCheck],
    seen_updated: datetime | None,
    marks: tuple[date | None, date | None],
) -> list[tuple[str, list[Any]]]:
    """The statements that replace the planned days' rows and record the run; ``marks``:
    the last day and the first day the scheduled runs have counted (None: unchanged)."""
    days, items = counted
    statements: list[tuple[str, list[Any]]] = []
    day_rows: list[tuple[Any, ...]] = []
    hour_rows: list[tuple[Any, ...]] = []
    for first, last in day_ranges(plan.days):
        for table in ("order_day", "order_hour", "order_item_day"):
            statements.append(
                (f"DELETE FROM {table} WHERE site_id = $1 AND day BETWEEN $2 AND $3",
                 [site_id, first, last])
            )  # fmt: skip
    for day in plan.days:
        counts = days.get(day) or DayCounts()
        day_rows.append((site_id, day, counts.orders, counts.revenue))
        hour_rows.extend((site_id, day, hour, n) for hour, n in enumerate(counts.hours))
    item_rows = [
        (site_id, day, item_id, item.name, item.quantity, item.revenue)
        for (day, item_id), item in sorted(items.items())
    ]
    statements += insert_values("order_day", "site_id, day, orders, revenue", day_rows)
    statements += insert_values("order_hour", "site_id, day, hour, orders", hour_rows)
    statements += insert_values(
        "order_item_day", "site_id, day, item_id, item_name, quantity, revenue", item_rows
    )
    statements.append(("DELETE FROM order_check WHERE site_id = $1", [site_id]))
    check_rows = [(site_id, d, c.orders, c.amount, c.ids) for d, c in sorted(checks.items())]
    statements += insert_values(
        "order_check", "site_id, source_day, orders, amount, ids", check_rows
    )
    statements.append(
        (
            "INSERT INTO order_sync (site_id, synced_at, through_day, seen_updated, first_day) "
            "VALUES ($1, now(), $2, $3, $4) ON CONFLICT (site_id) DO UPDATE SET "
            "synced_at = excluded.synced_at, "
            "through_day = coalesce(excluded.through_day, order_sync.through_day), "
            "seen_updated = coalesce(excluded.seen_updated, order_sync.seen_updated), "
            "first_day = coalesce(excluded.first_day, order_sync.first_day)",
            [site_id, marks[0], seen_updated, marks[1]],
        )
    )
    return statements


async def stored_checks(db: Any, site_id: str) -> dict[date, DayCheck]:
    rows = await db.fetch(
        "SELECT source_day, orders, amount, ids FROM order_check WHERE site_id = $1", (site_id,)
    )
    return {r[0]: DayCheck(int(r[1]), Decimal(r[2]), Decimal(r[3])) for r in rows}


_LOCAL_RUNS: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)


@asynccontextmanager
async def exclusive(store: Store) -> AsyncIterator[Session | None]:
    """One batch at a time. PostgreSQL: across every process of the instance (an advisory
    lock, on the session that then writes). The embedded store: in this process, its only
    writer (its lock is the writer's, which event writes need while the source is read)."""
    if store.dialect.name == "postgres":
        async with store.locked(Lock.ORDERS) as session:
            yield session
    else:
        async with _LOCAL_RUNS["orders"]:
            yield None


async def run_batch(
    store: Store,
    source: OrderSource,
    site_zone: str,
    now: datetime | None = None,
    asked: tuple[date, date] | None = None,
) -> BatchResult:
    """One run of the batch for ``source``'s site (see the module's docstring). Raises
    SourceUnavailable when the order database fails; nothing is written then."""
    now = now or datetime.now(UTC)
    zones = Zones(source.timezone, site_zone)
    today = now.astimezone(zones.site).date()
    async with exclusive(store) as held:
        state = await sync_state(store, source.site_id)
        stored = await stored_checks(store, source.site_id)
        async with open_reader(source) as reader:
            checks = await reader.day_checks()
            plan = await plan_days(reader, state, stored, checks, today, zones, asked)
            days, items, read = await count_days(reader, day_ranges(plan.days), zones)
            seen = None
            if source.mapping.get("updated_at") and asked is None:
                seen = await reader.latest_update()
        kept = checks_kept(plan, zones, stored, checks)
        # a backfill leaves where the scheduled runs stand
        if asked is None:
            marks: tuple[date | None, date | None] = (today, plan.first_day)
        else:
            marks = (state.through_day, state.first_day) if state else (None, None)
        statements = write_statements(source.site_id, plan, (days, items), kept, seen, marks)
        if held is not None:
            await _write(held, statements)
        else:
            async with store.locked(Lock.ORDERS) as session:
                await _write(session, statements)
    result = BatchResult(
        len(plan.days), read, plan.days[0] if plan.days else None,
        plan.days[-1] if plan.days else None,
    )  # fmt: skip
    log.info("orders_synced", site_id=source.site_id, **result.details())
    return result


async def _write(session: Session, statements: list[tuple[str, list[Any]]]) -> None:
    async with session.transaction():
        await session.execute_all(statements)
