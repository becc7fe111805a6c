"""When a job is due: cron expressions read in a site's time zone (croniter)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

# how many due times one look may find (a schedule every minute, a week missed)
MOST_DUE = 20_000


def due_times(
    expression: str,
    zone: ZoneInfo,
    now: datetime,
    after: datetime | None,
    catch_up: timedelta,
) -> list[datetime]:
    """The scheduled times (UTC) after ``after`` and at most ``now``, none more than
    ``catch_up`` before ``now``."""
    start = now - catch_up
    if after is not None and after > start:
        start = after
    times: list[datetime] = []
    it = croniter(expression, start.astimezone(zone))
    while len(times) < MOST_DUE:
        moment = it.get_next(datetime).astimezone(UTC)
        if moment > now:
            break
        times.append(moment)
    return times
