"""Time ranges and intervals of reports (metrics.md, Time): inclusive calendar dates in a
time zone → a half-open UTC interval, and the buckets an interval cuts it into.

``Interval`` is the one interval type: its SQL truncation, the bucket of a moment, the
next bucket, the label, and the bound on how many buckets one answer may hold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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

    def label(self, moment: datetime) -> str:
        if self is Interval.HOUR:
            return moment.strftime("%Y-%m-%dT%H:00")
        return moment.date().isoformat()

    def buckets(self, span: DateRange) -> list[datetime]:
        """Every bucket start (local, naive) from the range's start to its end, at most
        MAX_BUCKETS (else TooManyBuckets)."""
        assert span.start_date is not None and span.end_date is not None
        first = datetime.combine(span.start_date, time(0))
        last = datetime.combine(span.end_date, time(0)) + timedelta(days=1)
        if self is not Interval.HOUR:
            first = self.floor(span.start_date)
        out, moment = [], first
        while moment < last:
            out.append(moment)
            if len(out) > MAX_BUCKETS:
                raise TooManyBuckets(f"more than {MAX_BUCKETS} buckets")
            moment = self.advance(moment)
        return out


def zone_named(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (ValueError if it is none)."""
    try:
        if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a tzdata folder
        raise ValueError(f"'{name}' is not an IANA time zone") from exc
