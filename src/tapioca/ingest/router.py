"""Native ingest routes: POST /event, /events, /api/events."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel

from tapioca.errors import too_large
from tapioca.ingest.body import decompress
from tapioca.ingest.service import Client, IngestService
from tapioca.kit.jsonresponse import JSONBody

router = APIRouter(tags=["ingest"])

_EVENT_SCHEMA: dict[str, Any] = {"$ref": "#/components/schemas/EventIn"}
_ONE = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": _EVENT_SCHEMA}}}
}
_BATCH = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"type": "array", "items": _EVENT_SCHEMA},
                        {
                            "type": "object",
                            "properties": {"events": {"type": "array", "items": _EVENT_SCHEMA}},
                            "required": ["events"],
                        },
                    ]
                }
            },
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}


async def read_body(request: Request) -> bytes:
    """The request body, decompressed, refusing anything over the configured size."""
    limit: int = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(f"The body is larger than {limit} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(f"The body is larger than {limit} bytes.")
        chunks.append(chunk)
    return decompress(b"".join(chunks), request.headers.get("content-encoding"), limit)


def client_of(request: Request) -> Client:
    return Client(
        ip=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent"),
    )


class AcceptedOne(BaseModel):
    status: Literal["accepted"]
    event_id: str


class AcceptedBatch(BaseModel):
    status: Literal["accepted"]
    accepted: int
    event_ids: list[str]


@router.post(
    "/event",
    status_code=202,
    openapi_extra=_ONE,
    summary="Send one event",
    response_model=AcceptedOne,
)
async def post_event(request: Request) -> JSONBody:
    # The service comes from app state, not Depends: the hottest route skips DI per request.
    ingest: IngestService = request.app.state.ingest
    event_id = await ingest.accept_one(await read_body(request), client_of(request))
    return JSONBody({"status": "accepted", "event_id": event_id}, status_code=202)


async def _post_batch(request: Request) -> JSONBody:
    ingest: IngestService = request.app.state.ingest
    ids = await ingest.accept_batch(await read_body(request), client_of(request))
    return JSONBody({"status": "accepted", "accepted": len(ids), "event_ids": ids}, status_code=202)


@router.post(
    "/events",
    status_code=202,
    openapi_extra=_BATCH,
    summary="Send a batch of events",
    response_model=AcceptedBatch,
)
async def post_events(request: Request) -> JSONBody:
    return await _post_batch(request)


@router.post(
    "/api/events",
    status_code=202,
    openapi_extra=_BATCH,
    summary="Send a batch (alias of /events)",
    response_model=AcceptedBatch,
)
async def post_api_events(request: Request) -> JSONBody:
    return await _post_batch(request)
