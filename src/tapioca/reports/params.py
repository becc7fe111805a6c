"""The query parameters every report takes, parsed (api.md, Reports; metrics.md, Time):
dates, time zones, metrics and dimensions. Every problem is a 422 naming the parameter."""

from __future__ import annotations

import re
from datetime import date
from zoneinfo import ZoneInfo

from tapioca.errors import ErrorDetail, invalid_parameter, validation_error
from tapioca.kit.timerange import DATE_PATTERN, FIRST_DAY, LAST_DAY, DateRange, zone_named
from tapioca.model.dimensions import Dimension
from tapioca.reports.metrics import ALL_METRICS

_DATE = re.compile(DATE_PATTERN)


def parse_zone(name: str, field: str = "tz") -> ZoneInfo:
    try:
        return zone_named(name)
    except ValueError as exc:
        raise invalid_parameter(field, f"'{name}' is not an IANA time zone") from exc


def parse_date(value: str, field: str) -> date:
    try:
        if not _DATE.fullmatch(value):
            raise ValueError(value)
        parsed = date.fromisoformat(value)
    except ValueError as exc:
        raise invalid_parameter(field, "expected a date as YYYY-MM-DD") from exc
    if not FIRST_DAY <= parsed <= LAST_DAY:
        raise invalid_parameter(field, f"must be between {FIRST_DAY} and {LAST_DAY}")
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


_METRIC = "|".join(ALL_METRICS)
# What parse_metrics takes, as /openapi.json states it: names, commas, spaces around.
METRICS_PATTERN = rf"^(?: *(?:{_METRIC}) *(?:, *(?:{_METRIC}) *)*)?$"


def parse_metrics(text: str | None, default: tuple[str, ...]) -> list[str]:
    if not text:
        return list(default)
    names = [m.strip(" ") for m in text.split(",")]
    unknown = [m for m in names if m not in ALL_METRICS]
    if unknown:
        raise invalid_parameter("metrics", f"unknown metric(s) {unknown}; use {list(ALL_METRICS)}")
    return list(dict.fromkeys(names))


def parse_dimension(text: str) -> Dimension:
    try:
        return Dimension(text)
    except ValueError as exc:
        raise validation_error(
            [ErrorDetail("dimension", f"use one of {[d.value for d in Dimension]}")],
            "Invalid parameter 'dimension'.",
        ) from exc
