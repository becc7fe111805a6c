"""Builds the parts a process needs from the settings (store, queue, services)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from tapioca.auth.access import Gate, PrimaryFirst, credential_of_ingest
from tapioca.auth.keys import KeyRing, is_key
from tapioca.auth.ratelimit import RateLimits
from tapioca.auth.secret import SecretMissing, instance_secret
from tapioca.auth.tokens import TokenSigner, digest
from tapioca.config import Mode, Settings
from tapioca.enrich.device import warm_up
from tapioca.ingest.origins import OriginCheck
from tapioca.ingest.salt import SaltProvider
from tapioca.ingest.service import IngestRequest, IngestService, Limit
from tapioca.orders.source import Sealer
from tapioca.queue.base import EventQueue
from tapioca.queue.inprocess import GroupCommitQueue
from tapioca.queue.redis_stream import SALT_KEY, StreamProducer, connect
from tapioca.reports.executor import Executor
from tapioca.scheduler.jobs import Context
from tapioca.sites.catalog import SiteCatalog
from tapioca.sites.limits import LocalAllowance, NewSiteLimits, RedisAllowance, SiteAllowance
from tapioca.sites.service import SiteMaker
from tapioca.storage import ReadStore, Store, open_reader, open_store
from tapioca.storage.duckdb_store import DuckDBStore
from tapioca.storage.read_router import ReadRouter
from tapioca.worker.writer import EventWriter


class ConfigurationError(Exception):
    pass


@dataclass
class Runtime:
    settings: Settings
    store: Store
    queue: EventQueue
    ingest: IngestService
    reader: ReadStore
    reports: Executor
    signer: TokenSigner
    gate: Gate
    limits: RateLimits
    router: ReadRouter | None = None
    refresh_ttl: timedelta = field(default=timedelta(days=30))
    sealer: Sealer | None = None  # order sources' credentials

    def jobs(self) -> Context:
        """What the scheduled jobs (the order batch, forecasts) work with."""
        assert self.sealer is not None
        return Context(self.store, self.reader, self.sealer, self.settings.forecast_deadline_s)

    async def close(self) -> None:
        await self.gate.keys.close()
        await self.queue.close()
        await self.limits.close()
        if self.router is not None:
            await self.router.close()
        await self.store.close()


def build_runtime(settings: Settings) -> Runtime:
    try:
        secret = instance_secret(settings)
    except SecretMissing as exc:
        raise ConfigurationError(str(exc)) from exc
    store = open_store(settings)
    queue: EventQueue
    if settings.mode is Mode.PRODUCTION:
        if not settings.redis_url:
            raise ConfigurationError("production mode needs TAPIOCA_REDIS_URL as well")
        client = connect(settings.redis_url)
        queue = StreamProducer(client, settings.stream, require_aof=settings.redis_require_aof)

        async def redis_salt(day: date) -> bytes:
            key = f"{SALT_KEY}{day.isoformat()}"
            await client.set(key, os.urandom(32), nx=True, ex=2 * 86400)
            value: Any = await client.get(key)
            assert isinstance(value, bytes)
            return value

        salts = SaltProvider(redis_salt, settings.visitor_salt)
        allowance: SiteAllowance = RedisAllowance(client, settings.max_new_sites_per_minute)
    else:
        assert isinstance(store, DuckDBStore)
        warm_up()  # this process enriches the events it commits
        writer = EventWriter(store)

        async def commit(records: list[bytes]) -> None:
            await writer.write_records(records)

        queue = GroupCommitQueue(commit, max_events=max(settings.batch_max_events, 10_000))
        salts = SaltProvider(store.salt_for, settings.visitor_salt)
        allowance = LocalAllowance(settings.max_new_sites_per_minute)
    router = open_reader(settings) if settings.mode is Mode.PRODUCTION else None
    reader: ReadStore = router if router is not None else store
    sites = SiteCatalog(reader)
    signer = TokenSigner(secret, timedelta(minutes=settings.access_token_minutes))
    checks = store if router is None else PrimaryFirst(store, router)  # reads of access checks
    gate = Gate(checks, signer, KeyRing(store, reads=checks), sites)

    async def authorize(request: IngestRequest, site_ids: frozenset[str]) -> None:
        await gate.send(request.headers, request.ip, site_ids)

    origins = OriginCheck(
        sites, any_by_default=settings.cors_any_origin, new_sites=settings.creates_sites
    )
    limits = NewSiteLimits(settings.max_new_sites_per_request, settings.max_new_sites_per_minute)
    rate_limits = RateLimits.from_settings(settings)
    ingest = IngestService(
        queue,
        salts,
        max_events=settings.max_events_per_request,
        max_event_bytes=settings.max_event_bytes,
        max_future_seconds=settings.max_future_seconds,
        retry_after_seconds=settings.retry_after_seconds,
        sites=None if settings.creates_sites else sites,
        make_sites=SiteMaker(store, limits, allowance).ensure if settings.creates_sites else None,
        origins=origins,
        authorize=authorize,
        limits=ingest_limits(rate_limits, sent_key) if rate_limits.counts_ingest else None,
    )
    runtime = Runtime(
        settings, store, queue, ingest, reader, Executor(reader), signer, gate, rate_limits,
        router, refresh_ttl=timedelta(days=settings.refresh_token_days), sealer=Sealer(secret),
    )  # fmt: skip
    return runtime


def sent_key(request: IngestRequest) -> str | None:
    """Which write key a request's events count against: the key it sends (one that is
    not valid never gets this far), by its digest."""
    credential = credential_of_ingest(request.headers)
    if credential is None or not is_key(credential):
        return None
    return digest(credential)[:24]


def ingest_limits(rate_limits: RateLimits, key_id: Callable[[IngestRequest], str | None]) -> Limit:
    """The ingest service's rate limits: a request's events per client address, per site
    named, and per write API key (the identifier ``key_id`` finds in the request)."""

    async def limit(request: IngestRequest, counts: Mapping[str, int]) -> None:
        await rate_limits.ingest(request.ip, counts, key_id(request))

    return limit
