"""Deterministic /stats test traffic: events, and the many ways of sending them.

``make_events`` builds ~2,000 events over three days (2025-03-08..10, across the US
daylight-saving change of 2025-03-09) for two sites, with every spelling of page views,
every alias of the event fields, ``user_id`` as text or integer, ``anonymous_id``,
paths that tie and sort differently under byte and locale order, times in RFC 3339 with
several offsets, microseconds and epoch milliseconds, and events right at midnights.
``Sender`` sends them as single events, JSON arrays, ``{"events": [...]}``, NDJSON and
gzip bodies to ``/event``, ``/events`` and ``/api/events``, checking every 202.
"""

from __future__ import annotations

import gzip
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import httpx
import orjson

from support.reference import Event, from_wire, parse_time, stored

SITES = ("shop-a", "blog-b")
DAYS = (date(2025, 3, 8), date(2025, 3, 9), date(2025, 3, 10))
QUERY_DAYS = tuple(DAYS[0] + timedelta(days=n) for n in range(-1, 4))  # 03-07 .. 03-11
ZONES = ("UTC", "America/New_York", "Asia/Kolkata")
START = datetime(2025, 3, 8, tzinfo=UTC)
SPAN_MS = 3 * 86_400_000

PAGE_VIEW_NAMES = ("page_view", "pageview", "$pageview", "page", "view_page")
OTHER_NAMES = ("click", "signup", "add_to_cart", "Order Completed", "scroll")
# "/a-b" < "/a/b" < "/a_b" in code-point order, but not in most locales' collation.
PATHS = (
    "/",
    "/pricing",
    "/Pricing",
    "/docs",
    "/docs/intro",
    "/a-b",
    "/a_b",
    "/a/b",
    "/café",
    "/blog/été",
    "/cart",
    "/checkout",
    "/product/1",
    "/product/10",
    "/product/2",
)
PATH_WEIGHTS = (30, 18, 6, 14, 9, 5, 5, 5, 4, 4, 8, 6, 7, 5, 5)
OFFSETS = (
    timedelta(hours=5, minutes=30),
    timedelta(hours=-8),
    timedelta(hours=9),
    timedelta(hours=-3, minutes=-30),
    timedelta(0),
    timedelta(hours=14),
    timedelta(hours=-12),
)
# Midnights of 2025-03-09/10 in UTC, New York (EST, then EDT) and Kolkata, and the
# offset each is written in.
BOUNDARIES = (
    (datetime(2025, 3, 9, tzinfo=UTC), timedelta(0)),
    (datetime(2025, 3, 10, tzinfo=UTC), timedelta(0)),
    (datetime(2025, 3, 9, 5, tzinfo=UTC), timedelta(hours=-5)),
    (datetime(2025, 3, 10, 4, tzinfo=UTC), timedelta(hours=-4)),
    (datetime(2025, 3, 8, 18, 30, tzinfo=UTC), timedelta(hours=5, minutes=30)),
)
ONE_US = timedelta(microseconds=1)
ONE_MS = timedelta(milliseconds=1)


# -- times ----------------------------------------------------------------------------


def rfc3339(moment: datetime, offset: timedelta = timedelta(0), spec: str = "auto") -> str:
    local = moment.astimezone(timezone(offset))
    if spec == "auto":
        spec = "seconds" if local.microsecond == 0 else "milliseconds"
        if local.microsecond % 1000:
            spec = "microseconds"
    text = local.isoformat(timespec=spec)
    return text.removesuffix("+00:00") + "Z" if offset == timedelta(0) else text


def epoch_ms(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    assert delta % ONE_MS == timedelta(0)
    return delta // ONE_MS


def any_time_format(moment: datetime, rng: random.Random) -> str | int:
    """The same instant in one of the accepted time formats."""
    choice = rng.random()
    if choice < 0.3 and moment.microsecond % 1000 == 0:
        return epoch_ms(moment)
    if choice < 0.55:
        return rfc3339(moment)
    return rfc3339(moment, rng.choice(OFFSETS))


# -- events ---------------------------------------------------------------------------


@dataclass
class _Ids:
    counters: dict[str, int] = field(default_factory=dict)

    def next(self, site: str, rng: random.Random) -> str | int | None:
        n = self.counters.get(site, 0) + 1
        self.counters[site] = n
        roll = rng.random()
        if roll < 0.06:
            return None  # the server assigns one
        if roll < 0.10:
            return 700_000 + n  # integer ids are allowed too
        return f"e{n:05d}"  # the same ids on both sites: distinct events


def _identity(rng: random.Random) -> dict[str, Any]:
    roll = rng.random()
    # 1000..1014 as integers and 1000..1004 as text too: the same users (stored as text)
    choices = [f"u{n}" for n in range(45)] + list(range(1000, 1015)) + ["1000", "1002", "1004"]
    user_id: str | int = rng.choice(choices)
    anonymous_id = f"anon-{rng.randrange(90):03d}"
    if roll < 0.45:
        return {"user_id": user_id}
    if roll < 0.9:
        return {"anonymous_id": anonymous_id}
    return {"user_id": user_id, "anonymous_id": anonymous_id}


def _location(rng: random.Random) -> dict[str, Any]:
    path = rng.choices(PATHS, PATH_WEIGHTS)[0]
    roll = rng.random()
    if roll < 0.7:
        return {"path": path}
    if roll < 0.85:
        return {"url": f"https://example.test{path}?utm_source=x&q=1#top"}
    if roll < 0.95:  # path wins over the url's path
        return {"url": "https://example.test/ignored", "path": path}
    return {}  # no path at all


def _name(event: dict[str, Any], name: str, rng: random.Random) -> None:
    event[rng.choice(("event_type", "event_type", "name", "event"))] = name


def _time(event: dict[str, Any], moment: datetime, rng: random.Random) -> None:
    event[rng.choice(("timestamp", "timestamp", "occurred_at", "ts"))] = any_time_format(
        moment, rng
    )


def _event(site: str, ids: _Ids, moment: datetime | None, rng: random.Random) -> dict[str, Any]:
    event: dict[str, Any] = {"site_id": site}
    event_id = ids.next(site, rng)
    if event_id is not None:
        event["event_id"] = event_id
    is_view = rng.random() < 0.68
    _name(event, rng.choice(PAGE_VIEW_NAMES if is_view else OTHER_NAMES), rng)
    if moment is not None:
        _time(event, moment, rng)
    event.update(_identity(rng))
    event.update(_location(rng))
    if rng.random() < 0.2:
        event["session_id"] = f"s-{rng.randrange(400)}"
    if rng.random() < 0.1:
        event["referrer"] = "https://www.google.com/"
        event["utm_source"] = "google"
    if rng.random() < 0.1:
        event["properties"] = {"plan": rng.choice(["free", "pro"]), "n": rng.randrange(9)}
    if rng.random() < 0.05:
        event["title"] = "Ünïcödé title — ✓"
    return event


def _boundary_events() -> list[dict[str, Any]]:
    """Page views at, 1 µs before and 1 ms before each midnight, written in its own zone."""
    out = []
    for number, (boundary, offset) in enumerate(BOUNDARIES):
        for site in SITES:
            for k, (moment, stamp) in enumerate(
                [
                    (boundary, rfc3339(boundary, offset)),
                    (boundary - ONE_US, rfc3339(boundary - ONE_US, offset)),
                    (boundary - ONE_MS, epoch_ms(boundary - ONE_MS)),
                ]
            ):
                assert parse_time(stamp, START) == moment
                out.append(
                    {
                        "site_id": site,
                        "event_id": f"edge-{number}-{k}",
                        "event_type": "page_view",
                        "timestamp": stamp,
                        "user_id": f"edge-user-{number}-{k}",
                        "path": f"/edge/{number}",
                    }
                )
    return out


def _tie_events() -> list[dict[str, Any]]:
    """Equal view counts for paths that sort differently by bytes and by locale."""
    moment = datetime(2025, 3, 9, 15, tzinfo=UTC)
    out = []
    for site in SITES:
        for path in ("/tie/a", "/tie-a", "/tie_a", "/Tie-a", "/tie.a"):
            for n in range(3):
                out.append(
                    {
                        "site_id": site,
                        "event_id": f"tie-{path}-{n}",
                        "event_type": "pageview",
                        "timestamp": rfc3339(moment + n * timedelta(minutes=1)),
                        "anonymous_id": f"tie-visitor-{n}",
                        "path": path,
                    }
                )
    return out


def make_events(seed: int = 20250309, count: int = 1950) -> list[dict[str, Any]]:
    """Every original event once (wire form); a few have no timestamp."""
    rng = random.Random(seed)
    ids = _Ids()
    events = _boundary_events() + _tie_events()
    for n in range(count):
        site = SITES[0] if rng.random() < 0.6 else SITES[1]
        moment = None if n % 400 == 7 else START + rng.randrange(SPAN_MS) * ONE_MS
        if moment is not None and rng.random() < 0.05:
            moment += rng.randrange(1, 1000) * ONE_US
        events.append(_event(site, ids, moment, rng))
    rng.shuffle(events)
    return events


def variant(event: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The same event (same site_id + event_id, same facts) written differently."""
    out = dict(event)
    for keys in (("event_type", "name", "event"),):
        present = [k for k in keys if k in out]
        if present:
            value = out.pop(present[0])
            out[rng.choice(keys)] = value
    stamp_keys = [k for k in ("timestamp", "occurred_at", "ts") if k in out]
    if stamp_keys:
        moment = parse_time(out.pop(stamp_keys[0]), START)
        _time(out, moment, rng)
    return out


def make_resends(
    events: Sequence[dict[str, Any]], seed: int = 7, share: float = 0.15
) -> list[dict[str, Any]]:
    """Copies of a subset of the events that carry an event_id; some sent twice."""
    rng = random.Random(seed)
    with_id = [e for e in events if "event_id" in e]
    chosen = rng.sample(with_id, int(len(with_id) * share))
    resends = [variant(e, rng) for e in chosen]
    resends += [variant(e, rng) for e in chosen[:40]]
    rng.shuffle(resends)
    return resends


# -- sending --------------------------------------------------------------------------

HOW = (
    "event",
    "array",
    "wrapped",
    "ndjson",
    "gzip-array",
    "gzip-ndjson",
    "api-array",
    "api-ndjson",
    "api-gzip-wrapped",
)


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def encode(events: Sequence[dict[str, Any]], how: str) -> tuple[str, bytes, dict[str, str]]:
    """(route, body, headers) of one request carrying ``events`` the way ``how`` says."""
    route = "/api/events" if how.startswith("api-") else "/events"
    shape = how.removeprefix("api-").removeprefix("gzip-")
    headers = {"Content-Type": "application/json"}
    if shape == "ndjson":
        body = b"\n".join(_dumps(e) for e in events) + b"\n"
        headers["Content-Type"] = "application/x-ndjson"
    elif shape == "wrapped":
        body = _dumps({"events": list(events)})
    else:
        body = _dumps(list(events))
    if "gzip-" in how:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    return route, body, headers


@dataclass
class Sender:
    """Sends events and keeps the log of what was acknowledged, in order."""

    client: httpx.Client
    sent: list[tuple[dict[str, Any], datetime]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def one(self, event: dict[str, Any]) -> None:
        at = datetime.now(UTC)
        response = self.client.post("/event", content=_dumps(event))
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["status"] == "accepted"
        if "event_id" in event:
            assert body["event_id"] == str(event["event_id"])
        with self.lock:
            self.sent.append((event, at))

    def batch(self, events: Sequence[dict[str, Any]], how: str) -> None:
        if how == "event":
            for event in events:
                self.one(event)
            return
        route, body, headers = encode(events, how)
        at = datetime.now(UTC)
        response = self.client.post(route, content=body, headers=headers)
        assert response.status_code == 202, f"{how} {route}: {response.text[:500]}"
        answer = response.json()
        assert answer["status"] == "accepted"
        assert answer["accepted"] == len(events)
        assert len(answer["event_ids"]) == len(events)
        for event, event_id in zip(events, answer["event_ids"], strict=True):
            if "event_id" in event:
                assert event_id == str(event["event_id"])
        with self.lock:
            self.sent.extend((event, at) for event in events)

    def mixed(self, events: Sequence[dict[str, Any]], rng: random.Random) -> None:
        """All of ``events`` in requests of random size and random form."""
        position = 0
        while position < len(events):
            how = rng.choice(HOW)
            size = rng.randint(1, 3) if how == "event" else rng.randint(1, 160)
            self.batch(events[position : position + size], how)
            position += size

    def reference(self) -> list[Event]:
        """What is stored (support/reference.py). Copies of one event carry the same
        facts, so which copy came first is moot."""
        return stored(from_wire(event, at) for event, at in self.sent)


def _in_parallel(sender: Sender, parts: Sequence[Sequence[dict[str, Any]]], seed: int) -> None:
    """Send each part from its own thread (concurrent requests share commits/batches)."""
    errors: list[BaseException] = []

    def run(part: Sequence[dict[str, Any]], rng: random.Random) -> None:
        try:
            sender.mixed(part, rng)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(part, random.Random(seed + n)))
        for n, part in enumerate(parts)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def send_dataset(client: httpx.Client, threads: int = 4) -> Sender:
    """The originals, then resends (other batches, other forms, some twice), concurrently."""
    events = make_events()
    sender = Sender(client)
    _in_parallel(sender, [events[n::threads] for n in range(threads)], seed=99)
    resends = make_resends(events)
    _in_parallel(sender, [resends[n:-10:threads] for n in range(threads)], seed=199)
    # a batch repeating an event inside itself, and a resend as a single event
    sender.batch([resends[-10], *resends[-10:-5], resends[-10]], "array")
    sender.one(resends[-5])
    sender.batch(resends[-4:], "gzip-ndjson")
    return sender
