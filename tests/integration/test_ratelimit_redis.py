"""Rate limits in a real Redis: the API processes of an instance share the counts; with
Redis stopped requests pass, with one warning, and the limits count again once it is
back. Then ingest through the app: the request over the limit is refused in the one
error shape, nothing of it stored, and events are accepted again after the window."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from support.error_shape import assert_error
from support.rate_limits import LIMITS_OFF, refusal
from support.servers import RedisServer
from tapioca.api.app import create_app
from tapioca.auth.ratelimit import RateLimits, redis_pool, redis_storage
from tapioca.config import Settings
from tapioca.sites.service import SiteChanges, create_site

pytestmark = pytest.mark.integration

IP_KEY = "tapioca:limits:LIMITER/ingest-ip/{ip}/{limit}"


def production(redis_url: str, **limits: str) -> Settings:
    """Settings of an API process in production: nothing connects to the database here."""
    values: dict[str, Any] = {**LIMITS_OFF, **limits}
    return Settings(
        database_url="postgresql://tapioca@unused/tapioca", redis_url=redis_url, **values
    )


async def counters(client: aioredis.Redis) -> dict[str, int]:
    """Every key in Redis, with its count."""
    found: dict[str, int] = {}
    for key in await client.keys():
        value: Any = await client.get(key)
        found[key.decode() if isinstance(key, bytes) else key] = int(value)
    return found


@pytest.fixture
async def two_processes(redis_url: str) -> AsyncIterator[tuple[RateLimits, RateLimits]]:
    settings = production(
        redis_url,
        rate_limit_ingest_ip="5/minute",
        rate_limit_reports="3/minute",
        rate_limit_sign_in_account="2/minute",
    )
    one, two = RateLimits.from_settings(settings), RateLimits.from_settings(settings)
    try:
        yield one, two
    finally:
        await one.close()
        await two.close()


async def test_the_api_processes_of_an_instance_share_the_counts(
    two_processes: tuple[RateLimits, RateLimits], redis_client: aioredis.Redis
) -> None:
    one, two = two_processes
    await one.ingest("10.0.0.1", {"shop": 3})
    await two.ingest("10.0.0.1", {"shop": 2})
    for limits in (one, two):
        assert await refusal(limits.ingest("10.0.0.1", {"shop": 1})) == (
            "Too many events from this client address: at most 5 events per minute.",
            [("ip", "at most 5 events per minute from this client address")],
            "60",
        )
    await one.reports("key:k1")
    await two.reports("key:k1")
    await one.reports("key:k1")
    assert await refusal(two.reports("key:k1")) == (
        "Too many report requests with this API key: at most 3 report requests per minute.",
        [("key", "at most 3 report requests per minute with this API key")],
        "60",
    )
    await one.sign_in_failed("Ann@Example.com", "10.0.0.7")
    await two.sign_in_failed("ann@example.com", "10.0.0.8")
    assert await refusal(one.sign_in_allowed("ANN@example.com", "::1")) == (
        "Too many failed sign-ins for this account: at most 2 failed sign-ins per minute.",
        [("email", "at most 2 failed sign-ins per minute for this account")],
        "60",
    )
    assert await counters(redis_client) == {
        IP_KEY.format(ip="10.0.0.1", limit="5/1/minute"): 5,
        "tapioca:limits:LIMITER/reports/key:k1/3/1/minute": 3,
        "tapioca:limits:LIMITER/sign-in-account/ann@example.com/2/1/minute": 2,
    }


async def test_a_window_passes_in_redis(redis_url: str, redis_client: aioredis.Redis) -> None:
    limits = RateLimits.from_settings(production(redis_url, rate_limit_ingest_ip="3/second"))
    try:
        await limits.ingest("10.0.0.1", {"shop": 3})
        assert await refusal(limits.ingest("10.0.0.1", {"shop": 1})) == (
            "Too many events from this client address: at most 3 events per second.",
            [("ip", "at most 3 events per second from this client address")],
            "1",
        )
        left_ms = await redis_client.pttl(IP_KEY.format(ip="10.0.0.1", limit="3/1/second"))
        assert 0 < left_ms <= 1000
        await asyncio.sleep(left_ms / 1000 + 0.05)
        await limits.ingest("10.0.0.1", {"shop": 3})
    finally:
        await limits.close()


async def test_with_redis_stopped_requests_pass_with_one_warning(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    settings = production(
        server.url, rate_limit_ingest_ip="2/minute", rate_limit_reports="1/minute"
    )
    pool = redis_pool(server.url)
    limits = RateLimits(redis_storage(pool), settings, pool=pool, pause_s=0.5)
    try:
        await limits.ingest("10.0.0.1", {"shop": 2})
        await refusal(limits.ingest("10.0.0.1", {"shop": 1}))
        server.stop()
        began = time.monotonic()
        with capture_logs() as logs:
            for _ in range(5):
                await limits.ingest("10.0.0.1", {"shop": 1})
                await limits.reports("ip:10.0.0.1")
                await limits.sign_in_failed("ann@example.com", "10.0.0.1")
                await limits.sign_in_allowed("ann@example.com", "10.0.0.1")
            await asyncio.sleep(0.6)  # past the pause: Redis is asked again, and still down
            await limits.ingest("10.0.0.1", {"shop": 1})
        assert time.monotonic() - began < 3.0
        assert logs == [
            {"event": "rate_limits_unavailable", "error": "ConnectionError", "log_level": "warning"}
        ]
        server.start()
        await asyncio.sleep(0.6)
        with capture_logs() as logs:
            await limits.ingest("10.0.0.2", {"shop": 2})
            await refusal(limits.ingest("10.0.0.2", {"shop": 1}))
        assert logs == [{"event": "rate_limits_restored", "log_level": "info"}]
    finally:
        await limits.close()
        server.cleanup()


@asynccontextmanager
async def serving(data_dir: Path, **settings: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """``tapioca serve``'s app on an embedded store: a client of it, and its store."""
    app = create_app(Settings(data_dir=data_dir, **settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tapioca") as client:
            yield client, app.state.runtime.store


@pytest.fixture
async def app_client(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """With 5 events a second per client address (the other limits as by default)."""
    async with serving(tmp_path / "data", rate_limit_ingest_ip="5/second") as made:
        yield made


def batch(*ids: str, site: str = "shop") -> bytes:
    return orjson.dumps([{"site_id": site, "event_type": "page_view", "event_id": i} for i in ids])


async def stored(store: Any) -> list[str]:
    return [row[0] for row in await store.fetch("SELECT event_id FROM event ORDER BY event_id")]


async def test_the_event_over_the_limit_is_refused_and_not_stored(
    app_client: tuple[httpx.AsyncClient, Any],
) -> None:
    client, store = app_client
    first = await client.post("/events", content=batch("e1", "e2", "e3"))
    assert (first.status_code, first.json()["accepted"]) == (202, 3)
    second = await client.post("/events", content=batch("e4", "e5"))
    assert (second.status_code, second.json()["accepted"]) == (202, 2)
    over = await client.post("/events", content=batch("e6"))
    body = assert_error(over, 429, "rate_limited")
    assert body["error"]["message"] == (
        "Too many events from this client address: at most 5 events per second."
    )
    assert body["error"]["details"] == [
        {"field": "ip", "message": "at most 5 events per second from this client address"}
    ]
    assert over.headers["retry-after"] == "1"
    one = orjson.dumps({"site_id": "shop", "event_type": "page_view", "event_id": "e7"})
    assert_error(await client.post("/event", content=one), 429, "rate_limited")
    assert await stored(store) == ["e1", "e2", "e3", "e4", "e5"]
    await asyncio.sleep(1.05)  # the window opened with the first request, before the 429
    again = await client.post("/events", content=batch("e6", "e7", "e8", "e9", "e10"))
    assert (again.status_code, again.json()["accepted"]) == (202, 5), again.text
    assert await stored(store) == sorted(["e1", "e10", *(f"e{n}" for n in range(2, 10))])


async def test_events_of_unknown_sites_are_refused_before_they_are_counted(
    tmp_path: Path,
) -> None:
    """Sites are counted once they are known: a request naming made-up sites is a 404
    that costs no count (and no counter) per site."""
    async with serving(
        tmp_path / "data", auto_create_sites=False, rate_limit_ingest_site="3/minute"
    ) as (client, store):
        unknown = await client.post("/events", content=batch("g1", "g2", "g3", site="ghost"))
        assert_error(unknown, 404, "site_not_found")
        await create_site(store, "ghost", SiteChanges())
        known = await client.post("/events", content=batch("g1", "g2", "g3", site="ghost"))
        assert (known.status_code, known.json()["accepted"]) == (202, 3), known.text
        over = await client.post("/events", content=batch("g4", site="ghost"))
        body = assert_error(over, 429, "rate_limited")
        assert body["error"]["details"] == [
            {"field": "site_id", "message": "at most 3 events per minute for site 'ghost'"}
        ]
        assert over.headers["retry-after"] == "60"
        assert await stored(store) == ["g1", "g2", "g3"]
