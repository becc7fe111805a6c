"""CORS of the ingest routes (api.md, Browsers) over HTTP, against the sites of each store:
preflights answered for origins that some site accepts, each event checked against its
own site's domains or any-origin setting, text/plain bodies read as JSON, and none of it
on the report routes."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date

import httpx
import orjson
import pytest

from support.error_shape import assert_error, fields_of
from tapioca.api.app import create_app
from tapioca.config import Settings
from tapioca.ingest.origins import OriginCheck
from tapioca.ingest.salt import SaltProvider
from tapioca.ingest.service import IngestService
from tapioca.queue.inprocess import GroupCommitQueue
from tapioca.queue.record import decode_one
from tapioca.sites.catalog import SiteCatalog
from tapioca.sites.service import SiteChanges, create_site
from tapioca.storage.base import Store

pytestmark = pytest.mark.integration

SHOP = "https://www.shop.example"  # on the domain of site "shop"
ELSEWHERE = "https://elsewhere.example"
PREFLIGHT = {
    "access-control-allow-origin": SHOP,
    "access-control-allow-methods": "POST",
    "access-control-allow-headers": (
        "Authorization, Content-Encoding, Content-Type, X-Api-Key, X-Request-ID"
    ),
    "access-control-max-age": "86400",
    "vary": "Origin",
}
ANSWER = {
    "access-control-allow-origin": SHOP,
    "access-control-expose-headers": "Retry-After, X-Request-ID",
    "vary": "Origin",
}
CORS_NAMES = {*PREFLIGHT, *ANSWER} - {"vary"}


@dataclass
class Front:
    client: httpx.AsyncClient
    queued: list[bytes]

    def sites_queued(self) -> list[str]:
        return [decode_one(record).site_id for record in self.queued]


async def _fixed_salt(_day: date) -> bytes:
    return b"salt"


@pytest.fixture
async def sites(migrated_store: Store) -> Store:
    """Site "shop" on its domains only, site "blog" not saying (the instance's default)."""
    own = SiteChanges(domains=["shop.example"], any_origin=False)
    await create_site(migrated_store, "shop", own)
    await create_site(migrated_store, "blog", SiteChanges(domains=["blog.example"]))
    return migrated_store


@asynccontextmanager
async def front(store: Store, *, any_by_default: bool, new_sites: bool) -> AsyncIterator[Front]:
    """The HTTP front of `tapioca serve` over ``store``'s sites, its events queued in
    memory."""
    queued: list[bytes] = []

    async def commit(records: list[bytes]) -> None:
        queued.extend(records)

    catalog = SiteCatalog(store)
    queue = GroupCommitQueue(commit)
    app = create_app(Settings(cors_any_origin=any_by_default, auto_create_sites=new_sites))
    app.state.ingest = IngestService(
        queue, SaltProvider(_fixed_salt), max_events=100, max_event_bytes=65536,
        max_future_seconds=300, retry_after_seconds=1,
        sites=None if new_sites else catalog,
        origins=OriginCheck(catalog, any_by_default=any_by_default, new_sites=new_sites),
    )  # fmt: skip
    queue.start()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://tapioca") as client:
            yield Front(client, queued)
    finally:
        await queue.close()


@pytest.fixture
async def closed(sites: Store) -> AsyncIterator[Front]:
    """No site accepts any origin: "blog" follows a default of own domains only."""
    async with front(sites, any_by_default=False, new_sites=False) as made:
        yield made


@pytest.fixture
async def open_by_default(sites: Store) -> AsyncIterator[Front]:
    """Sites that do not say accept any origin (the default), unknown sites are made."""
    async with front(sites, any_by_default=True, new_sites=True) as made:
        yield made


def event(site: str, n: int = 1) -> dict[str, object]:
    return {"site_id": site, "event_type": "page_view", "event_id": f"{site}-{n}", "path": "/"}


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }


def cors_of(response: httpx.Response) -> dict[str, str]:
    return {
        name: response.headers[name] for name in [*CORS_NAMES, "vary"] if name in response.headers
    }


@pytest.mark.parametrize("path", ["/event", "/events", "/api/events"])
async def test_a_preflight_from_a_sites_domain_is_answered(closed: Front, path: str) -> None:
    response = await closed.client.options(path, headers=preflight(SHOP))
    assert response.status_code == 204 and response.content == b""
    assert cors_of(response) == PREFLIGHT


async def test_a_preflight_from_an_origin_no_site_accepts_is_refused(closed: Front) -> None:
    for origin in (ELSEWHERE, "null", "https://shop.example.evil"):
        response = await closed.client.options("/events", headers=preflight(origin))
        body = assert_error(response, 403, "origin_not_allowed")
        assert body["error"]["details"] == [
            {
                "field": "Origin",
                "message": "not one of a site's domains, and no site accepts any origin",
            }
        ]
        assert cors_of(response) == {"vary": "Origin"}


async def test_options_without_a_preflight_names_the_methods(closed: Front) -> None:
    plain = await closed.client.options("/events")
    assert plain.status_code == 204 and plain.headers["allow"] == "OPTIONS, POST"
    assert cors_of(plain) == {}
    other = await closed.client.put("/event", content=b"{}", headers={"Origin": SHOP})
    assert_error(other, 405, "method_not_allowed")
    assert other.headers["allow"] == "OPTIONS, POST"


async def test_events_from_their_sites_domain_are_accepted_and_readable(closed: Front) -> None:
    batch = orjson.dumps([event("shop", 1), event("shop", 2)])
    headers = {"Origin": SHOP, "Content-Type": "application/json"}
    response = await closed.client.post("/events", content=batch, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json() == {
        "status": "accepted",
        "accepted": 2,
        "event_ids": ["shop-1", "shop-2"],
    }
    assert cors_of(response) == ANSWER
    assert closed.sites_queued() == ["shop", "shop"]


async def test_an_event_of_a_site_that_does_not_accept_the_origin_is_refused(
    closed: Front,
) -> None:
    """The origin passes the preflight ("shop" accepts it); the batch names "blog" too,
    whose domains it is not on: 403 naming that event's site_id, readable by the page,
    and nothing of the batch is queued."""
    batch = orjson.dumps([event("shop", 1), event("blog", 2), event("shop", 3)])
    response = await closed.client.post("/events", content=batch, headers={"Origin": SHOP})
    body = assert_error(response, 403, "origin_not_allowed")
    assert body["error"]["details"] == [
        {"field": "1.site_id", "message": "site 'blog' does not accept events from this origin"}
    ]
    assert cors_of(response) == ANSWER
    one = await closed.client.post(
        "/event", content=orjson.dumps(event("blog")), headers={"Origin": SHOP}
    )
    body = assert_error(one, 403, "origin_not_allowed")
    assert fields_of(body) == ["site_id"]
    on_blog = {"Origin": "https://blog.example"}
    accepted = await closed.client.post(
        "/event", content=orjson.dumps(event("blog")), headers=on_blog
    )
    assert accepted.status_code == 202, accepted.text
    assert closed.sites_queued() == ["blog"]


async def test_an_origin_no_site_accepts_gets_no_readable_answer(closed: Front) -> None:
    response = await closed.client.post(
        "/event", content=orjson.dumps(event("shop")), headers={"Origin": ELSEWHERE}
    )
    assert_error(response, 403, "origin_not_allowed")
    assert cors_of(response) == {"vary": "Origin"}  # the browser hides the answer
    assert closed.queued == []


async def test_requests_without_an_origin_are_not_checked(closed: Front) -> None:
    """Servers and apps send no Origin: the domains of a site do not concern them."""
    batch = orjson.dumps([event("shop", 1), event("blog", 2)])
    response = await closed.client.post("/events", content=batch)
    assert response.status_code == 202, response.text
    assert cors_of(response) == {}
    assert closed.sites_queued() == ["shop", "blog"]


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain;charset=UTF-8"])
async def test_a_text_plain_body_is_read_as_json(closed: Front, content_type: str) -> None:
    """As navigator.sendBeacon and trackers that avoid a preflight send it."""
    headers = {"Origin": SHOP, "Content-Type": content_type}
    one = {**event("shop", 1), "path": "/menu", "properties": {"size": "L"}}
    response = await closed.client.post("/event", content=orjson.dumps(one), headers=headers)
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "accepted", "event_id": "shop-1"}
    ndjson = orjson.dumps(event("shop", 2)) + b"\n" + orjson.dumps(event("shop", 3))
    batch = await closed.client.post(
        "/events", content=gzip.compress(ndjson), headers={**headers, "Content-Encoding": "gzip"}
    )
    assert batch.status_code == 202, batch.text
    assert batch.json()["event_ids"] == ["shop-2", "shop-3"]
    first = decode_one(closed.queued[0])
    assert (first.site_id, first.path, first.properties) == ("shop", "/menu", '{"size":"L"}')
    broken = await closed.client.post("/event", content=b'{"site_id": "shop",', headers=headers)
    body = assert_error(broken, 422, "validation_error")
    assert fields_of(body) == ["body"]
    assert cors_of(broken) == ANSWER  # the page may read why
    assert len(closed.queued) == 3


async def test_sites_that_do_not_say_follow_the_default(open_by_default: Front) -> None:
    """Any origin may send events of "blog", of sites not made yet, and so pass a
    preflight; "shop", on its own domains only, still refuses others."""
    answered = await open_by_default.client.options("/events", headers=preflight(ELSEWHERE))
    assert answered.status_code == 204
    assert answered.headers["access-control-allow-origin"] == ELSEWHERE
    batch = orjson.dumps([event("blog", 1), event("brand-new", 2)])
    headers = {"Origin": ELSEWHERE, "Content-Type": "text/plain"}
    response = await open_by_default.client.post("/events", content=batch, headers=headers)
    assert response.status_code == 202, response.text
    assert response.headers["access-control-allow-origin"] == ELSEWHERE
    refused = await open_by_default.client.post(
        "/event", content=orjson.dumps(event("shop")), headers=headers
    )
    body = assert_error(refused, 403, "origin_not_allowed")
    assert fields_of(body) == ["site_id"]
    assert open_by_default.sites_queued() == ["blog", "brand-new"]


async def test_a_site_may_accept_any_origin(sites: Store) -> None:
    await create_site(sites, "open", SiteChanges(any_origin=True))
    async with front(sites, any_by_default=False, new_sites=False) as made:
        answered = await made.client.options("/event", headers=preflight(ELSEWHERE))
        assert answered.status_code == 204
        headers = {"Origin": ELSEWHERE}
        accepted = await made.client.post(
            "/event", content=orjson.dumps(event("open")), headers=headers
        )
        assert accepted.status_code == 202, accepted.text
        refused = await made.client.post(
            "/event", content=orjson.dumps(event("blog")), headers=headers
        )
        assert_error(refused, 403, "origin_not_allowed")
        assert made.sites_queued() == ["open"]


async def test_an_unknown_site_is_still_not_found(closed: Front) -> None:
    response = await closed.client.post(
        "/event", content=orjson.dumps(event("ghost")), headers={"Origin": SHOP}
    )
    assert_error(response, 404, "site_not_found")


async def test_report_routes_answer_no_preflight(closed: Front) -> None:
    response = await closed.client.options("/stats", headers=preflight(SHOP))
    assert_error(response, 405, "method_not_allowed")
    assert cors_of(response) == {}
