"""Ingest use cases: a body in, events durable in the queue, the protocol's answer out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from tapioca import metrics
from tapioca.errors import ErrorDetail, QueueUnavailable, TapiocaError, unavailable
from tapioca.ingest.normalize import RequestContext, encode
from tapioca.ingest.origins import OriginCheck
from tapioca.ingest.protocols import ROUTES
from tapioca.ingest.protocols.base import Headers, Parsed, Shape
from tapioca.ingest.salt import SaltProvider
from tapioca.logging import get_logger
from tapioca.queue.base import EventQueue
from tapioca.sites.catalog import SiteCatalog

log = get_logger(__name__)


class IngestRequest(NamedTuple):
    """An ingest request as the HTTP front hands it on: its route, its headers (lower-case
    names), the client's address and User-Agent, and the Origin of a browser's request."""

    path: str
    headers: Headers
    ip: str
    user_agent: str | None = None
    origin: str | None = None


# Decides whether a request may send events for the sites it names (raises a TapiocaError
# when not). The one place where keys and accounts are checked.
Authorize = Callable[[IngestRequest, frozenset[str]], Awaitable[None]]


# Makes the sites that accepted events name, before the events are queued; refuses
# (TapiocaError) a request that names more new sites than may be made.
MakeSites = Callable[[frozenset[str]], Awaitable[None]]


# Counts a request's events against the rate limits (its events per site named): raises
# a TapiocaError (429) when the request is over one, and then counts nothing of it.
Limit = Callable[[IngestRequest, Mapping[str, int]], Awaitable[None]]


async def allow_all(_request: IngestRequest, _sites: frozenset[str]) -> None:
    """Any client may send events for any site."""


_LABELS = {Shape.ONE: "event", Shape.BATCH: "events"}  # of the accepted-events counter
T = TypeVar("T")


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
        origins: OriginCheck | None = None,
        limits: Limit | None = None,
    ) -> None:
        self._sites = sites  # None: events of unknown sites create them
        self._make_sites = make_sites
        self._origins = origins  # None: browsers may send events from any origin
        # whether every request is looked at before its events are queued
        self._limits = limits
        self._admits = (
            authorize is not allow_all
            or sites is not None
            or make_sites is not None
            or limits is not None
        )
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

    async def _asking_sites(self, answer: Awaitable[T], what: str = "checked") -> T:
        """``answer``, or 503 when the sites cannot be read (or made) right now."""
        try:
            return await answer
        except TapiocaError:
            raise
        except Exception as exc:
            log.warning("sites_unavailable", error=type(exc).__name__)
            raise unavailable(f"Sites cannot be {what} right now.", self._retry_after) from exc

    async def allows_origin(self, origin: str) -> bool:
        """Whether browsers on ``origin`` may send events of some site (a preflight names
        none: each event's own site is checked when it comes)."""
        if self._origins is None:
            return True
        return await self._asking_sites(self._origins.anyone_accepts(origin))

    async def _check_sites(self, parsed: Parsed) -> None:
        assert self._sites is not None
        site_ids = [event.site_id for event in parsed.events if event is not None]
        unknown = await self._asking_sites(self._sites.unknown(set(site_ids)))
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
                details,
            )

    async def _admit(self, request: IngestRequest, parsed: Parsed) -> None:
        """Whether the request may send its events (keys, known sites, the browser's
        origin, rate limits), then the sites they name are made (when events make them).
        Sites are counted once they are known to exist (or are to be made): a request
        naming thousands of made-up sites is a 404 before it costs a count each."""
        counts: Mapping[str, int] = {}
        if self._limits is not None:  # the events of each site
            counts = Counter(event.site_id for event in parsed.events if event is not None)
            sites = frozenset(counts)
        else:
            sites = frozenset(event.site_id for event in parsed.events if event is not None)
        if self._authorize is not allow_all:
            await self._authorize(request, sites)
        if self._sites is not None:
            await self._check_sites(parsed)
        if request.origin is not None and self._origins is not None:
            await self._asking_sites(self._origins.check(request.origin, parsed))
        if self._limits is not None:
            await self._limits(request, counts)
        if self._make_sites is not None:
            await self._asking_sites(self._make_sites(sites), "made")

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
        if self._admits or request.origin is not None:
            await self._admit(request, parsed)
        await self._publish([payload for _, payload in encoded], _LABELS[route.shape])
        return protocol.answer(route, [event_id for event_id, _ in encoded])
