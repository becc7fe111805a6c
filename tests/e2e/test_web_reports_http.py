"""Web reports over HTTP, on `tapioca serve` and on `tapioca api` + `worker`.

A smaller version of tests/integration/test_web_reports.py: the same generated traffic
(support/web_traffic.py, fewer visitors) is POSTed to /events, the stored and derived
state is awaited by polling, and every answer of
/api/v1/stats/{overview,timeseries,breakdown,realtime} is compared with the same
independent reference (support/reference.py). Here the writers enrich the events, so
each event carries what makes its stored dimensions known: explicit ``channel`` and
``device``; a User-Agent per (browser, os) family pair (a crawler's for bot events). The
server derives the others as the reference does: the source from the utm_source or the
referrer (known sources by their name in any spelling, ``source_of``), the page type from
the path (``page_type_of``); scroll events are sent without a path, so they have neither
path nor page type.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from support.error_shape import assert_error, fields_of
from support.procs import Launcher, Server
from support.reference import (
    ALL_METRICS,
    EVENT_DIMS,
    SESSION_DIMS,
    Event,
    Question,
    WebReports,
    first_spellings,
    page_type_of,
    source_of,
    stats,
)
from support.web_traffic import (
    DAY,
    FROM,
    SAME_EVENT,
    SHOP,
    TO,
    WEEK,
    ZONES,
    long_client_session,
    realtime_events,
    traffic,
)

pytestmark = pytest.mark.e2e

AGENT_STRINGS: dict[tuple[str | None, str | None], str] = {
    ("Chrome", "Windows"): "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    ("Firefox", "Linux"): "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    ("Mobile Safari", "iOS"): "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    ("Safari", "Mac OS X"): "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
}
CRAWLER = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
REALTIME_AGES = (("rt-a", 20), ("rt-a", 45), ("rt-b", 60), ("rt-c", 900))  # 2 visitors
DERIVED_TIMEOUT = 30.0


def http_events(now: datetime) -> list[Event]:
    """The events as they will be stored once enriched."""
    events = [
        *traffic(21, SHOP, 14),
        *long_client_session(SHOP),
        *realtime_events(SHOP, now, REALTIME_AGES),
    ]
    stored = []
    for e in events:
        browser, os_ = (None, None) if e.is_bot else (e.browser, e.os)
        path = None if e.event_type == "scroll" else e.path
        stored.append(
            replace(
                e,
                path=path,
                page_type=page_type_of(path),
                source=source_of(e.utm_source, e.referrer),
                browser=browser,
                os=os_,
            )
        )
    return first_spellings(stored)


def wire(e: Event) -> dict[str, Any]:
    body = {
        "site_id": e.site_id,
        "event_id": e.event_id,
        "event_type": e.event_type,
        "timestamp": e.ts.isoformat(),
        "user_id": e.user,
        "session_id": e.session_id,
        "path": e.path,
        "referrer": e.referrer,
        "utm_source": e.utm_source,
        "utm_medium": e.utm_medium,
        "utm_campaign": e.utm_campaign,
        "utm_term": e.utm_term,
        "utm_content": e.utm_content,
        "device": e.device,
        "channel": e.channel,
        "user_agent": CRAWLER if e.is_bot else AGENT_STRINGS[(e.browser, e.os)],
    }
    return {k: v for k, v in body.items() if v is not None}


@dataclass
class Loaded:
    server: Server
    ref: WebReports

    def get(self, path: str, params: dict[str, str]) -> Any:
        response = self.server.client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()


def wait_until_derived(loaded: Loaded) -> None:
    """Poll the overview of every day with events until it shows every event and every
    session."""
    everything = Question(start="2020-01-01", end=(date.today() + timedelta(days=1)).isoformat())
    expected = loaded.ref.overview(everything)
    deadline = time.monotonic() + DERIVED_TIMEOUT
    got = None
    while time.monotonic() < deadline:
        response = loaded.server.client.get("/api/v1/stats/overview", params=everything.params())
        got = response.json() if response.status_code in (200, 404) else response.text
        if got == expected:
            return
        time.sleep(0.2)
    assert got == expected, f"not derived within {DERIVED_TIMEOUT}s\n{loaded.server.output()}"


@pytest.fixture(scope="module", params=["embedded", "production"])
def loaded(request: pytest.FixtureRequest, module_launcher: Launcher) -> Loaded:
    env = {"TAPIOCA_DERIVE_INTERVAL_S": "0.2"}
    if request.param == "embedded":
        server = module_launcher.serve(env=env)
    else:
        dsn = request.getfixturevalue("module_pg_dsn")
        redis_url = request.getfixturevalue("module_redis_url")
        server = module_launcher.production(dsn, redis_url, env=env)
    events = http_events(datetime.now(UTC).replace(microsecond=0))
    bodies = [wire(e) for e in events]
    for start in range(0, len(bodies), 60):
        response = server.client.post("/events", json=bodies[start : start + 60])
        assert response.status_code == 202, response.text
    result = Loaded(server, WebReports(events))
    wait_until_derived(result)
    return result


# == overview, timeseries, breakdown, realtime ========================================

FILTERS = [
    (("path", "/products/tea"),),
    (("channel", "Organic Search"),),
    (("device", "mobile"),),
    (("channel", "Direct"), ("path", "/cart")),
    (("browser", "Firefox"), ("event_type", "page_view")),
    SAME_EVENT,
]
OVERVIEW = [
    *(Question(day=DAY, tz=z) for z in ZONES),
    *(Question(start=FROM, end=TO, tz=z) for z in ZONES),
    Question(tz="Asia/Kolkata"),
    *(replace(WEEK, filters=f) for f in FILTERS),
]


@pytest.mark.parametrize("q", OVERVIEW, ids=str)
def test_overview(loaded: Loaded, q: Question) -> None:
    assert loaded.get("/api/v1/stats/overview", q.params()) == loaded.ref.overview(q)


TIMESERIES = [
    (Question(day=DAY, tz="America/New_York"), "hour"),
    (Question(day="2025-11-13", tz="Asia/Kolkata"), "hour"),
    (Question(start="2025-11-07", end="2025-11-19", tz="Asia/Kolkata"), "day"),
    (Question(start="2025-11-08", end="2025-11-18", filters=(("channel", "Direct"),)), "day"),
    (Question(start="2025-10-22", end="2025-12-10", tz="UTC"), "week"),
    (Question(start="2025-09-15", end="2026-01-10", tz="America/New_York"), "month"),
]


@pytest.mark.parametrize(("q", "interval"), TIMESERIES, ids=[f"{i}-{q}" for q, i in TIMESERIES])
def test_timeseries(loaded: Loaded, q: Question, interval: str) -> None:
    params = {**q.params(), "interval": interval, "metrics": ",".join(ALL_METRICS)}
    got = loaded.get("/api/v1/stats/timeseries", params)
    expected = loaded.ref.timeseries(q, interval, ALL_METRICS)
    assert got == expected
    assert any(all(r[m] == 0 for m in ALL_METRICS) for r in expected["results"])


@pytest.mark.parametrize("dimension", [*EVENT_DIMS, *SESSION_DIMS, "country"])
def test_breakdown_defaults(loaded: Loaded, dimension: str) -> None:
    """Default metrics (visitors first) and the default limit of 10."""
    q = WEEK
    got = loaded.get("/api/v1/stats/breakdown", {**q.params(), "dimension": dimension})
    second = "sessions" if dimension in SESSION_DIMS else "pageviews"
    assert got == loaded.ref.breakdown(q, dimension, ("visitors", second), 10)


BREAKDOWN = [
    (WEEK, "path", ("pageviews", "events", "visitors"), 3),
    (Question(day=DAY, tz="Asia/Kolkata"), "channel", ALL_METRICS, 50),
    (WEEK, "landing_page", ("bounce_rate", "avg_session_seconds"), 4),
    (replace(WEEK, filters=(("channel", "Organic Search"),)), "path", ("visitors",), 50),
    (replace(WEEK, filters=(("path", "/cart"),)), "device", ALL_METRICS, 50),
    (replace(WEEK, filters=(("device", "desktop"), ("path", "/"))), "event_type", ("events",), 50),
]


@pytest.mark.parametrize(
    ("q", "dimension", "metrics", "limit"),
    BREAKDOWN,
    ids=[f"{d}-{m[0]}-{n}-{q}" for q, d, m, n in BREAKDOWN],
)
def test_breakdown(
    loaded: Loaded, q: Question, dimension: str, metrics: tuple[str, ...], limit: int
) -> None:
    params = {
        **q.params(),
        "dimension": dimension,
        "metrics": ",".join(metrics),
        "limit": str(limit),
    }
    got = loaded.get("/api/v1/stats/breakdown", params)
    assert got == loaded.ref.breakdown(q, dimension, metrics, limit)


def test_realtime(loaded: Loaded) -> None:
    got = loaded.get("/api/v1/stats/realtime", {"site_id": SHOP})
    assert got == loaded.ref.realtime(SHOP, datetime.now(UTC))
    assert got["visitors"] == 2


# == malformed parameters =============================================================

BAD = [
    ("overview", {"filters": "path=/cart"}, "filters"),
    ("overview", {"filters": "landing_page==/"}, "filters"),
    ("breakdown", {"dimension": "path", "filters": "colour==red"}, "filters"),
    ("timeseries", {"metrics": "pageviews,nope"}, "metrics"),
    ("breakdown", {"dimension": "path", "metrics": "visitors,bounce_rate"}, "metrics"),
    ("timeseries", {"interval": "year"}, "interval"),
    ("breakdown", {"dimension": "colour"}, "dimension"),
    ("breakdown", {}, "dimension"),
    ("breakdown", {"dimension": "path", "limit": "0"}, "limit"),
    ("overview", {"start_date": "2025-11-12", "end_date": "2025-11-10"}, "start_date"),
    ("overview", {"date": "2025-13-01"}, "date"),
    ("overview", {"tz": "Mars/Olympus_Mons"}, "tz"),
]


@pytest.mark.parametrize(
    ("report", "params", "field"), BAD, ids=[f"{r}-{f}-{i}" for i, (r, _, f) in enumerate(BAD)]
)
def test_malformed_parameters_are_422_naming_them(
    loaded: Loaded, report: str, params: dict[str, str], field: str
) -> None:
    response = loaded.server.client.get(
        f"/api/v1/stats/{report}", params={"site_id": SHOP, **params}
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert [d["field"] for d in error["details"]] == [field], error


def test_unknown_site_is_404(loaded: Loaded) -> None:
    response = loaded.server.client.get("/api/v1/stats/overview", params={"site_id": "nope"})
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "site_not_found"


# == parameters =========================================================================


def test_stats_takes_a_range_of_days(loaded: Loaded) -> None:
    params = {"site_id": SHOP, "start_date": FROM, "end_date": TO, "tz": "America/New_York"}
    want = stats(loaded.ref.events, SHOP, date.fromisoformat(FROM), "America/New_York", 10,
                 date.fromisoformat(TO))  # fmt: skip
    assert want["total_views"] > 0 and want["date"] is None
    assert loaded.get("/stats", params) == want


REPORT_PATHS = [
    ("/stats", {}),
    ("/api/v1/stats/overview", {}),
    ("/api/v1/stats/timeseries", {"interval": "day"}),
    ("/api/v1/stats/breakdown", {"dimension": "path"}),
    ("/api/v1/stats/realtime", {}),
]


@pytest.mark.parametrize(("path", "extra"), REPORT_PATHS, ids=[p for p, _ in REPORT_PATHS])
def test_an_unknown_query_parameter_is_422_naming_it(
    loaded: Loaded, path: str, extra: dict[str, str]
) -> None:
    """A misspelt bound would otherwise answer about another range."""
    params = {"site_id": SHOP, **extra, "start": FROM, "end_date": TO}
    if path == "/api/v1/stats/realtime":
        params.pop("end_date")
    response = loaded.server.client.get(path, params=params)
    assert fields_of(assert_error(response, 422, "validation_error")) == ["start"]
