"""Report ranges: inclusive local dates → half-open UTC interval (metrics.md, Time)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tapioca.errors import TapiocaError
from tapioca.kit.timerange import DateRange, Interval
from tapioca.reports.params import build_range, parse_date, parse_zone

UTC_ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def day_range(day: str, tz: ZoneInfo) -> DateRange:
    return build_range(date_=day, start_date=None, end_date=None, tz=tz)


def span(start: str | None, end: str | None, tz: ZoneInfo = UTC_ZONE) -> DateRange:
    return build_range(date_=None, start_date=start, end_date=end, tz=tz)


def rejected(
    date_: str | None = None, start_date: str | None = None, end_date: str | None = None
) -> TapiocaError:
    with pytest.raises(TapiocaError) as info:
        build_range(date_=date_, start_date=start_date, end_date=end_date, tz=UTC_ZONE)
    return info.value


def fields(err: TapiocaError) -> list[str]:
    return [detail.field for detail in err.details]


# --- one day ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "tz", "start", "end", "hours"),
    [
        ("2025-11-14", UTC_ZONE, utc(2025, 11, 14), utc(2025, 11, 15), 24),
        ("2025-11-14", BERLIN, utc(2025, 11, 13, 23), utc(2025, 11, 14, 23), 24),
        ("2025-07-01", BERLIN, utc(2025, 6, 30, 22), utc(2025, 7, 1, 22), 24),
        # Berlin: clocks go 02:00 → 03:00 on 2025-03-30 and 03:00 → 02:00 on 2025-10-26
        ("2025-03-30", BERLIN, utc(2025, 3, 29, 23), utc(2025, 3, 30, 22), 23),
        ("2025-10-26", BERLIN, utc(2025, 10, 25, 22), utc(2025, 10, 26, 23), 25),
        ("2025-11-14", NEW_YORK, utc(2025, 11, 14, 5), utc(2025, 11, 15, 5), 24),
        ("2025-07-04", NEW_YORK, utc(2025, 7, 4, 4), utc(2025, 7, 5, 4), 24),
        # New York: the day of 2025-03-09 has 23 hours, the day of 2025-11-02 has 25
        ("2025-03-09", NEW_YORK, utc(2025, 3, 9, 5), utc(2025, 3, 10, 4), 23),
        ("2025-11-02", NEW_YORK, utc(2025, 11, 2, 4), utc(2025, 11, 3, 5), 25),
        (
            "2025-11-14",
            ZoneInfo("Asia/Kolkata"),
            utc(2025, 11, 13, 18, 30),
            utc(2025, 11, 14, 18, 30),
            24,
        ),
        ("2024-02-29", UTC_ZONE, utc(2024, 2, 29), utc(2024, 3, 1), 24),
        ("2025-12-31", BERLIN, utc(2025, 12, 30, 23), utc(2025, 12, 31, 23), 24),
    ],
)
def test_date_is_one_local_day_in_utc(
    day: str, tz: ZoneInfo, start: datetime, end: datetime, hours: int
) -> None:
    rng = day_range(day, tz)
    assert rng.start_date == rng.end_date == date.fromisoformat(day)
    assert rng.tz == tz
    assert rng.start_utc == start
    assert rng.end_utc == end
    assert rng.start_utc is not None
    assert rng.end_utc is not None
    assert rng.end_utc - rng.start_utc == timedelta(hours=hours)
    assert rng.start_utc.utcoffset() == timedelta(0)
    assert rng.end_utc.utcoffset() == timedelta(0)


def test_new_york_spring_forward_day_as_wall_clock() -> None:
    rng = day_range("2025-03-09", NEW_YORK)
    assert rng.start_utc is not None
    assert rng.end_utc is not None
    local_start = rng.start_utc.astimezone(NEW_YORK)
    local_end = rng.end_utc.astimezone(NEW_YORK)
    assert (local_start.date(), local_start.hour, local_start.minute) == (date(2025, 3, 9), 0, 0)
    assert (local_end.date(), local_end.hour, local_end.minute) == (date(2025, 3, 10), 0, 0)
    assert local_start.utcoffset() == timedelta(hours=-5)
    assert local_end.utcoffset() == timedelta(hours=-4)


def test_zone_whose_dst_starts_at_midnight() -> None:
    # Chile skips 00:00-01:00 on 2025-09-07: the day starts at 01:00 -03 (= 04:00 UTC)
    rng = day_range("2025-09-07", ZoneInfo("America/Santiago"))
    assert rng.start_utc == utc(2025, 9, 7, 4)
    assert rng.end_utc == utc(2025, 9, 8, 3)


# --- start_date / end_date ---------------------------------------------------------------


def test_inclusive_span_across_a_dst_change() -> None:
    rng = span("2025-11-01", "2025-11-03", NEW_YORK)
    assert rng.start_date == date(2025, 11, 1)
    assert rng.end_date == date(2025, 11, 3)
    assert rng.start_utc == utc(2025, 11, 1, 4)
    assert rng.end_utc == utc(2025, 11, 4, 5)


def test_same_start_and_end_equals_date() -> None:
    assert span("2025-11-14", "2025-11-14", BERLIN) == day_range("2025-11-14", BERLIN)


def test_only_start_is_open_at_the_end() -> None:
    rng = span("2025-11-14", None, BERLIN)
    assert rng.start_utc == utc(2025, 11, 13, 23)
    assert rng.end_date is None
    assert rng.end_utc is None


def test_only_end_is_open_at_the_start() -> None:
    rng = span(None, "2025-11-14", BERLIN)
    assert rng.start_date is None
    assert rng.start_utc is None
    assert rng.end_utc == utc(2025, 11, 14, 23)


def test_no_bounds_is_all_time() -> None:
    rng = span(None, None)
    assert (rng.start_date, rng.end_date, rng.start_utc, rng.end_utc) == (None, None, None, None)


def test_start_after_end_is_422_naming_start_date() -> None:
    err = rejected(start_date="2025-11-15", end_date="2025-11-14")
    assert err.status == 422
    assert err.code == "validation_error"
    assert fields(err) == ["start_date"]


@pytest.mark.parametrize(
    ("extra", "value"), [("start_date", "2025-11-14"), ("end_date", "2025-11-14")]
)
def test_date_with_start_or_end_is_422(extra: str, value: str) -> None:
    err = rejected(date_="2025-11-14", **{extra: value})
    assert err.status == 422
    assert fields(err) == ["date"]


# --- malformed dates ---------------------------------------------------------------------

BAD_DATES = [
    "2025-13-01",
    "2025-02-30",
    "2025-11-00",
    "2025-1-1",
    "14/11/2025",
    "20251114",
    "2025-11-14T00:00",
    "2025-11-14 ",
    "",
    "yesterday",
    "\uff12\uff10\uff12\uff15-11-14",  # full-width digits
]


@pytest.mark.parametrize("value", BAD_DATES)
@pytest.mark.parametrize(
    ("param", "kwarg"), [("date", "date_"), ("start_date", "start_date"), ("end_date", "end_date")]
)
def test_malformed_date_is_422_naming_the_parameter(param: str, kwarg: str, value: str) -> None:
    err = rejected(**{kwarg: value})
    assert err.status == 422
    assert err.code == "validation_error"
    assert fields(err) == [param]


def test_parse_date() -> None:
    assert parse_date("2025-11-14", "date") == date(2025, 11, 14)
    with pytest.raises(TapiocaError) as info:
        parse_date("2025-11-31", "from_date")
    assert fields(info.value) == ["from_date"]


def test_iso_week_date_is_not_yyyy_mm_dd() -> None:
    err = rejected(date_="2025-W46-5")
    assert fields(err) == ["date"]


@pytest.mark.parametrize(("day", "tz"), [("9999-12-31", UTC_ZONE), ("0001-01-01", BERLIN)])
def test_extreme_dates_do_not_overflow(day: str, tz: ZoneInfo) -> None:
    try:
        rng = day_range(day, tz)
        _ = (rng.start_utc, rng.end_utc)
    except TapiocaError as err:
        assert err.status == 422


# --- time zones --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "America/Argentina/Salta"]
)
def test_parse_zone_accepts_iana_names(name: str) -> None:
    assert parse_zone(name) == ZoneInfo(name)


@pytest.mark.parametrize(
    "name",
    [
        "Mars/Olympus_Mons",
        "Europe/Atlantis",
        "",
        "utc+2",
        "zone.tab",
        "Europe/Berlin\x00",
        "a" * 65,
    ],
)
def test_parse_zone_rejects_unknown_zones(name: str) -> None:
    with pytest.raises(TapiocaError) as info:
        parse_zone(name)
    assert info.value.status == 422
    assert info.value.code == "validation_error"
    assert fields(info.value) == ["tz"]


@pytest.mark.parametrize(
    "name",
    [
        "/etc/localtime",
        "/usr/share/zoneinfo/UTC",
        "../../../../etc/passwd",
        "../UTC",
        "./UTC",
        ".UTC",
        "Europe/../UTC",
        "Europe/../../../../../../etc/passwd",
    ],
)
def test_parse_zone_rejects_path_like_names(name: str) -> None:
    with pytest.raises(TapiocaError) as info:
        parse_zone(name)
    assert info.value.status == 422
    assert fields(info.value) == ["tz"]


def test_parse_zone_names_the_given_field() -> None:
    with pytest.raises(TapiocaError) as info:
        parse_zone("Nowhere/Land", "site.timezone")
    assert fields(info.value) == ["site.timezone"]


@pytest.mark.parametrize("name", ["Europe", "America", "Etc"])
def test_parse_zone_rejects_zone_directories(name: str) -> None:
    with pytest.raises(TapiocaError) as info:
        parse_zone(name)
    assert info.value.status == 422
    assert fields(info.value) == ["tz"]


@pytest.mark.parametrize("value", ["\u0662\u0660\u0662\u0665-01-01", "2025-1-01", "", "2025-02-30"])
def test_a_date_is_ascii_yyyy_mm_dd(value: str) -> None:
    """As /openapi.json says (pattern [0-9]{4}-[0-9]{2}-[0-9]{2}, format date)."""
    with pytest.raises(TapiocaError):
        parse_date(value, "date")


# == buckets ===========================================================================


def _labels(start: str, end: str, zone: str, interval: Interval) -> list[str]:
    span = DateRange(date.fromisoformat(start), date.fromisoformat(end), ZoneInfo(zone))
    return [interval.label(bucket, span) for bucket in interval.buckets(span)]


def test_hours_of_a_fall_back_day_repeat_the_hour_with_its_offset() -> None:
    labels = _labels("2025-11-02", "2025-11-02", "America/New_York", Interval.HOUR)
    assert len(labels) == 25
    assert labels[:3] == ["2025-11-02T00:00-04:00", "2025-11-02T01:00-04:00",
                          "2025-11-02T01:00-05:00"]  # fmt: skip
    assert labels[-1] == "2025-11-02T23:00-05:00"


def test_hours_of_a_spring_forward_day_skip_the_missing_hour() -> None:
    labels = _labels("2025-03-30", "2025-03-30", "Europe/Berlin", Interval.HOUR)
    assert len(labels) == 23
    assert labels[1:3] == ["2025-03-30T01:00+01:00", "2025-03-30T03:00+02:00"]


def test_hours_of_a_half_hour_zone_start_on_its_local_hours() -> None:
    labels = _labels("2025-11-13", "2025-11-13", "Asia/Kolkata", Interval.HOUR)
    assert labels[0] == "2025-11-13T00:00+05:30" and len(labels) == 24


def test_the_first_week_and_month_are_clipped_to_the_range() -> None:
    assert _labels("2025-11-05", "2025-11-20", "UTC", Interval.WEEK) == [
        "2025-11-05", "2025-11-10", "2025-11-17"]  # fmt: skip
    assert _labels("2025-11-05", "2026-01-02", "UTC", Interval.MONTH) == [
        "2025-11-05", "2025-12-01", "2026-01-01"]  # fmt: skip


def test_hour_keys_are_the_instants_the_sql_key_gives() -> None:
    span = DateRange(date(2025, 11, 2), date(2025, 11, 2), ZoneInfo("America/New_York"))
    first = Interval.HOUR.buckets(span)[0]
    assert Interval.HOUR.key_of(int(first.timestamp())) == first


@pytest.mark.parametrize("name", ["localtime", "", "../etc/passwd", "Not/AZone", "UTC "])
def test_only_iana_zone_names_are_taken(name: str) -> None:
    """ "localtime" is a file of Python's zone database naming this machine's zone, which
    the stores do not know: a report in it would fail inside the store."""
    with pytest.raises(TapiocaError) as caught:
        parse_zone(name)
    assert caught.value.status == 422 and caught.value.details[0].field == "tz"


def test_every_zone_taken_is_known_to_duckdb() -> None:
    import duckdb

    from tapioca.kit.timerange import iana_zones

    known = {
        name
        for (name,) in duckdb.connect().execute("SELECT name FROM pg_timezone_names()").fetchall()
    }
    assert iana_zones() <= known
    assert {"Europe/Berlin", "Asia/Kathmandu", "UTC"} <= iana_zones()
