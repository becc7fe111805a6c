"""Queue records → enriched event rows. Pure: no I/O, no clock."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from tapioca.enrich import NO_RULES, SiteRules, enrich
from tapioca.queue.record import (
    QueueRecord,
    UnreadableRecord,
    decode_each,
    decode_entry,
    from_json,
)
from tapioca.storage.rows import EventRow

_MIN_MICROS = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z
_MAX_MICROS = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z

RulesFor = Callable[[str], SiteRules]


def no_rules(_site_id: str) -> SiteRules:
    return NO_RULES


class PoisonRecord(ValueError):
    """A record that can never become a row (corrupt or foreign data in the queue)."""


def _time(micros: int) -> int:
    """A time as the row keeps it (microseconds; a datetime would cost the worker about a
    sixth of its CPU to make and asyncpg to encode again)."""
    if not _MIN_MICROS <= micros <= _MAX_MICROS:
        raise PoisonRecord("time out of range")
    return micros


def _row(values: tuple[Any, ...]) -> EventRow:
    """An EventRow without the keyword handling of its constructor (a tenth of the
    worker's time per event)."""
    return tuple.__new__(EventRow, values)


def to_row(record: QueueRecord | dict[str, Any], rules: SiteRules = NO_RULES) -> EventRow:
    """Build the stored row, enriched (bot flag, device, browser, os, source, channel, ...)."""
    if isinstance(record, dict):  # imports and tests hand over plain objects
        try:
            record = from_json(msgspec.json.encode(record))
        except (UnreadableRecord, TypeError) as exc:
            raise PoisonRecord(f"malformed record: {exc}") from exc
    r = record
    found = enrich(
        user_agent=r.user_agent, screen_width=r.screen_width, url=r.url, path=r.path,
        referrer=r.referrer, utm_source=r.utm_source, utm_medium=r.utm_medium,
        utm_campaign=r.utm_campaign, utm_term=r.utm_term, utm_content=r.utm_content,
        device=r.device, channel=r.channel, page_type=r.page_type, site=rules,
    )  # fmt: skip
    try:
        revenue = None if r.revenue is None else Decimal(r.revenue)
    except InvalidOperation as exc:
        raise PoisonRecord("revenue is not a number") from exc
    return _row((
        r.site_id, r.event_id, r.event_type, _time(r.ts), _time(r.received_at), r.visitor_id,
        r.user_id, r.anonymous_id, r.session_id, r.url, r.path, r.referrer, r.title,
        found.utm_source, found.utm_medium, found.utm_campaign, found.utm_term,
        found.utm_content, r.user_agent, r.screen_width, found.device, found.browser,
        found.os, found.channel, found.source, found.page_type, revenue, r.currency,
        r.transaction_id, r.items, r.properties, found.is_bot,
    ))  # fmt: skip


def _rows(records: list[QueueRecord], rules_for: RulesFor) -> list[EventRow]:
    return [to_row(record, rules_for(record.site_id)) for record in records]


def decode_records(records: Iterable[bytes], rules_for: RulesFor = no_rules) -> list[EventRow]:
    """Records encoded one by one → enriched rows, each with its site's rules."""
    try:
        return _rows(decode_each(records), rules_for)
    except UnreadableRecord as exc:
        raise PoisonRecord(f"undecodable record: {exc}") from exc


def decode_payload(payload: bytes, rules_for: RulesFor = no_rules) -> list[EventRow]:
    """A queue entry holds one request's records (tapioca.queue.record)."""
    try:
        return _rows(decode_entry(payload), rules_for)
    except UnreadableRecord as exc:
        raise PoisonRecord(f"undecodable record: {exc}") from exc
