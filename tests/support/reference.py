"""The one independent reference of metrics.md: every expected number of the suites.

Plain Python over plain events. It imports nothing from Tapioca: events come in as the
client wrote them (``from_wire``: every accepted alias and time format) or as rows read
back or written directly (``from_row``: a mapping, or a named tuple such as a stored row),
and the contract's definitions are applied here, once:

- an event counts once per ``(site_id, event_id)``, the first one written wins; events
  without ``event_id`` are all distinct (``stored``); bot events are in no number
  (``counted``);
- the user is ``user_id`` as text, else ``anonymous_id`` (wire), or the stored user;
- an event's time is its ``timestamp`` (RFC 3339, or an epoch number: seconds below 10^11,
  milliseconds below 10^14, else microseconds), else the request's time plus the event's
  position in the request in microseconds (``from_request``);
- derived dimensions (``page_type_of``, ``source_of``): a page type only for an event
  with a path; a source by its known name in any spelling, an unknown one in the first
  spelling its site stored (``first_spellings``);
- a report day is ``[D 00:00, D+1 00:00)`` in the report zone, a range
  ``[start 00:00, (end + 1 day) 00:00)``, a missing bound open (``Question``);
- ``/stats`` (``stats``): ``total_views`` = page views, ``unique_users`` = distinct
  users with any event, ``top_paths`` = paths of those page views by views descending,
  ties by path in code-point (UTF-8 byte) order, at most ``limit``; a page view without a
  path has no path;
- sessions (``sessionize``): a client ``session_id`` defines a session (per site); the
  other events are cut per (site, user) where the gap to the previous event is longer
  than 30 minutes, never at midnight; a session's values (landing page, channel, source,
  device, browser, os, utm_source/medium/campaign) are those of its first event (by
  time, then event id); a bounce is exactly one event, a page view;
- web reports (``WebReports``, docs/reports.md): event metrics count the events in the
  range that match the event dimensions and whose session matches the session
  dimensions; session metrics the sessions that *start* in the range, match the session
  dimensions and hold one event (at any time) matching every event dimension; breakdown
  rows by the first metric descending, ties by value ascending (a missing value last);
  timeseries buckets from the range start (week: the Monday before, month: the 1st) to
  its end, empty ones zero; ``bounce_rate`` rounded to 4 decimals, the averages to 2,
  0 without sessions; realtime = distinct users with an event in the last 5 minutes.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

PAGE_VIEW = "page_view"
# docs/api.md: the event names stored under another name
EVENT_NAMES = {
    **dict.fromkeys(("pageview", "$pageview", "page", "view_page"), PAGE_VIEW),
    "Order Completed": "purchase",
    "Cart Viewed": "view_cart",
    "Product Added": "add_to_cart",
    "Product Removed": "remove_from_cart",
    "Checkout Started": "begin_checkout",
}
SESSION_GAP = timedelta(minutes=30)
REALTIME_WINDOW = timedelta(minutes=5)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

SESSION_DIMS = (
    "landing_page",
    "channel",
    "source",
    "device",
    "browser",
    "os",
    "utm_source",
    "utm_medium",
    "utm_campaign",
)
EVENT_DIMS = ("path", "page_type", "event_type", "referrer", "utm_term", "utm_content")
EVENT_METRICS = ("pageviews", "visitors", "events")
SESSION_METRICS = ("sessions", "bounce_rate", "avg_session_seconds", "views_per_session")
ALL_METRICS = EVENT_METRICS + SESSION_METRICS
Filters = tuple[tuple[str, str], ...]


# == events ===========================================================================


@dataclass(frozen=True, slots=True)
class Item:
    """One line item of an event's ``items`` (api.md, Ingest)."""

    sku: str
    name: str | None = None
    category: str | None = None
    price: Decimal | None = None
    quantity: int = 1


@dataclass(frozen=True, slots=True)
class Event:
    """One event as stored: the names of the contract, times aware."""

    site_id: str
    event_id: str | None
    event_type: str
    ts: datetime
    user: str
    session_id: str | None = None
    is_bot: bool = False
    path: str | None = None
    page_type: str | None = None
    referrer: str | None = None
    channel: str | None = None
    source: str | None = None
    device: str | None = None
    browser: str | None = None
    os: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    utm_content: str | None = None
    revenue: Decimal | None = None
    currency: str | None = None
    transaction_id: str | None = None
    items: str | None = None  # as stored: JSON text of [{sku, name, category, price, quantity}]

    @property
    def is_page_view(self) -> bool:
        return self.event_type == PAGE_VIEW


class NamedRow(Protocol):
    """A row as a named tuple (a stored event row, for one)."""

    def _asdict(self) -> dict[str, Any]: ...


def _first(raw: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if name in raw:
            return raw[name]
    return None


# docs/api.md: an epoch number is seconds below 10^11, milliseconds below 10^14, else
# microseconds
EPOCH_UNITS = ((10**11, Decimal(1_000_000)), (10**14, Decimal(1000)))


def epoch_time(value: float) -> datetime:
    """An epoch number read by its magnitude, to the microsecond (half to even)."""
    scale = next((s for below, s in EPOCH_UNITS if value < below), Decimal(1))
    micros = (Decimal(str(value)) * scale).to_integral_value(ROUND_HALF_EVEN)
    return EPOCH + timedelta(microseconds=int(micros))


def parse_time(value: Any, received_at: datetime) -> datetime:
    """A wire ``timestamp`` (RFC 3339, no offset = UTC, or an epoch number), in UTC."""
    if value is None:
        return received_at
    if isinstance(value, int | float):
        return epoch_time(value)
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


MONEY_PLACES = Decimal("0.0001")


def money(value: Any) -> Decimal | None:
    """A sent or stored amount as the store keeps it: 4 places, half to even."""
    if value is None:
        return None
    return Decimal(str(value)).quantize(MONEY_PLACES, ROUND_HALF_EVEN)


def items_of(value: Any) -> tuple[Item, ...] | None:
    """Line items: a list of objects (sent), or their stored JSON text."""
    if value is None:
        return None
    raw = json.loads(value) if isinstance(value, str) else value
    return tuple(
        Item(
            sku=str(item["sku"]),
            name=item.get("name"),
            category=item.get("category"),
            price=money(item.get("price")),
            quantity=1 if item.get("quantity") is None else int(item["quantity"]),
        )
        for item in raw
    )


def items_text(items: Sequence[Item] | None) -> str | None:
    """Line items as the store keeps them: JSON text, skus and prices as text."""
    if items is None:
        return None
    return json.dumps(
        [
            {
                "sku": item.sku,
                "name": item.name,
                "category": item.category,
                "price": None if item.price is None else str(money(item.price)),
                "quantity": item.quantity,
            }
            for item in items
        ]
    )


def from_wire(raw: Mapping[str, Any], received_at: datetime, site_id: str | None = None) -> Event:
    """One event as a client sends it (docs/api.md) → what the contract says is stored.

    ``site_id`` is the site of an import that names it once for every event. Only what
    the client sent is known here: the values the server derives (``source``, ``browser``,
    ``os``, a cookieless visitor, the bot flag, ``channel``/``device``/``page_type`` when
    not sent) are left out, so the reference's users must be named and its UAs human.
    """
    user = _text(raw.get("user_id"))
    if user is None:
        user = raw.get("anonymous_id")
    assert user is not None, "reference events always name their user"
    path = raw.get("path")
    if path is None and raw.get("url") is not None:
        path = urlsplit(raw["url"]).path or "/"
    name = _first(raw, "event_type", "name", "event")
    return Event(
        site_id=raw.get("site_id") or site_id or "",
        event_id=_text(raw.get("event_id")),
        event_type=EVENT_NAMES.get(name, name),
        ts=parse_time(_first(raw, "timestamp", "occurred_at", "ts"), received_at),
        user=user,
        session_id=_text(raw.get("session_id")),
        path=path,
        page_type=raw.get("page_type"),
        referrer=raw.get("referrer"),
        channel=raw.get("channel"),
        device=raw.get("device"),
        utm_source=raw.get("utm_source"),
        utm_medium=raw.get("utm_medium"),
        utm_campaign=raw.get("utm_campaign"),
        utm_term=raw.get("utm_term"),
        utm_content=raw.get("utm_content"),
        revenue=money(_first(raw, "revenue", "value")),
        currency=raw.get("currency"),
        transaction_id=_text(raw.get("transaction_id")),
        items=items_text(items_of(raw.get("items"))),
    )


def from_request(
    raws: Sequence[Mapping[str, Any]], received_at: datetime, site_id: str | None = None
) -> list[Event]:
    """The events of one request (a batch, NDJSON lines, a file): those without a time
    keep their order in it, each the request's time plus its position in microseconds."""
    return [
        from_wire(raw, received_at + timedelta(microseconds=position), site_id)
        for position, raw in enumerate(raws)
    ]


def _moment(value: datetime | int) -> datetime:
    """A stored time: an aware datetime or microseconds since 1970 (UTC)."""
    if isinstance(value, datetime):
        return value
    return EPOCH + timedelta(microseconds=value)


ROW_FIELDS = (
    "session_id", "path", "page_type", "referrer", "channel", "source", "device",
    "browser", "os", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
    "revenue", "currency", "transaction_id", "items",
)  # fmt: skip


def from_row(row: Mapping[str, Any] | NamedRow) -> Event:
    """A stored event row (``visitor_id`` is its user; ``ts`` a datetime or microseconds)."""
    values = row if isinstance(row, Mapping) else row._asdict()
    return Event(
        site_id=values["site_id"],
        event_id=values["event_id"],
        event_type=values["event_type"],
        ts=_moment(values["ts"]),
        user=values["visitor_id"],
        is_bot=bool(values.get("is_bot")),
        **{name: values.get(name) for name in ROW_FIELDS},
    )


def from_rows(rows: Iterable[Mapping[str, Any] | NamedRow]) -> list[Event]:
    return [from_row(row) for row in rows]


def stored(events: Iterable[Event]) -> list[Event]:
    """What the store keeps: the first event per (site_id, event_id), in order."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for event in events:
        if event.event_id is not None:
            key = (event.site_id, event.event_id)
            if key in seen:
                continue
            seen.add(key)
        kept.append(event)
    return kept


def first_purchases(events: Iterable[Event]) -> list[Event]:
    """metrics.md, E-commerce: per (site, transaction id, else event id) the purchase
    event that comes first (by time, then event id in byte order)."""
    first: dict[tuple[str, str], Event] = {}
    for e in counted(events):
        if e.event_type != "purchase":
            continue
        key = (e.site_id, e.transaction_id or e.event_id or "")
        kept = first.get(key)
        if kept is None or (e.ts, (e.event_id or "").encode()) < (
            kept.ts,
            (kept.event_id or "").encode(),
        ):
            first[key] = e
    return list(first.values())


def event_amount(e: Event) -> Decimal:
    """An event's money: its revenue, else the sum of price * quantity of its items."""
    if e.revenue is not None:
        return Decimal(e.revenue)
    total = Decimal(0)
    for item in json.loads(e.items or "[]"):
        if item.get("price") is not None:
            total += Decimal(str(item["price"])) * int(item.get("quantity") or 1)
    return total


def counted(events: Iterable[Event]) -> list[Event]:
    """The events every number counts: stored once, bots left out."""
    return [e for e in stored(events) if not e.is_bot]


# == derived dimensions ===============================================================

# metrics.md, Page type: the defaults (exact paths, then path prefixes)
PAGE_TYPE_PATHS = {"/": "home", "/cart": "cart", "/login": "account", "/register": "account"}
PAGE_TYPE_PREFIXES = (
    ("/product/", "product"), ("/products/", "product"), ("/p/", "product"),
    ("/category/", "category"), ("/collections/", "category"), ("/c/", "category"),
    ("/checkout", "checkout"), ("/search", "search"), ("/account", "account"),
)  # fmt: skip


def page_type_of(path: str | None, sent: str | None = None) -> str | None:
    """A sent page type, else the default of ``path`` (a site without rules); an event
    without a path has none (metrics.md, Page type)."""
    if sent:
        return sent
    if not path:
        return None
    path = path.lower()
    if path in PAGE_TYPE_PATHS:
        return PAGE_TYPE_PATHS[path]
    return next((kind for prefix, kind in PAGE_TYPE_PREFIXES if path.startswith(prefix)), "other")


# Known sources the suites send, by every spelling (lower case) and host that means
# them (metrics.md, Source and channel; the product's full list is its sources.json).
KNOWN_SOURCES = {
    "Google": ("google", "google.com", "google.co.uk", "google.de"),
    "Bing": ("bing", "bing.com"),
    "DuckDuckGo": ("duckduckgo", "duckduckgo.com"),
    "Facebook": ("facebook", "fb", "facebook.com", "l.facebook.com", "m.facebook.com"),
    "Instagram": ("instagram", "ig", "instagram.com"),
    "X": ("x", "twitter", "x.com", "twitter.com", "t.co"),
    "LinkedIn": ("linkedin", "linkedin.com"),
    "YouTube": ("youtube", "youtube.com", "youtu.be"),
    "Email": ("email", "e-mail", "e_mail", "newsletter"),
}
_SOURCE_NAMES = {key: name for name, keys in KNOWN_SOURCES.items() for key in keys}


def source_name(value: str) -> str:
    """A source value as enrichment gives it: the known source it names, in any case, else
    the value as sent (``first_spellings`` then names it as its site first spelled it)."""
    spelled = value.strip()
    return _SOURCE_NAMES.get(spelled.lower().removeprefix("www."), spelled)


def first_spellings(events: Sequence[Event]) -> list[Event]:
    """``events`` (in the order they are stored) with each unknown source in the first
    spelling its site stored (metrics.md: an unknown source keeps its first spelling)."""
    first: dict[tuple[str, str], str] = {}
    spelled = []
    for e in events:
        if e.source is not None and e.source not in KNOWN_SOURCES:
            name = first.setdefault((e.site_id, e.source.lower()), e.source)
            e = replace(e, source=name)
        spelled.append(e)
    return spelled


def source_of(utm_source: str | None, referrer: str | None = None) -> str | None:
    """An event's source: its utm_source, else its referrer's host without ``www.``
    (a page without a URL: no own host), each by its known name (``source_name``)."""
    if utm_source:
        return source_name(utm_source)
    host = urlsplit(referrer).hostname if referrer else None
    return source_name(host.removeprefix("www.")) if host else None


# == ranges ===========================================================================


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """``day`` 00:00 in ``zone``, in UTC."""
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def day_window(day: date, tz: str) -> tuple[datetime, datetime]:
    """``[day 00:00, day+1 00:00)`` in zone ``tz``, in UTC."""
    zone = ZoneInfo(tz)
    return local_midnight(day, zone), local_midnight(day + timedelta(days=1), zone)


def inside(moment: datetime, lo: datetime | None, hi: datetime | None) -> bool:
    return (lo is None or moment >= lo) and (hi is None or moment < hi)


# == /stats ===========================================================================


def stats(
    events: Iterable[Event], site_id: str, day: date | None, tz: str, limit: int = 10,
    last: date | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The GET /stats answer for ``site_id`` from ``day`` to ``last`` (inclusive; None:
    ``day`` alone) in zone ``tz``; ``day`` None: all time."""
    selected = [e for e in counted(events) if e.site_id == site_id]
    end = last if last is not None else day
    if day is not None and end is not None:
        lo, hi = day_window(day, tz)[0], day_window(end, tz)[1]
        selected = [e for e in selected if inside(e.ts, lo, hi)]
    views = [e for e in selected if e.is_page_view]
    per_path = Counter(e.path for e in views if e.path is not None)
    ranked = sorted(per_path.items(), key=lambda item: (-item[1], item[0]))
    return {
        "site_id": site_id,
        "date": None if day is None or end != day else day.isoformat(),
        "start_date": None if day is None else day.isoformat(),
        "end_date": None if end is None else end.isoformat(),
        "total_views": len(views),
        "unique_users": len({e.user for e in selected}),
        "top_paths": [{"path": path, "views": views} for path, views in ranked[:limit]],
    }


# == sessions =========================================================================


@dataclass(frozen=True)
class Session:
    events: tuple[Event, ...]  # in (ts, event_id) order

    @property
    def first(self) -> Event:
        return self.events[0]

    @property
    def start(self) -> datetime:
        return self.events[0].ts

    @property
    def end(self) -> datetime:
        return self.events[-1].ts

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    @property
    def pageviews(self) -> int:
        return sum(1 for e in self.events if e.is_page_view)

    @property
    def is_bounce(self) -> bool:
        return len(self.events) == 1 and self.pageviews == 1

    def value(self, dimension: str) -> str | None:
        """The session's value of a session dimension (its first event's)."""
        name = "path" if dimension == "landing_page" else dimension
        value: str | None = getattr(self.first, name)
        return value

    def holds(self, filters: Filters) -> bool:
        """One event of the session matches every (event dimension) filter."""
        return any(all(getattr(e, d) == v for d, v in filters) for e in self.events)


def sessionize(events: Iterable[Event]) -> list[Session]:
    """The sessions of ``events`` (stored once, bots left out)."""
    groups: dict[tuple[str, str, str], list[Event]] = defaultdict(list)
    for e in counted(events):
        if e.session_id is not None:
            groups[(e.site_id, "client", e.session_id)].append(e)
        else:
            groups[(e.site_id, "gap", e.user)].append(e)
    sessions = []
    for (_, kind, _), group in groups.items():
        group.sort(key=lambda e: (e.ts, e.event_id or ""))
        runs: list[list[Event]] = []
        for e in group:
            if runs and (kind == "client" or e.ts - runs[-1][-1].ts <= SESSION_GAP):
                runs[-1].append(e)
            else:
                runs.append([e])
        sessions += [Session(tuple(run)) for run in runs]
    return sessions


# == figures ==========================================================================


def event_figures(events: Sequence[Event]) -> dict[str, int]:
    """pageviews, visitors and events of ``events`` (already selected and counted)."""
    return {
        "pageviews": sum(1 for e in events if e.is_page_view),
        "visitors": len({e.user for e in events}),
        "events": len(events),
    }


def session_figures(sessions: Sequence[Session]) -> dict[str, Any]:
    """sessions, bounce_rate, avg_session_seconds, views_per_session (rounded as served)."""
    n = len(sessions)
    if not n:
        return {
            "sessions": 0,
            "bounce_rate": 0.0,
            "avg_session_seconds": 0.0,
            "views_per_session": 0.0,
        }
    return {
        "sessions": n,
        "bounce_rate": round(sum(s.is_bounce for s in sessions) / n, 4),
        "avg_session_seconds": round(sum(s.seconds for s in sessions) / n, 2),
        "views_per_session": round(sum(s.pageviews for s in sessions) / n, 2),
    }


# == buckets ==========================================================================


def truncate(moment: datetime, interval: str, zone: ZoneInfo) -> datetime:
    """The ``interval`` bucket holding ``moment``: for an hour, the UTC instant at which
    its local hour began (a repeated hour is two buckets); else the naive local start of
    its day, week or month."""
    local = moment.astimezone(zone)
    if interval == "hour":
        into = timedelta(minutes=local.minute, seconds=local.second, microseconds=local.microsecond)
        return moment.astimezone(UTC) - into
    day = datetime.combine(local.date(), time(0))
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def bucket_starts(start: date, end: date, interval: str, zone: ZoneInfo) -> list[datetime]:
    """Every bucket of ``start``..``end`` (inclusive days in ``zone``): the real hours
    (23 or 25 on a day the clocks change), or the days, weeks and months holding them."""
    if interval == "hour":
        moment, stop = local_midnight(start, zone), local_midnight(end + timedelta(days=1), zone)
        hours = []
        while moment < stop:
            hours.append(moment.astimezone(UTC))
            moment += timedelta(hours=1)
        return hours
    moment = truncate(datetime.combine(start, time(0), UTC), interval, ZoneInfo("UTC"))
    last = datetime.combine(end + timedelta(days=1), time(0))
    out = []
    while moment < last:
        out.append(moment)
        if interval == "day":
            moment += timedelta(days=1)
        elif interval == "week":
            moment += timedelta(days=7)
        else:
            moment = (moment.replace(day=28) + timedelta(days=4)).replace(day=1)
    return out


def bucket_label(bucket: datetime, interval: str, zone: ZoneInfo, start: date) -> str:
    """An hour: local start and UTC offset (``2025-10-26T02:00+01:00``); else the first
    day of the bucket inside the range."""
    if interval == "hour":
        local = bucket.astimezone(zone)
        offset = local.utcoffset() or timedelta(0)
        sign, minutes = (
            ("-" if offset < timedelta(0) else "+"),
            abs(int(offset.total_seconds())) // 60,
        )
        return f"{local:%Y-%m-%dT%H:%M}{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    return max(bucket.date(), start).isoformat()


# == web reports ======================================================================


@dataclass(frozen=True)
class Question:
    """The parameters every web report takes (docs/reports.md)."""

    site: str = "shop"
    day: str | None = None
    start: str | None = None
    end: str | None = None
    tz: str | None = "UTC"
    filters: Filters = ()

    @property
    def bounds(self) -> tuple[date | None, date | None]:
        if self.day is not None:
            return date.fromisoformat(self.day), date.fromisoformat(self.day)
        return (
            date.fromisoformat(self.start) if self.start else None,
            date.fromisoformat(self.end) if self.end else None,
        )

    @property
    def filter_text(self) -> str | None:
        return ";".join(f"{d}=={v}" for d, v in self.filters) or None

    def params(self) -> dict[str, str]:
        """The query string of this question (HTTP)."""
        values = {
            "site_id": self.site,
            "date": self.day,
            "start_date": self.start,
            "end_date": self.end,
            "tz": self.tz,
            "filters": self.filter_text,
        }
        return {k: v for k, v in values.items() if v is not None}

    def __str__(self) -> str:
        parts = [self.site, self.day or f"{self.start}..{self.end}", str(self.tz)]
        return "|".join([*parts, *(f"{d}={v}" for d, v in self.filters)])


def _split(filters: Filters) -> tuple[Filters, Filters]:
    """(event dimension filters, session dimension filters)."""
    on_event = tuple((d, v) for d, v in filters if d not in SESSION_DIMS)
    on_session = tuple((d, v) for d, v in filters if d in SESSION_DIMS)
    return on_event, on_session


class WebReports:
    """The answers of overview, timeseries, breakdown and realtime over ``events``."""

    def __init__(
        self,
        events: Iterable[Event],
        site_zones: Mapping[str, str] | None = None,
        now: datetime | None = None,
    ) -> None:
        self.fixed_now = now
        self.events = counted(events)
        self.sessions = sessionize(self.events)
        self.session_of = {(e.site_id, e.event_id): s for s in self.sessions for e in s.events}
        self.site_zones = dict(site_zones or {})

    @property
    def now(self) -> datetime:
        """The moment given, else the clock when asked: a server asked just before a
        midnight and a reference built hours earlier must agree on what "today" is."""
        return self.fixed_now or datetime.now(UTC)

    def zone(self, q: Question) -> ZoneInfo:
        return ZoneInfo(q.tz or self.site_zones.get(q.site, "UTC"))

    def bounds(self, q: Question) -> tuple[date, date]:
        """The range asked for; a missing end is today (in the report's zone), a missing
        start 29 days before the end."""
        start, end = q.bounds
        end = end or max(self.now.astimezone(self.zone(q)).date(), start or date.min)
        return start or end - timedelta(days=29), end

    def window(self, q: Question) -> tuple[datetime | None, datetime | None]:
        start, end = self.bounds(q)
        zone = self.zone(q)
        lo = local_midnight(start, zone) if start else None
        hi = local_midnight(end + timedelta(days=1), zone) if end else None
        return lo, hi

    def echo(self, q: Question) -> dict[str, Any]:
        start, end = self.bounds(q)
        return {
            "site_id": q.site,
            "start_date": start.isoformat() if start else None,
            "end_date": end.isoformat() if end else None,
            "tz": self.zone(q).key,
        }

    def select_events(self, q: Question) -> list[Event]:
        lo, hi = self.window(q)
        on_event, on_session = _split(q.filters)
        out = []
        for e in self.events:
            if e.site_id != q.site or not inside(e.ts, lo, hi):
                continue
            if any(getattr(e, d) != v for d, v in on_event):
                continue
            if on_session:
                s = self.session_of.get((e.site_id, e.event_id))
                if s is None or any(s.value(d) != v for d, v in on_session):
                    continue
            out.append(e)
        return out

    def select_sessions(self, q: Question) -> list[Session]:
        lo, hi = self.window(q)
        on_event, on_session = _split(q.filters)
        return [
            s
            for s in self.sessions
            if s.first.site_id == q.site
            and inside(s.start, lo, hi)
            and all(s.value(d) == v for d, v in on_session)
            and (not on_event or s.holds(on_event))
        ]

    def select_purchases(self, q: Question) -> list[Event]:
        """The purchase events that make the transactions of the range (the first per
        transaction id, else per event), matching the filters by their own values and
        their session's."""
        lo, hi = self.window(q)
        on_event, on_session = _split(q.filters)
        out = []
        for e in first_purchases(self.events):
            if e.site_id != q.site or not inside(e.ts, lo, hi):
                continue
            if any(
                (e.event_type if d == "event_type" else getattr(e, d)) != v for d, v in on_event
            ):
                continue
            s = self.session_of[(e.site_id, e.event_id)]
            if any(s.value(d) != v for d, v in on_session):
                continue
            out.append(e)
        return out

    def sales(self, purchases: Sequence[Event], sessions: Sequence[Session]) -> dict[str, Any]:
        """revenue (in the site's currency, USD), transactions and conversion rate."""
        revenue = sum(
            (event_amount(e) for e in purchases if (e.currency or "USD").upper() == "USD"),
            Decimal(0),
        )
        converted = {id(self.session_of[(e.site_id, e.event_id)]) for e in purchases}
        rate = round(len(converted) / len(sessions), 4) if sessions else 0.0
        return {
            "revenue": revenue.quantize(Decimal("0.01"), ROUND_HALF_EVEN),
            "transactions": len(purchases),
            "conversion_rate": rate,
        }

    def overview(self, q: Question) -> dict[str, Any]:
        sessions = self.select_sessions(q)
        return {
            **self.echo(q),
            **event_figures(self.select_events(q)),
            **session_figures(sessions),
            **self.sales(self.select_purchases(q), sessions),
        }

    def timeseries(self, q: Question, interval: str, metrics: Sequence[str]) -> dict[str, Any]:
        start, end = self.bounds(q)
        zone = self.zone(q)
        events: dict[datetime, list[Event]] = defaultdict(list)
        for e in self.select_events(q):
            events[truncate(e.ts, interval, zone)].append(e)
        sessions: dict[datetime, list[Session]] = defaultdict(list)
        for s in self.select_sessions(q):
            sessions[truncate(s.start, interval, zone)].append(s)
        results = []
        for bucket in bucket_starts(start, end, interval, zone):
            values = {**event_figures(events[bucket]), **session_figures(sessions[bucket])}
            label = bucket_label(bucket, interval, zone, start)
            results.append({"bucket": label, **{m: values[m] for m in metrics}})
        return {**self.echo(q), "interval": interval, "results": results}

    def breakdown(
        self, q: Question, dimension: str, metrics: Sequence[str], limit: int
    ) -> dict[str, Any]:
        rows: list[dict[str, Any]] = []
        if dimension in SESSION_DIMS:
            groups: dict[str | None, list[Session]] = defaultdict(list)
            for s in self.select_sessions(q):
                groups[s.value(dimension)].append(s)
            for value, sessions in groups.items():
                values = {
                    "pageviews": sum(s.pageviews for s in sessions),
                    "visitors": len({s.first.user for s in sessions}),
                    "events": sum(len(s.events) for s in sessions),
                    **session_figures(sessions),
                }
                rows.append({"value": value, **{m: values[m] for m in metrics}})
        elif dimension in EVENT_DIMS:
            by_value: dict[str | None, list[Event]] = defaultdict(list)
            for e in self.select_events(q):
                by_value[getattr(e, dimension)].append(e)
            for value, events in by_value.items():
                counts = event_figures(events)
                rows.append({"value": value, **{m: counts[m] for m in metrics}})
        rows.sort(key=lambda r: (-r[metrics[0]], r["value"] is None, r["value"] or ""))
        return {**self.echo(q), "dimension": dimension, "results": rows[:limit]}

    def realtime(self, site: str, now: datetime) -> dict[str, Any]:
        since = now - REALTIME_WINDOW
        seen = {e.user for e in self.events if e.site_id == site and e.ts >= since}
        return {"site_id": site, "visitors": len(seen)}
