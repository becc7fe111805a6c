"""Report ranges: inclusive calendar dates in a time zone → a half-open UTC interval."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tapioca.errors import ErrorDetail, invalid_parameter, validation_error

DATE_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"  # ASCII digits (also in /openapi.json)
_DATE = re.compile(DATE_PATTERN)
_FIRST_DAY, _LAST_DAY = date(1, 1, 2), date(9999, 12, 30)  # ±1 day keeps any zone in range


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


def parse_zone(name: str, field: str = "tz") -> ZoneInfo:
    try:
        if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a tzdata folder
        raise invalid_parameter(field, f"'{name}' is not an IANA time zone") from exc


def parse_date(value: str, field: str) -> date:
    try:
        if not _DATE.fullmatch(value):
            raise ValueError(value)
        parsed = date.fromisoformat(value)
    except ValueError as exc:
        raise invalid_parameter(field, "expected a date as YYYY-MM-DD") from exc
    if not _FIRST_DAY <= parsed <= _LAST_DAY:
        raise invalid_parameter(field, f"must be between {_FIRST_DAY} and {_LAST_DAY}")
    return parsed


def build_range(
    *,
    date_: str | None,
    start_date: str | None,
    end_date: str | None,
    tz: ZoneInfo,
) -> DateRange:
    """Build the report range from the common parameters (see metrics.md, Time)."""
    if date_ is not None:
        if start_date is not None or end_date is not None:
            raise validation_error(
                [ErrorDetail("date", "give either date or start_date/end_date, not both")]
            )
        day = parse_date(date_, "date")
        return DateRange(day, day, tz)
    start = parse_date(start_date, "start_date") if start_date is not None else None
    end = parse_date(end_date, "end_date") if end_date is not None else None
    if start is not None and end is not None and start > end:
        raise invalid_parameter("start_date", "start_date is after end_date")
    return DateRange(start, end, tz)
