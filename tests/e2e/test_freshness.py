"""Reports while events arrive, on `tapioca serve` and on `tapioca api` + `worker`.

A backfill of 30 days arrives in requests of 100 events, one after another, each
touching every day. Meanwhile every report is asked for again and again, and each answer
must be the reference's answer (support/reference.py) over the events of the first k
requests, for some k: one answer, one set of events (metrics.md, Freshness) — never
page views without their visitors, never sessions of events not counted. Requests are
written in the order they were acknowledged (the embedded writer commits them one by
one; the worker here holds one batch at a time), so the events a report counts, those
up to the derived ingest sequence, are such a prefix. After the last 202 every answer
must be exact within FRESH_WITHIN seconds (the goal is 2 s; `make bench` measures it).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from support.procs import Launcher, Server
from support.reference import ALL_METRICS, Event, Question, WebReports, from_wire

pytestmark = pytest.mark.e2e

SITE = "fresh"
FIRST = date(2025, 10, 1)
DAYS = 30
REQUESTS = 30
PER_REQUEST = 100
FRESH_WITHIN = 10.0  # seconds; generous for a shared CI machine
RANGE = Question(site=SITE, start=FIRST.isoformat(),
                 end=(FIRST + timedelta(days=DAYS - 1)).isoformat(), tz="UTC")  # fmt: skip
PATHS = ("/", "/pricing", "/blog/a", "/blog/b", "/docs", None)
CAMPAIGNS = ("winter", "spring", None)
AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"  # one human browser
)


def backfill(seed: int = 7) -> list[list[dict[str, Any]]]:
    """REQUESTS bodies of PER_REQUEST wire events spread over the 30 days: sessions of
    1-4 page views (and a click now and then) of 120 visitors."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    n = 0
    while len(events) < REQUESTS * PER_REQUEST:
        user = f"v{rng.randrange(120)}"
        start = datetime.combine(FIRST, datetime.min.time(), UTC) + timedelta(
            seconds=rng.randrange(DAYS * 86_400)
        )
        campaign = rng.choice(CAMPAIGNS)
        for step in range(rng.randint(1, 4)):
            n += 1
            kind = "click" if rng.random() < 0.15 else "page_view"
            body: dict[str, Any] = {
                "site_id": SITE,
                "event_id": f"f{n}",
                "event_type": kind,
                "timestamp": (start + timedelta(minutes=3 * step)).isoformat(),
                "user_id": user,
                "path": rng.choice(PATHS),
                "channel": "Direct",
                "device": "desktop",
                "page_type": "other",
                "user_agent": AGENT,
            }
            if campaign:
                body["utm_campaign"] = campaign
            events.append({k: v for k, v in body.items() if v is not None})
    events = events[: REQUESTS * PER_REQUEST]
    rng.shuffle(events)  # every request touches every day
    return [events[i : i + PER_REQUEST] for i in range(0, len(events), PER_REQUEST)]


REPORTS: list[tuple[str, str, dict[str, str]]] = [
    ("overview", "/api/v1/stats/overview", {}),
    ("timeseries", "/api/v1/stats/timeseries",
     {"interval": "day", "metrics": ",".join(ALL_METRICS)}),
    ("week", "/api/v1/stats/timeseries", {"interval": "week", "metrics": "visitors,pageviews"}),
    ("path", "/api/v1/stats/breakdown",
     {"dimension": "path", "metrics": "visitors,pageviews,events", "limit": "100"}),
    ("campaign", "/api/v1/stats/breakdown",
     {"dimension": "utm_campaign", "metrics": "visitors,sessions,bounce_rate", "limit": "100"}),
]  # fmt: skip


def expected(ref: WebReports, name: str, params: dict[str, str]) -> dict[str, Any]:
    if name == "overview":
        return ref.overview(RANGE)
    if name in ("timeseries", "week"):
        return ref.timeseries(RANGE, params["interval"], params["metrics"].split(","))
    return ref.breakdown(RANGE, params["dimension"], params["metrics"].split(","), 100)


@dataclass
class Prefixes:
    """The reference's answers over the events of the first k requests, made on demand."""

    requests: list[list[Event]]
    made: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)

    def answer(self, k: int, name: str, params: dict[str, str]) -> dict[str, Any]:
        if (k, name) not in self.made:
            events = [e for batch in self.requests[:k] for e in batch]
            self.made[(k, name)] = expected(WebReports(events), name, params)
        return self.made[(k, name)]

    def prefix_of(self, got: dict[str, Any], upto: int, name: str, params: dict[str, str]) -> int:
        """The k ≤ ``upto`` whose answer ``got`` is (-1: none)."""
        for k in range(upto, -1, -1):
            if self.answer(k, name, params) == got:
                return k
        return -1


def run_backfill(server: Server) -> tuple[int, float]:
    """POST the backfill while asking for every report; returns the polls made and the
    seconds from the last 202 until every answer was exact."""
    bodies = backfill()
    received = datetime.now(UTC)
    prefixes = Prefixes([[from_wire(raw, received) for raw in body] for body in bodies])
    acked, polls = 0, 0
    client = server.client

    def poll(check: Callable[[str, dict[str, Any], dict[str, str]], None]) -> None:
        nonlocal polls
        for name, path, extra in REPORTS:
            params = {**RANGE.params(), **extra}
            response = client.get(path, params=params)
            assert response.status_code in (200, 404), response.text
            if response.status_code == 200:  # 404: no event of the site acknowledged yet
                check(name, response.json(), params)
            polls += 1

    def consistent(name: str, got: dict[str, Any], params: dict[str, str]) -> None:
        k = prefixes.prefix_of(got, acked, name, params)
        assert k >= 0, f"{name} after {acked} requests is no prefix's answer: {got}"

    for body in bodies:
        response = client.post("/events", json=body)
        assert response.status_code == 202, response.text
        acked += 1
        poll(consistent)
    last_202 = time.monotonic()
    final = {name: prefixes.answer(REQUESTS, name, {**RANGE.params(), **extra})
             for name, _, extra in REPORTS}  # fmt: skip
    exact: dict[str, bool] = {}

    def settled(name: str, got: dict[str, Any], params: dict[str, str]) -> None:
        consistent(name, got, params)
        exact[name] = got == final[name]

    while time.monotonic() - last_202 < FRESH_WITHIN:
        exact.clear()
        poll(settled)
        if len(exact) == len(REPORTS) and all(exact.values()):
            return polls, time.monotonic() - last_202
        time.sleep(0.05)
    raise AssertionError(
        f"not exact {FRESH_WITHIN}s after the last 202: {exact}\n{server.output()}"
    )


@pytest.mark.parametrize("mode", ["embedded", "production"])
def test_every_answer_counts_one_set_of_events(
    mode: str, request: pytest.FixtureRequest, launcher: Launcher
) -> None:
    if mode == "embedded":
        server = launcher.serve()
    else:
        dsn = request.getfixturevalue("pg_dsn")
        redis_url = request.getfixturevalue("redis_url")
        server = launcher.production(dsn, redis_url, env={"TAPIOCA_BATCHES_IN_HAND": "1"})
    polls, seconds = run_backfill(server)
    assert polls > REQUESTS * len(REPORTS)
    print(f"{mode}: every report exact {seconds:.2f} s after the last 202 ({polls} answers)")
