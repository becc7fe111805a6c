"""The order analytics routes over HTTP, on the app of either store run in this process:
seed 004's five admin routes and GET /api/v1/forecast. Rows are written straight into
the tables the order batch and the forecast job keep; every answer is compared with what
those rows say, worked out here in plain Python. Also: the defaults in the site's time
zone (the clock is set, never waited on), only the latest forecast run served, ``as_of``,
and what the routes refuse, in the one error shape."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio

from support.accounts import STORES, owner_app
from support.error_shape import assert_error, fields_of
from tapioca.storage.base import Store

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

SHOP, CAFE = "shop", "cafe"  # cafe: the batch never ran for it
ZONE = ZoneInfo("America/New_York")
NOW = datetime(2025, 11, 20, 15, 30, tzinfo=UTC)  # 10:30 on the 20th in New York
LATE = datetime(2025, 11, 21, 3, 0, tzinfo=UTC)  # the 21st in UTC, still the 20th there
TODAY = date(2025, 11, 20)
SYNCED = datetime(2025, 11, 20, 5, 10, 7, 250000, tzinfo=UTC)
FIRST, LAST = date(2025, 10, 1), date(2025, 11, 19)  # the batch has not reached today
CLOSED = date(2025, 11, 4)  # a day without orders
ROUNDED = date(2025, 11, 11)  # 200.1250 over 4 orders: half to even, both figures
CENTS = Decimal("0.01")


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


# -- what the batch kept -----------------------------------------------------------------


@dataclass(frozen=True)
class Day:
    day: date
    hours: tuple[int, ...]  # orders per hour 0..23
    revenue: Decimal

    @property
    def orders(self) -> int:
        return sum(self.hours)


@dataclass(frozen=True)
class ItemDay:
    day: date
    item_id: str
    name: str | None
    quantity: int
    revenue: Decimal


PRICES = {"I-1": Decimal("9.50"), "I-2": Decimal("3.25"), "I-3": Decimal("2.0000"),
          "I-4": Decimal("7.7500"), "I-10": Decimal("12.1250")}  # fmt: skip
RENAMED = date(2025, 11, 10)  # I-2's name from this day on


def name_of(item_id: str, day: date) -> str | None:
    if item_id == "I-2":
        return "Fries" if day < RENAMED else "Large fries"
    return None if item_id == "I-4" else f"Item {item_id}"


def shop_data() -> tuple[list[Day], list[ItemDay]]:
    rng = random.Random(4)
    kept, items = [], []
    for day in days(FIRST, LAST):
        hours = tuple(0 if day == CLOSED or h < 8 else rng.randint(0, 9) for h in range(24))
        revenue = sum((Decimal(rng.randint(300, 9000)) / 100 for _ in range(sum(hours))),
                      Decimal(rng.randint(0, 9999)) / 10_000)  # fmt: skip
        if day == ROUNDED:
            hours = (0,) * 12 + (1, 2, 1) + (0,) * 9
            revenue = Decimal("200.1250")
        kept.append(Day(day, hours, revenue if sum(hours) else Decimal(0)))
        if day == CLOSED:
            continue
        for item_id, price in PRICES.items():
            if rng.random() < 0.7:
                quantity = rng.randint(1, 12)
                items.append(ItemDay(day, item_id, name_of(item_id, day), quantity,
                                     price * quantity))  # fmt: skip
    # two items of equal revenue on one day: the smaller id first
    items += [ItemDay(date(2025, 10, 2), item, f"Tie {item}", 1, Decimal("5")) for item in
              ("T-b", "T-a")]  # fmt: skip
    return kept, items


DAYS, ITEMS = shop_data()


# -- forecasts: two runs of most series; only the latest is served ------------------------

OLD_RUN = datetime(2025, 11, 19, 5, 0, tzinfo=UTC)
NEW_RUN = datetime(2025, 11, 20, 5, 0, 3, 500000, tzinfo=UTC)
WEB_RUN = datetime(2025, 11, 20, 4, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Run:
    series: str
    generated_at: datetime
    model: str
    score: float | None
    model_mae: float | None
    naive_mae: float | None
    coverage: float | None
    origins: int
    points: tuple[tuple[datetime, float, float, float], ...]  # local ts, value, lower, upper


def points(first: datetime, step: timedelta, count: int, base: float) -> tuple[Any, ...]:
    out = []
    for n in range(count):
        value = base + n * 10.123456 + (n % 3) * 0.004999
        out.append((first + step * n, value, value * 0.8 - 0.005, value * 1.2 + 0.0049))
    return tuple(out)


DAY, HOUR = timedelta(days=1), timedelta(hours=1)
MIDNIGHT = datetime(2025, 11, 19)  # local: yesterday, before today's points
RUNS = [
    Run("daily_revenue", OLD_RUN, "seasonal_naive", 1.0, 40.0, 40.0, 0.7, 4,
        points(MIDNIGHT, DAY, 8, 900.0)),
    Run("daily_revenue", NEW_RUN, "ets", 0.8125, 32.5, 40.0, 0.79, 6,
        points(MIDNIGHT, DAY, 9, 1234.5678)),
    Run("daily_orders", NEW_RUN, "sarima", 0.91, 3.2, 3.5, 0.83, 6,
        points(MIDNIGHT, DAY, 9, 42.0)),
    Run("hourly_orders", OLD_RUN, "seasonal_naive", 1.0, 2.0, 2.0, 0.6, 5,
        points(MIDNIGHT, HOUR, 72, 1.0)),
    Run("hourly_orders", NEW_RUN, "ets", 0.75, 1.5, 2.0, 0.81, 5,
        points(datetime(2025, 11, 20), HOUR, 72, 0.5)),
    Run("daily_pageviews", WEB_RUN, "seasonal_naive (short history)", None, None, None, None, 0,
        points(datetime(2025, 11, 20), DAY, 7, 321.0)),
]  # fmt: skip


def latest(series: str) -> Run:
    return max((r for r in RUNS if r.series == series), key=lambda r: r.generated_at)


# -- the store ---------------------------------------------------------------------------


async def insert(store: Store, table: str, columns: Sequence[str], rows: Sequence[Any]) -> None:
    for start in range(0, len(rows), 400):
        params: list[Any] = []
        tuples = []
        for row in rows[start : start + 400]:
            marks = []
            for value in row:
                params.append(value)
                marks.append(f"${len(params)}")
            tuples.append(f"({', '.join(marks)})")
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join(tuples)}"
        await store.execute(sql, params)


async def load(store: Store) -> None:
    try:
        await store.migrate()
        for site, zone in ((SHOP, ZONE.key), (CAFE, "UTC")):
            await store.execute("INSERT INTO site (id, timezone, currency) VALUES ($1, $2, 'EUR')",
                                [site, zone])  # fmt: skip
        kept = [(SHOP, d.day, d.orders, d.revenue) for d in DAYS]
        kept.append((CAFE, LAST, 99_999, Decimal("123456.78")))  # another site's day
        await insert(store, "order_day", ("site_id", "day", "orders", "revenue"), kept)
        hours = [(site, day, h, n) for site, day, n24 in
                 [(SHOP, d.day, d.hours) for d in DAYS] + [(CAFE, LAST, (7,) * 24)]
                 for h, n in enumerate(n24)]  # fmt: skip
        await insert(store, "order_hour", ("site_id", "day", "hour", "orders"), hours)
        lines = [(SHOP, i.day, i.item_id, i.name, Decimal(i.quantity), i.revenue) for i in ITEMS]
        lines.append((CAFE, LAST, "I-1", "Cafe item", Decimal(1000), Decimal(99_999)))
        columns = ("site_id", "day", "item_id", "item_name", "quantity", "revenue")
        await insert(store, "order_item_day", columns, lines)
        await insert(store, "order_sync", ("site_id", "synced_at", "through_day", "first_day"),
                     [(SHOP, SYNCED, LAST, FIRST)])  # fmt: skip
        await insert_runs(store)
    finally:
        await store.close()


async def insert_runs(store: Store) -> None:
    runs = [(SHOP, r.series, r.generated_at, r.model, 80, 7, r.score, r.model_mae, r.naive_mae,
             r.coverage, r.origins, 120) for r in RUNS]  # fmt: skip
    runs.append((CAFE, "daily_visitors", NEW_RUN, "cafe model", 80, 7, 0.5, 1.0, 2.0, 0.8, 3, 99))
    await insert(store, "forecast_run",
                 ("site_id", "series", "generated_at", "model", "level", "horizon", "score",
                  "model_mae", "naive_mae", "coverage", "origins", "history"), runs)  # fmt: skip
    rows = [(SHOP, r.series, r.generated_at, *p) for r in RUNS for p in r.points]
    rows.append((CAFE, "daily_visitors", NEW_RUN, datetime(2025, 11, 20), 1.0, 0.0, 2.0))
    columns = ("site_id", "series", "generated_at", "ts", "value", "lower", "upper")
    await insert(store, "forecast_point", columns, rows)


# -- the app -----------------------------------------------------------------------------


@dataclass
class App:
    client: httpx.AsyncClient
    owner: dict[str, str]

    async def call(self, path: str, params: dict[str, Any]) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.owner)

    async def answer(self, path: str, **params: Any) -> Any:
        response = await self.call(path, {"site_id": SHOP, **params})
        assert response.status_code == 200, response.text
        return response.json()


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=STORES)
async def app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[App]:
    data_dir = tmp_path_factory.mktemp(f"orders-http-{request.param}")
    async with owner_app(request, data_dir, load) as (client, owner):
        yield App(client, owner)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[datetime], None]]:
    """The routes' clock, at NOW unless a test moves it."""

    def at(moment: datetime) -> None:
        monkeypatch.setattr("tapioca.api.orders.utc_now", lambda: moment)

    at(NOW)
    yield at


SUMMARY, TOP = "/api/admin/analytics/summary", "/api/admin/analytics/top-items"
HOURLY = "/api/admin/analytics/hourly"
DAILY_FORECAST = "/api/admin/analytics/forecast/daily"
HOURLY_FORECAST = "/api/admin/analytics/forecast/hourly"
FORECAST = "/api/v1/forecast"
AS_OF = "2025-11-20T05:10:07.250000Z"


def money(value: Decimal) -> float:
    return float(value.quantize(CENTS, rounding=ROUND_HALF_EVEN))


# -- summary -----------------------------------------------------------------------------


def summary(first: date, last: date, limit: int) -> list[dict[str, Any]]:
    kept = sorted((d for d in DAYS if first <= d.day <= last), key=lambda d: d.day, reverse=True)
    return [{"date": d.day.isoformat(), "total_revenue": money(d.revenue),
             "order_count": d.orders,
             "average_order_value": money(d.revenue / d.orders) if d.orders else 0}
            for d in kept[:limit]]  # fmt: skip


@pytest.mark.usefixtures("clock")
async def test_summary_of_a_range(app: App) -> None:
    got = await app.answer(SUMMARY, start_date="2025-10-20", end_date="2025-11-15", limit=100)
    want = summary(date(2025, 10, 20), date(2025, 11, 15), 100)
    assert got == {"daily_summaries": want, "total_records": 27, "as_of": AS_OF}
    rows = {row["date"]: row for row in got["daily_summaries"]}
    assert [r["date"] for r in got["daily_summaries"]][:2] == ["2025-11-15", "2025-11-14"]
    assert rows[CLOSED.isoformat()] == {"date": "2025-11-04", "total_revenue": 0,
                                        "order_count": 0, "average_order_value": 0}  # fmt: skip
    # 200.125 and 50.03125 rounded half to even
    assert rows[ROUNDED.isoformat()] == {
        "date": "2025-11-11", "total_revenue": 200.12, "order_count": 4,
        "average_order_value": 50.03,
    }  # fmt: skip


@pytest.mark.usefixtures("clock")
async def test_summary_limit_keeps_the_newest(app: App) -> None:
    got = await app.answer(SUMMARY, start_date="2025-10-01", end_date="2025-11-30", limit=3)
    assert got["daily_summaries"] == summary(FIRST, LAST, 3)
    assert [r["date"] for r in got["daily_summaries"]] == ["2025-11-19", "2025-11-18",
                                                          "2025-11-17"]  # fmt: skip
    assert got["total_records"] == 3


async def test_summary_defaults_to_30_days_up_to_today_in_the_sites_zone(
    app: App, clock: Callable[[datetime], None]
) -> None:
    for moment in (NOW, LATE):  # LATE is the 21st in UTC, the 20th in New York
        clock(moment)
        got = await app.answer(SUMMARY)
        # 2025-10-22 .. 2025-11-20, today not reached by the batch yet: 29 rows
        assert got["daily_summaries"] == summary(date(2025, 10, 22), TODAY, 30)
        assert got["total_records"] == 29
    clock(NOW)
    got = await app.answer(SUMMARY, end_date="2025-10-31")
    assert got["daily_summaries"] == summary(FIRST, date(2025, 10, 31), 30)
    got = await app.answer(SUMMARY, start_date="2025-11-15")  # up to today
    assert got["daily_summaries"] == summary(date(2025, 11, 15), TODAY, 30)


# -- top items ---------------------------------------------------------------------------


def top(first: date, last: date, limit: int) -> tuple[list[dict[str, Any]], int]:
    sums: dict[str, list[Any]] = {}  # item → [quantity, revenue, last day, name]
    for line in ITEMS:
        if first <= line.day <= last:
            found = sums.setdefault(line.item_id, [0, Decimal(0), line.day, line.name])
            found[0] += line.quantity
            found[1] += line.revenue
            if line.day >= found[2]:
                found[2], found[3] = line.day, line.name
    ranked = sorted(sums.items(), key=lambda kv: (-kv[1][1], kv[0]))
    rows = [{"item_id": item, "item_name": name, "total_quantity": quantity,
             "total_revenue": money(revenue)}
            for item, (quantity, revenue, _day, name) in ranked[:limit]]  # fmt: skip
    return rows, len(sums)


@pytest.mark.usefixtures("clock")
@pytest.mark.parametrize(
    ("start", "end", "limit"),
    [("2025-10-01", "2025-11-19", 10), ("2025-11-01", "2025-11-15", 3),
     ("2025-10-02", "2025-10-02", 10)],
)  # fmt: skip
async def test_top_items(app: App, start: str, end: str, limit: int) -> None:
    got = await app.answer(TOP, start_date=start, end_date=end, limit=limit)
    rows, total = top(date.fromisoformat(start), date.fromisoformat(end), limit)
    assert got == {"top_items": rows, "total_items": total, "as_of": AS_OF}
    assert len(rows) == min(limit, total)


@pytest.mark.usefixtures("clock")
async def test_top_items_names_ties_and_defaults(app: App) -> None:
    got = await app.answer(TOP, start_date="2025-10-02", end_date="2025-10-02")
    ties = [r["item_id"] for r in got["top_items"] if r["item_id"].startswith("T-")]
    assert ties == ["T-a", "T-b"]  # equal revenue: by item id
    before = await app.answer(TOP, start_date="2025-10-01", end_date="2025-11-09", limit=1000)
    after = await app.answer(TOP, start_date="2025-10-01", end_date="2025-11-19", limit=1000)
    names = [{r["item_id"]: r["item_name"] for r in g["top_items"]} for g in (before, after)]
    assert (names[0]["I-2"], names[1]["I-2"], names[1]["I-4"]) == ("Fries", "Large fries", None)
    got = await app.answer(TOP)  # the 30 days up to today
    rows, total = top(date(2025, 10, 22), TODAY, 10)
    assert (got["top_items"], got["total_items"]) == (rows, total)


# -- hourly ------------------------------------------------------------------------------


def hourly(first: date, last: date) -> list[dict[str, Any]]:
    return [{"date": d.day.isoformat(), "hour": h, "order_count": n}
            for d in DAYS if first <= d.day <= last for h, n in enumerate(d.hours)]  # fmt: skip


async def test_hourly(app: App, clock: Callable[[datetime], None]) -> None:
    for moment in (NOW, LATE):
        clock(moment)
        got = await app.answer(HOURLY)  # the 7 days up to yesterday in New York
        want = hourly(date(2025, 11, 13), date(2025, 11, 19))
        assert got == {"hourly_data": want, "total_records": 168, "as_of": AS_OF}
    got = await app.answer(HOURLY, target_date="2025-11-20", days_back=3)  # today: not reached
    assert got["hourly_data"] == hourly(date(2025, 11, 18), date(2025, 11, 19))
    assert got["total_records"] == 48
    got = await app.answer(HOURLY, target_date="2025-11-04", days_back=1)
    assert got["hourly_data"] == [{"date": "2025-11-04", "hour": h, "order_count": 0}
                                  for h in range(24)]  # fmt: skip
    got = await app.answer(HOURLY, target_date="2025-10-31", days_back=366)
    assert got["hourly_data"] == hourly(FIRST, date(2025, 10, 31))
    per_day = {d.day.isoformat(): d.orders for d in DAYS}
    counted: dict[str, int] = {}
    for row in got["hourly_data"]:
        counted[row["date"]] = counted.get(row["date"], 0) + row["order_count"]
    assert all(per_day[day] == n for day, n in counted.items()) and len(counted) == 31


# -- forecasts ---------------------------------------------------------------------------


def utc_text(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def daily_rows(series: str, since: date, limit: int) -> list[dict[str, Any]]:
    run = latest(series)
    return [{"forecast_date": ts.date().isoformat(), "forecast_value": round(v, 2),
             "lower": round(lo, 2), "upper": round(hi, 2), "forecast_type": series,
             "model": run.model, "generated_at": utc_text(run.generated_at), "score": run.score}
            for ts, v, lo, hi in run.points if ts.date() >= since][:limit]  # fmt: skip


def hour_rows(day: date) -> list[dict[str, Any]]:
    run = latest("hourly_orders")
    return [{"hour": ts.hour, "forecast_value": round(v, 2), "lower": round(lo, 2),
             "upper": round(hi, 2), "model": run.model,
             "generated_at": utc_text(run.generated_at), "score": run.score}
            for ts, v, lo, hi in run.points if ts.date() == day]  # fmt: skip


async def test_daily_forecast_serves_the_latest_run_from_today(
    app: App, clock: Callable[[datetime], None]
) -> None:
    for moment in (NOW, LATE):
        clock(moment)
        got = await app.answer(DAILY_FORECAST)
        want = daily_rows("daily_revenue", TODAY, 7)
        assert got == {"forecasts": want, "total_forecasts": 7, "as_of": AS_OF}
    assert {r["model"] for r in got["forecasts"]} == {"ets"}  # not the older run's
    assert got["forecasts"][0]["forecast_date"] == "2025-11-20"
    got = await app.answer(DAILY_FORECAST, limit=3, forecast_type="daily_orders")
    assert got["forecasts"] == daily_rows("daily_orders", TODAY, 3)
    assert got["total_forecasts"] == 3
    got = await app.answer(DAILY_FORECAST, limit=100)
    assert len(got["forecasts"]) == 8  # the 20th .. the 27th


@pytest.mark.usefixtures("clock")
async def test_hourly_forecast(app: App) -> None:
    got = await app.answer(HOURLY_FORECAST)  # tomorrow in New York
    want = hour_rows(date(2025, 11, 21))
    assert got == {"forecasts": want, "total_forecasts": 24, "as_of": AS_OF}
    assert [r["hour"] for r in got["forecasts"]] == list(range(24))
    assert {r["generated_at"] for r in got["forecasts"]} == {"2025-11-20T05:00:03.500000Z"}
    got = await app.answer(HOURLY_FORECAST, forecast_date="2025-11-20")
    assert got["forecasts"] == hour_rows(TODAY)
    got = await app.answer(HOURLY_FORECAST, forecast_date="2025-11-19")  # only the old run's
    assert got == {"forecasts": [], "total_forecasts": 0, "as_of": AS_OF}


def forecast(metric: str, series: str, since: datetime, horizon: int | None) -> dict[str, Any]:
    run = latest(series)
    per_hour = series == "hourly_orders"
    points = [p for p in run.points if p[0] >= since][:horizon]
    return {
        "site_id": SHOP, "metric": metric, "series": series, "model": run.model,
        "generated_at": utc_text(run.generated_at), "level": 80,
        "backtest": {"score": run.score, "model_mae": run.model_mae, "naive_mae": run.naive_mae,
                     "coverage": run.coverage, "origins": run.origins},
        "forecasts": [{"ts": ts.replace(tzinfo=ZONE).isoformat(timespec="minutes") if per_hour
                       else ts.date().isoformat(), "value": round(v, 2), "lower": round(lo, 2),
                       "upper": round(hi, 2)} for ts, v, lo, hi in points],
        "as_of": AS_OF if series != "daily_pageviews" else utc_text(run.generated_at),
    }  # fmt: skip


@pytest.mark.usefixtures("clock")
@pytest.mark.parametrize(
    ("metric", "series", "horizon"),
    [("revenue", "daily_revenue", None), ("revenue", "daily_revenue", 2),
     ("orders", "daily_orders", 168), ("hourly_orders", "hourly_orders", None),
     ("hourly_orders", "hourly_orders", 5), ("pageviews", "daily_pageviews", None)],
)  # fmt: skip
async def test_forecast(app: App, metric: str, series: str, horizon: int | None) -> None:
    asked = {"metric": metric, **({"horizon": horizon} if horizon else {})}
    got = await app.answer(FORECAST, **asked)
    hour = series == "hourly_orders"
    since = datetime(2025, 11, 20, 10) if hour else datetime.combine(TODAY, time(0))
    assert got == forecast(metric, series, since, horizon)
    if hour:  # from the hour that holds now (10:30 in New York)
        assert got["forecasts"][0]["ts"] == "2025-11-20T10:00-05:00"
        assert len(got["forecasts"]) == (horizon or 62)


@pytest.mark.usefixtures("clock")
async def test_as_of_says_when_the_batch_last_ran(app: App) -> None:
    """Cafe: the batch never finished a run for it; its rows are its own."""
    never = {"site_id": CAFE}
    for path, rows, count in [
        (SUMMARY, "daily_summaries", 1), (TOP, "top_items", 1), (HOURLY, "hourly_data", 24),
        (DAILY_FORECAST, "forecasts", 0), (HOURLY_FORECAST, "forecasts", 0),
    ]:  # fmt: skip
        response = await app.call(path, never)
        assert response.status_code == 200, response.text
        got = response.json()
        assert (got["as_of"], len(got[rows])) == (None, count)
        assert {row.get("order_count", 7) for row in got[rows]} <= {99_999, 7}
    response = await app.call(FORECAST, {**never, "metric": "visitors"})
    assert response.json()["as_of"] == utc_text(NEW_RUN)  # web traffic: when it was made


async def test_a_metric_without_a_forecast_is_not_found(app: App) -> None:
    response = await app.call(FORECAST, {"site_id": SHOP, "metric": "visitors"})
    body = assert_error(response, 404, "forecast_not_found")
    assert fields_of(body) == ["metric"]
    response = await app.call(FORECAST, {"site_id": "nowhere", "metric": "revenue"})
    assert_error(response, 404, "site_not_found")


@pytest.mark.usefixtures("clock")
@pytest.mark.parametrize(
    ("path", "params"),
    [(SUMMARY, {"end_date": "0001-01-02"}), (SUMMARY, {"start_date": "9999-12-30"}),
     (TOP, {"end_date": "0001-01-05"}), (HOURLY, {"target_date": "0001-01-02", "days_back": 366}),
     (HOURLY_FORECAST, {"forecast_date": "9999-12-30"})],
)  # fmt: skip
async def test_the_calendars_ends_are_answered(app: App, path: str, params: dict[str, Any]) -> None:
    response = await app.call(path, {"site_id": SHOP, **params})
    assert response.status_code == 200, response.text
    assert response.json()["as_of"] == AS_OF


REFUSED = [
    (SUMMARY, {"start_date": "2025-11-10", "end_date": "2025-11-01"}, "start_date"),
    (SUMMARY, {"start_date": "2025-02-30"}, "start_date"),
    (SUMMARY, {"end_date": "20251101"}, "end_date"),
    (SUMMARY, {"end_date": "0001-01-01"}, "end_date"),
    (SUMMARY, {"limit": "0"}, "limit"),
    (SUMMARY, {"limit": "1001"}, "limit"),
    (SUMMARY, {"tz": "UTC"}, "tz"),  # the batch's days are the site's: no other zone
    (SUMMARY, {"date": "2025-11-01"}, "date"),
    (TOP, {"limit": "0"}, "limit"),
    (TOP, {"start_date": "2025-11-20", "end_date": "2025-11-19"}, "start_date"),
    (TOP, {"start": "2025-11-01"}, "start"),
    (HOURLY, {"target_date": "yesterday"}, "target_date"),
    (HOURLY, {"target_date": "9999-12-31"}, "target_date"),
    (HOURLY, {"days_back": "0"}, "days_back"),
    (HOURLY, {"days_back": "367"}, "days_back"),
    (DAILY_FORECAST, {"forecast_type": "hourly_orders"}, "forecast_type"),
    (DAILY_FORECAST, {"limit": "-1"}, "limit"),
    (HOURLY_FORECAST, {"forecast_date": "2025-13-01"}, "forecast_date"),
    (FORECAST, {}, "metric"),
    (FORECAST, {"metric": "sales"}, "metric"),
    (FORECAST, {"metric": "revenue", "horizon": "0"}, "horizon"),
    (FORECAST, {"metric": "revenue", "horizon": "169"}, "horizon"),
]


@pytest.mark.parametrize(("path", "params", "field"), REFUSED)
async def test_refused(app: App, path: str, params: dict[str, str], field: str) -> None:
    response = await app.call(path, {"site_id": SHOP, **params})
    assert fields_of(assert_error(response, 422, "validation_error")) == [field]
