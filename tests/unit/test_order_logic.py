"""The order batch's pure parts: which days a run counts again, the zones of its days,
the checks it keeps; order-source URLs, mappings and sealed credentials."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from tapioca.errors import TapiocaError
from tapioca.orders.batch import Plan, Zones, changed_checks, checks_kept, day_ranges, every_day
from tapioca.orders.connectors import DayCheck
from tapioca.orders.source import DEFAULT_MAPPING, Sealer, check_mapping, make_source, parse_url


def test_day_ranges_join_consecutive_days_only() -> None:
    days = [
        date(2026, 1, 5),
        date(2026, 1, 1),
        date(2026, 1, 2),
        date(2026, 1, 3),
        date(2026, 1, 5),
    ]
    assert day_ranges(days) == [
        (date(2026, 1, 1), date(2026, 1, 3)),
        (date(2026, 1, 5), date(2026, 1, 5)),
    ]
    assert day_ranges([]) == []
    assert every_day(date(2026, 2, 27), date(2026, 3, 1)) == [
        date(2026, 2, 27), date(2026, 2, 28), date(2026, 3, 1),
    ]  # fmt: skip


def test_a_source_day_in_another_zone_overlaps_two_site_days() -> None:
    zones = Zones("Europe/London", "America/New_York")
    assert zones.site_days_of(date(2026, 1, 10)) == {date(2026, 1, 9), date(2026, 1, 10)}
    # an order at 02:30 London is 21:30 the day before in New York
    assert zones.site_moment(datetime(2026, 1, 10, 2, 30)) == datetime(2026, 1, 9, 21, 30)
    # the New York day starts at 05:00 London
    assert zones.source_start(date(2026, 1, 10)) == datetime(2026, 1, 10, 5, 0)
    same = Zones("Europe/London", "Europe/London")
    assert same.site_days_of(date(2026, 1, 10)) == {date(2026, 1, 10)}
    assert same.source_start(date(2026, 6, 1)) == datetime(2026, 6, 1)


def test_changed_checks_find_a_changed_a_new_and_a_gone_day() -> None:
    one = DayCheck(3, Decimal("30.00"), Decimal(6))
    seen = {date(2026, 1, 1): one, date(2026, 1, 2): one, date(2026, 1, 3): one}
    now = {
        date(2026, 1, 1): one,
        date(2026, 1, 2): DayCheck(3, Decimal("31.00"), Decimal(6)),  # an amount changed
        date(2026, 1, 4): one,  # new
    }  # 2026-01-03 is gone
    assert changed_checks(seen, now) == {date(2026, 1, 2), date(2026, 1, 3), date(2026, 1, 4)}


def test_checks_kept_are_the_sources_only_for_days_counted_whole() -> None:
    old = DayCheck(1, Decimal(1), Decimal(1))
    new = DayCheck(2, Decimal(2), Decimal(3))
    stored = {date(2026, 1, 1): old, date(2026, 1, 2): old}
    source = {date(2026, 1, 1): new, date(2026, 1, 2): new, date(2026, 1, 3): new}
    zones = Zones("UTC", "UTC")
    plan = Plan([date(2026, 1, 2), date(2026, 1, 3)], date(2026, 1, 1))
    # day 1 was not counted: its old check stays, so its change is found next time
    assert checks_kept(plan, zones, stored, source) == {
        date(2026, 1, 1): old, date(2026, 1, 2): new, date(2026, 1, 3): new,
    }  # fmt: skip
    # across zones a source day is whole only when both its site days were counted
    shifted = Zones("Europe/London", "America/New_York")
    plan = Plan([date(2026, 1, 2)], date(2025, 12, 1))
    kept = checks_kept(plan, shifted, {}, {date(2026, 1, 2): new})
    assert kept == {}
    plan = Plan([date(2026, 1, 1), date(2026, 1, 2)], date(2025, 12, 1))
    assert checks_kept(plan, shifted, {}, {date(2026, 1, 2): new}) == {date(2026, 1, 2): new}


def test_urls_are_parsed_and_shown_without_the_password() -> None:
    address = parse_url("mariadb://reader:s%40cret@db.example:3307/shop")
    assert (address.kind, address.host, address.port, address.user) == (
        "mysql", "db.example", 3307, "reader",
    )  # fmt: skip
    assert address.password == "s@cret"
    assert address.shown() == "mysql://reader@db.example:3307/shop"
    assert "s@cret" not in repr(address)
    assert parse_url("postgres://u:p@h/db").port == 5432
    for bad, field in [
        ("http://u:p@h/db", "url"),
        ("mysql://h/db", "url"),
        ("mysql://u:p@h/", "url"),
        ("mysql://u:p@h:99999/db", "url"),
        ("mysql://u:p@h/db?ssl=1", "url"),
    ]:
        with pytest.raises(TapiocaError) as caught:
            parse_url(bad)
        assert caught.value.status == 422
        assert caught.value.details[0].field == field
        assert "p@" not in caught.value.details[0].message


def test_a_mapping_takes_plain_names_over_the_defaults() -> None:
    mapping = check_mapping({"orders": "shop.orders", "updated_at": "modified_at"})
    assert mapping == {**DEFAULT_MAPPING, "orders": "shop.orders", "updated_at": "modified_at"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"colour": "x"}, "mapping.colour"),
        ({"status": "a;drop"}, "mapping.status"),
        ({"status": "t.status"}, "mapping.status"),
        ({"orders": 3}, "mapping.orders"),
    ]
    for bad, field in cases:
        with pytest.raises(TapiocaError) as caught:
            check_mapping(bad)
        assert [d.field for d in caught.value.details] == [field]


def test_a_source_checks_its_zone_statuses_and_lookback() -> None:
    source = make_source("shop", "mysql://u:p@h/db", "Europe/Kyiv", ["SERVED", "PAID", "SERVED"])
    assert source.counted_statuses == ("SERVED", "PAID")
    assert source.lookback_days == 14
    public = source.public()
    assert public["url"] == "mysql://u@h:3306/db" and "p" not in public["url"].split("@")[0][8:]
    wrong: list[tuple[str, list[str] | None, int | None, str]] = [
        ("Mars/Base", None, None, "timezone"),
        ("UTC", ["x" * 101], None, "counted_statuses"),
        ("UTC", None, 400, "lookback_days"),
    ]
    for zone, statuses, lookback, field in wrong:
        with pytest.raises(TapiocaError) as caught:
            make_source("shop", "mysql://u:p@h/db", zone, statuses, None, lookback)
        assert caught.value.details[0].field == field


def test_credentials_are_sealed_with_the_instance_secret() -> None:
    address = parse_url("postgresql://reader:hunter2@127.0.0.1:5432/orders")
    sealer = Sealer(b"x" * 48)
    sealed = sealer.seal(address)
    assert "hunter2" not in sealed
    assert sealer.open(sealed) == address
    with pytest.raises(TapiocaError) as caught:
        Sealer(b"y" * 48).open(sealed)
    assert caught.value.code == "source_sealed_elsewhere"
