"""What every report is about: a site, a range of dates in a time zone, filters."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from tapioca.errors import invalid_parameter
from tapioca.kit.timerange import DateRange
from tapioca.reports.filters import Filter, parse_filters
from tapioca.reports.params import build_range, parse_zone
from tapioca.reports.queries import rollup
from tapioca.sites.lookup import resolve_site
from tapioca.sites.site import Site
from tapioca.storage.base import ReadStore


@dataclass(frozen=True)
class Scope:
    site: Site
    span: DateRange
    filters: list[Filter]
    days_redoing: bool = False  # the site's daily rollups are being redone (a new zone)
    # The events a report counts: those up to this seq, which sessions and rollups hold
    # (None: every stored event).
    upto: int | None = None
    since: datetime | None = None  # when the derive job began that count (a rebuild: anew)

    def echo(self) -> dict[str, Any]:
        return {
            "site_id": self.site.id,
            "start_date": self.span.start_date.isoformat() if self.span.start_date else None,
            "end_date": self.span.end_date.isoformat() if self.span.end_date else None,
            "tz": self.span.tz.key,
        }

    @property
    def currency(self) -> str:
        """The site's reporting currency, as amounts are kept (upper case)."""
        return self.site.currency.upper()

    def over(self, span: DateRange) -> Scope:
        return replace(self, span=span)

    def unfiltered(self) -> Scope:
        return replace(self, filters=[])

    @property
    def days_usable(self) -> bool:
        """The site's daily visitor rows are in the range's zone and all there."""
        return self.span.tz.key == self.site.timezone.key and not self.days_redoing

    @property
    def rolled(self) -> bool:
        """Rollups answer: no filters, the range's ends on whole UTC hours."""
        return rollup.usable(self.span, self.filters)

    @property
    def whole_days(self) -> bool:
        """The daily rows can answer for the range: rollups usable, both ends given, the
        daily rows in the range's zone and not being redone."""
        span = self.span
        given = span.start_date is not None and span.end_date is not None
        return self.rolled and given and self.days_usable


DEFAULT_DAYS = 30  # a report without dates: the 30 days up to today


def default_span(span: DateRange, today: date) -> DateRange:
    """Both bounds of the range: without an end, today; without a start, the 30 days up
    to the end."""
    end = span.end_date or max(today, span.start_date or today)
    start = span.start_date or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise invalid_parameter("start_date", "start_date is after end_date")
    return DateRange(start, end, span.tz)


async def open_span(db: ReadStore, site: Site, span: DateRange, today: date) -> DateRange:
    """Both bounds of a range whose missing bound is open (BobaShop's routes): from the
    first day that holds derived events, up to the last one or today, whichever is
    later."""
    if span.start_date is not None and span.end_date is not None:
        return span
    query = rollup.build_data_edges(site.id)
    ((first, last),) = await db.fetch(query.sql, query.params)
    zone = span.tz
    start = span.start_date or (first.astimezone(zone).date() if first else today)
    end = span.end_date or max(today, last.astimezone(zone).date() if last else today)
    if start > end:  # a lone bound beyond the data: that day alone
        start = end = span.start_date or end
    return DateRange(start, end, zone)


async def resolve_scope(
    db: ReadStore,
    site_id: str | None,
    date_: str | None,
    start_date: str | None,
    end_date: str | None,
    tz: str | None,
    filters: str | None,
    now: datetime,
    open_ends: bool = False,
) -> Scope:
    """The scope of a report: its bounds default to the 30 days up to today (in the
    report's zone), or (``open_ends``) a missing bound is open; it counts the events the
    derived tables hold."""
    site, redoing, derived, since = await resolve_site(db, site_id)
    zone = parse_zone(tz) if tz else site.timezone
    span = build_range(date_=date_, start_date=start_date, end_date=end_date, tz=zone)
    today = now.astimezone(zone).date()
    span = await open_span(db, site, span, today) if open_ends else default_span(span, today)
    return Scope(site, span, parse_filters(filters), redoing, derived, since)
