"""The product routes over HTTP, on the app of either store run in this process: Tapioca's
own and seed 003's (GET and POST), each answer compared with the reference
(support/product_reference.py) over the app traffic, written as rows and derived; and
what they refuse, in the one error shape."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio

from support.accounts import (
    STORES,
    owner_app,
)
from support.error_shape import assert_error, fields_of
from support.loaded import load_waves
from support.product_reference import (
    APP,
    APP_ZONE,
    OTHER,
    active_users,
    funnel,
    lifecycle,
    product_traffic,
    retention,
    stickiness,
    top_events,
)
from tapioca.storage.base import Store

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

TRAFFIC = product_traffic()
EVENTS = TRAFFIC.events


async def load(store: Store) -> None:
    await load_waves(store, [(APP, APP_ZONE, "EUR"), (OTHER, "UTC", "EUR")], TRAFFIC.waves)


@dataclass
class App:
    client: httpx.AsyncClient
    owner: dict[str, str]

    async def call(
        self, method: str, path: str, params: dict[str, Any], body: Any = None
    ) -> httpx.Response:
        return await self.client.request(method, path, params=params, json=body,
                                         headers=self.owner)  # fmt: skip

    async def answer(self, method: str, path: str, params: dict[str, Any], body: Any = None) -> Any:
        response = await self.call(method, path, params, body)
        assert response.status_code == 200, response.text
        return response.json()


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=STORES)
async def app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[App]:
    data_dir = tmp_path_factory.mktemp(f"product-http-{request.param}")
    async with owner_app(request, data_dir, load) as (client, owner):
        yield App(client, owner)


def today(zone: str = APP_ZONE) -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(zone)).date()


START, END = "2025-09-01", "2025-11-27"
DATES = (date.fromisoformat(START), date.fromisoformat(END))


@pytest.mark.parametrize("interval", ["day", "week", "month"])
async def test_active_users(app: App, interval: str) -> None:
    got = await app.answer("GET", "/api/v1/product/active-users",
                           {"site_id": APP, "start_date": START, "end_date": END,
                            "interval": interval})  # fmt: skip
    assert got["interval"] == interval
    assert got["results"] == active_users(EVENTS, APP, APP_ZONE, interval, *DATES)


async def test_top_events(app: App) -> None:
    params = {"site_id": APP, "start_date": START, "end_date": END, "limit": 4}
    got = await app.answer("GET", "/api/v1/product/top-events", params)
    assert got["results"] == top_events(EVENTS, APP, APP_ZONE, *DATES, 4)


@pytest.mark.parametrize(("cohort", "periods", "tz"), [("week", 6, None), ("day", 10, "UTC")])
async def test_retention(app: App, cohort: str, periods: int, tz: str | None) -> None:
    params = {"site_id": APP, "start_date": START, "end_date": END, "cohort": cohort,
              "periods": periods, **({"tz": tz} if tz else {})}  # fmt: skip
    got = await app.answer("GET", "/api/v1/product/retention", params)
    zone = tz or APP_ZONE
    want = retention(EVENTS, APP, zone, cohort, periods, *DATES, today(zone))
    assert (got["cohort"], got["periods"], got["results"]) == (cohort, periods, want)


async def test_retention_filtered_by_the_first_event(app: App) -> None:
    params = {"site_id": APP, "start_date": START, "end_date": END, "filters": "channel==Email"}
    got = await app.answer("GET", "/api/v1/product/retention", params)
    want = retention(EVENTS, APP, APP_ZONE, "week", 8, *DATES, today(), {"channel": "Email"})
    assert got["results"] == want


async def test_funnel(app: App) -> None:
    params = {"site_id": APP, "start_date": "2025-10-01", "end_date": "2025-10-31",
              "steps": "page_view,add_to_cart,purchase", "window": "3d",
              "breakdown": "device"}  # fmt: skip
    got = await app.answer("GET", "/api/v1/product/funnel", params)
    zone = ZoneInfo(APP_ZONE)
    want = funnel(EVENTS, APP, ["page_view", "add_to_cart", "purchase"], timedelta(days=3),
                  datetime(2025, 10, 1, tzinfo=zone), datetime(2025, 11, 1, tzinfo=zone),
                  "device")  # fmt: skip
    users = [sum(c[k] for c in want.values()) for k in range(3)]
    assert [s["users"] for s in got["steps"]] == users
    assert [s["step"] for s in got["steps"]] == ["page_view", "add_to_cart", "purchase"]
    assert got["steps"][2]["conversion_from_previous"] == round(users[2] / users[1], 4)
    assert {r["value"]: [s["users"] for s in r["steps"]] for r in got["results"]} == {
        v: c for v, c in want.items() if c[0]
    }
    assert (got["window"], got["breakdown"]) == ("3d", "device")


async def test_lifecycle_and_stickiness(app: App) -> None:
    params = {"site_id": APP, "start_date": START, "end_date": END}
    got = await app.answer("GET", "/api/v1/product/lifecycle", params)
    assert got["interval"] == "week"
    assert got["results"] == lifecycle(EVENTS, APP, APP_ZONE, "week", *DATES)
    got = await app.answer("GET", "/api/v1/product/stickiness", params)
    assert got["interval"] == "day"
    assert got["results"] == stickiness(EVENTS, APP, APP_ZONE, "day", *DATES)


# == seed 003 ==========================================================================

SEED_RANGE = {"from_date": "2025-10-01", "to_date": "2025-10-31"}
OCTOBER = (date(2025, 10, 1), date(2025, 10, 31))


def _seed(got: dict[str, Any]) -> list[dict[str, Any]]:
    assert set(got) == {"data", "response_time_sec"}
    assert isinstance(got["response_time_sec"], float) and 0 <= got["response_time_sec"] < 60
    data: list[dict[str, Any]] = got["data"]
    return data


def _asked(method: str, params: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """GET: every parameter in the query; POST: the site in the query, the rest in a
    JSON body."""
    if method == "GET":
        return {"site_id": APP, **params}, None
    return {"site_id": APP}, params


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_seed_dau(app: App, method: str) -> None:
    got = _seed(await app.answer(method, "/api/stats/dau", *_asked(method, SEED_RANGE)))
    want = active_users(EVENTS, APP, APP_ZONE, "day", *OCTOBER)
    assert got == [{"date": row["bucket"], "dau": row["dau"]} for row in want]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_seed_top_events(app: App, method: str) -> None:
    asked = {**SEED_RANGE, "limit": 3}
    got = _seed(await app.answer(method, "/api/stats/top-events", *_asked(method, asked)))
    want = top_events(EVENTS, APP, APP_ZONE, *OCTOBER, 3)
    assert got == [{"event_type": r["event_type"], "total_count": r["events"]} for r in want]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("windows", [2, 4, 6])
async def test_seed_retention(app: App, method: str, windows: int) -> None:
    asked = {"start_date": "2025-10-08", "windows": windows}
    got = _seed(await app.answer(method, "/api/stats/retention", *_asked(method, asked)))
    now = today()
    cohorts = retention(EVENTS, APP, APP_ZONE, "week", windows - 1, date(2025, 10, 8), now, now)
    want = [{"cohort_week": c["cohort_start"], "week_number": k, "retained_users": n}
            for c in cohorts if c["size"] for k, n in enumerate(c["retained"])]  # fmt: skip
    assert got == want
    assert got[0]["cohort_week"] == "2025-10-06"  # the Monday of start_date's week
    assert {row["week_number"] for row in got} == set(range(windows))


REFUSED = [
    ("GET", "/api/v1/product/active-users", {"interval": "hour"}, None, "interval"),
    ("GET", "/api/v1/product/retention", {"cohort": "month"}, None, "cohort"),
    ("GET", "/api/v1/product/retention", {"periods": "0"}, None, "periods"),
    ("GET", "/api/v1/product/retention", {"filters": "path==/"}, None, "filters"),
    ("GET", "/api/v1/product/top-events", {"limit": "0"}, None, "limit"),
    ("GET", "/api/v1/product/top-events", {"from_date": "2025-10-01"}, None, "from_date"),
    ("GET", "/api/stats/retention", {"windows": "1"}, None, "windows"),
    ("GET", "/api/v1/product/funnel", {}, None, "steps"),
    ("GET", "/api/v1/product/funnel", {"steps": "a"}, None, "steps"),
    ("GET", "/api/v1/product/funnel", {"steps": "a,b", "window": "2w"}, None, "window"),
    ("GET", "/api/v1/product/funnel", {"steps": "a,b", "breakdown": "path"}, None, "breakdown"),
    ("GET", "/api/v1/product/lifecycle", {"interval": "hour"}, None, "interval"),
    ("GET", "/api/v1/product/stickiness", {"interval": "month"}, None, "interval"),
    ("GET", "/api/stats/dau", {"from_date": "2025-10-09", "to_date": "2025-10-01"}, None,
     "from_date"),
    ("GET", "/api/stats/top-events", {"to_date": "not a date"}, None, "to_date"),
    ("GET", "/api/stats/dau", {"from_date": "1900-01-01", "to_date": "2025-10-01"}, None,
     "from_date"),  # more days than a report has buckets
    ("GET", "/api/stats/retention", {"start_date": "0064-11-24"}, None, "start_date"),
    ("POST", "/api/stats/dau", {}, {"site_id": OTHER}, "site_id"),
    ("POST", "/api/stats/retention", {}, {"windows": 1}, "windows"),
    ("POST", "/api/stats/retention", {}, {"start_date": "0064-11-24"}, "start_date"),
    ("POST", "/api/stats/top-events", {}, {"to_date": "not a date"}, "to_date"),
    ("POST", "/api/stats/top-events", {}, {"to_date": "2025-02-30"}, "to_date"),
    ("POST", "/api/stats/dau", {"to_date": "2025-10-01"}, {"from_date": "2025-10-09"},
     "from_date"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "params", "body", "field"), REFUSED)
async def test_refused(
    app: App, method: str, path: str, params: dict[str, str], body: Any, field: str
) -> None:
    response = await app.call(method, path, {"site_id": APP, **params}, body)
    assert fields_of(assert_error(response, 422, "validation_error")) == [field]


async def test_seed_errors_name_the_parameters_as_sent(app: App) -> None:
    params = {"site_id": APP, "from_date": "2025-10-09", "to_date": "2025-10-01"}
    body = assert_error(await app.call("GET", "/api/stats/top-events", params), 422,
                        "validation_error")  # fmt: skip
    assert "start_date" not in json.dumps(body) and "from_date" in body["error"]["message"]


async def test_too_many_daily_cohorts_name_the_cohort(app: App) -> None:
    params = {"site_id": APP, "start_date": "1990-01-01", "end_date": "2025-10-01", "cohort": "day"}
    response = await app.call("GET", "/api/v1/product/retention", params)
    assert fields_of(assert_error(response, 422, "validation_error")) == ["cohort"]
