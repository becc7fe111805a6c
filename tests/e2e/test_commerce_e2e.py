"""The commerce reports end to end, on `tapioca serve` and on `tapioca api` + `worker`.

The shop traffic (support/shop_traffic.py: two sites, "shop" in America/New_York paying
USD and "cafe" in UTC paying EUR, made over HTTP with POST /api/v1/sites) is POSTed to
/events as JSON the way trackers send it: every spelling of the commerce events
("Order Completed", "purchase", "Cart Viewed", "Order Refunded", …), the event name
under each of its aliases, times as RFC 3339 with and without an offset and as epoch
numbers, ``revenue`` or ``value`` as a number or a text, items with sku, name, category,
price and quantity (the default quantity left out), client session ids where the traffic
has them, some users as ``anonymous_id``, some pages as ``url``. The first and middle
waves go in shuffled batches of uneven sizes, one batch resent whole; once they are
derived, the last wave follows: among it a duplicate purchase with an earlier time (it
becomes the transaction), later duplicates (ignored), the first page views of sessions
whose purchases came first. Each stage is awaited by polling until the summary and the
overview of both sites equal the reference's.

Then every answer over HTTP is compared with the independent reference
(support/commerce_reference.py): /api/v1/commerce/summary, /carts, /products,
/transactions paged to the end with next_cursor, /transactions/{id} for every
transaction, the overview (with its revenue, transactions and conversion rate) and
BobaShop's nine routes over ranges with both bounds, either bound alone and none. Money
must be a JSON number with 2 decimals; answers are read with decimals
(``json.loads(text, parse_float=Decimal)``) and must be exactly equal.

The writers enrich the events, so each event carries what makes its stored dimensions
known: explicit ``channel`` and ``device``, a User-Agent per (browser, os) pair (a
crawler's for bot events; back-office refunds, which the traffic sends from no browser,
go with Firefox on Linux). The server derives the source from the utm_source or the
referrer (first page views of organic visits come with the search engine's or the
network's referrer) and the page type from the path; the reference's events are set to
those values (``as_stored``).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from support.commerce_reference import BOBA_ROUTES, Commerce, SessionIds, comparable
from support.error_shape import assert_error
from support.procs import Launcher, Server
from support.reference import Event, Question, first_spellings, items_of, page_type_of, source_of
from support.shop_traffic import CAFE, SHOP, SITES, shop_traffic

pytestmark = pytest.mark.e2e

AGENT_STRINGS: dict[tuple[str, str], str] = {
    ("Chrome", "Windows"): "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    ("Firefox", "Linux"): "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    ("Mobile Safari", "iOS"): "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
}
CRAWLER = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
NO_BROWSER = ("Firefox", "Linux")  # the back office's refunds
# the referrer that makes a first page view's source what the traffic says it is
REFERRERS = {"Google": "https://www.google.com/", "Facebook": "https://l.facebook.com/"}
SPELLINGS = {
    "purchase": ("Order Completed", "purchase", "order_completed", "PURCHASE"),
    "view_cart": ("Cart Viewed", "view_cart", "cart viewed"),
    "refund": ("Order Refunded", "refund", "REFUND", "order_refunded"),
    "page_view": ("page_view", "pageview", "$pageview", "Page View"),
}
NAME_FIELDS = ("event_type", "event", "name")
TIME_FIELDS = ("timestamp", "ts", "occurred_at")
INDIA = timezone(timedelta(hours=5, minutes=30))
MONEY = {"revenue", "refunds", "net_revenue", "avg_order_value", "avg_cart_value", "price"}
DERIVED_TIMEOUT = 60.0
TRAFFIC = shop_traffic()
EVERYTHING = {site: Question(site=site, start="2025-10-01", end="2025-12-31") for site in SITES}


# == the events, as sent and as stored =================================================


def as_stored(e: Event) -> Event:
    """The event as the server stores it once it has enriched what ``wire`` sends."""
    referrer = e.referrer
    if e.source in REFERRERS and not e.utm_source and not referrer:
        referrer = REFERRERS[e.source]
    browser, os_ = NO_BROWSER if e.browser is None else (e.browser, e.os)
    return replace(
        e,
        referrer=referrer,
        source=source_of(e.utm_source, referrer),
        page_type=page_type_of(e.path),
        channel=e.channel or "Direct",
        device=e.device or "desktop",
        browser=None if e.is_bot else browser,
        os=None if e.is_bot else os_,
    )


def number_or_text(amount: Decimal, n: int) -> Any:
    """An amount as a JSON number (its digits as they are: a float's shortest text) or
    as a text of digits."""
    return float(amount) if n % 2 else str(amount)


def sent_time(ts: datetime, n: int) -> Any:
    kind = n % 5
    if kind == 0:
        return ts.astimezone(INDIA).isoformat()
    if kind == 1:
        return int(ts.timestamp())
    if kind == 2:
        return int(ts.timestamp()) * 1000
    if kind == 3:
        return ts.astimezone(UTC).replace(tzinfo=None).isoformat()  # no offset: UTC
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def wire(e: Event, n: int) -> dict[str, Any]:
    """One stored event (``as_stored``) as a tracker sends it; ``n`` picks the spellings."""
    spellings = SPELLINGS[e.event_type]
    anonymous = e.user[-1:] in ("3", "7")
    body: dict[str, Any] = {
        "site_id": e.site_id,
        "event_id": e.event_id,
        NAME_FIELDS[n % 3]: spellings[(n // 9) % len(spellings)],
        TIME_FIELDS[(n // 3) % 3]: sent_time(e.ts, n),
        "anonymous_id" if anonymous else "user_id": e.user,
        "session_id": e.session_id,
        "referrer": e.referrer,
        "utm_source": e.utm_source,
        "utm_medium": e.utm_medium,
        "utm_campaign": e.utm_campaign,
        "utm_term": e.utm_term,
        "utm_content": e.utm_content,
        "device": e.device,
        "channel": e.channel,
        "user_agent": CRAWLER if e.is_bot else AGENT_STRINGS[(e.browser or "", e.os or "")],
        "transaction_id": e.transaction_id,
        "currency": e.currency,
    }
    if e.path is not None:
        if n % 4 == 1:
            body["url"] = f"https://shop.example{e.path}"
        else:
            body["path"] = e.path
    if e.revenue is not None:
        body["value" if n % 3 == 1 else "revenue"] = number_or_text(e.revenue, n)
    lines = items_of(e.items)
    if lines is not None:
        body["items"] = []
        for k, line in enumerate(lines):
            sent: dict[str, Any] = {"sku": line.sku, "name": line.name, "category": line.category}
            if line.price is not None:
                sent["price"] = number_or_text(line.price, n + k)
            if line.quantity != 1 or (n // 2 + k) % 2:
                sent["quantity"] = line.quantity
            body["items"].append({k: v for k, v in sent.items() if v is not None})
    return {k: v for k, v in body.items() if v is not None}


def batches(bodies: list[dict[str, Any]], rng: random.Random) -> list[list[dict[str, Any]]]:
    """The bodies shuffled, in batches of uneven sizes."""
    shuffled = bodies[:]
    rng.shuffle(shuffled)
    out = []
    while shuffled:
        size = rng.choice((1, 7, 40, 90, 150))
        out.append(shuffled[:size])
        shuffled = shuffled[size:]
    return out


# == the loaded servers =================================================================


@dataclass
class Loaded:
    server: Server
    ref: Commerce
    ids: SessionIds = field(default_factory=SessionIds)

    def response(self, path: str, params: dict[str, str]) -> Any:
        return self.server.client.get(path, params=params)

    def answer(self, path: str, params: dict[str, str]) -> Any:
        """A 200 answer read with decimals; every money figure a number with 2 decimals."""
        response = self.response(path, params)
        assert response.status_code == 200, f"{path} {params}: {response.text}"
        body = json.loads(response.text, parse_float=Decimal)
        check_money(body)
        return body

    def check(self, path: str, params: dict[str, str], want: Any) -> None:
        got, expected = comparable(self.answer(path, params), want, self.ids)
        assert got == expected, f"{path} {params}"


def check_money(value: Any, key: str | None = None) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            check_money(v, k)
    elif isinstance(value, list):
        for v in value:
            check_money(v, key)
    elif key in MONEY and value is not None:
        assert isinstance(value, Decimal), (key, value)
        assert value.as_tuple().exponent == -2, (key, value)


def derived_answers(server: Server) -> Callable[[Commerce], list[tuple[Any, Any]]]:
    """The answers that show a set of events derived: each site's summary and overview
    over all its days, with the reference's."""

    def read(ref: Commerce) -> list[tuple[Any, Any]]:
        pairs = []
        for q in EVERYTHING.values():
            for path, want in (
                ("/api/v1/commerce/summary", ref.summary(q)),
                ("/api/v1/stats/overview", ref.overview(q)),
            ):
                response = server.client.get(path, params=q.params())
                got = response.text
                if response.status_code == 200:
                    got = json.loads(response.text, parse_float=Decimal)
                pairs.append(comparable(got, want))
        return pairs

    return read


def wait_until_derived(server: Server, events: Sequence[Event]) -> None:
    ref = Commerce(events, SITES)
    read = derived_answers(server)
    deadline = time.monotonic() + DERIVED_TIMEOUT
    pairs = read(ref)
    while not all(got == want for got, want in pairs):
        if time.monotonic() > deadline:
            late = [(g, w) for g, w in pairs if g != w]
            pytest.fail(f"not derived within {DERIVED_TIMEOUT}s: {late}\n{server.output()}")
        time.sleep(0.25)
        pairs = read(ref)


def post(server: Server, batch: list[dict[str, Any]]) -> None:
    response = server.client.post("/events", json=batch)
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == len(batch)


@pytest.fixture(scope="module", params=["embedded", "production"])
def loaded(request: pytest.FixtureRequest, module_launcher: Launcher) -> Loaded:
    env = {"TAPIOCA_DERIVE_INTERVAL_S": "0.2"}
    if request.param == "embedded":
        server = module_launcher.serve(env=env)
    else:
        dsn = request.getfixturevalue("module_pg_dsn")
        redis_url = request.getfixturevalue("module_redis_url")
        server = module_launcher.production(dsn, redis_url, env=env)
    for site, settings in SITES.items():
        made = server.client.post(
            "/api/v1/sites",
            json={"site_id": site, "timezone": settings.timezone, "currency": settings.currency},
        )
        assert made.status_code == 201, made.text

    rng = random.Random(7)
    first, middle, last = ([as_stored(e) for e in wave] for wave in TRAFFIC.waves)
    stored = first_spellings([*first, *middle, *last])
    first, middle, last = (
        stored[: len(first)],
        stored[len(first) : len(first) + len(middle)],
        stored[len(first) + len(middle) :],
    )
    numbered = {id(e): n for n, e in enumerate(stored)}
    for e in first:  # written first: the purchases before the page views of their sessions
        post(server, [wire(e, numbered[id(e)])])
    sent = [wire(e, numbered[id(e)]) for e in middle]
    shuffled = batches(sent, rng)
    for k, batch in enumerate(shuffled):
        post(server, batch)
        if k == len(shuffled) // 2:
            post(server, shuffled[1])  # a batch sent again: stored once
    wait_until_derived(server, [*first, *middle])
    lasts = [wire(e, numbered[id(e)]) for e in last]
    for batch in batches(lasts, rng):
        post(server, batch)
    wait_until_derived(server, stored)
    return Loaded(server, Commerce(stored, SITES))


# == /api/v1/commerce/* and the overview ================================================

SHOP_WEEKS = Question(site=SHOP, start="2025-10-27", end="2025-11-17", tz=None)
QUESTIONS = [
    SHOP_WEEKS,
    Question(site=SHOP, day="2025-11-08", tz=None),  # the earlier duplicate's day in New York
    Question(site=SHOP, start="2025-11-08", end="2025-11-10", tz="UTC"),
    Question(site=SHOP, tz=None),  # the 30 days up to today
    replace(SHOP_WEEKS, filters=(("channel", "Email"),)),
    Question(site=CAFE, start="2025-10-27", end="2025-11-17", tz=None),
]


@pytest.mark.parametrize("q", QUESTIONS, ids=str)
def test_summary_carts_and_overview(loaded: Loaded, q: Question) -> None:
    loaded.check("/api/v1/commerce/summary", q.params(), loaded.ref.summary(q))
    loaded.check("/api/v1/commerce/carts", q.params(), loaded.ref.carts_report(q))
    loaded.check("/api/v1/stats/overview", q.params(), loaded.ref.overview(q))


def test_the_numbers_are_not_empty(loaded: Loaded) -> None:
    """The questions above ask about transactions, refunds, carts in two currencies."""
    summary = loaded.ref.summary(SHOP_WEEKS)
    assert summary["transactions"] > 100 and summary["refunds"] > 0
    assert [c["currency"] for c in summary["by_currency"]] == ["EUR", "USD"]
    assert loaded.ref.carts_report(SHOP_WEEKS)["carts"] > 50
    assert loaded.ref.summary(QUESTIONS[1])["transactions"] > 0


@pytest.mark.parametrize("q", QUESTIONS, ids=str)
def test_products(loaded: Loaded, q: Question) -> None:
    loaded.check("/api/v1/commerce/products", q.params(), loaded.ref.products(q))
    for sort, limit in (("quantity", 3), ("transactions", 1000), ("revenue", 1)):
        params = {**q.params(), "sort": sort, "limit": str(limit)}
        loaded.check("/api/v1/commerce/products", params, loaded.ref.products(q, sort, limit))


@pytest.mark.parametrize("limit", [None, 7])
@pytest.mark.parametrize("q", QUESTIONS, ids=str)
def test_transactions_page_by_page(loaded: Loaded, q: Question, limit: int | None) -> None:
    """Every transaction of the range once, newest first, following next_cursor."""
    rows: list[Any] = []
    params = q.params() if limit is None else {**q.params(), "limit": str(limit)}
    for _ in range(1000):
        page = loaded.answer("/api/v1/commerce/transactions", params)
        assert len(page["results"]) <= (limit or 50)
        rows += page["results"]
        if page["next_cursor"] is None:
            break
        params = {**params, "cursor": page["next_cursor"]}
    got, want = comparable(rows, loaded.ref.listing(q), loaded.ids)
    assert got == want


def test_every_transaction_in_detail(loaded: Loaded) -> None:
    for site, key in loaded.ref.transactions:
        want = loaded.ref.transaction(site, key)
        loaded.check(f"/api/v1/commerce/transactions/{key}", {"site_id": site}, want)


WINNERS = [
    ("T-dup-earlier", "2025-11-09T04:30:00Z", Decimal("5.25") * 3),  # sent last, earlier
    ("T-dup-later", "2025-10-31T12:00:00Z", Decimal("40.00")),
    ("T-dup-tie", "2025-11-11T18:45:00Z", Decimal("20.00")),  # "dup3-B" < "dup3-a"
]


@pytest.mark.parametrize(("transaction_id", "ts", "revenue"), WINNERS)
def test_the_first_purchase_of_a_transaction_makes_it(
    loaded: Loaded, transaction_id: str, ts: str, revenue: Decimal
) -> None:
    """The duplicates, as the traffic means them (the reference says the same)."""
    got = loaded.answer(f"/api/v1/commerce/transactions/{transaction_id}", {"site_id": SHOP})
    assert (got["ts"], got["revenue"]) == (ts, revenue)


@pytest.mark.parametrize("transaction_id", ["T-nope", "T-bot-only", "dup2-a"])
def test_unknown_transactions_are_404(loaded: Loaded, transaction_id: str) -> None:
    for path in (f"/api/v1/commerce/transactions/{transaction_id}",
                 f"/transactions/{transaction_id}/items"):  # fmt: skip
        assert_error(loaded.response(path, {"site_id": SHOP}), 404, "transaction_not_found")


# == BobaShop's routes ===================================================================

RANGES: list[tuple[str, dict[str, str]]] = [
    (SHOP, {}),  # all time
    (SHOP, {"start_date": "2025-10-29", "end_date": "2025-11-09"}),
    (SHOP, {"start_date": "2025-11-09"}),  # from then on
    (SHOP, {"end_date": "2025-11-08"}),  # up to then
    (SHOP, {"start_date": "2025-11-09", "end_date": "2025-11-09", "tz": "UTC"}),
    (CAFE, {}),
    (CAFE, {"start_date": "2025-11-07"}),
    (CAFE, {"end_date": "2025-11-07", "tz": "America/New_York"}),
]


@pytest.mark.parametrize(("site", "params"), RANGES, ids=[f"{s}-{p}" for s, p in RANGES])
def test_bobashop_routes(loaded: Loaded, site: str, params: dict[str, str]) -> None:
    want = loaded.ref.boba(site, params.get("start_date"), params.get("end_date"),
                           params.get("tz"))  # fmt: skip
    for route in BOBA_ROUTES:
        loaded.check(route, {"site_id": site, **params}, want.answer(route))


ITEMS = [
    (SHOP, "T-dup-earlier"),  # the earlier duplicate's items, sent last
    (SHOP, "T-dup-tie"),
    (SHOP, "T-loyal-4"),  # "usd"
    (SHOP, "T-client-late"),  # "eur"
    (SHOP, "gift-1"),  # no transaction id; an item without a price
    (SHOP, "T-100"),
    (CAFE, "T-100"),
]


@pytest.mark.parametrize(("site", "transaction_id"), ITEMS)
def test_bobashop_items(loaded: Loaded, site: str, transaction_id: str) -> None:
    want = loaded.ref.boba(site).items(transaction_id)
    assert want is not None
    loaded.check(f"/transactions/{transaction_id}/items", {"site_id": site}, want)
