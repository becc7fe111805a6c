"""Ingest use cases: a body in, events durable in the queue, ids out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tapioca import metrics
from tapioca.errors import ErrorDetail, QueueUnavailable, TapiocaError, unavailable
from tapioca.ingest.body import parse_batch, parse_one
from tapioca.ingest.fast import GiveUp, decode_batch, decode_one
from tapioca.ingest.normalize import (
    RequestContext,
    encode_events,
    encode_valid,
    ensure_batch_size,
)
from tapioca.ingest.salt import SaltProvider
from tapioca.logging import get_logger
from tapioca.queue.base import EventQueue
from tapioca.sites.catalog import SiteCatalog

log = get_logger(__name__)


def _nul_possible(body: bytes) -> bool:
    """Whether a JSON body can carry a NUL character: only as the escape \\u0000 (the
    request's User-Agent is looked at with the records)."""
    return b"\\u0000" in body


@dataclass(frozen=True, slots=True)
class Client:
    ip: str
    user_agent: str | None


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
    ) -> None:
        self._sites = sites  # None: events of unknown sites create them
        self._queue = queue
        self._salts = salts
        self._max_events = max_events
        self._max_event_bytes = max_event_bytes
        self._max_future = timedelta(seconds=max_future_seconds)
        self._retry_after = retry_after_seconds

    async def _context(self, client: Client, now: datetime) -> RequestContext:
        try:
            salt = await self._salts.salt_for(now.date())
        except Exception as exc:
            log.warning("salt_unavailable", error=type(exc).__name__)
            raise unavailable("Events cannot be accepted right now.", self._retry_after) from exc
        return RequestContext(
            received_at=now,
            ip=client.ip,
            user_agent=client.user_agent,
            salt=salt,
            max_future=self._max_future,
            max_event_bytes=self._max_event_bytes,
        )

    async def _check_sites(self, site_ids: list[str], indexed: bool) -> None:
        assert self._sites is not None
        try:
            unknown = await self._sites.unknown(set(site_ids))
        except Exception as exc:
            log.warning("sites_unavailable", error=type(exc).__name__)
            raise unavailable("Sites cannot be checked right now.", self._retry_after) from exc
        if unknown:
            details = [
                ErrorDetail(f"{i}.site_id" if indexed else "site_id", f"no site '{site}'")
                for i, site in enumerate(site_ids)
                if site in unknown
            ]
            raise TapiocaError(
                404,
                "site_not_found",
                f"Unknown site(s): {', '.join(sorted(unknown))}.",
                details[:100],
            )

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

    async def accept_one(self, body: bytes, client: Client, now: datetime | None = None) -> str:
        ctx = await self._context(client, now or datetime.now(UTC))
        try:
            event = decode_one(body)
            encoded = encode_valid([event], ctx, indexed=False, nul_possible=_nul_possible(body))
            sites = [event.site_id]
        except GiveUp:
            raw = parse_one(body)
            encoded = encode_events([raw], ctx, indexed=False)
            sites = [raw["site_id"]]  # valid by now
        if self._sites is not None:
            await self._check_sites(sites, indexed=False)
        await self._publish([payload for _, payload in encoded], "event")
        return encoded[0][0]

    async def accept_batch(
        self, body: bytes, client: Client, now: datetime | None = None
    ) -> list[str]:
        ctx = await self._context(client, now or datetime.now(UTC))
        try:
            events = decode_batch(body)
            ensure_batch_size(len(events), self._max_events)
            encoded = encode_valid(events, ctx, indexed=True, nul_possible=_nul_possible(body))
            sites = [event.site_id for event in events]
        except GiveUp:
            raw = parse_batch(body)
            ensure_batch_size(len(raw), self._max_events)
            encoded = encode_events(raw, ctx, indexed=True)
            sites = [item["site_id"] for item in raw]  # all valid by now
        if self._sites is not None:
            await self._check_sites(sites, indexed=True)
        await self._publish([payload for _, payload in encoded], "events")
        return [event_id for event_id, _ in encoded]
