"""Tapioca's own protocol (api.md, Ingest): POST /event with one event, POST /events and
/api/events with a batch (a JSON array, {"events": [...]}, or NDJSON lines).

A body is read by the fast path (ingest/fast.py) when it can vouch for it, else by the
general one (orjson + EventIn), which has the answer and the details of every error."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from tapioca.errors import ErrorDetail
from tapioca.ingest.body import parse_batch, parse_one
from tapioca.ingest.event import Unserialisable, from_model
from tapioca.ingest.fast import GiveUp, decode_batch, decode_one
from tapioca.ingest.normalize import Encoded, RequestContext, encode
from tapioca.ingest.protocols.base import (
    Headers,
    IngestProtocol,
    Parsed,
    Route,
    Shape,
    ensure_batch_size,
)
from tapioca.ingest.schemas import EventIn, details_of


class AcceptedOne(BaseModel):
    status: Literal["accepted"]
    event_id: str


class AcceptedBatch(BaseModel):
    status: Literal["accepted"]
    accepted: int
    event_ids: list[str]


_EVENT: dict[str, Any] = {"$ref": "#/components/schemas/EventIn"}
_ONE_BODY = {"application/json": {"schema": _EVENT}}
_BATCH_BODY = {
    "application/json": {
        "schema": {
            "oneOf": [
                {"type": "array", "items": _EVENT},
                {
                    "type": "object",
                    "properties": {"events": {"type": "array", "items": _EVENT}},
                    "required": ["events"],
                },
            ]
        }
    },
    "application/x-ndjson": {"schema": {"type": "string"}},
}


def _nul_possible(body: bytes) -> bool:
    """Whether a JSON body can carry a NUL character: only as the escape \\u0000 (the
    request's User-Agent is looked at with the records)."""
    return b"\\u0000" in body


def validate(raw: list[Any], indexed: bool) -> Parsed:
    """Validate every event with EventIn; the details of every one that fails."""
    details: list[ErrorDetail] = []
    events: list[Any] = []
    for index, item in enumerate(raw):
        prefix = f"{index}." if indexed else ""
        events.append(None)
        if not isinstance(item, dict):
            details.append(ErrorDetail(prefix.rstrip(".") or "body", "must be a JSON object"))
            continue
        try:
            events[-1] = from_model(EventIn.model_validate(item))
        except ValidationError as exc:
            details.extend(details_of(prefix, exc))
        except Unserialisable as exc:  # too deep, or integers beyond 64 bits
            details += [ErrorDetail(f"{prefix}properties{at}", exc.message) for at in exc.paths]
    return Parsed(events, indexed, details)


def parse(route: Route, body: bytes, _headers: Headers, max_events: int) -> Parsed:
    if route.shape is Shape.ONE:
        try:
            return Parsed([decode_one(body)], False, (), b"\\u0000" in body)
        except GiveUp:
            return validate([parse_one(body)], indexed=False)
    try:
        events = decode_batch(body)
        ensure_batch_size(len(events), max_events)
        return Parsed(events, True, (), _nul_possible(body))
    except GiveUp:
        raw = parse_batch(body)
        ensure_batch_size(len(raw), max_events)
        return validate(raw, indexed=True)


def answer(route: Route, ids: list[str]) -> dict[str, Any]:
    if route.shape is Shape.ONE:
        return {"status": "accepted", "event_id": ids[0]}
    return {"status": "accepted", "accepted": len(ids), "event_ids": ids}


PROTOCOL = IngestProtocol(
    name="native",
    routes=(
        Route("/event", Shape.ONE, "Send one event", _ONE_BODY, AcceptedOne),
        Route("/events", Shape.BATCH, "Send a batch of events", _BATCH_BODY, AcceptedBatch),
        Route(
            "/api/events",
            Shape.BATCH,
            "Send a batch (alias of /events)",
            _BATCH_BODY,
            AcceptedBatch,
        ),
    ),
    parse=parse,
    answer=answer,
)


def encode_events(raw: list[Any], ctx: RequestContext, *, indexed: bool, first: int = 0) -> Encoded:
    """Validate events as the general path does and encode their records, all or nothing
    (imports of files of events, ``first`` the position of ``raw`` in the file; tests)."""
    parsed = validate(raw, indexed)
    return encode(parsed.events, ctx, indexed=indexed, details=parsed.details, first=first)
