"""Rate limits: events per client address, site and write API key; report requests per
reader; failed sign-ins per account and per client address.

Each limit is a setting in the notation of the ``limits`` library (config.py), counted
with its fixed-window strategy: one counter per limit and subject, added to with one
``INCRBY`` (a Lua script in Redis) whatever the cost of the request. The moving window
keeps one entry per unit of cost: a batch of 10,000 events would push 10,000 entries.
The price of the fixed window is a burst of up to twice a limit across the edge of two
windows.

In production the counters are in Redis (``TAPIOCA_REDIS_URL``, keys under
``tapioca:limits``), shared by every API process; embedded, in the process. A limit set
to "none" is never counted. When Redis cannot be reached the limits let every request
through (they never take ingest or reports down), log one warning, and ask Redis again
after a pause.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import redis.asyncio as aioredis
from limits import RateLimitItem
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError

from tapioca import metrics
from tapioca.config import Mode, Settings, rate_limit_items
from tapioca.errors import ErrorDetail, TapiocaError
from tapioca.logging import get_logger

log = get_logger(__name__)

KEY_PREFIX = "tapioca:limits"
REDIS_TIMEOUT_S = 0.5  # a limit waits no longer than this for Redis
PAUSE_S = 5.0  # after Redis failed, requests pass uncounted this long before it is asked again
# what the storage raises when Redis is down or too slow (RedisError comes wrapped)
STORAGE_FAILURES = (StorageError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class Rule:
    """One setting: its limits (none: off), the namespace of its counters, and the words
    of its refusal: the field a detail names, what is counted, and whose."""

    items: tuple[RateLimitItem, ...]
    name: str
    field: str
    counted: str
    whose: str

    def refusal(self, item: RateLimitItem, retry_after: int, subject: str = "") -> TapiocaError:
        allowed = f"at most {item.amount} {self.counted} per {_window(item)}"
        message = f"Too many {self.counted} {self.whose}{subject}: {allowed}."
        detail = ErrorDetail(self.field, f"{allowed} {self.whose}{subject}")
        headers = {"Retry-After": str(retry_after)}
        return TapiocaError(429, "rate_limited", message, [detail], headers)


def _window(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"


def rule(setting: str, name: str, field: str, counted: str, whose: str) -> Rule:
    return Rule(tuple(rate_limit_items(setting)), name, field, counted, whose)


class Count(NamedTuple):
    """``cost`` counted against the counter of ``item`` for ``subject`` under ``rule``."""

    rule: Rule
    item: RateLimitItem
    subject: str
    cost: int
    shown: str = ""  # the subject as a refusal names it (a site); else the rule's words do

    @property
    def ids(self) -> tuple[str, str]:
        return self.rule.name, self.subject


class RateLimits:
    """The rate limits of one process, on a storage of the ``limits`` library (``pool``:
    the Redis connections it uses, closed with it)."""

    def __init__(
        self,
        storage: Storage,
        settings: Settings,
        *,
        pool: aioredis.ConnectionPool | None = None,
        pause_s: float = PAUSE_S,
    ) -> None:
        self._storage = storage
        self._pool = pool
        self._limiter = FixedWindowRateLimiter(storage)
        self._pause_s = pause_s
        self._down_until: float | None = None  # Redis failed: uncounted until then
        address = "from this client address"
        self._ip = rule(settings.rate_limit_ingest_ip, "ingest-ip", "ip", "events", address)
        self._site = rule(settings.rate_limit_ingest_site, "ingest-site", "site_id", "events", "")
        key = "with this API key"
        self._key = rule(settings.rate_limit_ingest_key, "ingest-key", "key", "events", key)
        reports = settings.rate_limit_reports
        self._reports = {
            kind: rule(reports, "reports", kind, "report requests", whose)
            for kind, whose in [("account", "of this account"), ("key", key), ("ip", address)]
        }
        failures = "failed sign-ins"
        self._sign_in_account = rule(
            settings.rate_limit_sign_in_account, "sign-in-account", "email", failures,
            "for this account",
        )  # fmt: skip
        self._sign_in_ip = rule(
            settings.rate_limit_sign_in_ip, "sign-in-ip", "ip", failures, address
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        """Counters in Redis in production, else in this process."""
        if settings.mode is Mode.PRODUCTION and settings.redis_url:
            pool = redis_pool(settings.redis_url)
            return cls(redis_storage(pool), settings, pool=pool)
        return cls(MemoryStorage(), settings)

    @property
    def counts_ingest(self) -> bool:
        """Whether some ingest limit is on (else ``ingest`` need not be asked)."""
        return any(limit.items for limit in (self._ip, self._site, self._key))

    async def ingest(
        self, ip: str, events_per_site: Mapping[str, int], key_id: str | None = None
    ) -> None:
        """Counts a request's events against its client address, its write API key (when
        it names one) and each site it names; 429 ``rate_limited`` when one of them is
        over, and then nothing of the request counts."""
        total = sum(events_per_site.values())
        if total == 0:
            return
        counts = [Count(self._ip, item, ip, total) for item in self._ip.items]
        if key_id is not None:
            counts += [Count(self._key, item, key_id, total) for item in self._key.items]
        for site, events in events_per_site.items():
            shown = f"for site '{site}'"
            counts += [Count(self._site, item, site, events, shown) for item in self._site.items]
        await self._take(counts)

    async def reports(self, who: str) -> None:
        """Counts a report request of ``who`` ("account:<id>", "key:<id>", "ip:<address>");
        429 ``rate_limited`` when it is over."""
        kind = who.partition(":")[0]
        if kind not in self._reports:
            raise ValueError(f"a reader is one of {', '.join(self._reports)}, not {who!r}")
        limit = self._reports[kind]
        await self._take([Count(limit, item, who, 1) for item in limit.items])

    async def sign_in_allowed(self, email: str, ip: str) -> None:
        """429 ``rate_limited`` when the failed sign-ins of the account or of the client
        address are at their limit; counts nothing."""
        counts = self._sign_in_counts(email, ip)
        if not counts or self._paused():
            return
        try:
            for count in counts:
                if not await self._limiter.test(count.item, *count.ids):
                    raise await self._refusal(count)
        except STORAGE_FAILURES as exc:
            self._failed(exc)
            return
        self._working()

    async def sign_in_failed(self, email: str, ip: str) -> None:
        """Counts one failed sign-in of the account and of the client address."""
        counts = self._sign_in_counts(email, ip)
        if not counts or self._paused():
            return
        try:
            for count in counts:
                await self._limiter.hit(count.item, *count.ids)
        except STORAGE_FAILURES as exc:
            self._failed(exc)
            return
        self._working()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
        if isinstance(self._storage, MemoryStorage):
            timer = self._storage.timer  # its sweep of expired counters
            if timer is not None and not timer.done():
                timer.cancel()

    def _sign_in_counts(self, email: str, ip: str) -> list[Count]:
        account = self._sign_in_account
        counts = [Count(account, item, email.casefold(), 1) for item in account.items]
        return counts + [Count(self._sign_in_ip, item, ip, 1) for item in self._sign_in_ip.items]

    async def _take(self, counts: Sequence[Count]) -> None:
        """Each count, or none: the first over its limit gives back those counted before
        it (and itself), then raises its 429. One storage call a count when all fit."""
        if not counts or self._paused():
            return
        taken: list[Count] = []
        try:
            for count in counts:
                taken.append(count)
                if not await self._limiter.hit(count.item, *count.ids, cost=count.cost):
                    await self._give_back(taken)
                    raise await self._refusal(count)
        except STORAGE_FAILURES as exc:
            self._failed(exc)
            return
        self._working()

    async def _give_back(self, taken: Sequence[Count]) -> None:
        for count in taken:
            key = count.item.key_for(*count.ids)
            await self._storage.incr(key, count.item.get_expiry(), amount=-count.cost)

    async def _refusal(self, count: Count) -> TapiocaError:
        stats = await self._limiter.get_window_stats(count.item, *count.ids)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        metrics.RATE_LIMITED.labels(count.rule.name).inc()
        return count.rule.refusal(count.item, retry_after, count.shown)

    def _paused(self) -> bool:
        return self._down_until is not None and time.monotonic() < self._down_until

    def _failed(self, exc: Exception) -> None:
        if self._down_until is None:
            cause = exc.storage_error if isinstance(exc, StorageError) else exc
            log.warning("rate_limits_unavailable", error=type(cause).__name__)
        self._down_until = time.monotonic() + self._pause_s

    def _working(self) -> None:
        if self._down_until is not None:
            self._down_until = None
            log.info("rate_limits_restored")


def redis_pool(url: str) -> aioredis.ConnectionPool:
    """Connections to the Redis at ``url`` that give up soon: a limit waits no longer."""
    return aioredis.ConnectionPool.from_url(
        url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
    )


def redis_storage(pool: aioredis.ConnectionPool) -> RedisStorage:
    """The ``limits`` library's async Redis storage over redis-py (no other client), on
    ``pool``. It is handed a pool made by redis-py from the URL, as the queue's client is,
    rather than the URL: ``limits`` takes "async+redis://host:port" only with a port, and
    closes nothing."""
    options: dict[str, Any] = {"connection_pool": pool}
    return RedisStorage(
        "async+redis://",
        implementation="redispy",
        key_prefix=KEY_PREFIX,
        wrap_exceptions=True,
        **options,
    )
