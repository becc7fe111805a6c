"""A browser sends events from a site's pages on another origin (api.md, Browsers): a
real headless Chromium opens a page served on 127.0.0.1 under a name of its own, whose
tracker posts to a real `tapioca serve` with fetch (JSON, after a preflight) and with
navigator.sendBeacon (text/plain, no preflight). Events from the site's domain are
stored, each exactly once; from an origin the site does not accept, the page sees the
failure and nothing is stored."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from selenium import webdriver

from support.browser import chromium, network_events, static_pages
from support.procs import Launcher, Server

pytestmark = pytest.mark.e2e

PAGES = Path(__file__).parent / "pages"
DEADLINE_S = 30.0


def open_tracker(
    driver: webdriver.Chrome, page: str, server: Server, site: str, run: str
) -> dict[str, Any]:
    """Open the tracker page at ``page`` and return what its sends saw."""
    query = urlencode({"api": server.base_url, "site": site, "run": run})
    driver.get(f"{page}/tracker.html?{query}")
    deadline = time.monotonic() + DEADLINE_S
    while (tracked := driver.execute_script("return window.tracked")) is None:
        assert time.monotonic() < deadline, driver.page_source
        time.sleep(0.05)
    assert isinstance(tracked, dict)
    return tracked


def answered(driver: webdriver.Chrome, kind: str, url: str) -> list[int]:
    """The statuses of the answers of ``kind`` (DevTools' resource type) to ``url`` the
    browser has received since it was last asked."""
    return [
        event["response"]["status"]
        for event in network_events(driver, "Network.responseReceived")
        if event["type"] == kind and event["response"]["url"] == url
    ]


def stored_paths(server: Server, site: str) -> tuple[int, dict[str, int]]:
    stats = server.client.get("/stats", params={"site_id": site})
    assert stats.status_code == 200, stats.text
    body = stats.json()
    return body["total_views"], {row["path"]: row["views"] for row in body["top_paths"]}


def test_a_sites_pages_send_events_from_its_own_origin_only(
    launcher: Launcher, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    created = launcher.run(
        ["sites", "create", "shop", "--domain", "shop.test"], {"TAPIOCA_DATA_DIR": str(data)}
    )
    assert created.returncode == 0, created.stderr
    assert orjson.loads(created.stdout)["any_origin"] is False
    server = launcher.serve(env={"TAPIOCA_CORS_ANY_ORIGIN": "false"}, data_dir=data)
    beacon_url = f"{server.base_url}/event"

    with (
        static_pages(PAGES) as port,
        chromium(("shop.test", "elsewhere.test"), tmp_path) as driver,
    ):
        # elsewhere.test: no site accepts it, so the preflight is refused and the page can
        # read no answer; the beacon goes without one and is refused by the server
        refused = open_tracker(driver, f"http://elsewhere.test:{port}", server, "shop", "refused")
        assert refused == {"json": {"error": "TypeError"}, "text": {"error": "TypeError"},
                           "beacon": True}  # fmt: skip
        statuses: list[int] = []
        deadline = time.monotonic() + DEADLINE_S
        while not statuses:  # the beacon is sent after the page has gone on
            assert time.monotonic() < deadline, "the refused beacon was never answered"
            statuses += answered(driver, "Ping", beacon_url)
            time.sleep(0.05)
        assert statuses == [403]
        assert stored_paths(server, "shop") == (0, {})

        # shop.test, the site's own domain: every send is accepted
        accepted = open_tracker(driver, f"http://shop.test:{port}", server, "shop", "ok")
        assert accepted == {
            "json": {
                "status": 202,
                "body": {"status": "accepted", "accepted": 2,
                         "event_ids": ["ok-json-1", "ok-json-2"]},
            },
            "text": {"status": 202, "body": {"status": "accepted", "event_id": "ok-text-1"}},
            "beacon": True,
        }  # fmt: skip
        expected = {"/ok/json/1": 1, "/ok/json/2": 1, "/ok/text/1": 1, "/ok/beacon/1": 1}
        deadline = time.monotonic() + DEADLINE_S
        while (stored := stored_paths(server, "shop")) != (4, expected):
            assert time.monotonic() < deadline, stored
            time.sleep(0.1)
        assert answered(driver, "Ping", beacon_url) == [202]
        time.sleep(0.5)  # nothing else comes in late
        assert stored_paths(server, "shop") == (4, expected)
