"""Reading what a running server answers: /stats against the reference, /metrics, and
waiting until production has written everything acknowledged."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from support.procs import Server
from support.reference import Event, stats
from support.traffic import QUERY_DAYS, SITES, ZONES


def get_stats(
    client: httpx.Client,
    site_id: str,
    day: date | None = None,
    tz: str | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    params: dict[str, str | int] = {"site_id": site_id}
    if day is not None:
        params["date"] = day.isoformat()
    if tz is not None:
        params["tz"] = tz
    if limit is not None:
        params["limit"] = limit
    response = client.get("/stats", params=params)
    assert response.status_code == 200, f"{params}: {response.status_code} {response.text}"
    result: dict[str, Any] = response.json()
    return result


def tie_cut(expected_all: dict[str, Any]) -> int | None:
    """A limit that cuts through a group of equal view counts, if the ranking has one."""
    paths = expected_all["top_paths"]
    for n in range(1, len(paths)):
        if paths[n - 1]["views"] == paths[n]["views"]:
            return n
    return None


def compare_stats(
    client: httpx.Client,
    ref: Sequence[Event],
    *,
    sites: Sequence[str] = SITES,
    site_zone: dict[str, str] | None = None,
    days: Iterable[date] = QUERY_DAYS,
    zones: Iterable[str] = ZONES,
) -> tuple[list[str], int]:
    """Ask /stats for every site, day, zone and several limits; return the mismatches.

    ``site_zone`` is each site's own time zone (used when no ``tz`` is given).
    """
    mismatches: list[str] = []
    asked = 0

    def check(site: str, day: date | None, tz: str | None, limit: int | None) -> None:
        nonlocal asked
        zone = tz or (site_zone or {}).get(site, "UTC")
        want = stats(ref, site, day, zone, 10 if limit is None else limit)
        got = get_stats(client, site, day, tz, limit)
        asked += 1
        if got != want:
            mismatches.append(
                f"site={site} date={day} tz={tz} limit={limit}:\n  got  {got}\n  want {want}"
            )

    days = list(days)
    for site in sites:
        for limit in (None, 1, 3, 1000):
            check(site, None, None, limit)
        for day in days:
            for tz in (None, *zones):
                full = stats(ref, site, day, tz or (site_zone or {}).get(site, "UTC"), 1000)
                limits: list[int | None] = [None, 1000, 2]
                cut = tie_cut(full)
                if cut is not None:
                    limits.append(cut)
                for limit in limits:
                    check(site, day, tz, limit)
    return mismatches, asked


# -- operations -----------------------------------------------------------------------


def metric(text: str, name: str, **labels: str) -> float | None:
    """Sum of the samples called ``name`` whose labels include ``labels``; None if absent."""
    total: float | None = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total = (total or 0.0) + sample.value
    return total


def _totals(client: httpx.Client, site: str) -> tuple[int, Any, Any]:
    response = client.get("/stats", params={"site_id": site})
    body = response.json()
    return response.status_code, body.get("total_views"), body.get("unique_users")


def wait_until_drained(
    client: httpx.Client, sites: Sequence[str] = SITES, timeout: float = 30.0
) -> None:
    """Production: until /health reports queue_lag 0 and /stats totals stop moving."""
    deadline = time.monotonic() + timeout
    previous: list[Any] | None = None
    last: Any = None
    while time.monotonic() < deadline:
        health = client.get("/health").json()
        last = health
        if health.get("queue_lag") == 0:
            totals = [_totals(client, site) for site in sites]
            if totals == previous:
                return
            previous = totals
        else:
            previous = None
        time.sleep(0.15)
    raise AssertionError(f"the queue did not drain within {timeout}s; last /health: {last}")


def total_views(server: Server, site: str) -> int:
    """All-time page views of a site once everything acknowledged is visible (0 if unknown)."""
    if server.mode == "production":
        wait_until_drained(server.client, sites=[site])
    response = server.client.get("/stats", params={"site_id": site})
    if response.status_code == 404:
        assert response.json()["error"]["code"] == "site_not_found", response.text
        return 0
    assert response.status_code == 200, response.text
    views: int = response.json()["total_views"]
    return views
