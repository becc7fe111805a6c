"""A deterministic, realistic traffic generator: visitors, sessions, shops.

Same seed and count → same events, byte for byte. Visitors arrive through a mix of channels
(search, social, email, paid, direct), browse pages on several devices, and some add to
cart, view the cart and buy.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
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


# -- a shop: BobaShop's size (1M sessions, ~5.5M events, ~200k orders in 90 days) ------
SHOP_CURRENCY = "EUR"  # the bench shop's reporting currency (site.currency)
SHOP_FLAVOURS = ["Taro", "Matcha", "Mango", "Brown sugar", "Lychee", "Thai", "Peach",
                 "Honeydew", "Strawberry", "Jasmine", "Oolong", "Coconut"]  # fmt: skip
SHOP_LINES = [  # (kind, category, price)
    ("milk tea", "tea", "4.50"),
    ("fruit tea", "tea", "4.20"),
    ("slush", "tea", "5.10"),
    ("pearls 1 kg", "boba", "9.90"),
    ("popping boba 500 g", "boba", "7.45"),
    ("syrup", "ingredients", "6.99"),
    ("straws x100", "merch", "3.25"),
    ("tumbler", "merch", "18.00"),
    ("gift box", "gifts", "24.95"),
    ("sealer machine", "equipment", "349.00"),
]
# 120 products: (sku, name, category, price)
SHOP_PRODUCTS = [
    (f"BOBA-{i:03d}", f"{flavour} {kind}", category, Decimal(price))
    for i, (flavour, (kind, category, price)) in enumerate(
        (flavour, line) for line in SHOP_LINES for flavour in SHOP_FLAVOURS
    )
]
SHOP_CONTENT = [
    "/",
    "/",
    "/about",
    "/blog/brewing",
    "/blog/pearls",
    "/search?q=taro",
    "/search?q=pearls",
    "/category/tea",
    "/category/boba",
    "/category/merch",
    "/collections/new",
    "/account",
    "/login",
    "/stores",
    "/faq",
]
_BOT_UA = USER_AGENTS.index(next(ua for ua in USER_AGENTS if "Googlebot" in ua))
_UA_BY_PERCENT = [i for i, w in enumerate(UA_WEIGHTS) for _ in range(w)]  # 100 entries


def _money(amount: Decimal) -> float:
    """A JSON number as a shop's tracker sends it (its shortest text is the amount)."""
    return float(amount)


def _shop_line(rng: random.Random) -> dict[str, Any]:
    # popular products first: a few sell most (skewed choice over the 120)
    sku, name, category, price = SHOP_PRODUCTS[int(len(SHOP_PRODUCTS) * rng.random() ** 2.2)]
    line: dict[str, Any] = {"sku": sku, "name": name, "category": category}
    if rng.random() < 0.995:  # a line now and then without a price (adds 0)
        line["price"] = _money(price)
    quantity = 1 if rng.random() < 0.65 else rng.randint(2, 4)
    if quantity > 1 or rng.random() < 0.7:  # else left out: quantity 1 by default
        line["quantity"] = quantity
    return line


def _lines_total(lines: list[dict[str, Any]]) -> Decimal:
    return sum(
        (Decimal(str(line.get("price", 0))) * line.get("quantity", 1) for line in lines),
        Decimal(0),
    )


class _Clock:
    """Event time within a session: each step a few seconds to minutes after the last."""

    def __init__(self, rng: random.Random, start: datetime) -> None:
        self.rng, self.now = rng, start

    def step(self, lo: int, hi: int) -> datetime:
        moment = self.now
        self.now += timedelta(seconds=self.rng.randint(lo, hi))
        return moment


def _shop_session(
    rng: random.Random, base: dict[str, Any], start: datetime, bot: bool, order_id: str
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One visit's events, and its order (its purchase event, ``order_id``) if it buys."""
    clock = _Clock(rng, start)
    events: list[dict[str, Any]] = []

    def page(path: str) -> None:
        events.append({**base, "event_type": "page_view", "path": path,
                       "timestamp": clock.step(4, 150)})  # fmt: skip

    for _ in range(1 + int(rng.expovariate(1 / 2.2))):
        if rng.random() < 0.4:
            page(f"/products/{rng.choice(SHOP_PRODUCTS)[0].lower()}")
        else:
            page(rng.choice(SHOP_CONTENT))
    events[0].update(_pick(rng, ARRIVALS))
    if bot or rng.random() >= 0.44:
        return events, None
    cart: list[dict[str, Any]] = []
    for _ in range(1 + int(rng.expovariate(1 / 0.9))):
        line = _shop_line(rng)
        page(f"/products/{line['sku'].lower()}")
        cart.append(line)
        events.append({**base, "event_type": "add_to_cart", "path": events[-1]["path"],
                       "items": [line], "timestamp": clock.step(2, 40)})  # fmt: skip
    for look in range(1 if rng.random() < 0.85 else 2):
        if look:  # back to the shop for one more thing, then the cart again
            line = _shop_line(rng)
            page(f"/products/{line['sku'].lower()}")
            cart.append(line)
        page("/cart")
        view = {**base, "event_type": "view_cart", "path": "/cart",
                "items": [dict(line) for line in cart], "timestamp": clock.step(5, 90)}  # fmt: skip
        if rng.random() < 0.3:
            view["value"] = _money(_lines_total(cart))
        if rng.random() < 0.05:
            view["currency"] = SHOP_CURRENCY
        events.append(view)
    if rng.random() >= 0.47:
        return events, None  # the cart is left
    page("/checkout")
    purchase: dict[str, Any] = {
        **base,
        "event_type": "purchase",
        "path": "/checkout/done",
        "transaction_id": order_id,
        "items": cart,
        "timestamp": clock.step(20, 300),
    }
    total = _lines_total(cart)
    kind = rng.random()
    if kind < 0.6:  # the order's total: the lines plus shipping under 30
        purchase["revenue"] = _money(total + (Decimal("4.90") if total < 30 else 0))
    elif kind < 0.7:
        purchase["value"] = _money(total)  # the alias
    # else no revenue: the lines' total counts
    currency = rng.random()
    if currency < 0.9:
        purchase["currency"] = SHOP_CURRENCY
    elif currency < 0.93:
        purchase["currency"] = SHOP_CURRENCY.lower()
    elif currency < 0.97:
        purchase["currency"] = "USD"
    # else none sent: the site's currency
    events.append(purchase)
    if rng.random() < 0.02:  # the thank-you page sent again: the same order, a moment later
        events.append({**purchase, "timestamp": clock.step(1, 30)})
    return events, purchase


def _refund(rng: random.Random, order: dict[str, Any], moment: datetime) -> dict[str, Any]:
    """A refund days after ``order``: in full (no amount: the order's revenue), of an
    amount, or of one line."""
    refund: dict[str, Any] = {
        "site_id": order["site_id"],
        "user_id": order["user_id"],
        "user_agent": order["user_agent"],
        "event_type": "refund",
        "transaction_id": order["transaction_id"],
        "timestamp": moment,
    }
    if "currency" in order:
        refund["currency"] = order["currency"]
    kind = rng.random()
    if kind < 0.3:
        refund["revenue"] = _money(Decimal(rng.randint(100, 1500)) / 100)
    elif kind < 0.6:
        refund["items"] = [rng.choice(order["items"])]
    return refund


def generate_shop(
    seed: int,
    sessions: int = 1_000_000,
    *,
    site: str = "shop",
    start: datetime = datetime(2025, 10, 1, tzinfo=UTC),
    days: int = 90,
) -> Iterator[dict[str, Any]]:
    """A shop's events: ``sessions`` visits over ``days`` days, in order of their start
    (RFC 3339 timestamps, stable event ids; same seed, same events).

    About 5.5 events a visit. About 44 % of visits put products in the cart (one or more
    lines, quantity 1 to 4, some lines without a quantity: 1) and view it, once or twice;
    a bit under half of those buy (about 20 orders per 100 visits), each order a
    purchase event with its transaction id (``BS<seed>-`` and a number), its lines and, mostly,
    its revenue (or ``value``), in the site's currency (EUR, some sent as "eur"), USD, or
    none. 2 % of orders are sent twice (the same order, seconds later); 1 % are refunded
    1 to 14 days later (a ``refund`` event without a session: in full, of an amount, or of
    one line). 2 % of visitors are a crawler (page views only).
    """
    import numpy as np

    rng = random.Random(seed)
    span = days * 86400.0
    offsets = np.sort(np.random.default_rng(seed).uniform(0.0, span, sessions)).tolist()
    end = start + timedelta(seconds=span)
    visitors = int(sessions * NEW_VISITOR_SHARE)
    seen = orders = produced = 0
    later: list[tuple[datetime, int, dict[str, Any]]] = []  # refunds to come, by time

    def emit(event: dict[str, Any]) -> dict[str, Any]:
        nonlocal produced
        event["event_id"] = f"{seed}-{produced}"
        event["timestamp"] = event["timestamp"].isoformat()
        produced += 1
        return event

    for number, offset in enumerate(offsets):
        moment = start + timedelta(seconds=offset)
        while later and later[0][0] <= moment:
            yield emit(heapq.heappop(later)[2])
        if seen < visitors and (seen == 0 or rng.random() < NEW_VISITOR_SHARE):
            visitor_no, seen = seen, seen + 1
        else:
            visitor_no = seen - 1 - int(seen * rng.random() ** 3)
        ua = _UA_BY_PERCENT[visitor_no * 2654435761 % 100]
        base = {"site_id": site, "user_id": f"u{visitor_no}", "session_id": f"s{seed}-{number}",
                "user_agent": USER_AGENTS[ua]}  # fmt: skip
        order_id = f"BS{seed}-{orders:07d}"
        events, order = _shop_session(rng, base, moment, ua == _BOT_UA, order_id)
        if order is not None:
            orders += 1
            if rng.random() < 0.01:
                when = order["timestamp"] + timedelta(days=rng.uniform(1, 14))
                if when < end:
                    heapq.heappush(later, (when, orders, _refund(rng, order, when)))
        for event in events:
            yield emit(event)
    while later:
        yield emit(heapq.heappop(later)[2])
