"""A deterministic, realistic traffic generator: visitors, sessions, shops.

Same seed and count → same events, byte for byte. Visitors arrive through a mix of channels
(search, social, email, paid, direct), browse pages on several devices, and some add to
cart, view the cart and buy.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
]
UA_WEIGHTS = [30, 15, 25, 18, 6, 4, 2]
ARRIVALS: list[tuple[dict[str, str], int]] = [
    ({}, 30),
    ({"referrer": "https://www.google.com/"}, 25),
    ({"referrer": "https://www.bing.com/search?q=boba"}, 4),
    ({"referrer": "https://l.facebook.com/"}, 6),
    ({"referrer": "https://t.co/abc"}, 3),
    ({"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "nov"}, 8),
    ({"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "brand"}, 10),
    ({"utm_source": "facebook", "utm_medium": "paid_social", "utm_campaign": "retarget"}, 5),
    ({"referrer": "https://www.youtube.com/watch?v=x"}, 3),
    ({"referrer": "https://blog.example.org/best-tea"}, 6),
]
PRODUCTS = [(f"SKU-{i:03d}", f"Bubble tea {i}", ["tea", "boba", "merch"][i % 3]) for i in range(60)]
PRICES = {sku: round(2.5 + (i * 37 % 200) / 10, 2) for i, (sku, _, _) in enumerate(PRODUCTS)}
CONTENT = [
    "/",
    "/about",
    "/blog/brewing",
    "/blog/pearls",
    "/search?q=taro",
    "/category/tea",
    "/category/boba",
    "/collections/new",
    "/account",
    "/login",
]


def _pick(rng: random.Random, options: list[tuple[Any, int]]) -> Any:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def _session(
    rng: random.Random, site: str, visitor: str, ua: str, start: datetime
) -> list[dict[str, Any]]:
    arrival = _pick(rng, ARRIVALS)
    session = f"s-{visitor}-{int(start.timestamp())}"
    base = {"site_id": site, "user_id": visitor, "session_id": session, "user_agent": ua}
    events: list[dict[str, Any]] = []
    moment = start
    cart: list[dict[str, Any]] = []
    for step in range(max(1, int(rng.expovariate(1 / 4)))):
        if rng.random() < 0.45:
            sku, name, category = rng.choice(PRODUCTS)
            path = f"/products/{sku.lower()}"
        else:
            sku, path = "", rng.choice(CONTENT)
        event = {**base, "event_type": "page_view", "path": path, "timestamp": moment}
        if step == 0:
            event.update(arrival)
        events.append(event)
        moment += timedelta(seconds=rng.randint(5, 240))
        if sku and rng.random() < 0.25:
            item = {
                "sku": sku,
                "name": name,
                "category": category,
                "price": PRICES[sku],
                "quantity": rng.randint(1, 3),
            }
            cart.append(item)
            events.append(
                {
                    **base,
                    "event_type": "add_to_cart",
                    "timestamp": moment,
                    "items": [item],
                    "path": path,
                }
            )
            moment += timedelta(seconds=rng.randint(2, 30))
    if cart and rng.random() < 0.6:
        events.append(
            {**base, "event_type": "view_cart", "path": "/cart", "items": cart, "timestamp": moment}
        )
        moment += timedelta(seconds=rng.randint(10, 120))
        if rng.random() < 0.5:
            revenue = round(sum(i["price"] * i["quantity"] for i in cart), 2)
            events.append(
                {
                    **base,
                    "event_type": "purchase",
                    "path": "/checkout/done",
                    "items": cart,
                    "revenue": revenue,
                    "currency": "EUR",
                    "transaction_id": f"T-{session}",
                    "timestamp": moment,
                }
            )
    return events


# Events per session on average (page views, carts, checkouts; 4.43 over 200,000
# sessions of this generator): the arrival rate is planned with it and corrects itself.
EVENTS_PER_SESSION = 4.43
NEW_VISITOR_SHARE = 0.6


def generate(
    seed: int,
    count: int,
    *,
    site: str = "bench",
    start: datetime = datetime(2025, 10, 1, tzinfo=UTC),
    days: int = 30,
    visitors: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield ``count`` events, sessions in order of their start, over ``days`` days (RFC
    3339 timestamps, stable event ids).

    Sessions start as a Poisson process whose rate is set, at each arrival, by the events
    still to make and the time left, so the ``count`` events spread over the whole span
    whatever the sessions' lengths; the last session is cut at ``count``.
    """
    rng = random.Random(seed)
    visitors = visitors or max(10, int(count / EVENTS_PER_SESSION * NEW_VISITOR_SHARE))
    span = days * 86400.0
    produced = 0
    seen = 0
    offset = 0.0
    while True:
        left = max(span - offset, 1.0)
        offset = min(offset + rng.expovariate((count - produced) / EVENTS_PER_SESSION / left),
                     span - 1.0)  # fmt: skip
        # About 60 % of sessions come from new visitors; returning ones favour the
        # recent and the loyal: about 22,000 visitors a day for 10M events in 90 days.
        if seen < visitors and (seen == 0 or rng.random() < NEW_VISITOR_SHARE):
            visitor_no, seen = seen, seen + 1
        else:
            visitor_no = seen - 1 - int(seen * rng.random() ** 3)
        visitor = f"v{visitor_no}"
        ua = random.Random(visitor_no).choices(USER_AGENTS, UA_WEIGHTS)[0]
        for event in _session(rng, site, visitor, ua, start + timedelta(seconds=offset)):
            event["event_id"] = f"{seed}-{produced}"
            event["timestamp"] = event["timestamp"].isoformat()
            yield event
            produced += 1
            if produced >= count:
                return
