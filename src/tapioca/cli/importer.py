"""`tapioca import FILE`: CSV or NDJSON events checked as a whole, then written into the
store in bulk (or sent to the running server: cli/backend.py)."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from tapioca.errors import ErrorDetail, TapiocaError
from tapioca.ingest.event import NOT_JSON, json_problem, read_json
from tapioca.ingest.normalize import RequestContext
from tapioca.ingest.protocols.native import encode_events
from tapioca.storage.base import Store
from tapioca.worker.writer import EventWriter

_INT_FIELDS = ("screen_width",)


class ImportFailed(Exception):
    def __init__(self, details: list[ErrorDetail]) -> None:
        super().__init__(f"{len(details)} problem(s)")
        self.details = details


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            event: dict[str, Any] = {k: v for k, v in row.items() if k and v not in ("", None)}
            for name in _INT_FIELDS:
                value = event.get(name)
                if isinstance(value, str) and value.lstrip("-").isdigit():
                    event[name] = int(value)
            yield number, event


def _ndjson_rows(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield number, read_json(line)  # as ingest reads a body's lines
                except NOT_JSON as exc:
                    raise ImportFailed(
                        [ErrorDetail(f"line {number}", f"malformed JSON: {json_problem(exc)}")]
                    ) from exc


def read_events(path: Path, site_id: str | None) -> Iterator[tuple[int, Any]]:
    rows = _csv_rows(path) if path.suffix.lower() == ".csv" else _ndjson_rows(path)
    for number, event in rows:
        if isinstance(event, dict):
            if site_id and "site_id" not in event:
                event["site_id"] = site_id
            if "event_id" not in event:  # stable ids make a re-import idempotent
                event["event_id"] = _stable_id(number, event)
        yield number, event


def _stable_id(number: int, event: dict[str, Any]) -> str:
    try:
        text = orjson.dumps(event)
    except TypeError:  # an integer beyond 64 bits: the event is refused, its id unused
        text = repr(event).encode()
    return f"imp-{number}-{hashlib.blake2b(text, digest_size=12).hexdigest()}"


def _chunks(path: Path, site_id: str | None, size: int) -> Iterator[list[tuple[int, Any]]]:
    chunk: list[tuple[int, Any]] = []
    for item in read_events(path, site_id):
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _encode(chunk: list[tuple[int, Any]], ctx: RequestContext, first: int) -> list[bytes]:
    """The records of a chunk whose first event is the file's ``first`` (events without a
    time keep the file's order, as those of one request do)."""
    try:
        events = [e for _, e in chunk]
        return [p for _, p in encode_events(events, ctx, indexed=True, first=first)]
    except TapiocaError as exc:
        details = []
        for d in exc.details or [ErrorDetail("0", exc.message)]:
            index, _, rest = d.field.partition(".")
            line = chunk[int(index)][0] if index.isdigit() else "?"
            details.append(ErrorDetail(f"line {line}: {rest or index}", d.message))
        raise ImportFailed(details) from exc


def _context() -> RequestContext:
    return RequestContext(
        received_at=datetime.now(UTC),
        ip="",
        user_agent=None,
        salt=b"import",
        max_future=timedelta(minutes=5),
        max_event_bytes=64 * 1024,
    )


def check_file(
    path: Path, *, site_id: str | None, batch_size: int, ctx: RequestContext | None = None
) -> None:
    """Raise ImportFailed with the first 50 problems of the file, if it has any."""
    ctx = ctx or _context()
    problems: list[ErrorDetail] = []
    for number, chunk in enumerate(_chunks(path, site_id, batch_size)):
        try:
            _encode(chunk, ctx, number * batch_size)
        except ImportFailed as exc:
            problems.extend(exc.details)
            if len(problems) >= 50:
                break
    if problems:
        raise ImportFailed(problems[:50])


def event_batches(path: Path, *, site_id: str | None, batch_size: int) -> Iterator[list[Any]]:
    """The file's events (with their site and stable ids) in batches, as sent to a server."""
    for chunk in _chunks(path, site_id, batch_size):
        yield [event for _, event in chunk]


async def import_file(
    path: Path, store: Store, *, site_id: str | None, batch_size: int = 10_000
) -> tuple[int, int]:
    """Validate the whole file first (nothing is written if a line is bad), then write."""
    ctx = _context()
    check_file(path, site_id=site_id, batch_size=batch_size, ctx=ctx)
    writer = EventWriter(store)
    received = inserted = 0
    for number, chunk in enumerate(_chunks(path, site_id, batch_size)):
        result = await writer.write_records(_encode(chunk, ctx, number * batch_size))
        received += result.received
        inserted += result.inserted
    return received, inserted
