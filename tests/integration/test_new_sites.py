"""Sites made by events, on both stores: thousands in one statement, and the limits per
request and per minute (the production bucket in a real Redis)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from support.factories import make_row
from tapioca.errors import TapiocaError
from tapioca.sites.limits import LocalAllowance, NewSiteLimits, RedisAllowance, SiteAllowance
from tapioca.sites.service import SiteMaker
from tapioca.storage.base import Store

pytestmark = pytest.mark.integration

START = 1_800_000_000.0
# (seconds after START, sites asked for, seconds to wait: 0.0 = taken), with 4 a minute
STEPS_4_A_MINUTE = [(0.0, 3, 0.0), (1.0, 2, 14.0), (1.0, 1, 0.0), (7.5, 1, 7.5), (15.0, 1, 0.0),
                    (15.0, 2, 30.0), (200.0, 4, 0.0)]  # fmt: skip


async def site_ids(store: Store) -> list[str]:
    return [row[0] for row in await store.fetch("SELECT id FROM site ORDER BY id")]


async def test_a_batch_of_ten_thousand_new_sites_is_written(migrated_store: Store) -> None:
    """One statement makes them (one INSERT each ran the embedded store out of memory)."""
    store = migrated_store
    rows = [make_row(site_id=f"s-{i:05d}", event_id=f"e{i}") for i in range(10_000)]
    began = time.monotonic()
    result = await store.write_events(rows)
    assert (result.received, result.inserted) == (10_000, 10_000)
    assert time.monotonic() - began < 30
    assert await site_ids(store) == sorted(f"s-{i:05d}" for i in range(10_000))
    again = await store.write_events([make_row(site_id="s-00007", event_id="x"), rows[0]])
    assert again.inserted == 1
    assert len(await site_ids(store)) == 10_000


async def test_five_thousand_new_sites_in_one_request_within_a_high_cap(
    migrated_store: Store,
) -> None:
    store = migrated_store
    maker = SiteMaker(store, NewSiteLimits(10_000, 10_000), LocalAllowance(10_000))
    wanted = {f"n-{i:04d}" for i in range(5_000)}
    await maker.ensure(wanted)
    assert await site_ids(store) == sorted(wanted)


async def test_a_request_over_the_cap_makes_none_and_sites_that_exist_never_count(
    migrated_store: Store,
) -> None:
    store = migrated_store
    await store.execute("INSERT INTO site (id) VALUES ($1)", ["old"])
    allowance = LocalAllowance(100)
    maker = SiteMaker(store, NewSiteLimits(3, 100), allowance, clock=lambda: START)
    with pytest.raises(TapiocaError) as refused:
        await maker.ensure({"old", "d", "c", "b", "a"})
    assert (refused.value.status, refused.value.code) == (429, "too_many_new_sites")
    assert refused.value.message == "The events name 4 new sites; at most 3 are made a request."
    assert [(d.field, d.message) for d in refused.value.details] == [
        ("site_id", "new sites 'a', 'b', 'c' and 1 more")
    ]
    assert refused.value.headers == {}
    assert await site_ids(store) == ["old"]
    await maker.ensure({"old", "a", "b", "c"})
    assert await site_ids(store) == ["a", "b", "c", "old"]
    # made elsewhere (another process): found, not made nor counted again
    await store.execute("INSERT INTO site (id) VALUES ($1), ($2), ($3)", ["x", "y", "z"])
    await maker.ensure({"x", "y", "z", "a"})
    assert await allowance.take(97, START) == 0.0  # 3 of 100 taken so far


async def test_the_minute_allowance_refuses_whole_requests_until_it_refills(
    migrated_store: Store,
) -> None:
    store = migrated_store
    now = [START]
    maker = SiteMaker(store, NewSiteLimits(10, 5), LocalAllowance(5), clock=lambda: now[0])
    await maker.ensure({"a", "b", "c"})
    with pytest.raises(TapiocaError) as refused:
        await maker.ensure({"a", "d", "e", "f"})
    assert (refused.value.status, refused.value.code) == (429, "too_many_new_sites")
    assert refused.value.headers == {"Retry-After": "12"}  # one site every 12 s
    assert [d.message for d in refused.value.details] == ["new sites 'd', 'e', 'f'"]
    assert await site_ids(store) == ["a", "b", "c"]
    await maker.ensure({"a", "b", "c"})  # sites that exist: never refused
    now[0] += 12
    await maker.ensure({"d", "e", "f"})
    assert await site_ids(store) == ["a", "b", "c", "d", "e", "f"]


@pytest.fixture
async def second_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_the_redis_bucket_is_shared_and_takes_as_the_local_one(
    redis_client: aioredis.Redis, second_client: aioredis.Redis
) -> None:
    """Two API processes (two clients) draw on one bucket; each step gives what one
    process's own bucket gives."""
    first, second = RedisAllowance(redis_client, 4), RedisAllowance(second_client, 4)
    local = LocalAllowance(4)  # one site every 15 s
    for n, (at, count, wait) in enumerate(STEPS_4_A_MINUTE):
        shared: SiteAllowance = (first, second)[n % 2]
        assert await shared.take(count, START + at) == pytest.approx(wait), n
        assert await local.take(count, START + at) == pytest.approx(wait), n
    ttl = await redis_client.pttl("tapioca:new-sites")
    assert 0 < ttl <= 61_000  # gone once the bucket is full again
