"""The independent reference of the commerce reports (metrics.md, E-commerce metrics;
commerce-contract.md): plain Python over reference events, nothing imported from Tapioca.

- A **transaction** is made of the non-bot ``purchase`` events of one key
  ``(site, transaction_id, else event_id)``: the one with the smallest ``(ts, event_id)``
  (ids in code point order, which is UTF-8 byte order) wins, the others are ignored
  whole. Its revenue is the winner's ``revenue``, else Σ price * quantity of its items
  (a line without a price adds 0); its currency the winner's upper-cased, else the
  site's; its user, session, time and event dimensions the winner's; its session
  dimensions (channel, source, device, browser, os, landing page, utm source, medium and
  campaign) those of its session's first event (``support.reference.sessionize``).
- A **refund** is each non-bot ``refund`` event: its revenue, else Σ its items, else the
  full revenue of the transaction it names (0 when there is none); its currency its
  own, else the transaction's, else the site's. It counts on its own time.
- A **cart** is each non-bot ``view_cart`` event: value = revenue else Σ items.
- Money is summed in the site's currency only (counts are over every currency), exact,
  and rounded half to even to cents once (``cents``); averages of counts are floats
  rounded (conversion 4 places, items 2).
- Filters: a transaction matches a session dimension by its session's value and an event
  dimension by its purchase event's own value. Readings chosen where the contract is
  silent: a refund matches the filters when the transaction it names does (a refund of
  no known transaction only when there are no filters); a cart is an event (event
  dimensions on itself, session dimensions on its session); a breakdown's rows are the
  values of the web rows (sessions starting in the range, or events in it) and of the
  transactions in the range, whatever metrics are asked.
- The BobaShop routes (``Boba``): dates inclusive in the zone (``tz``, else the site's),
  either bound open, none: all time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from support.reference import (
    EVENT_METRICS,
    SESSION_DIMS,
    Event,
    Filters,
    Item,
    Question,
    Session,
    WebReports,
    bucket_label,
    bucket_starts,
    inside,
    items_of,
    local_midnight,
    truncate,
)

PURCHASE, VIEW_CART, REFUND = "purchase", "view_cart", "refund"
COMMERCE_METRICS = ("revenue", "transactions", "conversion_rate")
# the event dimensions a transaction has (its purchase event's own values)
COMMERCE_EVENT_DIMS = ("path", "page_type", "referrer", "utm_term", "utm_content")
CENT = Decimal("0.01")
ZERO = Decimal(0)
DEFAULT_CURRENCY = "USD"
SORTS = ("revenue", "quantity", "transactions")


class SiteLike(Protocol):
    @property
    def timezone(self) -> str: ...

    @property
    def currency(self) -> str: ...


def cents(amount: Decimal) -> Decimal:
    """Money as served: the exact amount rounded half to even to 2 places."""
    return amount.quantize(CENT, ROUND_HALF_EVEN)


def line_total(items: Iterable[Item] | None) -> Decimal:
    return sum(((i.price or ZERO) * i.quantity for i in items or ()), ZERO)


def quantity_of(items: Iterable[Item] | None) -> int:
    return sum(i.quantity for i in items or ())


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def upper(currency: str | None) -> str | None:
    return currency.upper() if currency else None


def session_key(s: Session) -> tuple[str, str]:
    """One session: its site and its first event's id."""
    return s.first.site_id, s.first.event_id or ""


def session_id_of(s: Session) -> str:
    """A client session's id, else a stand-in for the derived one (``~`` + first event id:
    tests compare derived ids by the sessions they name, not by their text)."""
    return s.first.session_id or f"~{s.first.event_id}"


@dataclass(frozen=True)
class Transaction:
    id: str
    event: Event  # the winning purchase event
    session: Session
    revenue: Decimal
    currency: str
    items: tuple[Item, ...]

    @property
    def site(self) -> str:
        return self.event.site_id

    @property
    def ts(self) -> datetime:
        return self.event.ts

    @property
    def user(self) -> str:
        return self.event.user

    @property
    def items_count(self) -> int:
        return quantity_of(self.items)

    def value(self, dimension: str) -> str | None:
        if dimension in SESSION_DIMS:
            return self.session.value(dimension)
        value: str | None = getattr(self.event, dimension)
        return value

    def matches(self, filters: Filters) -> bool:
        return all(self.value(d) == v for d, v in filters)


@dataclass(frozen=True)
class Refund:
    event: Event
    amount: Decimal
    currency: str
    transaction: Transaction | None

    def matches(self, filters: Filters) -> bool:
        if self.transaction is None:
            return not filters
        return self.transaction.matches(filters)


@dataclass(frozen=True)
class Cart:
    event: Event
    session: Session
    value: Decimal
    items: int
    currency: str

    def matches(self, filters: Filters) -> bool:
        return all(
            (self.session.value(d) if d in SESSION_DIMS else getattr(self.event, d)) == v
            for d, v in filters
        )


Window = tuple[datetime | None, datetime | None]


class Commerce:
    """Every commerce answer over ``events`` of sites with ``sites``' zones and currencies."""

    def __init__(
        self,
        events: Iterable[Event],
        sites: Mapping[str, SiteLike],
        now: datetime | None = None,
    ) -> None:
        self.sites = dict(sites)
        self.web = WebReports(events, {s: x.timezone for s, x in sites.items()}, now)
        session_of = self.web.session_of
        winners: dict[tuple[str, str], Event] = {}
        for e in self.web.events:
            if e.event_type != PURCHASE:
                continue
            key = (e.site_id, e.transaction_id or e.event_id or "")
            best = winners.get(key)
            if best is None or (e.ts, e.event_id or "") < (best.ts, best.event_id or ""):
                winners[key] = e
        self.transactions: dict[tuple[str, str], Transaction] = {}
        for (site, tid), e in winners.items():
            items = items_of(e.items) or ()
            revenue = e.revenue if e.revenue is not None else line_total(items)
            currency = upper(e.currency) or self.currency(site)
            session = session_of[(site, e.event_id)]
            self.transactions[(site, tid)] = Transaction(tid, e, session, revenue, currency, items)
        self.refunds: list[Refund] = []
        self.carts: list[Cart] = []
        for e in self.web.events:
            lines = items_of(e.items)
            if e.event_type == REFUND:
                t = self.transactions.get((e.site_id, e.transaction_id or "\0none"))
                if e.revenue is not None:
                    amount = e.revenue
                elif lines:
                    amount = line_total(lines)
                else:
                    amount = t.revenue if t else ZERO
                currency = upper(e.currency) or (t.currency if t else self.currency(e.site_id))
                self.refunds.append(Refund(e, amount, currency, t))
            elif e.event_type == VIEW_CART:
                value = e.revenue if e.revenue is not None else line_total(lines)
                currency = upper(e.currency) or self.currency(e.site_id)
                session = session_of[(e.site_id, e.event_id)]
                self.carts.append(Cart(e, session, value, quantity_of(lines), currency))

    def currency(self, site: str) -> str:
        settings = self.sites.get(site)
        return settings.currency if settings else DEFAULT_CURRENCY

    # -- selections ---------------------------------------------------------------------

    def select(self, site: str, window: Window, filters: Filters = ()) -> list[Transaction]:
        lo, hi = window
        return [
            t
            for t in self.transactions.values()
            if t.site == site and inside(t.ts, lo, hi) and t.matches(filters)
        ]

    def select_refunds(self, site: str, window: Window, filters: Filters = ()) -> list[Refund]:
        lo, hi = window
        return [
            r
            for r in self.refunds
            if r.event.site_id == site and inside(r.event.ts, lo, hi) and r.matches(filters)
        ]

    def select_carts(self, site: str, window: Window, filters: Filters = ()) -> list[Cart]:
        lo, hi = window
        return [
            c
            for c in self.carts
            if c.event.site_id == site and inside(c.event.ts, lo, hi) and c.matches(filters)
        ]

    # -- figures --------------------------------------------------------------------------

    def revenue(self, site: str, txs: Sequence[Transaction]) -> Decimal:
        """Exact revenue of ``txs`` in the site's currency."""
        currency = self.currency(site)
        return sum((t.revenue for t in txs if t.currency == currency), ZERO)

    @staticmethod
    def converted(txs: Sequence[Transaction]) -> int:
        return len({session_key(t.session) for t in txs})

    @staticmethod
    def rate(part: int, whole: int, places: int) -> float:
        return round(part / whole, places) if whole else 0.0

    def order_figures(self, site: str, txs: Sequence[Transaction]) -> dict[str, Any]:
        """transactions, avg_order_value, avg_items_per_order, unique_buyers,
        sessions_with_transactions."""
        currency = self.currency(site)
        local = [t for t in txs if t.currency == currency]
        revenue = self.revenue(site, txs)
        return {
            "transactions": len(txs),
            "avg_order_value": cents(revenue / len(local)) if local else cents(ZERO),
            "avg_items_per_order": self.rate(sum(t.items_count for t in txs), len(txs), 2),
            "unique_buyers": len({t.user for t in txs}),
            "sessions_with_transactions": self.converted(txs),
        }

    def cart_figures(self, site: str, carts: Sequence[Cart]) -> dict[str, Any]:
        local = [c for c in carts if c.currency == self.currency(site)]
        value = sum((c.value for c in local), ZERO)
        return {
            "carts": len(carts),
            "avg_cart_value": cents(value / len(local)) if local else cents(ZERO),
            "avg_cart_items": self.rate(sum(c.items for c in carts), len(carts), 2),
        }

    # -- /api/v1/commerce/* ---------------------------------------------------------------

    def echo(self, q: Question) -> dict[str, Any]:
        return {**self.web.echo(q), "currency": self.currency(q.site)}

    def summary(self, q: Question) -> dict[str, Any]:
        window = self.web.window(q)
        txs = self.select(q.site, window, q.filters)
        refunds = self.select_refunds(q.site, window, q.filters)
        sessions = len(self.web.select_sessions(q))
        currency = self.currency(q.site)
        revenue = self.revenue(q.site, txs)
        refunded = sum((r.amount for r in refunds if r.currency == currency), ZERO)
        figures = self.order_figures(q.site, txs)
        by_currency = []
        for code in sorted({t.currency for t in txs} | {r.currency for r in refunds}):
            mine = [t for t in txs if t.currency == code]
            made = sum((t.revenue for t in mine), ZERO)
            back = sum((r.amount for r in refunds if r.currency == code), ZERO)
            by_currency.append(
                {
                    "currency": code,
                    "transactions": len(mine),
                    "revenue": cents(made),
                    "refunds": cents(back),
                    "net_revenue": cents(made - back),
                    "avg_order_value": cents(made / len(mine)) if mine else cents(ZERO),
                }
            )
        return {
            **self.echo(q),
            **figures,
            "revenue": cents(revenue),
            "refunds": cents(refunded),
            "net_revenue": cents(revenue - refunded),
            "sessions": sessions,
            "conversion_rate": self.rate(figures["sessions_with_transactions"], sessions, 4),
            "by_currency": by_currency,
        }

    def carts_report(self, q: Question) -> dict[str, Any]:
        carts = self.select_carts(q.site, self.web.window(q), q.filters)
        return {**self.echo(q), **self.cart_figures(q.site, carts)}

    def products(self, q: Question, sort: str = "revenue", limit: int = 10) -> dict[str, Any]:
        currency = self.currency(q.site)
        quantity: dict[str, int] = defaultdict(int)
        revenue: dict[str, Decimal] = defaultdict(Decimal)
        holding: dict[str, set[str]] = defaultdict(set)
        for t in self.select(q.site, self.web.window(q), q.filters):
            for i in t.items:
                quantity[i.sku] += i.quantity
                if t.currency == currency:
                    revenue[i.sku] += (i.price or ZERO) * i.quantity
                holding[i.sku].add(t.id)
        # a product's name is its current one: that of its latest line item with a name,
        # whatever its date (by time, transaction id, then line)
        named: dict[str, tuple[datetime, str, int, str]] = {}
        for t in self.select(q.site, (None, None), ()):
            for line, i in enumerate(t.items):
                order = (t.ts, t.id, line)
                if i.name is not None and (i.sku not in named or order > named[i.sku][:3]):
                    named[i.sku] = (*order, i.name)
        keys = {
            "revenue": lambda sku: (-revenue[sku], sku),
            "quantity": lambda sku: (-quantity[sku], sku),
            "transactions": lambda sku: (-len(holding[sku]), sku),
        }
        ranked = sorted(quantity, key=keys[sort])[:limit]
        results = [
            {
                "sku": sku,
                "name": named[sku][3] if sku in named else None,
                "quantity": quantity[sku],
                "revenue": cents(revenue[sku]),
                "transactions": len(holding[sku]),
            }
            for sku in ranked
        ]
        return {**self.echo(q), "sort": sort, "results": results}

    def listing(self, q: Question) -> list[dict[str, Any]]:
        """Every transaction of the range, newest first: (ts, transaction_id) descending."""
        txs = self.select(q.site, self.web.window(q), q.filters)
        txs.sort(key=lambda t: (t.ts, t.id), reverse=True)
        return [
            {
                "transaction_id": t.id,
                "ts": rfc3339(t.ts),
                "revenue": cents(t.revenue),
                "currency": t.currency,
                "items": t.items_count,
                "user": t.user,
                "session_id": session_id_of(t.session),
                "channel": t.session.value("channel"),
                "source": t.session.value("source"),
                "device": t.session.value("device"),
                "landing_page": t.session.value("landing_page"),
            }
            for t in txs
        ]

    def refunded(self, t: Transaction) -> Decimal:
        return sum((r.amount for r in self.refunds if r.transaction is t), ZERO)

    def transaction(self, site: str, transaction_id: str) -> dict[str, Any] | None:
        t = self.transactions.get((site, transaction_id))
        if t is None:
            return None
        s = t.session
        return {
            "site_id": site,
            "transaction_id": t.id,
            "ts": rfc3339(t.ts),
            "revenue": cents(t.revenue),
            "currency": t.currency,
            "items_count": t.items_count,
            "refunds": cents(self.refunded(t)),
            "user": t.user,
            "session_id": session_id_of(s),
            **{d: s.value(d) for d in ("channel", "source", "device", "browser", "os")},
            "landing_page": s.value("landing_page"),
            **{d: s.value(d) for d in ("utm_source", "utm_medium", "utm_campaign")},
            # beyond the contract's list: the purchase event's own page (docs/reports.md)
            "path": t.event.path,
            "page_type": t.event.page_type,
            "items": [
                {
                    "sku": i.sku,
                    "name": i.name,
                    "category": i.category,
                    "price": None if i.price is None else cents(i.price),
                    "quantity": i.quantity,
                }
                for i in t.items
            ],
        }

    # -- web reports with the commerce metrics -------------------------------------------

    def commerce_figures(self, site: str, txs: Sequence[Transaction], sessions: int
                         ) -> dict[str, Any]:  # fmt: skip
        return {
            "revenue": cents(self.revenue(site, txs)),
            "transactions": len(txs),
            "conversion_rate": self.rate(self.converted(txs), sessions, 4),
        }

    def overview(self, q: Question) -> dict[str, Any]:
        txs = self.select(q.site, self.web.window(q), q.filters)
        sessions = len(self.web.select_sessions(q))
        return {**self.web.overview(q), **self.commerce_figures(q.site, txs, sessions)}

    def timeseries(self, q: Question, interval: str, metrics: Sequence[str]) -> dict[str, Any]:
        web_metrics = [m for m in metrics if m not in COMMERCE_METRICS]
        answer = self.web.timeseries(q, interval, web_metrics)
        start, end = self.web.bounds(q)
        zone = self.web.zone(q)
        txs: dict[datetime, list[Transaction]] = defaultdict(list)
        for t in self.select(q.site, self.web.window(q), q.filters):
            txs[truncate(t.ts, interval, zone)].append(t)
        sessions: dict[datetime, int] = defaultdict(int)
        for s in self.web.select_sessions(q):
            sessions[truncate(s.start, interval, zone)] += 1
        results = []
        for row, bucket in zip(answer["results"], bucket_starts(start, end, interval, zone),
                               strict=True):  # fmt: skip
            assert row["bucket"] == bucket_label(bucket, interval, zone, start)
            values = {**row, **self.commerce_figures(q.site, txs[bucket], sessions[bucket])}
            results.append({"bucket": row["bucket"], **{m: values[m] for m in metrics}})
        return {**answer, "results": results}

    def breakdown(
        self, q: Question, dimension: str, metrics: Sequence[str], limit: int
    ) -> dict[str, Any]:
        web_metrics = [m for m in metrics if m not in COMMERCE_METRICS]
        web_rows = self.web.breakdown(q, dimension, [*web_metrics, "events"], 10**9)["results"]
        rows: dict[str | None, dict[str, Any]] = {
            r["value"]: {m: r[m] for m in web_metrics} for r in web_rows
        }
        txs: dict[str | None, list[Transaction]] = defaultdict(list)
        for t in self.select(q.site, self.web.window(q), q.filters):
            txs[t.value(dimension)].append(t)
        sessions: dict[str | None, int] = defaultdict(int)
        if dimension in SESSION_DIMS:
            for s in self.web.select_sessions(q):
                sessions[s.value(dimension)] += 1
        empty = {m: 0 if m in (*EVENT_METRICS, "sessions") else 0.0 for m in web_metrics}
        for value in txs:
            rows.setdefault(value, dict(empty))
        out = []
        for value, row in rows.items():
            figures = self.commerce_figures(q.site, txs.get(value, []), sessions[value])
            merged = {**row, **figures}
            out.append({"value": value, **{m: merged[m] for m in metrics}})
        first = metrics[0]
        out.sort(key=lambda r: (-r[first], r["value"] is None, r["value"] or ""))
        return {**self.web.echo(q), "dimension": dimension, "results": out[:limit]}

    # -- the BobaShop routes ------------------------------------------------------------

    def boba(self, site: str, start: str | None = None, end: str | None = None,
             tz: str | None = None) -> Boba:  # fmt: skip
        zone = ZoneInfo(tz or self.web.site_zones.get(site, "UTC"))
        lo = local_midnight(date.fromisoformat(start), zone) if start else None
        hi = local_midnight(date.fromisoformat(end) + timedelta(days=1), zone) if end else None
        return Boba(self, site, (lo, hi))


@dataclass(frozen=True)
class Boba:
    """The BobaShop routes' answers for one site and window."""

    ref: Commerce
    site: str
    window: Window

    def events(self) -> list[Event]:
        lo, hi = self.window
        return [e for e in self.ref.web.events if e.site_id == self.site and inside(e.ts, lo, hi)]

    def sessions(self) -> list[Session]:
        lo, hi = self.window
        return [
            s
            for s in self.ref.web.sessions
            if s.first.site_id == self.site and inside(s.start, lo, hi)
        ]

    @staticmethod
    def ranked(counts: Mapping[str | None, int], name: str, figure: str) -> list[dict[str, Any]]:
        order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] is None, kv[0] or ""))
        return [{name: value, figure: n} for value, n in order]

    def answer(self, path: str) -> Any:
        """The answer of a route (its path without parameters)."""
        if path == "/metrics/pageviews/total":
            return {"total_pageviews": sum(e.is_page_view for e in self.events())}
        if path == "/metrics/users-sessions":
            return {
                "unique_users": len({e.user for e in self.events()}),
                "total_sessions": len(self.sessions()),
            }
        if path in ("/metrics/sessions/by-channel", "/metrics/sessions/by-device"):
            name = path.rsplit("-", 1)[1]
            counts: dict[str | None, int] = defaultdict(int)
            for s in self.sessions():
                counts[s.value(name)] += 1
            return self.ranked(counts, name, "total_sessions")
        if path == "/metrics/pageviews/by-pagetype":
            counts = defaultdict(int)
            for e in self.events():
                if e.is_page_view:
                    counts[e.page_type] += 1
            return self.ranked(counts, "pagetype", "total_pageviews")
        txs = self.ref.select(self.site, self.window)
        figures = self.ref.order_figures(self.site, txs)
        if path == "/metrics/transactions/summary":
            return {
                "unique_buyers": figures["unique_buyers"],
                "sessions_with_transactions": figures["sessions_with_transactions"],
                "total_transactions": figures["transactions"],
            }
        if path == "/metrics/transactions/aov":
            return {
                "avg_n_items_order": figures["avg_items_per_order"],
                "avg_order_value": figures["avg_order_value"],
            }
        if path == "/metrics/cart/avg":
            carts = self.ref.cart_figures(self.site, self.ref.select_carts(self.site, self.window))
            return {
                "avg_n_cart_items": carts["avg_cart_items"],
                "avg_cart_value": carts["avg_cart_value"],
            }
        raise ValueError(path)

    def items(self, transaction_id: str) -> dict[str, Any] | None:
        """GET /transactions/{transaction_id}/items (all time: a transaction is named)."""
        t = self.ref.transactions.get((self.site, transaction_id))
        if t is None:
            return None
        return {
            "transaction_id": t.id,
            "items": [
                {
                    "sku": i.sku,
                    "quantity": i.quantity,
                    "price": None if i.price is None else cents(i.price),
                    "currency": t.currency,
                }
                for i in t.items
            ],
        }


BOBA_ROUTES = (
    "/metrics/pageviews/total",
    "/metrics/users-sessions",
    "/metrics/sessions/by-channel",
    "/metrics/sessions/by-device",
    "/metrics/pageviews/by-pagetype",
    "/metrics/transactions/summary",
    "/metrics/transactions/aov",
    "/metrics/cart/avg",
)


def plain(value: Any) -> Any:
    """An answer with every number made comparable: money and rates as Decimals (a float
    by its shortest text: 12.3 == Decimal("12.30")), datetimes as RFC 3339 text."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, datetime):
        return rfc3339(value)
    return value


class SessionIds:
    """Derived session ids are the store's own: the reference names a derived session by a
    stand-in (``~`` + its first event id), and a got id must stand for one reference
    session, always the same, and no two reference sessions for one id."""

    def __init__(self) -> None:
        self.got_of: dict[str, str] = {}
        self.want_of: dict[str, str] = {}

    def translate(self, got: Any, want: Any) -> Any:
        """``got`` with each derived session id replaced by the reference's stand-in, when
        it names the same session as every time before."""
        if isinstance(got, dict) and isinstance(want, dict):
            out = {k: self.translate(v, want.get(k)) for k, v in got.items()}
            mine, theirs = got.get("session_id"), want.get("session_id")
            if isinstance(mine, str) and isinstance(theirs, str) and theirs.startswith("~"):
                known = self.got_of.setdefault(theirs, mine)
                back = self.want_of.setdefault(mine, theirs)
                if known == mine and back == theirs:
                    out["session_id"] = theirs
            return out
        if isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
            return [self.translate(g, w) for g, w in zip(got, want, strict=True)]
        return got


def comparable(got: Any, want: Any, ids: SessionIds | None = None) -> tuple[Any, Any]:
    """An answer and the reference's, made comparable (``plain``; derived session ids by
    the sessions they name, when ``ids`` is given)."""
    got, want = plain(got), plain(want)
    if ids is not None:
        got = ids.translate(got, want)
    return got, want
