"""The ingest protocols: each way clients send events, every one into the same event.

A protocol is its routes (path, one event or a batch, how OpenAPI documents its body and
answer) and a pure ``parse(route, body, headers, max_events)`` that validates a body into
events (ingest/values.py) or says why not. The native protocol (api.md) is the first;
trackers' protocols (Plausible, Umami, Segment, PostHog, GA4) join it in ``PROTOCOLS``.
The HTTP front (api/ingest.py) serves every route here and the OpenAPI document lists
them (api/openapi.py); the rest of ingest (normalize, service) is shared by all.
"""

from __future__ import annotations

from tapioca.ingest.protocols import native
from tapioca.ingest.protocols.base import IngestProtocol, Route

PROTOCOLS: tuple[IngestProtocol, ...] = (native.PROTOCOL,)
ROUTES: dict[str, tuple[IngestProtocol, Route]] = {
    route.path: (protocol, route) for protocol in PROTOCOLS for route in protocol.routes
}
