"""Generated shop traffic for the commerce-report tests, and the order it arrives in.

Two sites over three weeks from Monday 2025-10-27 (America/New_York leaves summer time
on 2025-11-02): "shop" (zone America/New_York, currency USD) and "cafe" (UTC, EUR).
Random visitors browse, view carts, buy (several times, several items, quantities above
one, in the site's currency, in another one, sometimes spelled in lower case, sometimes
without a currency, with or without revenue, with or without a transaction id), every
5th visitor's tracker sending session ids; and hand-made cases that a wrong reading of
commerce-contract.md gets wrong:

- duplicate purchase events of one transaction: a later one with other revenue and items
  (ignored), an earlier one arriving later (it wins, with its own session, on the day
  before in New York), two at the same time (the smaller event id in byte order wins),
  a bot's earlier one (ignored);
- purchases that arrive before the page views of their session, and before an earlier
  page view that changes the session's landing page and channel (one of them joins two
  sessions into one);
- refunds with an amount, with items only, with neither (the full revenue of the
  transaction's winning event), of an unknown transaction, of a bot's transaction,
  without a transaction id, in another currency, two of one transaction, a bot's;
- bot purchases, carts and refunds (they count nowhere);
- a sku whose name changes, then is sent without a name; an item without a price; a
  price with 4 decimals;
- two transactions at the same moment whose ids order differently as text and as numbers;
- a transaction id that is another purchase's event id; revenue without items; a full
  refund written before the purchase it refunds; a cart in a session whose start
  arrives last;
- the same transaction id on both sites.

The events are reference events (support/reference.py), items as their stored text;
``waves`` gives them in the order they are written: each wave after the previous one is
derived.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from support.reference import Event, Item, items_text

SHOP, CAFE = "shop", "cafe"


@dataclass(frozen=True)
class SiteSettings:
    timezone: str
    currency: str


SITES = {SHOP: SiteSettings("America/New_York", "USD"), CAFE: SiteSettings("UTC", "EUR")}
FOREIGN = {SHOP: "EUR", CAFE: "USD"}
DAY0 = datetime(2025, 10, 27, tzinfo=UTC)  # a Monday
DAYS = 21
LAST_DAY = DAY0 + timedelta(days=DAYS)  # the hand-made latest purchases

# sku, name, category, price (None: no price)
CATALOGUE: tuple[tuple[str, str, str, Decimal | None], ...] = (
    ("TEA-1", "Green Tea", "tea", Decimal("4.50")),
    ("TEA-2", "Black Tea", "tea", Decimal("3.75")),
    ("BOBA-1", "Classic Boba", "boba", Decimal("5.25")),
    ("BOBA-2", "Taro Boba", "boba", Decimal("5.99")),
    ("CUP-1", "Reusable Cup", "gear", Decimal("12.00")),
    ("STRAW", "Steel Straw", "gear", Decimal("1.2345")),
    ("GIFT", "Gift Card", "gift", None),
)
PAGES = {
    "/": "home",
    "/products/tea": "product",
    "/products/boba": "product",
    "/collections/drinks": "category",
    "/search": "search",
    "/about": "other",
    "/blog/a": "other",
}
CHANNELS = ("Direct", "Organic Search", "Paid Search", "Referral", "Email", "Organic Social")
SOURCES = {
    "Direct": (None, None, None),
    "Organic Search": ("Google", None, None),
    "Paid Search": ("Google", "cpc", "winter"),
    "Referral": ("news.example.org", None, None),
    "Email": ("Email", "email", "nov"),
    "Organic Social": ("Facebook", None, None),
}
DEVICES = ("desktop", "desktop", "mobile", "tablet")
AGENTS = (("Chrome", "Windows"), ("Firefox", "Linux"), ("Mobile Safari", "iOS"))
TERMS = (None, None, "tea", "boba")
CONTENTS = (None, "banner", "text")
# seconds between the events of a visit: mostly short, some beyond the 30 minutes
GAPS = (20, 45, 90, 240, 600, 1500, 1800, 1801, 2400)


def item(sku: str, quantity: int = 1, *, name: str | None = "", price: Any = "") -> Item:
    """A catalogue line; ``name``/``price`` override the catalogue's ("" keeps it)."""
    _, known_name, category, known_price = next(c for c in CATALOGUE if c[0] == sku)
    return Item(
        sku=sku,
        name=known_name if name == "" else name,
        category=category,
        price=known_price if price == "" else (None if price is None else Decimal(price)),
        quantity=quantity,
    )


@dataclass
class Builder:
    """Events of one site, each with a fresh event id, sorted into arrival waves."""

    site: str
    prefix: str
    first: list[Event] = field(default_factory=list)
    middle: list[Event] = field(default_factory=list)
    last: list[Event] = field(default_factory=list)
    count: int = 0

    def add(self, wave: str = "middle", event_id: str | None = None, **values: Any) -> Event:
        self.count += 1
        if values.get("items") is not None:  # stored as JSON text
            values["items"] = items_text(values["items"])
        e = Event(
            site_id=self.site, event_id=event_id or f"{self.prefix}{self.count:05d}", **values
        )
        getattr(self, wave).append(e)
        return e


@dataclass(frozen=True)
class Visit:
    """What the first event of a visit says, and the visit's tracker."""

    user: str
    channel: str
    device: str
    browser: str
    os: str
    landing: str
    session_id: str | None = None

    def first_values(self) -> dict[str, Any]:
        source, medium, campaign = SOURCES[self.channel]
        return {
            "channel": self.channel,
            "source": source,
            "utm_source": source if medium else None,
            "utm_medium": medium,
            "utm_campaign": campaign,
            "referrer": "https://news.example.org/post" if self.channel == "Referral" else None,
        }


def page_view(b: Builder, v: Visit, ts: datetime, path: str, first: bool,
              wave: str = "middle", **extra: Any) -> Event:  # fmt: skip
    values: dict[str, Any] = {
        "event_type": "page_view",
        "ts": ts,
        "user": v.user,
        "session_id": v.session_id,
        "path": path,
        "page_type": PAGES.get(path, "other"),
        "device": v.device,
        "browser": v.browser,
        "os": v.os,
        **(v.first_values() if first else {"channel": "Direct"}),
        **extra,
    }
    return b.add(wave, **values)


def purchase(b: Builder, v: Visit, ts: datetime, *, transaction_id: str | None,
             items: tuple[Item, ...] | None, revenue: Decimal | None = None,
             currency: str | None = None, wave: str = "middle", event_id: str | None = None,
             is_bot: bool = False, server_side: bool = False, **extra: Any) -> Event:  # fmt: skip
    """A purchase event: its own channel and utm values are not the session's."""
    path = None if server_side else "/checkout/complete"
    values: dict[str, Any] = {
        "event_type": "purchase",
        "ts": ts,
        "user": v.user,
        "session_id": v.session_id,
        "is_bot": is_bot,
        "path": path,
        "page_type": None if server_side else "checkout",
        "channel": "Direct",
        "device": v.device,
        "browser": v.browser,
        "os": v.os,
        "transaction_id": transaction_id,
        "revenue": revenue,
        "currency": currency,
        "items": items,
        **extra,
    }
    return b.add(wave, event_id, **values)


def view_cart(b: Builder, v: Visit, ts: datetime, items: tuple[Item, ...],
              revenue: Decimal | None = None, currency: str | None = None,
              is_bot: bool = False, wave: str = "middle") -> Event:  # fmt: skip
    return b.add(
        wave, event_type="view_cart", ts=ts, user=v.user, session_id=v.session_id, is_bot=is_bot,
        path="/cart", page_type="cart", channel="Direct", device=v.device, browser=v.browser,
        os=v.os, items=items, revenue=revenue, currency=currency,
    )  # fmt: skip


def refund(b: Builder, user: str, ts: datetime, transaction_id: str | None, *,
           revenue: Decimal | None = None, items: tuple[Item, ...] | None = None,
           currency: str | None = None, is_bot: bool = False,
           wave: str = "middle") -> Event:  # fmt: skip
    """A refund sent from the shop's back office (no page)."""
    return b.add(
        wave, event_type="refund", ts=ts, user=user, is_bot=is_bot, transaction_id=transaction_id,
        revenue=revenue, items=items, currency=currency,
    )  # fmt: skip


# == random visitors ==================================================================


def visit_start(rng: random.Random) -> datetime:
    day = DAY0 + timedelta(days=rng.randrange(DAYS))
    if rng.random() < 0.3:  # shortly before a midnight: UTC's, New York's (EDT, then EST)
        midnight = rng.choice((timedelta(0), timedelta(hours=4), timedelta(hours=5)))
        return day + midnight - timedelta(seconds=rng.randrange(60, 1500))
    return day + timedelta(seconds=rng.randrange(86_400))


def basket(rng: random.Random) -> tuple[Item, ...]:
    lines = rng.sample(CATALOGUE[:6], rng.choice((1, 1, 2, 2, 3)))
    chosen = tuple(item(sku, rng.choice((1, 1, 1, 2, 3, 4))) for sku, *_ in lines)
    if rng.random() < 0.08:
        chosen += (item("GIFT"),)
    return chosen


def currency_for(rng: random.Random, site: str) -> str | None:
    roll = rng.random()
    if roll < 0.4:
        return SITES[site].currency
    if roll < 0.8:
        return None
    if roll < 0.93:
        return FOREIGN[site]
    return FOREIGN[site].lower()


def shipping(rng: random.Random, items: tuple[Item, ...]) -> Decimal | None:
    """Half of the purchases send revenue (items plus shipping), the others none."""
    if rng.random() < 0.5:
        return None
    total = sum(((i.price or Decimal(0)) * i.quantity for i in items), Decimal(0))
    return (total + Decimal(rng.choice(("0", "2.5", "4.99")))).quantize(Decimal("0.0001"))


def random_visitors(b: Builder, rng: random.Random, visitors: int) -> None:
    for n in range(visitors):
        user, client = f"u{n}", n % 5 == 0
        browser, os_ = rng.choice(AGENTS)
        device = rng.choice(DEVICES)
        for k in range(rng.randint(1, 4)):
            ts = visit_start(rng)
            v = Visit(
                user, rng.choice(CHANNELS), device, browser, os_, rng.choice(list(PAGES)),
                f"cs-{b.site}-{n}-{k}" if client else None,
            )  # fmt: skip
            page_view(b, v, ts, v.landing, first=True, utm_term=rng.choice(TERMS))
            for _ in range(rng.choice((0, 1, 2, 3))):
                ts += timedelta(seconds=rng.choice(GAPS))
                page_view(b, v, ts, rng.choice(list(PAGES)), first=False,
                          utm_content=rng.choice(CONTENTS))  # fmt: skip
            cart = None
            if rng.random() < 0.45:
                ts += timedelta(seconds=rng.choice(GAPS[:5]))
                cart = basket(rng)
                view_cart(b, v, ts, cart, shipping(rng, cart), currency_for(rng, b.site))
            if rng.random() < (0.6 if cart else 0.25):
                ts += timedelta(seconds=rng.choice(GAPS[:6]))
                bought = cart if cart and rng.random() < 0.7 else basket(rng)
                purchase(
                    b, v, ts,
                    transaction_id=f"{b.site}-T{b.count:05d}" if rng.random() < 0.85 else None,
                    items=bought, revenue=shipping(rng, bought),
                    currency=currency_for(rng, b.site), server_side=rng.random() < 0.2,
                    utm_term=rng.choice(TERMS), utm_content=rng.choice(CONTENTS),
                )  # fmt: skip
                if rng.random() < 0.15:  # a second order in the same session
                    ts += timedelta(seconds=rng.choice(GAPS[:4]))
                    again = basket(rng)
                    purchase(
                        b, v, ts, transaction_id=f"{b.site}-T{b.count:05d}", items=again,
                        revenue=shipping(rng, again), currency=currency_for(rng, b.site),
                    )  # fmt: skip
                if rng.random() < 0.3:
                    ts += timedelta(seconds=rng.choice(GAPS[:4]))
                    page_view(b, v, ts, "/", first=False)
            if rng.random() < 0.05:  # a crawler on the visitor's pages
                b.add(
                    event_type="page_view", ts=ts + timedelta(seconds=7), user=user,
                    is_bot=True, path="/", page_type="home", channel="Direct",
                    device="desktop", browser="Googlebot",
                )  # fmt: skip


# == the hand-made cases ==============================================================


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return DAY0 + timedelta(days=day, hours=hour, minutes=minute, seconds=second)


def visitor(user: str, channel: str = "Direct", landing: str = "/", *,
            device: str = "desktop", session_id: str | None = None) -> Visit:  # fmt: skip
    return Visit(user, channel, device, "Chrome", "Windows", landing, session_id)


MIN = timedelta(minutes=1)


def repeat_buyer(b: Builder) -> None:
    """Five purchases of one user; a sku's name changes, then comes without a name."""
    days = (1, 5, 12, 19)
    for k, day in enumerate(days):
        v = visitor("loyal", CHANNELS[k], "/products/tea")
        t = at(day, 15, 10 * k)
        page_view(b, v, t, v.landing, first=True)
        view_cart(b, v, t + 2 * MIN, (item("TEA-1", 2), item("STRAW", 3)))
        purchase(
            b, v, t + 4 * MIN, transaction_id=f"T-loyal-{k}",
            items=(item("TEA-1", 2, name="Green Tea" if k < 3 else "Sencha Green Tea"),
                   item("STRAW", 3), item("CUP-1", k + 1)),
            currency="EUR" if k == 2 else None,
        )  # fmt: skip
    v = visitor("loyal", "Email", "/")
    page_view(b, v, LAST_DAY + 14 * 60 * MIN, "/", first=True)
    purchase(b, v, LAST_DAY + 14 * 60 * MIN + 3 * MIN, transaction_id="T-loyal-4",
             items=(item("TEA-1", 1, name=None), item("BOBA-2", 2)), currency="usd")  # fmt: skip


def late_session_starts(b: Builder) -> None:
    """Purchases written first; their sessions' earlier page views written after them,
    the first page view of each session last of all."""
    # one session whose first page view arrives last: it changes landing page and channel
    v = visitor("late-landing", "Organic Search", "/")
    t = at(3, 14)
    page_view(b, v, t, "/", first=True, wave="last")
    page_view(b, v, t + 20 * MIN, "/products/boba", first=False, wave="middle",
              channel="Email", source="Email", utm_source="Email", utm_medium="email")  # fmt: skip
    view_cart(b, v, t + 25 * MIN, (item("BOBA-1", 3),), wave="first")
    purchase(b, v, t + 30 * MIN, transaction_id="T-late-landing", wave="first",
             items=(item("BOBA-1", 3),), channel="Email", source="Email")  # fmt: skip

    # two sessions joined by a page view in the gap between them, written last
    v = visitor("bridge", "Referral", "/blog/a")
    t = at(8, 17, 30)
    page_view(b, v, t, "/blog/a", first=True, wave="middle")
    page_view(b, v, t + 5 * MIN, "/about", first=False, wave="middle")
    page_view(b, v, t + 33 * MIN, "/search", first=False, wave="last")
    w = visitor("bridge", "Paid Search", "/products/tea", device="mobile")
    page_view(b, w, t + 60 * MIN, "/products/tea", first=True, wave="middle")
    purchase(b, w, t + 62 * MIN, transaction_id="T-bridge", wave="first",
             items=(item("TEA-1", 1), item("TEA-2", 2)), revenue=Decimal("16.0000"))  # fmt: skip

    # a client session whose first event arrives last
    v = visitor("client-late", "Organic Social", "/collections/drinks", session_id="cs-late")
    t = at(10, 4, 40)  # 23:40 in New York the day before
    page_view(b, v, t, v.landing, first=True, wave="last")
    page_view(b, v, t + 50 * MIN, "/products/boba", first=False, wave="middle")
    purchase(b, v, t + 55 * MIN, transaction_id="T-client-late", wave="first",
             items=(item("BOBA-2", 2),), currency="eur")  # fmt: skip


def duplicates(b: Builder) -> None:
    # a later duplicate with other revenue and items: ignored
    v = visitor("dup-later", "Email", "/products/tea")
    t = at(4, 12)
    page_view(b, v, t - 2 * MIN, v.landing, first=True)
    purchase(b, v, t, transaction_id="T-dup-later", items=(item("TEA-1", 2),),
             revenue=Decimal("40.0000"), wave="first", event_id="dup1-a")  # fmt: skip
    purchase(b, v, t + 10 * MIN, transaction_id="T-dup-later", items=(item("CUP-1", 5),),
             revenue=Decimal("99.0000"), wave="last", event_id="dup1-b")  # fmt: skip

    # an earlier duplicate arriving later: it wins, in its own session, on the day before
    # in New York (05:20 UTC is 00:20 EST; 50 minutes earlier is 23:30 the day before)
    t = at(13, 5, 20)
    v = visitor("dup-earlier", "Email", "/cart")
    page_view(b, v, t - 3 * MIN, "/cart", first=True)
    purchase(b, v, t, transaction_id="T-dup-earlier", items=(item("TEA-2", 1),),
             revenue=Decimal("25.0000"), wave="first", event_id="dup2-a")  # fmt: skip
    w = visitor("dup-earlier", "Organic Social", "/search", device="mobile")
    page_view(b, w, t - 52 * MIN, "/search", first=True)
    purchase(b, w, t - 50 * MIN, transaction_id="T-dup-earlier", items=(item("BOBA-1", 3),),
             wave="last", event_id="dup2-b")  # fmt: skip

    # two at the same moment: "dup3-B" < "dup3-a" in byte order (not in a case-blind one)
    t = at(15, 18, 45)
    v = visitor("dup-tie", "Paid Search", "/products/boba")
    page_view(b, v, t - 4 * MIN, v.landing, first=True)
    purchase(b, v, t, transaction_id="T-dup-tie", items=(item("BOBA-2", 1),),
             revenue=Decimal("10.0000"), wave="first", event_id="dup3-a")  # fmt: skip
    purchase(b, v, t, transaction_id="T-dup-tie", items=(item("CUP-1", 2), item("STRAW", 1)),
             revenue=Decimal("20.0000"), wave="last", event_id="dup3-B")  # fmt: skip

    # a crawler's earlier purchase with the same id: bots count nowhere
    t = at(6, 20)
    v = visitor("dup-bot", "Direct", "/")
    page_view(b, v, t - MIN, "/", first=True)
    purchase(b, v, t, transaction_id="T-dup-bot", items=(item("TEA-2", 2),))
    purchase(b, v, t - 60 * MIN, transaction_id="T-dup-bot", items=(item("CUP-1", 9),),
             revenue=Decimal("500.0000"), is_bot=True, wave="last")  # fmt: skip


def odd_purchases(b: Builder) -> None:
    """Bots, no transaction id, a gift card without price, the same moment, midnight."""
    bot = visitor("crawler", "Direct", "/")
    purchase(b, bot, at(2, 9), transaction_id="T-bot-only", items=(item("CUP-1", 3),),
             revenue=Decimal("36.0000"), is_bot=True)  # fmt: skip
    view_cart(b, bot, at(2, 9, 5), (item("CUP-1", 3),), is_bot=True)
    for k, gift_revenue in enumerate((Decimal("50.0000"), None)):
        v = visitor(f"gift-{k}", "Email", "/")
        page_view(b, v, at(7 + k, 11), "/", first=True)
        purchase(b, v, at(7 + k, 11, 2), transaction_id=None, event_id=f"gift-{k}",
                 items=(item("GIFT"), item("STRAW", 2)), revenue=gift_revenue)  # fmt: skip
    for tid, user in (("T-100", "same-a"), ("T-99", "same-b")):
        v = visitor(user, "Organic Search", "/")
        page_view(b, v, at(9, 16, 0), "/", first=True)
        purchase(b, v, at(9, 16, 5), transaction_id=tid, items=(item("TEA-1", 1),))
    # a transaction id that is another purchase's event id: one key, the earlier wins
    v = visitor("collide", "Email", "/")
    page_view(b, v, at(17, 13), "/", first=True)
    purchase(b, v, at(17, 13, 1), transaction_id=None, event_id="T-collide",
             items=(item("TEA-2", 1),), wave="last")  # fmt: skip
    purchase(b, v, at(17, 13, 2), transaction_id="T-collide", items=(item("CUP-1", 1),))
    # revenue and no items (only a value sent), in a session of its own
    v = visitor("value-only", "Organic Search", "/")
    purchase(b, v, at(18, 2), transaction_id="T-value-only", items=None,
             revenue=Decimal("12.3450"), server_side=True)  # fmt: skip
    v = visitor("midnight", "Paid Search", "/products/tea")
    page_view(b, v, at(16, 4, 55), v.landing, first=True)  # 23:55 in New York
    purchase(b, v, at(16, 5, 1), transaction_id="T-midnight", items=(item("TEA-1", 4),),
             currency="USD", server_side=True)  # fmt: skip


def refunds(b: Builder) -> None:
    refund(b, "backoffice", at(4, 9), "T-loyal-0", revenue=Decimal("5.0000"))
    refund(b, "loyal", at(6, 10), "T-loyal-1", items=(item("STRAW", 2), item("GIFT")))
    refund(b, "backoffice", at(14, 10), "T-dup-earlier")  # full: the winner's revenue
    refund(b, "backoffice", at(14, 11), "T-nope")  # unknown: 0
    refund(b, "backoffice", at(14, 12), "T-nope-2", revenue=Decimal("7.0000"))
    refund(b, "backoffice", at(13, 1), "T-loyal-2", revenue=Decimal("3.3300"), currency="eur")
    refund(b, "backoffice", at(17, 1), "T-client-late")  # full, in the transaction's EUR
    refund(b, "backoffice", at(18, 8), "T-bot-only")  # a bot's transaction: unknown
    refund(b, "backoffice", at(18, 9), None, revenue=Decimal("3.0000"))
    refund(b, "backoffice", at(16, 6), "T-midnight", revenue=Decimal("4.5000"))
    refund(b, "backoffice", at(16, 7), "T-midnight", revenue=Decimal("2.2500"))
    refund(b, "crawler", at(16, 8), "T-midnight", revenue=Decimal("9.0000"), is_bot=True)
    refund(b, "backoffice", at(19, 23, 59), "T-dup-tie")  # full: 20.00 (the winner's)
    # written before the purchase it refunds: its amount and currency come later
    refund(b, "backoffice", at(19, 3), "T-value-only", wave="first")


def shop_events(seed: int, visitors: int) -> Builder:
    b = Builder(SHOP, "s")
    rng = random.Random(seed)
    random_visitors(b, rng, visitors)
    repeat_buyer(b)
    late_session_starts(b)
    duplicates(b)
    odd_purchases(b)
    refunds(b)
    return b


def cafe_events(seed: int, visitors: int) -> Builder:
    b = Builder(CAFE, "c")
    rng = random.Random(seed)
    random_visitors(b, rng, visitors)
    v = visitor("shared", "Direct", "/")
    page_view(b, v, at(11, 10), "/", first=True)
    purchase(b, v, at(11, 10, 1), transaction_id="T-100", items=(item("CUP-1", 1),),
             currency="eur")  # fmt: skip
    refund(b, "backoffice", at(12, 10), "T-100", items=(item("CUP-1", 1, price="11.5"),))
    return b


@dataclass(frozen=True)
class ShopTraffic:
    waves: tuple[tuple[Event, ...], ...]

    @property
    def events(self) -> list[Event]:
        return [e for wave in self.waves for e in wave]


def shop_traffic(seed: int = 11, shop_visitors: int = 120, cafe_visitors: int = 40) -> ShopTraffic:
    """Both sites' events in three waves: the first written first, the middle shuffled,
    the last written after the others are derived."""
    builders = [shop_events(seed, shop_visitors), cafe_events(seed + 1, cafe_visitors)]
    middle = [e for b in builders for e in b.middle]
    random.Random(seed).shuffle(middle)
    return ShopTraffic(
        (
            tuple(e for b in builders for e in b.first),
            tuple(middle),
            tuple(e for b in builders for e in b.last),
        )
    )
