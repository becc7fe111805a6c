"""The forecast refresh of a web site on both stores: its daily pageviews and visitors are
the web reports' numbers (checked against the independent reference), history ends
yesterday in the site's zone, and each series' run is stored with its backtest and seven
points from today on; a site without events gets no run."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from support.loaded import load_waves, loaded_store
from support.reference import Event, Question, WebReports
from tapioca.forecast.refresh import refresh, web_series
from tapioca.storage.base import Store

pytestmark = pytest.mark.integration

SITE, EMPTY = "news", "quiet"
ZONE = "America/New_York"
FIRST = date(2025, 9, 1)
DAYS = 42
NOW = datetime(2025, 10, 13, 9, 30, tzinfo=UTC)  # 05:30 on 2025-10-13 in New York


def events() -> list[Event]:
    """Six weeks of readers, more on weekdays, each reading 1-5 pages in one visit."""
    rng = random.Random(11)
    made: list[Event] = []
    for day in range(DAYS):
        start = datetime(2025, 9, 1, 4, tzinfo=UTC) + timedelta(days=day)  # 00:00 New York
        weekday = (FIRST + timedelta(days=day)).weekday()
        for reader in range(rng.randint(30, 45) if weekday < 5 else rng.randint(8, 15)):
            at = start + timedelta(seconds=rng.randrange(86_400))
            user = f"u{rng.randrange(400)}"
            for page in range(rng.randint(1, 5)):
                made.append(Event(
                    site_id=SITE, event_id=f"e{day}-{reader}-{page}", event_type="page_view",
                    ts=at + timedelta(minutes=page), user=user, path=f"/story/{page}",
                ))  # fmt: skip
    return made


EVENTS = events()


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def opened(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], Store]]:
    async def load(store: Store) -> None:
        await load_waves(store, [(SITE, ZONE, "USD"), (EMPTY, "UTC", "USD")], [EVENTS])

    yield from loaded_store(request, tmp_path_factory, "forecast-refresh", load)


async def test_web_series_are_the_web_reports_numbers(opened: Callable[[], Store]) -> None:
    store = opened()
    try:
        series = {s.name: s for s in await web_series(store, SITE, NOW)}
    finally:
        await store.close()
    yesterday = date(2025, 10, 12)
    reference = WebReports(EVENTS, {SITE: ZONE}, now=NOW).timeseries(
        Question(site=SITE, start=FIRST.isoformat(), end=yesterday.isoformat(), tz=None),
        "day", ["pageviews", "visitors"],
    )  # fmt: skip
    assert set(series) == {"daily_pageviews", "daily_visitors"}
    for metric in ("pageviews", "visitors"):
        made = series[f"daily_{metric}"]
        assert made.start == datetime(2025, 9, 1)
        assert made.values == [float(row[metric]) for row in reference["results"]]
        assert len(made.values) == (yesterday - FIRST).days + 1
        assert made.horizon == 7


async def test_a_refresh_stores_each_series_run_with_its_backtest(
    opened: Callable[[], Store],
) -> None:
    store = opened()
    try:
        made = await refresh(store, store, SITE, now=NOW, deadline_s=10)
        assert sorted(made["series"]) == ["daily_pageviews", "daily_visitors"]
        runs = await store.fetch(
            "SELECT series, model, level, horizon, score, model_mae, naive_mae, origins, "
            "history FROM forecast_run WHERE site_id = $1 ORDER BY series",
            (SITE,),
        )
        assert [r[0] for r in runs] == ["daily_pageviews", "daily_visitors"]
        for series, model, level, horizon, score, model_mae, naive_mae, origins, history in runs:
            assert (level, horizon, history) == (80, 7, (date(2025, 10, 12) - FIRST).days + 1)
            assert origins >= 3, series
            assert score == pytest.approx(model_mae / naive_mae)
            assert (score < 1) != model.startswith("seasonal_naive"), (series, model, score)
        points = await store.fetch(
            "SELECT ts, value, lower, upper FROM forecast_point WHERE site_id = $1 "
            "AND series = 'daily_pageviews' ORDER BY ts",
            (SITE,),
        )
        assert [p[0] for p in points] == [
            datetime(2025, 10, 13) + timedelta(days=n) for n in range(7)
        ]
        assert all(0 <= p[2] <= p[1] <= p[3] for p in points)
        assert await refresh(store, store, EMPTY, now=NOW) == {"series": {}}
    finally:
        await store.close()
