"""Queue records → enriched event rows. Pure: no I/O, no clock.

A row holds the event table's columns (model/event.py) in order: the record's fields, with
those enrichment derives (bot flag, device, browser, os, source, channel, UTM, page type)
in their places. The record brings times as checked microseconds and money as Decimal
(queue/record.py)."""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import fields
from typing import Any

import msgspec

from tapioca.enrich import NO_RULES, Enrichment, SiteRules, enrich
from tapioca.kit.codegen import compile_function
from tapioca.model.event import COLUMNS, FIELDS, QUEUED
from tapioca.queue.record import (
    RECORD_INDEX,
    Record,
    UnreadableRecord,
    decode_each,
    decode_entry,
    from_json,
)
from tapioca.storage.rows import EventRow

RulesFor = Callable[[str], SiteRules]


def no_rules(_site_id: str) -> SiteRules:
    return NO_RULES


class PoisonRecord(ValueError):
    """A record that can never become a row (corrupt or foreign data in the queue)."""


def _row_source() -> str:
    """``row(values, rules)``, compiled from the table (kit/codegen.py): the record's
    values (in order) → the stored row. Enrichment takes the fields its parameters name
    and gives the fields of ``Enrichment``, the columns the record does not carry among
    them."""
    inputs = [name for name in inspect.signature(enrich).parameters if name != "site"]
    derived = [field.name for field in fields(Enrichment)]
    unmade = {f.name for f in FIELDS if not f.queued} - set(derived)
    if not set(inputs) <= set(RECORD_INDEX) or not set(derived) <= set(COLUMNS) or unmade:
        raise RuntimeError(f"enrichment does not make the row's columns {sorted(unmade)}")
    body = [
        f"{', '.join(f.name for f in QUEUED)}, = values",
        f"found = enrich({', '.join(f'{n}={n}' for n in inputs)}, site=rules)",
        *(f"{name} = found.{name}" for name in derived),
        f"return new_row(EventRow, ({', '.join(COLUMNS)},))",
    ]
    return "def row(values, rules):\n" + textwrap.indent("\n".join(body), "    ")


# tuple.__new__ makes an EventRow without the keyword handling of its constructor.
_row: Callable[[tuple[Any, ...], SiteRules], EventRow] = compile_function(
    "row", _row_source(), {"enrich": enrich, "EventRow": EventRow, "new_row": tuple.__new__}
)
_astuple = msgspec.structs.astuple
_SITE = RECORD_INDEX["site_id"]


def to_row(record: Record | dict[str, Any], rules: SiteRules = NO_RULES) -> EventRow:
    """Build the stored row, enriched (bot flag, device, browser, os, source, channel, ...)."""
    if isinstance(record, dict):  # imports and tests hand over plain objects
        try:
            record = from_json(msgspec.json.encode(record))
        except (UnreadableRecord, TypeError) as exc:
            raise PoisonRecord(f"malformed record: {exc}") from exc
    return _row(_astuple(record), rules)


def _rows(records: list[Record], rules_for: RulesFor) -> list[EventRow]:
    rows = []
    for record in records:
        values = _astuple(record)
        rows.append(_row(values, rules_for(values[_SITE])))
    return rows


def decode_records(records: Iterable[bytes], rules_for: RulesFor = no_rules) -> list[EventRow]:
    """Records encoded one by one → enriched rows, each with its site's rules."""
    try:
        return _rows(decode_each(records), rules_for)
    except UnreadableRecord as exc:
        raise PoisonRecord(f"undecodable record: {exc}") from exc


def decode_payload(
    payload: bytes, rules_for: RulesFor = no_rules, version: int = 1
) -> list[EventRow]:
    """A queue entry holds one request's records (tapioca.queue.record), of ``version``;
    one of a later version with a value this worker cannot keep raises NewerRecord."""
    try:
        return _rows(decode_entry(payload, version), rules_for)
    except UnreadableRecord as exc:
        raise PoisonRecord(f"undecodable record: {exc}") from exc
