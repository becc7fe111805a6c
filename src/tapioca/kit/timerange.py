"""Time ranges and intervals of reports (metrics.md, Time): inclusive calendar dates in a
time zone → a half-open UTC interval, and the buckets an interval cuts it into.

``Interval`` is the one interval type: its SQL truncation, the bucket of a moment, the
next bucket, the label, and the bound on how many buckets one answer may hold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DATE_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"  # ASCII digits (also in /openapi.json)
FIRST_DAY, LAST_DAY = date(1, 1, 2), date(9999, 12, 30)  # ±1 day keeps any zone in range
MAX_BUCKETS = 10_000


@dataclass(frozen=True, slots=True)
class DateRange:
    """``start_date``..``end_date`` inclusive in ``tz``; either bound may be open."""

    start_date: date | None
    end_date: date | None
    tz: ZoneInfo

    @property
    def start_utc(self) -> datetime | None:
        if self.start_date is None:
            return None
        return datetime.combine(self.start_date, time(0), self.tz).astimezone(UTC)

    @property
    def end_utc(self) -> datetime | None:
        """Exclusive end: midnight after ``end_date`` in the zone."""
        if self.end_date is None:
            return None
        after = self.end_date + timedelta(days=1)
        return datetime.combine(after, time(0), self.tz).astimezone(UTC)

    @property
    def on_whole_hours(self) -> bool:
        """Both ends fall on whole UTC hours (every zone with a whole-hour offset)."""
        ends = (self.start_utc, self.end_utc)
        return all(t is None or (t.minute, t.second, t.microsecond) == (0, 0, 0) for t in ends)


class TooManyBuckets(ValueError):
    pass


class Interval(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"  # weeks start on Monday
    MONTH = "month"

    def truncate(self, local: str) -> str:
        """SQL: the start of the bucket that holds ``local`` (a timestamp of local time)."""
        return f"date_trunc('{self.value}', {local})"

    def key_sql(self, moment: str, zone: str) -> str:
        """SQL: the key of the bucket that holds ``moment`` (a timestamptz) in ``zone``
        (a bind or literal): for hours, the Unix second at which its local hour began,
        so a repeated hour is two buckets; else the local start of the day, week or
        month."""
        local = f"({moment} AT TIME ZONE {zone})"
        if self is Interval.HOUR:
            into = f"EXTRACT(EPOCH FROM ({local} - date_trunc('hour', {local})))"
            return f"CAST(EXTRACT(EPOCH FROM {moment}) - {into} AS BIGINT)"
        return self.truncate(local)

    def key_of(self, value: Any) -> datetime:
        """A bucket key as ``key_sql`` gives it, in Python: an aware UTC datetime for an
        hour, a naive local datetime else."""
        if self is Interval.HOUR:
            return datetime.fromtimestamp(int(value), UTC)
        if isinstance(value, datetime):
            return value.replace(tzinfo=None)
        return datetime.combine(value, time(0))

    def floor(self, day: date) -> datetime:
        """The start (local, naive) of the bucket that holds ``day`` (not for hours)."""
        if self is Interval.WEEK:
            day -= timedelta(days=day.weekday())
        elif self is Interval.MONTH:
            day = day.replace(day=1)
        return datetime.combine(day, time(0))

    def advance(self, moment: datetime) -> datetime:
        if self is Interval.HOUR:
            return moment + timedelta(hours=1)
        if self is Interval.DAY:
            return moment + timedelta(days=1)
        if self is Interval.WEEK:
            return moment + timedelta(days=7)
        year, month = (
            (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
        )
        return moment.replace(year=year, month=month)

    def label(self, key: datetime, span: DateRange) -> str:
        """An hour: its local start with the UTC offset then (``2025-10-26T02:00+02:00``);
        a day, week or month: its first day inside the range."""
        if self is Interval.HOUR:
            return key.astimezone(span.tz).isoformat(timespec="minutes")
        first = key.date()
        if span.start_date is not None and first < span.start_date:
            first = span.start_date
        return first.isoformat()

    def buckets(self, span: DateRange) -> list[datetime]:
        """Every bucket key (key_of) from the range's start to its end, at most
        MAX_BUCKETS (else TooManyBuckets): the real hours of the range (a day with a
        clock change has 23 or 25), or the days, weeks and months that hold its days."""
        assert span.start_date is not None and span.end_date is not None
        if self is Interval.HOUR:
            assert span.start_utc is not None and span.end_utc is not None
            first, last = span.start_utc, span.end_utc
        else:
            first = self.floor(span.start_date)
            last = datetime.combine(span.end_date, time(0)) + timedelta(days=1)
        out, moment = [], first
        while moment < last:
            out.append(moment)
            if len(out) > MAX_BUCKETS:
                raise TooManyBuckets(f"more than {MAX_BUCKETS} buckets")
            moment = self.advance(moment)
        return out


@cache
def iana_zones() -> frozenset[str]:
    """The zones a report or a site may be in: the IANA names that Python, PostgreSQL and
    DuckDB all know; not "localtime", which names this machine's zone (and DuckDB does
    not know)."""
    return frozenset(available_timezones() - {"localtime"})


def zone_named(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (ValueError if it is none)."""
    try:
        if name not in iana_zones():
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a tzdata folder
        raise ValueError(f"'{name}' is not an IANA time zone") from exc
