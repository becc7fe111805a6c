"""Product reports on both stores, compared with the independent reference.

The expected answers come from support/product_reference.py (metrics.md, Product
metrics, in plain Python) over the app traffic: users active in many weeks, a third of
them with their first event written last, events at equal times and near local
midnight, bots and resent ids. The events are written as rows in waves, in batches
derived now and then; the reports are asked in the site's zone (from the derive job's
state) and in other zones (from the events), with cohort filters. A rebuild of
everything derived answers the same, and so does a site whose time zone changed, both
while its days are redone and after.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from support.factories import event_row
from support.loaded import load_waves, loaded_store
from support.product_reference import (
    APP,
    APP_ZONE,
    OTHER,
    ProductTraffic,
    active_days,
    active_users,
    funnel,
    lifecycle,
    product_traffic,
    retention,
    stickiness,
    top_events,
)
from support.reference import Event, counted
from tapioca.derive import rollups
from tapioca.derive.jobs import WEB, derive_once, rebuild, web_steps
from tapioca.derive.product import TABLES
from tapioca.derive.runner import run_derive
from tapioca.errors import TapiocaError
from tapioca.kit.timerange import Interval
from tapioca.reports import product
from tapioca.reports.executor import Executor
from tapioca.reports.funnel import parse_steps, parse_window
from tapioca.reports.scope import Scope, resolve_scope
from tapioca.sites.service import SiteChanges, update_site
from tapioca.storage.base import Store

pytestmark = pytest.mark.integration

TRAFFIC: ProductTraffic = product_traffic()
EVENTS = TRAFFIC.events
NOW = datetime(2025, 11, 27, 15, tzinfo=UTC)
TODAY = date(2025, 11, 27)
BATCH = 400


SITE_ROWS = [(APP, APP_ZONE, "EUR"), (OTHER, "UTC", "EUR")]


async def load(store: Store, incremental: bool) -> None:
    await load_waves(store, SITE_ROWS, TRAFFIC.waves, BATCH, incremental)


def _loaded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, incremental: bool
) -> Iterator[Callable[[], Store]]:
    yield from loaded_store(
        request, tmp_path_factory, "product", lambda store: load(store, incremental)
    )


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def opener(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], Store]]:
    yield from _loaded(request, tmp_path_factory, incremental=True)


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def rebuilt_opener(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], Store]]:
    yield from _loaded(request, tmp_path_factory, incremental=False)


@pytest.fixture
async def db(opener: Callable[[], Store]) -> AsyncIterator[Store]:
    store = opener()
    try:
        yield store
    finally:
        await store.close()


async def scope_of(
    db: Store, start: str, end: str, tz: str | None = None, filters: str | None = None,
    site: str = APP,
) -> Scope:  # fmt: skip
    return await resolve_scope(db, site, None, start, end, tz, filters, NOW)


RANGES = [
    ("2025-09-01", "2025-11-27", None),  # the site's zone: the stored active days
    ("2025-10-06", "2025-11-09", None),  # across the clock change
    ("2025-09-01", "2025-11-27", "UTC"),  # another zone: from the events
    ("2025-10-15", "2025-11-20", "Asia/Kathmandu"),  # a zone 5:45 ahead
]


@pytest.mark.parametrize("interval", ["day", "week", "month"])
@pytest.mark.parametrize(("start", "end", "tz"), RANGES)
async def test_active_users(db: Store, interval: str, start: str, end: str, tz: str | None) -> None:
    scope = await scope_of(db, start, end, tz)
    got = await product.active_users(Executor(db), scope, Interval(interval))
    want = active_users(EVENTS, APP, tz or APP_ZONE, interval, date.fromisoformat(start),
                        date.fromisoformat(end))  # fmt: skip
    assert got["results"] == want
    assert got["interval"] == interval
    assert max(r["mau"] for r in want) > 50  # the traffic is not trivial


async def test_active_users_of_filtered_events(db: Store) -> None:
    scope = await scope_of(db, "2025-10-01", "2025-10-31", None, "event_type==signup")
    got = await product.active_users(Executor(db), scope, Interval.WEEK)
    signups = [e for e in counted(EVENTS) if e.event_type == "signup"]  # as stored
    want = active_users(signups, APP, APP_ZONE, "week", date(2025, 10, 1), date(2025, 10, 31))
    assert got["results"] == want


async def test_active_users_per_hour_is_a_422(db: Store) -> None:
    scope = await scope_of(db, "2025-10-01", "2025-10-02")
    with pytest.raises(TapiocaError) as caught:
        await product.active_users(Executor(db), scope, Interval.HOUR)
    assert caught.value.status == 422
    assert [d.field for d in caught.value.details] == ["interval"]


COHORTS = [
    ("week", 8, "2025-09-01", "2025-11-27", None, None),
    ("week", 12, "2025-09-03", "2025-10-29", None, None),  # weeks that overlap the range
    ("week", 4, "2025-09-01", "2025-11-27", "UTC", None),
    ("week", 6, "2025-09-01", "2025-11-27", "Asia/Kathmandu", None),
    ("day", 14, "2025-10-20", "2025-11-10", None, None),
    ("day", 7, "2025-10-20", "2025-11-10", "UTC", None),
    ("week", 8, "2025-09-01", "2025-11-27", None, "channel==Email"),
    ("week", 8, "2025-09-01", "2025-11-27", "UTC", "device==mobile;utm_campaign==autumn"),
]


@pytest.mark.parametrize(("unit", "periods", "start", "end", "tz", "filters"), COHORTS)
async def test_retention(
    db: Store, unit: str, periods: int, start: str, end: str, tz: str | None, filters: str | None
) -> None:
    scope = await scope_of(db, start, end, tz, filters)
    got = await product.retention(Executor(db), scope, Interval(unit), periods, TODAY)
    wanted_filters = dict(f.split("==") for f in filters.split(";")) if filters else None
    want = retention(EVENTS, APP, tz or APP_ZONE, unit, periods, date.fromisoformat(start),
                     date.fromisoformat(end), TODAY, wanted_filters)  # fmt: skip
    assert got["results"] == want
    assert (got["cohort"], got["periods"]) == (unit, periods)
    assert sum(c["size"] for c in want) > 20
    assert any(len(c["retained"]) > 2 and c["retained"][2] for c in want)


async def test_a_user_active_every_week_is_one_cohort_member(db: Store) -> None:
    """Cohort sizes add up to the users first seen in the range, not to their weeks."""
    scope = await scope_of(db, "2025-08-25", "2025-11-27")  # 1 Sep 02:41 UTC is in August there
    got = await product.retention(Executor(db), scope, Interval.WEEK, 4, TODAY)
    first_seen = {e.user for e in counted(EVENTS) if e.site_id == APP}
    assert sum(c["size"] for c in got["results"]) == len(first_seen)


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [("cohort", "month", "cohort"), ("periods", 0, "periods"), ("filters", "path==/", "filters")],
)
async def test_retention_refuses(db: Store, name: str, value: Any, field: str) -> None:
    scope = await scope_of(db, "2025-10-01", "2025-10-31", None,
                           value if name == "filters" else None)  # fmt: skip
    unit = Interval.MONTH if name == "cohort" else Interval.WEEK
    periods = value if name == "periods" else 4
    with pytest.raises(TapiocaError) as caught:
        await product.retention(Executor(db), scope, unit, periods, TODAY)
    assert caught.value.status == 422
    assert [d.field for d in caught.value.details] == [field]


@pytest.mark.parametrize(("start", "end", "tz"), RANGES)
@pytest.mark.parametrize("limit", [3, 100])
async def test_top_events(db: Store, start: str, end: str, tz: str | None, limit: int) -> None:
    scope = await scope_of(db, start, end, tz)
    got = await product.top_events(Executor(db), scope, limit)
    want = top_events(EVENTS, APP, tz or APP_ZONE, date.fromisoformat(start),
                      date.fromisoformat(end), limit)  # fmt: skip
    assert got["results"] == want


async def test_another_site_counts_its_own_users(db: Store) -> None:
    scope = await scope_of(db, "2025-09-01", "2025-11-27", site=OTHER)
    got = await product.retention(Executor(db), scope, Interval.WEEK, 3, TODAY)
    want = retention(EVENTS, OTHER, "UTC", "week", 3, date(2025, 9, 1), date(2025, 11, 27), TODAY)
    assert got["results"] == want


@pytest.fixture
async def rebuilt(rebuilt_opener: Callable[[], Store]) -> AsyncIterator[Store]:
    store = rebuilt_opener()
    try:
        yield store
    finally:
        await store.close()


async def test_a_rebuild_answers_the_same(rebuilt: Store) -> None:
    scope = await scope_of(rebuilt, "2025-09-01", "2025-11-27")
    got = await product.active_users(Executor(rebuilt), scope, Interval.DAY)
    want = active_users(EVENTS, APP, APP_ZONE, "day", date(2025, 9, 1), date(2025, 11, 27))
    assert got["results"] == want
    got = await product.retention(Executor(rebuilt), scope, Interval.WEEK, 8, TODAY)
    want = retention(EVENTS, APP, APP_ZONE, "week", 8, date(2025, 9, 1), date(2025, 11, 27), TODAY)
    assert got["results"] == want


async def test_a_new_site_zone_is_counted_in_while_its_days_are_redone(rebuilt: Store) -> None:
    """Runs last on the rebuilt store: it changes the site's zone."""
    zone = "Europe/Kyiv"
    await update_site(rebuilt, APP, SiteChanges(timezone=zone))

    async def check() -> Scope:
        scope = await scope_of(rebuilt, "2025-09-01", "2025-11-27")
        assert scope.span.tz.key == zone
        got = await product.active_users(Executor(rebuilt), scope, Interval.WEEK)
        assert got["results"] == active_users(EVENTS, APP, zone, "week", date(2025, 9, 1),
                                              date(2025, 11, 27))  # fmt: skip
        got = await product.retention(Executor(rebuilt), scope, Interval.DAY, 10, TODAY)
        assert got["results"] == retention(EVENTS, APP, zone, "day", 10, date(2025, 9, 1),
                                           date(2025, 11, 27), TODAY)  # fmt: skip
        return scope

    assert (await check()).days_redoing  # from the events
    runs = 0
    while (await rebuilt.fetch(rollups.DAYS_PENDING_SQL))[0][0]:  # a few days a run
        await run_derive(rebuilt, WEB, web_steps(True, 3000), pending_sql=rollups.pending_sql(True))
        await check()
        runs += 1
    assert runs > 2
    scope = await check()
    assert not scope.days_redoing  # from the active days written again in the new zone
    stored = await rebuilt.fetch("SELECT count(*) FROM user_day WHERE site_id = $1", [APP])
    assert stored[0][0] == sum(len(u) for u in active_days(EVENTS, APP, zone).values())


FUNNELS = [
    ("page_view,add_to_cart,purchase", "7d", None),
    ("page_view,click,signup,purchase", "3d", None),
    ("page_view,page_view,page_view", "24h", None),  # repeated steps
    ("/,click,/", "2h", None),  # a path step, twice
    ("click,signup", "30m", None),
    ("page_view,add_to_cart,purchase", "7d", "channel"),
    ("signup,share", "14d", "device"),
]
FUNNEL_RANGES = [("2025-10-01", "2025-10-31", None), ("2025-09-15", "2025-11-20", "UTC")]


def _window(text: str) -> timedelta:
    unit = {"m": "minutes", "h": "hours", "d": "days"}[text[-1]]
    return timedelta(**{unit: int(text[:-1])})


def _conversions(counts: list[int], names: list[str]) -> list[dict[str, Any]]:
    return [
        {"step": name, "users": n,
         "conversion_from_start": round(n / counts[0], 4) if counts[0] else 0.0,
         "conversion_from_previous": round(n / (counts[i - 1] if i else counts[0]), 4)
         if (counts[i - 1] if i else counts[0]) else 0.0}
        for i, (name, n) in enumerate(zip(names, counts, strict=True))
    ]  # fmt: skip


@pytest.mark.parametrize(("steps", "window", "breakdown"), FUNNELS)
@pytest.mark.parametrize(("start", "end", "tz"), FUNNEL_RANGES)
async def test_funnel(
    db: Store, steps: str, window: str, breakdown: str | None, start: str, end: str,
    tz: str | None,
) -> None:  # fmt: skip
    scope = await scope_of(db, start, end, tz)
    got = await product.funnel(Executor(db), scope, parse_steps(steps), parse_window(window),
                               window, breakdown)  # fmt: skip
    assert scope.span.start_utc is not None and scope.span.end_utc is not None
    names = steps.split(",")
    want = funnel(EVENTS, APP, names, _window(window), scope.span.start_utc,
                  scope.span.end_utc, breakdown)  # fmt: skip
    total = [sum(c[k] for c in want.values()) for k in range(len(names))]
    assert got["steps"] == _conversions(total, names)
    assert got["window"] == window
    assert total[0] > 20 and total[1] > 0
    if breakdown is not None:
        assert got["breakdown"] == breakdown
        ranked = sorted(want.items(), key=lambda kv: (-kv[1][0], kv[0] is None, kv[0] or ""))
        assert got["results"] == [{"value": v, "steps": _conversions(c, names)} for v, c in ranked]
        assert len(got["results"]) > 1


async def test_a_kept_funnel_moves_with_new_events_and_starts_over_after_a_rebuild(
    migrated_store: Store,
) -> None:
    """One process keeps a funnel's counts and brings them up to date by the users with
    events since (shuffled waves: later events of known users, first events written
    last); after a person's events are deleted and everything is derived again (the
    same seqs, other events), it counts anew."""
    store = migrated_store
    for site, zone in ((APP, APP_ZONE), (OTHER, "UTC")):
        await store.execute(
            "INSERT INTO site (id, timezone, currency) VALUES ($1, $2, 'EUR')", [site, zone]
        )
    ex = Executor(store)  # as the API's: its kept answers live across requests
    steps, window = "page_view,add_to_cart,purchase", "7d"
    names = steps.split(",")

    async def check(events: list[Any]) -> list[int]:
        scope = await scope_of(store, "2025-10-01", "2025-10-31")
        assert scope.span.start_utc is not None and scope.span.end_utc is not None
        got = await product.funnel(ex, scope, parse_steps(steps), parse_window(window), window)
        want = funnel(events, APP, names, _window(window), scope.span.start_utc,
                      scope.span.end_utc)  # fmt: skip
        total = [sum(c[k] for c in want.values()) for k in range(len(names))]
        assert got["steps"] == _conversions(total, names)
        return total

    written: list[Any] = []
    for wave in TRAFFIC.waves:
        for at in range(0, len(wave), 300):
            chunk = wave[at : at + 300]
            await store.write_events([event_row(e) for e in chunk])
            await derive_once(store)
            written += chunk
            await check(written)
    assert ex.kept.moved >= 5
    # one event alone, of a new user: the only one with an event since
    late = Event(site_id=APP, event_id="late-1", event_type="page_view", user="u-late",
                 ts=datetime(2025, 10, 10, 12, tzinfo=UTC))  # fmt: skip
    await store.write_events([event_row(late)])
    await derive_once(store)
    written.append(late)
    await check(written)
    # and the next event of that user alone: the one before it is the last counted
    then = replace(late, event_id="late-2", event_type="add_to_cart",
                   ts=late.ts + timedelta(minutes=5))  # fmt: skip
    await store.write_events([event_row(then)])
    await derive_once(store)
    written.append(then)
    total = await check(written)
    # a user who reached the last step: their events deleted, everything derived again
    scope = await scope_of(store, "2025-10-01", "2025-10-31")
    assert scope.span.start_utc is not None and scope.span.end_utc is not None
    gone = next(
        user for user in sorted({e.user for e in written if e.site_id == APP})
        if funnel([e for e in written if e.user == user], APP, names, _window(window),
                  scope.span.start_utc, scope.span.end_utc)[None][-1]
    )  # fmt: skip
    await store.execute("DELETE FROM event WHERE site_id = $1 AND visitor_id = $2", [APP, gone])
    await rebuild(store)
    left = await check([e for e in written if not (e.site_id == APP and e.user == gone)])
    assert left[-1] == total[-1] - 1


async def test_a_funnel_takes_no_filters(db: Store) -> None:
    scope = await scope_of(db, "2025-10-01", "2025-10-31", None, "path==/")
    with pytest.raises(TapiocaError) as caught:
        await product.funnel(Executor(db), scope, parse_steps("a,b"), timedelta(days=1), "1d")
    assert [d.field for d in caught.value.details] == ["filters"]


@pytest.mark.parametrize("interval", ["day", "week", "month"])
@pytest.mark.parametrize(("start", "end", "tz"), RANGES)
async def test_lifecycle(db: Store, interval: str, start: str, end: str, tz: str | None) -> None:
    scope = await scope_of(db, start, end, tz)
    got = await product.lifecycle(Executor(db), scope, Interval(interval))
    want = lifecycle(EVENTS, APP, tz or APP_ZONE, interval, date.fromisoformat(start),
                     date.fromisoformat(end))  # fmt: skip
    assert got["results"] == want
    assert sum(r["returning"] for r in want) > 0 and sum(r["dormant"] for r in want) > 0
    if interval != "month":  # three months hold no gap of a whole month
        assert sum(r["resurrecting"] for r in want) > 0


@pytest.mark.parametrize("interval", ["day", "week"])
@pytest.mark.parametrize(("start", "end", "tz"), RANGES)
async def test_stickiness(db: Store, interval: str, start: str, end: str, tz: str | None) -> None:
    scope = await scope_of(db, start, end, tz)
    got = await product.stickiness(Executor(db), scope, Interval(interval))
    want = stickiness(EVENTS, APP, tz or APP_ZONE, interval, date.fromisoformat(start),
                      date.fromisoformat(end))  # fmt: skip
    assert got["results"] == want
    assert sum(1 for r in want if r["users"]) > 3


async def test_an_upgrade_counts_the_events_derived_before_it(migrated_store: Store) -> None:
    """A store derived by the version before the product tables: migrating fills them from
    the events the derive job had done, and the next runs add the rest."""
    store = migrated_store
    for site, zone in ((APP, APP_ZONE), (OTHER, "UTC")):
        await store.execute(
            "INSERT INTO site (id, timezone, currency) VALUES ($1, $2, 'EUR')", [site, zone]
        )
    waves = TRAFFIC.waves
    await store.write_events([event_row(e) for e in waves[0] + waves[1]])
    await derive_once(store)
    for table in TABLES:  # as the version before left them
        await store.execute(f"DROP TABLE {table}")
    await store.execute("DELETE FROM schema_migration WHERE version = 17")
    await store.write_events([event_row(e) for e in waves[2]])  # not derived yet
    assert await store.migrate() == [17]
    derived = [e for w in waves[:2] for e in w]
    first = await store.fetch("SELECT count(*) FROM user_first WHERE site_id = $1", [APP])
    assert first[0][0] == len({e.user for e in counted(derived) if e.site_id == APP})
    await derive_once(store)
    scope = await scope_of(store, "2025-09-01", "2025-11-27")
    for cohort in ("day", "week"):
        got = await product.retention(Executor(store), scope, Interval(cohort), 8, TODAY)
        want = retention(EVENTS, APP, APP_ZONE, cohort, 8, date(2025, 9, 1), date(2025, 11, 27),
                         TODAY)  # fmt: skip
        assert got["results"] == want
    got = await product.active_users(Executor(store), scope, Interval.DAY)
    assert got["results"] == active_users(EVENTS, APP, APP_ZONE, "day", date(2025, 9, 1),
                                          date(2025, 11, 27))  # fmt: skip
    for interval in ("day", "week", "month"):
        got = await product.lifecycle(Executor(store), scope, Interval(interval))
        assert got["results"] == lifecycle(EVENTS, APP, APP_ZONE, interval, date(2025, 9, 1),
                                           date(2025, 11, 27))  # fmt: skip
