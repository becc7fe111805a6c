"""When jobs are due (cron in a site's zone, catch-up window) and how long a failed run
waits before it is tried again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from tapioca.config import Settings
from tapioca.scheduler.cron import due_times
from tapioca.scheduler.runs import backoff

NEW_YORK = ZoneInfo("America/New_York")


def test_a_daily_job_is_due_at_its_time_in_the_sites_zone() -> None:
    now = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)  # 02:00 in New York
    last = datetime(2026, 12, 6, 5, 5, tzinfo=UTC)  # yesterday's 00:05 New York
    assert due_times("5 0 * * *", NEW_YORK, now, last, timedelta(days=7)) == [
        datetime(2026, 12, 7, 5, 5, tzinfo=UTC)
    ]
    # nothing new is due before the next 00:05
    assert due_times("5 0 * * *", NEW_YORK, now, now - timedelta(hours=1), timedelta(days=7)) == []


def test_missed_times_are_due_within_the_catch_up_window_only() -> None:
    now = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
    long_ago = datetime(2026, 11, 1, tzinfo=UTC)
    due = due_times("5 0 * * *", NEW_YORK, now, long_ago, timedelta(days=3))
    assert due == [datetime(2026, 12, d, 5, 5, tzinfo=UTC) for d in (5, 6, 7)]
    assert due_times("5 0 * * *", NEW_YORK, now, None, timedelta(days=0)) == []


def test_a_daily_time_follows_daylight_saving() -> None:
    # New York leaves summer time on 2026-11-01: 00:05 local is 04:05 UTC, then 05:05
    now = datetime(2026, 11, 2, 12, tzinfo=UTC)
    due = due_times(
        "5 0 * * *", NEW_YORK, now, datetime(2026, 10, 30, 12, tzinfo=UTC), timedelta(7)
    )
    assert due == [
        datetime(2026, 10, 31, 4, 5, tzinfo=UTC),
        datetime(2026, 11, 1, 4, 5, tzinfo=UTC),
        datetime(2026, 11, 2, 5, 5, tzinfo=UTC),
    ]


def test_cron_settings_are_checked() -> None:
    assert Settings(orders_cron="*/15 * * * *").orders_cron == "*/15 * * * *"
    with pytest.raises(ValidationError) as caught:
        Settings(orders_cron="61 0 * * *")
    assert caught.value.errors()[0]["loc"] == ("orders_cron",)
    with pytest.raises(ValidationError) as caught:
        Settings(forecast_cron="every day")
    assert caught.value.errors()[0]["loc"] == ("forecast_cron",)


def test_retries_back_off_from_a_minute_to_an_hour() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4)] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert backoff(20) == timedelta(hours=1)
