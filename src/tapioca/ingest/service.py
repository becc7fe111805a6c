"""Ingest use cases: a body in, events durable in the queue, the protocol's answer out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from tapioca import metrics
from tapioca.errors import ErrorDetail, QueueUnavailable, TapiocaError, unavailable
from tapioca.ingest.normalize import RequestContext, encode
from tapioca.ingest.protocols import ROUTES
from tapioca.ingest.protocols.base import Headers, Parsed, Shape
from tapioca.ingest.salt import SaltProvider
from tapioca.logging import get_logger
from tapioca.queue.base import EventQueue
from tapioca.sites.catalog import SiteCatalog

log = get_logger(__name__)


class IngestRequest(NamedTuple):
    """An ingest request as the HTTP front hands it on: its route, its headers (lower-case
    names), the client's address and User-Agent."""

    path: str
    headers: Headers
    ip: str
    user_agent: str | None = None


# Decides whether a request may send events for the sites it names (raises a TapiocaError
# when not). The one place where keys and accounts are checked.
Authorize = Callable[[IngestRequest, frozenset[str]], Awaitable[None]]


# Makes the sites that accepted events name (production: before the events are written).
MakeSites = Callable[[frozenset[str]], Awaitable[None]]


async def allow_all(_request: IngestRequest, _sites: frozenset[str]) -> None:
    """Any client may send events for any site."""


_LABELS = {Shape.ONE: "event", Shape.BATCH: "events"}  # of the accepted-events counter


class IngestService:
    def __init__(
        self,
        queue: EventQueue,
        salts: SaltProvider,
        *,
        max_events: int,
        max_event_bytes: int,
        max_future_seconds: int,
        retry_after_seconds: int,
        sites: SiteCatalog | None = None,
        authorize: Authorize = allow_all,
        make_sites: MakeSites | None = None,
    ) -> None:
        self._sites = sites  # None: events of unknown sites create them
        self._make_sites = make_sites
        self._queue = queue
        self._salts = salts
        self._authorize = authorize
        self._max_events = max_events
        self._max_event_bytes = max_event_bytes
        self._max_future = timedelta(seconds=max_future_seconds)
        self._retry_after = retry_after_seconds

    async def _context(self, request: IngestRequest, now: datetime) -> RequestContext:
        try:
            salt = await self._salts.salt_for(now.date())
        except Exception as exc:
            log.warning("salt_unavailable", error=type(exc).__name__)
            raise unavailable("Events cannot be accepted right now.", self._retry_after) from exc
        return RequestContext(
            received_at=now,
            ip=request.ip,
            user_agent=request.user_agent,
            salt=salt,
            max_future=self._max_future,
            max_event_bytes=self._max_event_bytes,
        )

    async def _check_sites(self, parsed: Parsed) -> None:
        assert self._sites is not None
        site_ids = [event.site_id for event in parsed.events if event is not None]
        try:
            unknown = await self._sites.unknown(set(site_ids))
        except Exception as exc:
            log.warning("sites_unavailable", error=type(exc).__name__)
            raise unavailable("Sites cannot be checked right now.", self._retry_after) from exc
        if unknown:
            field = "site_id"
            details = [
                ErrorDetail(f"{i}.{field}" if parsed.indexed else field, f"no site '{site}'")
                for i, site in enumerate(site_ids)
                if site in unknown
            ]
            raise TapiocaError(
                404,
                "site_not_found",
                f"Unknown site(s): {', '.join(sorted(unknown))}.",
                details[:100],
            )

    async def _ensure_sites(self, sites: frozenset[str]) -> None:
        assert self._make_sites is not None
        try:
            await self._make_sites(sites)
        except Exception as exc:
            log.warning("sites_unavailable", error=type(exc).__name__)
            raise unavailable("Sites cannot be made right now.", self._retry_after) from exc

    async def _publish(self, payloads: list[bytes], route: str) -> None:
        try:
            await self._queue.publish(payloads)
        except QueueUnavailable as exc:
            metrics.EVENTS_REJECTED.labels("unavailable").inc()
            log.warning("ingest_unavailable", reason=str(exc))
            raise unavailable(
                "Events cannot be held durably right now; retry later.", self._retry_after
            ) from exc
        metrics.EVENTS_ACCEPTED.labels(route).inc(len(payloads))

    async def accept(
        self, request: IngestRequest, body: bytes, now: datetime | None = None
    ) -> dict[str, Any]:
        """Validate the body by its route's protocol, queue its events durably (all or
        nothing) and return the protocol's answer."""
        protocol, route = ROUTES[request.path]
        ctx = await self._context(request, now or datetime.now(UTC))
        parsed = protocol.parse(route, body, request.headers, self._max_events)
        encoded = encode(
            parsed.events,
            ctx,
            indexed=parsed.indexed,
            details=parsed.details,
            nul_possible=parsed.nul_possible,
        )
        if self._authorize is not allow_all or self._make_sites is not None:
            sites = frozenset(event.site_id for event in parsed.events if event is not None)
            await self._authorize(request, sites)
            if self._make_sites is not None:
                await self._ensure_sites(sites)
        if self._sites is not None:
            await self._check_sites(parsed)
        await self._publish([payload for _, payload in encoded], _LABELS[route.shape])
        return protocol.answer(route, [event_id for event_id, _ in encoded])
