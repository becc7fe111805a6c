"""Sites over the CLI and ingest: unknown sites are refused in production unless allowed."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import orjson
import pytest

from support.procs import Launcher, Server

pytestmark = pytest.mark.e2e


def test_production_refuses_unknown_sites_until_created(
    launcher: Launcher, pg_dsn: str, redis_url: str
) -> None:
    server = launcher.production(pg_dsn, redis_url, env={"TAPIOCA_AUTO_CREATE_SITES": "false"})
    batch = [
        {"site_id": "known", "event_type": "page_view", "path": "/", "user_id": "u"},
        {"site_id": "ghost", "event_type": "page_view", "path": "/", "user_id": "u"},
    ]
    env = {"TAPIOCA_DATABASE_URL": pg_dsn, "TAPIOCA_REDIS_URL": redis_url}
    created = launcher.run(["sites", "create", "known", "--timezone", "Europe/Berlin"], env)
    assert created.returncode == 0, created.stderr
    assert orjson.loads(created.stdout)["timezone"] == "Europe/Berlin"

    refused = server.client.post("/events", content=orjson.dumps(batch))
    assert refused.status_code == 404, refused.text
    body = refused.json()
    assert body["error"]["code"] == "site_not_found"
    assert body["error"]["details"] == [{"field": "1.site_id", "message": "no site 'ghost'"}]
    single = server.client.post("/event", content=orjson.dumps(batch[1]))
    assert single.status_code == 404
    assert single.json()["error"]["details"][0]["field"] == "site_id"
    # 10,000 unknown sites: the answer names 20 and counts the others (docs/api.md, Errors)
    ghosts = [{**batch[1], "site_id": f"ghost-{n:05d}-{'x' * 80}"} for n in range(10_000)]
    refused = server.client.post("/events", content=orjson.dumps(ghosts))
    assert refused.status_code == 404, refused.text[:500]
    assert len(refused.content) < 8192
    error = refused.json()["error"]
    sites = ", ".join(sorted(ghost["site_id"] for ghost in ghosts))
    assert error == {
        "code": "site_not_found",
        "message": f"Unknown site(s): {sites}"[:299] + "… 9980 more details are not listed.",
        "details": [
            {"field": f"{n}.site_id", "message": f"no site 'ghost-{n:05d}-{'x' * 80}'"}
            for n in range(20)
        ],
    }

    assert server.client.post("/event", content=orjson.dumps(batch[0])).status_code == 202
    assert launcher.run(["sites", "create", "ghost"], env).returncode == 0
    accepted = server.client.post("/events", content=orjson.dumps(batch))
    assert accepted.status_code == 202, accepted.text  # seen within a second of creation

    listed = launcher.run(["sites", "list"], env)
    assert [orjson.loads(line)["id"] for line in listed.stdout.splitlines()] == ["ghost", "known"]
    again = launcher.run(["sites", "create", "known"], env)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_embedded_creates_sites_on_first_event(launcher: Launcher) -> None:
    server = launcher.serve()
    event = {"site_id": "fresh", "event_type": "page_view", "path": "/", "user_id": "u"}
    assert server.client.post("/event", content=orjson.dumps(event)).status_code == 202
    stats = server.client.get("/stats", params={"site_id": "fresh"})
    assert stats.status_code == 200 and stats.json()["total_views"] == 1


def test_production_site_exists_for_reads_once_its_first_event_is_acknowledged(
    launcher: Launcher, pg_dsn: str, redis_url: str
) -> None:
    """The worker writes the events a moment later; the site is there at the 202. With
    the worker stopped, its reports answer (empty) until the events are written."""
    server = launcher.production(pg_dsn, redis_url, workers=0)
    events = [{"site_id": f"new-{i}", "event_type": "page_view", "path": "/", "user_id": "u"}
              for i in range(3)]  # fmt: skip
    assert server.client.post("/events", content=orjson.dumps(events)).status_code == 202
    for i in range(3):
        for path in ("/stats", "/api/v1/stats/overview", "/api/v1/stats/realtime"):
            answer = server.client.get(path, params={"site_id": f"new-{i}"})
            assert answer.status_code == 200, answer.text
        assert server.client.get("/stats", params={"site_id": f"new-{i}"}).json()[
            "total_views"] == 0  # fmt: skip
    launcher.start_worker(server)
    deadline = time.monotonic() + 30
    while server.client.get("/stats", params={"site_id": "new-2"}).json()["total_views"] != 1:
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.1)


LIMITS = {"TAPIOCA_MAX_NEW_SITES_PER_REQUEST": "5", "TAPIOCA_MAX_NEW_SITES_PER_MINUTE": "8"}


def views(*sites: str) -> bytes:
    event = {"event_type": "page_view", "path": "/", "user_id": "u"}
    return orjson.dumps([{"site_id": site, **event} for site in sites])


def refusal(answer: httpx.Response, message: str, detail: str) -> None:
    """A 429 too_many_new_sites in the one error shape, exactly."""
    assert answer.status_code == 429, answer.text
    assert answer.json() == {
        "error": {
            "code": "too_many_new_sites",
            "message": message,
            "details": [{"field": "site_id", "message": detail}],
        },
        "request_id": answer.headers["X-Request-ID"],
    }


def check_new_site_limits(server: Server, fresh: Callable[[], httpx.Client]) -> None:
    """5 new sites a request, 8 a minute (one every 7.5 s): over either, a request is
    refused whole and makes nothing; sites that exist are never refused. ``fresh()``: a
    client on a new connection (production: any API process may answer)."""
    too_many = [f"burst-{i}" for i in range(6)]
    answer = server.client.post("/events", content=views("kept", *too_many))
    refusal(answer, "The events name 7 new sites; at most 5 are made a request.",
            "new sites 'burst-0', 'burst-1', 'burst-2' and 4 more")  # fmt: skip
    assert "Retry-After" not in answer.headers
    assert server.client.get("/stats", params={"site_id": "burst-0"}).status_code == 404

    for pair in (("a-1", "a-2"), ("a-3", "a-4"), ("a-5", "a-6"), ("a-7", "kept")):
        with fresh() as client:
            assert client.post("/events", content=views(*pair)).status_code == 202
    with fresh() as client:
        answer = client.post("/events", content=views("kept", "a-1", "late-b", "late-a"))
    refusal(answer, "At most 8 new sites are made a minute; retry after the seconds "
            "Retry-After gives.", "new sites 'late-a', 'late-b'")  # fmt: skip
    assert 8 <= int(answer.headers["Retry-After"]) <= 15  # two sites: 15 s after the eight
    single = server.client.post("/event", content=orjson.dumps({
        "site_id": "late-c", "event_type": "page_view", "user_id": "u"}))  # fmt: skip
    assert single.status_code == 429
    assert single.json()["error"]["details"] == [
        {"field": "site_id", "message": "new sites 'late-c'"}
    ]

    for _ in range(3):  # the sites made go on, from any process
        with fresh() as client:
            assert client.post("/events", content=views("kept", "a-3", "a-7")).status_code == 202
    deadline = time.monotonic() + 30
    while server.client.get("/stats", params={"site_id": "kept"}).json()["total_views"] != 4:
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.1)
    for site in ("late-a", "late-b", "late-c", "burst-5"):
        assert server.client.get("/stats", params={"site_id": site}).status_code == 404


def test_embedded_limits_new_sites_per_request_and_per_minute(launcher: Launcher) -> None:
    server = launcher.serve(env=LIMITS)
    check_new_site_limits(server, lambda: httpx.Client(base_url=server.base_url, timeout=30))


def test_production_limits_new_sites_across_api_processes(
    launcher: Launcher, pg_dsn: str, redis_url: str
) -> None:
    """Two API processes: the minute's allowance is one, in Redis."""
    server = launcher.production(pg_dsn, redis_url, env={**LIMITS, "TAPIOCA_API_WORKERS": "2"})
    check_new_site_limits(server, lambda: httpx.Client(base_url=server.base_url, timeout=30))
