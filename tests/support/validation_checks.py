"""Validation and error-shape checks over HTTP, run against either mode (the end-to-end
tests of `tapioca serve` and of `tapioca api` + worker run every one of them).

The server under test runs with small limits (``LIMITS``). Each check uses its own
site ids, so the checks are independent of each other and of their order.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from support.answers import get_stats, wait_until_drained
from support.error_shape import assert_error, fields_of
from support.procs import Server

MAX_BODY = 8192
MAX_EVENTS = 20
MAX_EVENT_BYTES = 2048
LIMITS = {
    "TAPIOCA_MAX_BODY_BYTES": str(MAX_BODY),
    "TAPIOCA_MAX_EVENTS_PER_REQUEST": str(MAX_EVENTS),
    "TAPIOCA_MAX_EVENT_BYTES": str(MAX_EVENT_BYTES),
}


def settle(server: Server) -> None:
    """Make everything acknowledged so far visible (production: drain the queue)."""
    if server.mode == "production":
        wait_until_drained(server.client, sites=())


def page_view(site: str, n: int, **extra: Any) -> dict[str, Any]:
    event = {
        "site_id": site,
        "event_id": f"{site}-{n}",
        "event_type": "page_view",
        "timestamp": "2025-03-09T12:00:00Z",
        "user_id": f"user-{n}",
        "path": f"/p{n}",
    }
    event.update(extra)
    return event


def post_json(server: Server, route: str, value: Any) -> Any:
    return server.client.post(route, content=orjson.dumps(value))


def assert_site_absent(server: Server, site: str) -> None:
    response = server.client.get("/stats", params={"site_id": site})
    assert_error(response, 404, "site_not_found")


def assert_totals(server: Server, site: str, views: int, users: int) -> None:
    got = get_stats(server.client, site)
    assert (got["total_views"], got["unique_users"]) == (views, users), got


# -- checks ---------------------------------------------------------------------------


def invalid_batch_stores_nothing(server: Server) -> None:
    site = "val-batch"
    assert post_json(server, "/event", page_view(site, 0)).status_code == 202
    bad = page_view(site, 3)
    bad["timestamp"] = "2025-03-09 noon"
    response = post_json(server, "/events", [page_view(site, 1), page_view(site, 2), bad])
    body = assert_error(response, 422, "validation_error")
    assert fields_of(body) == ["2.timestamp"], body
    # the same through the alias /api/events, NDJSON and gzip
    ndjson = b"\n".join(orjson.dumps(e) for e in [page_view(site, 4), bad])
    response = server.client.post(
        "/api/events",
        content=gzip.compress(ndjson),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/x-ndjson"},
    )
    assert fields_of(assert_error(response, 422, "validation_error")) == ["1.timestamp"]
    # nothing of a rejected batch, not even a new site
    response = post_json(server, "/events", [page_view("val-fresh", 1), bad])
    assert_error(response, 422, "validation_error")
    assert post_json(server, "/event", page_view(site, 5)).status_code == 202  # sentinel
    settle(server)
    assert_totals(server, site, views=2, users=2)
    assert_site_absent(server, "val-fresh")


def one_detail_per_bad_field(server: Server) -> None:
    site = "val-details"
    batch = [
        page_view(site, 0),
        {**page_view(site, 1), "timestamp": "yesterday"},
        page_view(site, 2),
        {k: v for k, v in page_view(site, 3).items() if k != "event_type"},
        {**page_view(site, 4), "screen_width": "wide"},
    ]
    body = assert_error(post_json(server, "/events", batch), 422, "validation_error")
    assert sorted(fields_of(body)) == ["1.timestamp", "3.event_type", "4.screen_width"], body
    settle(server)
    assert_site_absent(server, site)


def one_detail_for_a_bad_user_id(server: Server) -> None:
    """``user_id`` is a string or an integer; a bad one is still one bad field."""
    site = "val-user"
    batch = [page_view(site, 0), {**page_view(site, 1), "user_id": ""}]
    body = assert_error(post_json(server, "/events", batch), 422, "validation_error")
    assert fields_of(body) == ["1.user_id"], body


def unknown_field_is_named(server: Server) -> None:
    site = "val-unknown"
    body = assert_error(
        post_json(server, "/event", page_view(site, 0, colour="red")), 422, "validation_error"
    )
    assert fields_of(body) == ["colour"], body
    batch = [page_view(site, 1), page_view(site, 2, sesion_id="typo")]
    body = assert_error(post_json(server, "/events", batch), 422, "validation_error")
    assert fields_of(body) == ["1.sesion_id"], body
    settle(server)
    assert_site_absent(server, site)


def malformed_json_is_422(server: Server) -> None:
    site = "val-json"
    good = orjson.dumps(page_view(site, 0))
    bodies: list[tuple[str, bytes, dict[str, str]]] = [
        ("/event", good[:-1], {}),
        ("/event", b"", {}),
        ("/event", b"[1, 2", {}),
        ("/events", b"[" + good + b",", {}),
        ("/events", good + b"\n{not json}\n" + good, {"Content-Type": "application/x-ndjson"}),
        ("/events", b'"just a string"', {}),
        ("/events", b'{"events": "none"}', {}),
        ("/events", b"[1, 2]", {}),
        ("/api/events", gzip.compress(b"[" + good), {"Content-Encoding": "gzip"}),
        ("/events", b"\x1f\x8b not gzip at all", {"Content-Encoding": "gzip"}),
    ]
    for route, content, headers in bodies:
        response = server.client.post(route, content=content, headers=headers)
        assert_error(response, 422, "validation_error")
    # an NDJSON line that is not JSON is named as every error in a batch: by its index
    ndjson = b"\n".join([good, b"", good, b"{not json}", good])
    body = assert_error(server.client.post("/events", content=ndjson), 422, "validation_error")
    assert body["error"]["details"] == [
        {"field": "2", "message": "malformed JSON (line 4): object keys must be strings (byte 1)"}
    ], body
    settle(server)
    assert_site_absent(server, site)


def _chunks(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def body_over_limit_is_413(server: Server) -> None:
    site = "val-large"
    events = [page_view(site, n, title="x" * 400) for n in range(MAX_EVENTS)]
    big = orjson.dumps(events)
    assert len(big) > MAX_BODY
    assert_error(server.client.post("/events", content=big), 413)
    # no Content-Length: counted while streaming
    assert_error(server.client.post("/events", content=_chunks(big)), 413)
    # small on the wire, too large once decompressed
    padded = orjson.dumps([page_view(site, 0)]) + b" " * (MAX_BODY * 3)
    packed = gzip.compress(padded)
    assert len(packed) < MAX_BODY
    assert_error(
        server.client.post("/events", content=packed, headers={"Content-Encoding": "gzip"}), 413
    )
    # one event over the per-event limit inside a body under the body limit
    huge = page_view(site, 0, properties={"blob": "y" * (MAX_EVENT_BYTES + 100)})
    assert len(orjson.dumps([huge])) < MAX_BODY
    assert_error(post_json(server, "/events", [page_view(site, 1), huge]), 413)
    assert_error(post_json(server, "/event", huge), 413)
    settle(server)
    assert_site_absent(server, site)


def too_many_events_is_413(server: Server) -> None:
    site = "val-many"
    tiny = [{"site_id": site, "event_type": "page", "user_id": n} for n in range(MAX_EVENTS + 1)]
    assert_error(post_json(server, "/events", tiny), 413)
    ndjson = b"\n".join(orjson.dumps(e) for e in tiny)
    assert_error(server.client.post("/api/events", content=ndjson), 413)
    settle(server)
    assert_site_absent(server, site)
    response = post_json(server, "/events", tiny[:MAX_EVENTS])
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == MAX_EVENTS
    settle(server)
    assert_totals(server, site, views=MAX_EVENTS, users=MAX_EVENTS)


def future_timestamp_is_422(server: Server) -> None:
    site = "val-future"
    now = datetime.now(UTC)
    later = (now + timedelta(hours=1)).isoformat()
    body = assert_error(
        post_json(server, "/event", page_view(site, 0, timestamp=later)), 422, "validation_error"
    )
    assert fields_of(body) == ["timestamp"], body
    epoch = int((now + timedelta(minutes=10)).timestamp() * 1000)
    batch = [page_view(site, 1), page_view(site, 2, timestamp=epoch)]
    body = assert_error(post_json(server, "/events", batch), 422, "validation_error")
    assert fields_of(body) == ["1.timestamp"], body
    # within five minutes of the server's clock is fine (client clocks drift)
    soon = (now + timedelta(seconds=60)).isoformat()
    assert post_json(server, "/event", page_view(site, 3, timestamp=soon)).status_code == 202
    settle(server)
    assert_totals(server, site, views=1, users=1)


def old_timestamps_are_accepted(server: Server) -> None:
    site = "val-old"
    batch = [
        page_view(site, 0, timestamp=0),  # epoch 0 (1970-01-01, in any unit)
        page_view(site, 1, timestamp="1999-12-31T23:59:59.999Z"),
        page_view(site, 2, timestamp="2000-01-01T01:00:00+02:00"),  # 1999-12-31 23:00 UTC
        page_view(site, 3, timestamp="1969-12-31T23:59:59.500Z"),
        page_view(site, 4, timestamp="1970-01-01T00:00:00.250-00:00"),
    ]
    response = post_json(server, "/events", batch)
    assert response.status_code == 202, response.text
    settle(server)
    days = {"1969-12-31": 1, "1970-01-01": 2, "1999-12-31": 2, "2000-01-01": 0}
    for day, views in days.items():
        got = server.client.get("/stats", params={"site_id": site, "date": day}).json()
        assert got["total_views"] == views, (day, got)
    assert_totals(server, site, views=5, users=5)


def cookieless_visitors(server: Server) -> None:
    """No user_id, no anonymous_id: one visitor per site, address and User-Agent."""
    firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    safari = (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Safari/605.1.15"
    )
    for site in ("val-anon-1", "val-anon-2"):
        events = [{"site_id": site, "event_type": "pageview", "path": "/"} for _ in range(3)]
        for agent in (firefox, safari):
            response = server.client.post(
                "/events", content=orjson.dumps(events), headers={"User-Agent": agent}
            )
            assert response.status_code == 202, response.text
        # the event's own user_agent wins over the header
        own = {**events[0], "user_agent": safari}
        response = server.client.post(
            "/event", content=orjson.dumps(own), headers={"User-Agent": "Other/1.0 (X11)"}
        )
        assert response.status_code == 202, response.text
    settle(server)
    for site in ("val-anon-1", "val-anon-2"):
        assert_totals(server, site, views=7, users=2)


def bots_are_excluded(server: Server) -> None:
    """metrics.md: known crawlers are stored with is_bot and left out of every report."""
    site = "val-bots"
    crawler = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    human = page_view(site, 0)
    response = post_json(server, "/event", human)
    assert response.status_code == 202, response.text
    bot = page_view(site, 1, user_agent=crawler)
    response = post_json(server, "/event", bot)
    assert response.status_code == 202, response.text
    headers = {
        "User-Agent": "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
    }
    response = server.client.post(
        "/event", content=orjson.dumps(page_view(site, 2)), headers=headers
    )
    assert response.status_code == 202, response.text
    settle(server)
    assert_totals(server, site, views=1, users=1)


def non_browser_clients_count_with_an_unknown_device(server: Server) -> None:
    """reports.md: a User-Agent no browser sent (and no User-Agent) tells no device; the
    events are counted as any others."""
    site = "val-clients"
    agents = ["curl/8.5.0", "python-requests/2.32.3", "Go-http-client/1.1", None]
    for n, agent in enumerate(agents):
        request = server.client.build_request(
            "POST", "/event", content=orjson.dumps(page_view(site, n))
        )
        if agent is None:
            del request.headers["User-Agent"]
        else:
            request.headers["User-Agent"] = agent
        response = server.client.send(request)
        assert response.status_code == 202, response.text
    assert post_json(server, "/event", page_view(site, 9)).status_code == 202  # Firefox
    settle(server)
    assert_totals(server, site, views=5, users=5)
    params = {"site_id": site, "dimension": "device", "metrics": "pageviews",
              "start_date": "2025-03-09", "end_date": "2025-03-09"}  # fmt: skip
    expected = [{"value": "unknown", "pageviews": 4}, {"value": "desktop", "pageviews": 1}]
    deadline, results = time.monotonic() + 30, None
    while time.monotonic() < deadline and results != expected:  # sessions derive shortly
        time.sleep(0.2)
        results = server.client.get("/api/v1/stats/breakdown", params=params).json()["results"]
    assert results == expected


def missing_site_id(server: Server) -> None:
    """More than one site on the instance: site_id is required."""
    assert post_json(server, "/event", page_view("val-multi-1", 0)).status_code == 202
    assert post_json(server, "/event", page_view("val-multi-2", 0)).status_code == 202
    settle(server)
    body = assert_error(server.client.get("/stats"), 422, "validation_error")
    assert fields_of(body) == ["site_id"], body


def unsupported_encoding(server: Server) -> None:
    response = server.client.post(
        "/events", content=b"\x00\x01", headers={"Content-Encoding": "br"}
    )
    assert_error(response, 415)


def unknown_route_and_wrong_method(server: Server) -> None:
    for method, path in [("GET", "/nope"), ("POST", "/nope/events"), ("GET", "/stats/x")]:
        assert_error(server.client.request(method, path), 404)
    for method, path, allowed in [
        ("GET", "/events", "POST"),
        ("DELETE", "/stats", "GET"),
        ("PUT", "/event", "POST"),
    ]:
        response = server.client.request(method, path)
        assert_error(response, 405)
        assert allowed in response.headers.get("Allow", ""), dict(response.headers)
    first = assert_error(server.client.get("/nope"), 404)
    second = assert_error(server.client.get("/nope"), 404)
    assert first["request_id"] != second["request_id"]


def stats_parameters(server: Server) -> None:
    site = "val-params"
    assert post_json(server, "/event", page_view(site, 0)).status_code == 202
    settle(server)
    body = assert_error(
        server.client.get("/stats", params={"site_id": "no-such-site", "date": "2025-03-09"}),
        404,
        "site_not_found",
    )
    for bad_date in ("2025-13-01", "yesterday", "2025-3-9", "20250309", "2025-02-30"):
        response = server.client.get("/stats", params={"site_id": site, "date": bad_date})
        body = assert_error(response, 422, "validation_error")
        assert fields_of(body) == ["date"], (bad_date, body)
    for bad_tz in ("Mars/Olympus", "../etc/passwd"):
        response = server.client.get("/stats", params={"site_id": site, "tz": bad_tz})
        assert fields_of(assert_error(response, 422, "validation_error")) == ["tz"]
    for bad_limit in ("0", "-1", "ten"):
        response = server.client.get("/stats", params={"site_id": site, "limit": bad_limit})
        assert fields_of(assert_error(response, 422, "validation_error")) == ["limit"]
    assert get_stats(server.client, site, limit=1)["total_views"] == 1


CHECKS: list[Callable[[Server], None]] = [
    invalid_batch_stores_nothing,
    one_detail_per_bad_field,
    one_detail_for_a_bad_user_id,
    unknown_field_is_named,
    malformed_json_is_422,
    body_over_limit_is_413,
    too_many_events_is_413,
    future_timestamp_is_422,
    old_timestamps_are_accepted,
    cookieless_visitors,
    bots_are_excluded,
    non_browser_clients_count_with_an_unknown_device,
    missing_site_id,
    unsupported_encoding,
    unknown_route_and_wrong_method,
    stats_parameters,
]


def params() -> list[Any]:
    return [pytest.param(check, id=check.__name__) for check in CHECKS]
