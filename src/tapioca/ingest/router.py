"""The ingest routes in the OpenAPI document: POST /event, /events, /api/events.

IngestRoutes (ingest/asgi.py) answers these requests before routing; the routes here
publish their contract (bodies, 202 answers, errors) in /openapi.json and /docs."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel

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


class AcceptedOne(BaseModel):
    status: Literal["accepted"]
    event_id: str


class AcceptedBatch(BaseModel):
    status: Literal["accepted"]
    accepted: int
    event_ids: list[str]


def _served_by_ingest_routes() -> JSONBody:
    raise RuntimeError("the ingest routes are answered by IngestRoutes (ingest/asgi.py)")


@router.post(
    "/event",
    status_code=202,
    openapi_extra=_ONE,
    summary="Send one event",
    response_model=AcceptedOne,
)
async def post_event() -> JSONBody:
    return _served_by_ingest_routes()


@router.post(
    "/events",
    status_code=202,
    openapi_extra=_BATCH,
    summary="Send a batch of events",
    response_model=AcceptedBatch,
)
async def post_events() -> JSONBody:
    return _served_by_ingest_routes()


@router.post(
    "/api/events",
    status_code=202,
    openapi_extra=_BATCH,
    summary="Send a batch (alias of /events)",
    response_model=AcceptedBatch,
)
async def post_api_events() -> JSONBody:
    return _served_by_ingest_routes()
