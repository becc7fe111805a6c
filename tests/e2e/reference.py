"""An independent reference of GET /stats (metrics.md), computed from the events sent.

Knows nothing of Tapioca's code: it reads the events as a client wrote them (with
every accepted alias and time format) and applies the contract's definitions:

- an event counts once per ``(site_id, event_id)``; the first one sent wins; events
  without ``event_id`` are all distinct;
- ``total_views`` = ``page_view`` events (spellings ``page_view``, ``pageview``,
  ``$pageview``, ``page``, ``view_page``) in ``[date 00:00, date+1 00:00)`` in the zone;
- ``unique_users`` = distinct users (``user_id`` as text, else ``anonymous_id``) with
  any event in that range;
- ``top_paths`` = paths of those page views by views descending, then path ascending
  (code-point order), at most ``limit``; a page view without a path has no path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

PAGE_VIEW_SPELLINGS = frozenset({"page_view", "pageview", "$pageview", "page", "view_page"})


@dataclass(frozen=True, slots=True)
class RefEvent:
    site_id: str
    event_id: str | None
    event_type: str
    ts: datetime  # aware, UTC
    user: str
    path: str | None

    @property
    def is_page_view(self) -> bool:
        return self.event_type in PAGE_VIEW_SPELLINGS


def _first(raw: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if name in raw:
            return raw[name]
    return None


def parse_time(value: Any, received_at: datetime) -> datetime:
    if value is None:
        return received_at
    if isinstance(value, int):
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=value)
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_event(
    raw: Mapping[str, Any], received_at: datetime, site_id: str | None = None
) -> RefEvent:
    """One event as sent (wire form) → what the contract says is stored."""
    user_id = raw.get("user_id")
    user = str(user_id) if user_id is not None else raw.get("anonymous_id")
    assert user is not None, "reference events always name their user"
    path = raw.get("path")
    if path is None and raw.get("url") is not None:
        path = urlsplit(raw["url"]).path or "/"
    event_id = raw.get("event_id")
    return RefEvent(
        site_id=raw.get("site_id") or site_id or "",
        event_id=None if event_id is None else str(event_id),
        event_type=_first(raw, "event_type", "name", "event"),
        ts=parse_time(_first(raw, "timestamp", "occurred_at", "ts"), received_at),
        user=user,
        path=path,
    )


def stored(events: Iterable[RefEvent]) -> list[RefEvent]:
    """What the store keeps: the first event per (site_id, event_id)."""
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


def day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time(0), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
    return start, end


def stats(
    events: Iterable[RefEvent], site_id: str, day: date | None, tz: str, limit: int = 10
) -> dict[str, Any]:
    """The /stats answer for ``site_id`` on ``day`` (None = all time) in zone ``tz``.

    ``events`` must already be deduplicated (see ``stored``).
    """
    selected = [e for e in events if e.site_id == site_id]
    if day is not None:
        start, end = day_bounds(day, tz)
        selected = [e for e in selected if start <= e.ts < end]
    views = [e for e in selected if e.is_page_view]
    per_path = Counter(e.path for e in views if e.path is not None)
    ranked = sorted(per_path.items(), key=lambda item: (-item[1], item[0]))
    return {
        "site_id": site_id,
        "date": None if day is None else day.isoformat(),
        "total_views": len(views),
        "unique_users": len({e.user for e in selected}),
        "top_paths": [{"path": path, "views": count} for path, count in ranked[:limit]],
    }
