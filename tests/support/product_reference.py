"""Product metrics (metrics.md, Product metrics) in plain Python over the events, without
the store: the independent computation the product reports are compared with. And the
app traffic they are asked about: users active over many weeks, whose first event may
arrive last, with events at equal times and around local midnight."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from support.reference import Event, counted, sessionize

APP = "app"
APP_ZONE = "America/New_York"  # a clock change on 2025-11-02
OTHER = "notes"  # a second site: its users never count for the first
START = datetime(2025, 9, 1, tzinfo=UTC)
DAYS = 80
TYPES = ("page_view", "page_view", "click", "signup", "add_to_cart", "purchase", "share")
CHANNELS = ("Direct", "Organic Search", "Email", "Paid Social")
DEVICES = ("desktop", "mobile", "tablet")
CAMPAIGNS = (None, None, "autumn", "launch")


@dataclass(frozen=True)
class ProductTraffic:
    events: list[Event]  # every event sent, duplicates and bots among them
    waves: list[list[Event]]  # the order they are written in


def _attrs(rng: random.Random) -> tuple[str, str, str | None]:
    return rng.choice(CHANNELS), rng.choice(DEVICES), rng.choice(CAMPAIGNS)


def _user_events(rng: random.Random, site: str, user: str, n: int) -> list[Event]:
    first = START + timedelta(days=rng.randrange(DAYS), seconds=rng.randrange(86400))
    day = first
    out: list[Event] = []
    # a user active over many weeks, or a few days, or once
    visits = rng.choice((1, 1, 2, 3, 5, 8, 14, 25))
    attrs = _attrs(rng)
    for v in range(visits):
        if day >= START + timedelta(days=DAYS + 14):
            break
        count = rng.randint(1, 4)
        at = day
        for i in range(count):
            if i and rng.random() < 0.2:
                pass  # the same moment as the event before
            else:
                at = at + timedelta(seconds=rng.randrange(1, 900))
            out.append(Event(
                site_id=site, event_id=f"{user}-{v}-{i}", event_type=rng.choice(TYPES), ts=at,
                user=user, path="/" if rng.random() < 0.5 else None, channel=attrs[0],
                device=attrs[1], utm_campaign=attrs[2],
            ))  # fmt: skip
            attrs = _attrs(rng)  # later events come from anywhere
        day = day + timedelta(
            days=rng.choice((1, 1, 2, 3, 6, 7, 9, 20)), hours=rng.randrange(-5, 6)
        )
    # two visits of one user begun at one moment (client sessions, other channels): a
    # funnel that starts there starts at the first by id, and counts under its channel
    if n % 17 == 0:
        twin = first - timedelta(hours=2)
        for k, (tag, channel) in enumerate((("b", "Paid Social"), ("a", "Email"))):
            out.append(Event(site_id=site, event_id=f"{user}-twin-{tag}", event_type="page_view",
                             ts=twin, user=user, session_id=f"{user}-s{k}", channel=channel,
                             device="mobile"))  # fmt: skip
        for k, event_type in enumerate(("add_to_cart", "purchase"), start=1):
            out.append(
                Event(
                    site_id=site,
                    event_id=f"{user}-twin-{event_type}",
                    event_type=event_type,
                    ts=twin + timedelta(minutes=20 * k),
                    user=user,
                    session_id=f"{user}-s0",
                    channel="Paid Social",
                    device="mobile",
                )
            )
    # around local midnight: an event at 23:59:30 New York time, which is the next UTC day
    if n % 7 == 0:
        local = first.astimezone(ZoneInfo(APP_ZONE)).replace(hour=23, minute=59, second=30)
        if local.astimezone(UTC) > first:
            out.append(Event(site_id=site, event_id=f"{user}-late-night", event_type="click",
                             ts=local.astimezone(UTC), user=user))  # fmt: skip
    return out


def product_traffic(seed: int = 19, users: int = 420) -> ProductTraffic:
    rng = random.Random(seed)
    first_wave: list[Event] = []
    last_wave: list[Event] = []
    for n in range(users):
        site = APP if n % 10 else OTHER
        user = f"u{n:04d}" if n % 13 else f"u{n % 26:04d}"  # some ids on both sites
        events = _user_events(rng, site, user, n)
        if n % 3 == 0:  # the user's first event arrives last
            first = min(events, key=lambda e: (e.ts, e.event_id or ""))
            first_wave += [e for e in events if e is not first]
            last_wave.append(first)
        else:
            first_wave += events
    rng.shuffle(first_wave)
    bots = [Event(site_id=APP, event_id=f"bot-{i}", event_type="page_view", user=f"bot{i}",
                  ts=START + timedelta(hours=7 * i), is_bot=True) for i in range(40)]  # fmt: skip
    dupes = [replace(e, event_type="duplicate") for e in rng.sample(first_wave, 30)]
    waves = [first_wave[: len(first_wave) // 2], first_wave[len(first_wave) // 2 :] + bots,
             last_wave + dupes]  # fmt: skip
    return ProductTraffic([e for w in waves for e in w], waves)


# == the metrics ======================================================================


def _mine(events: Sequence[Event], site: str) -> list[Event]:
    return [e for e in counted(events) if e.site_id == site]


def _day(e: Event, zone: ZoneInfo) -> date:
    return e.ts.astimezone(zone).date()


def active_days(events: Sequence[Event], site: str, tz: str) -> dict[date, set[str]]:
    """Per day in ``tz``: the users with an event that day."""
    zone = ZoneInfo(tz)
    out: dict[date, set[str]] = defaultdict(set)
    for e in _mine(events, site):
        out[_day(e, zone)].add(e.user)
    return out


def _bucket_start(day: date, interval: str) -> date:
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def _next_bucket(start: date, interval: str) -> date:
    if interval == "week":
        return start + timedelta(days=7)
    if interval == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start + timedelta(days=1)


def active_users(
    events: Sequence[Event], site: str, tz: str, interval: str, start: date, end: date
) -> list[dict[str, Any]]:
    """Per bucket of [start, end]: dau, wau, mau on the bucket's last day in the range."""
    days = active_days(events, site, tz)

    def users(last: date, width: int) -> int:
        found: set[str] = set()
        for i in range(width):
            found |= days.get(last - timedelta(days=i), set())
        return len(found)

    out = []
    bucket = _bucket_start(start, interval)
    while bucket <= end:
        following = _next_bucket(bucket, interval)
        last = min(following - timedelta(days=1), end)
        out.append({"bucket": max(bucket, start).isoformat(), "dau": users(last, 1),
                    "wau": users(last, 7), "mau": users(last, 30)})  # fmt: skip
        bucket = following
    return out


def first_events(events: Sequence[Event], site: str) -> dict[str, Event]:
    """Each user's first event ever on the site: by time, then event id."""
    first: dict[str, Event] = {}
    for e in _mine(events, site):
        known = first.get(e.user)
        if known is None or (e.ts, e.event_id or "") < (known.ts, known.event_id or ""):
            first[e.user] = e
    return first


def retention(
    events: Sequence[Event], site: str, tz: str, unit: str, periods: int, start: date,
    end: date, today: date, filters: dict[str, str] | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Per cohort (users by the day or week of their first event ever, in ``tz``) whose
    interval meets [start, end]: size, retained per period begun by ``today``, rates."""
    zone = ZoneInfo(tz)
    step = 7 if unit == "week" else 1
    days = active_days(events, site, tz)
    cohort_of: dict[str, date] = {}
    for user, e in first_events(events, site).items():
        if all(getattr(e, name) == value for name, value in (filters or {}).items()):
            cohort_of[user] = _bucket_start(_day(e, zone), unit)
    out = []
    cohort = _bucket_start(start, unit)
    while cohort <= end:
        members = {u for u, c in cohort_of.items() if c == cohort}
        retained = []
        for k in range(periods + 1):
            begins = cohort + timedelta(days=k * step)
            if begins > today:
                break
            seen: set[str] = set()
            for i in range(step):
                seen |= days.get(begins + timedelta(days=i), set())
            retained.append(len(members & seen))
        size = len(members)
        out.append({"cohort_start": cohort.isoformat(), "size": size, "retained": retained,
                    "rates": [round(n / size, 4) if size else 0.0 for n in retained]})  # fmt: skip
        cohort += timedelta(days=step)
    return out


def top_events(
    events: Sequence[Event], site: str, tz: str, start: date, end: date, limit: int
) -> list[dict[str, Any]]:
    """Event types of [start, end] by events, descending (ties by name), with users."""
    zone = ZoneInfo(tz)
    counts: Counter[str] = Counter()
    users: dict[str, set[str]] = defaultdict(set)
    for e in _mine(events, site):
        if start <= _day(e, zone) <= end:
            counts[e.event_type] += 1
            users[e.event_type].add(e.user)
    ranked = sorted(counts, key=lambda t: (-counts[t], t))[:limit]
    return [{"event_type": t, "events": counts[t], "users": len(users[t])} for t in ranked]


# == funnels, lifecycle, stickiness ====================================================


def _is_step(e: Event, step: str) -> bool:
    if step.startswith("/"):
        return e.event_type == "page_view" and e.path == step
    return e.event_type == step


def _depth(events: list[Event], steps: Sequence[str], begun: Event, end: datetime) -> int:
    """Every way through the steps from ``begun``, each step a distinct event at or after
    the one before and at most ``end``: the furthest step any of them reaches."""

    def go(k: int, after: datetime, used: frozenset[str]) -> int:
        if k == len(steps):
            return k
        best = k
        for e in events:
            key = e.event_id or ""
            if key not in used and after <= e.ts <= end and _is_step(e, steps[k]):
                best = max(best, go(k + 1, e.ts, used | {key}))
                if best == len(steps):
                    break
        return best

    return go(1, begun.ts, frozenset({begun.event_id or ""}))


def funnel(
    events: Sequence[Event], site: str, steps: Sequence[str], window: timedelta, start: datetime,
    end: datetime, breakdown: str | None = None,
) -> dict[Any, list[int]]:  # fmt: skip
    """Per breakdown value (None without one: the session of the best try's start, the
    earliest of the best): the users at each step."""
    mine = _mine(events, site)
    session_of: dict[str, Any] = {}
    if breakdown is not None:
        for s in sessionize(mine):
            for e in s.events:
                session_of[e.event_id or ""] = s.value(breakdown)
    by_user: dict[str, list[Event]] = defaultdict(list)
    for e in mine:
        by_user[e.user].append(e)
    out: dict[Any, list[int]] = defaultdict(lambda: [0] * len(steps))
    for user_events in by_user.values():
        user_events.sort(key=lambda e: (e.ts, e.event_id or ""))
        best, best_start = 0, None
        for e in user_events:
            if start <= e.ts < end and _is_step(e, steps[0]):
                inside = [x for x in user_events if e.ts <= x.ts <= e.ts + window]
                reached = _depth(inside, steps, e, e.ts + window)
                if reached > best:
                    best, best_start = reached, e
        if best_start is not None:
            value = session_of.get(best_start.event_id or "") if breakdown else None
            for k in range(best):
                out[value][k] += 1
    return out


def lifecycle(
    events: Sequence[Event], site: str, tz: str, interval: str, start: date, end: date
) -> list[dict[str, Any]]:
    """Per whole bucket holding the range's days: new, returning, resurrecting, dormant."""
    zone = ZoneInfo(tz)
    active: dict[date, set[str]] = defaultdict(set)
    for day, users in active_days(events, site, tz).items():
        active[_bucket_start(day, interval)] |= users
    first_bucket = {u: _bucket_start(_day(e, zone), interval)
                    for u, e in first_events(events, site).items()}  # fmt: skip
    out = []
    bucket = _bucket_start(start, interval)
    previous = _bucket_start(bucket - timedelta(days=1), interval)
    while bucket <= end:
        now, before = active[bucket], active[previous]
        new = {u for u in now if first_bucket[u] == bucket}
        out.append({
            "bucket": bucket.isoformat(), "new": len(new),
            "returning": len((now & before) - new), "resurrecting": len(now - before - new),
            "dormant": len(before - now),
        })  # fmt: skip
        previous, bucket = bucket, _next_bucket(bucket, interval)
    return out


def stickiness(
    events: Sequence[Event], site: str, tz: str, interval: str, start: date, end: date
) -> list[dict[str, Any]]:
    """Users by their number of active days (or weeks) among the range's days."""
    per_user: dict[str, set[date]] = defaultdict(set)
    for day, users in active_days(events, site, tz).items():
        if start <= day <= end:
            for u in users:
                per_user[u].add(_bucket_start(day, interval))
    counts = Counter(len(b) for b in per_user.values())
    most = (end - start).days + 1
    if interval == "week":
        most = len({_bucket_start(start + timedelta(days=i), "week") for i in range(most)})
    return [{"active": k, "users": counts[k]} for k in range(1, most + 1)]
