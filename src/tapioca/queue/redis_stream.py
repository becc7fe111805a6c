"""Redis Streams: the producer used by ingest, and the consumer-group client of the worker."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tapioca.errors import QueueUnavailable
from tapioca.logging import get_logger
from tapioca.model.event import RECORD_VERSION
from tapioca.queue.record import pack

log = get_logger(__name__)

PAYLOAD = b"e"
COUNT = b"n"
VERSION = b"v"  # of the entry's records (queue/record.py); absent: 1
_VERSIONED: dict[Any, Any] = {VERSION: RECORD_VERSION} if RECORD_VERSION > 1 else {}
STATS_KEY = "tapioca:stats"
SALT_KEY = "tapioca:salt:"


def connect(url: str, *, timeout_s: float = 2.0) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=10,
        decode_responses=False,
    )


class StreamProducer:
    """XADD one entry per request; the entry holds the request's records (one
    MessagePack array, tapioca.queue.record).

    Requests that arrive while an XADD is on its way wait for the next one, and all of
    them go together in one pipeline: each request still gets its own entry and its
    answer only once Redis has acknowledged that entry, and a busy API process makes
    one round trip for many requests instead of one each.
    """

    def __init__(self, client: aioredis.Redis, stream: str, *, require_aof: bool) -> None:
        self.redis = client
        self._stream = stream
        self._require_aof = require_aof
        self._durable_checked = False
        self._waiting: list[tuple[bytes, int, asyncio.Future[None]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def _check_durable(self) -> None:
        if self._durable_checked or not self._require_aof:
            return
        try:
            config: dict[Any, Any] = await self.redis.config_get("appendonly")
        except ResponseError:  # CONFIG disabled (managed Redis): trust the operator
            log.warning("redis_config_unreadable", check="appendonly")
            self._durable_checked = True
            return
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise QueueUnavailable(f"Redis is unreachable: {type(exc).__name__}") from exc
        if config.get(b"appendonly", config.get("appendonly")) not in (b"yes", "yes"):
            raise QueueUnavailable(
                "Redis does not persist (appendonly is off); turn AOF on or set "
                "TAPIOCA_REDIS_REQUIRE_AOF=false"
            )
        self._durable_checked = True

    async def publish(self, records: list[bytes]) -> None:
        """Return once Redis holds the records (else raise QueueUnavailable)."""
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((pack(records), len(records), done))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_waiting())
        await done

    async def _send_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            pipe = self.redis.pipeline(transaction=False)
            for payload, count, _ in batch:
                pipe.xadd(self._stream, {PAYLOAD: payload, COUNT: count, **_VERSIONED})
            try:
                await self._check_durable()
                results: list[Any] = await pipe.execute(raise_on_error=False)
            except Exception as exc:  # every request of the batch hears why
                results = [exc] * len(batch)
            for (_, _, done), result in zip(batch, results, strict=True):
                if done.done():  # the request went away meanwhile
                    continue
                if isinstance(result, Exception):
                    done.set_exception(_unavailable(result))
                else:
                    done.set_result(None)

    async def lag(self) -> int:
        return await stream_lag(self.redis, self._stream)

    async def ping(self) -> None:
        await self.redis.ping()
        await self._check_durable()

    async def close(self) -> None:
        await self.redis.aclose()


def _unavailable(exc: Exception) -> QueueUnavailable:
    if isinstance(exc, QueueUnavailable):
        return exc
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError):
        return QueueUnavailable(f"Redis is unreachable: {type(exc).__name__}")
    if not isinstance(exc, RedisError):
        log.error("publish_failed", error=type(exc).__name__, exc_info=exc)
    return QueueUnavailable(f"Redis refused the event: {type(exc).__name__}")


async def stream_lag(client: aioredis.Redis, stream: str) -> int:
    """Entries not yet acknowledged: never delivered (lag) plus delivered but pending."""
    try:
        groups = await client.xinfo_groups(stream)
    except ResponseError:  # no stream yet
        return 0
    if not groups:
        return int(await client.xlen(stream))
    total = 0
    for group in groups:
        lag = group.get("lag")
        if lag is None:  # unknown after trims: count the undelivered entries, a page at a time
            lag, start = 0, b"(" + group["last-delivered-id"]
            while page := await client.xrange(stream, min=start, max="+", count=500):
                lag += len(page)
                start = b"(" + cast(bytes, page[-1][0])
        total = max(total, int(lag) + int(group.get("pending") or 0))
    return total


@dataclass(frozen=True, slots=True)
class Entry:
    entry_id: bytes
    payload: bytes
    deliveries: int = 1
    version: int = 1  # of its records


def _version(fields: dict[bytes, bytes]) -> int:
    text = fields.get(VERSION, b"1")
    return int(text) if text.isdigit() else 1


def _entries(raw: Sequence[Any], deliveries: int = 1) -> list[Entry]:
    out = []
    for entry_id, fields in raw:
        if fields is None:  # deleted while pending
            out.append(Entry(entry_id, b"", deliveries))
        else:
            out.append(Entry(entry_id, fields.get(PAYLOAD, b""), deliveries, _version(fields)))
    return out


class StreamConsumer:
    """The worker's side of the consumer group."""

    def __init__(
        self, client: aioredis.Redis, stream: str, group: str, consumer: str, dead: str
    ) -> None:
        self.redis = client
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.dead = dead

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read_new(self, count: int, block_ms: int) -> list[Entry]:
        reply: Any = await self.redis.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms
        )
        if not reply:
            return []
        return _entries(reply[0][1])

    async def read_own_pending(self, count: int, after: bytes = b"0") -> tuple[list[Entry], bytes]:
        """Entries delivered to this consumer and not acknowledged (after a restart or
        error), from the one after ``after``; and the id to read on from (``after`` when
        none is left)."""
        reply: Any = await self.redis.xreadgroup(
            self.group, self.consumer, {self.stream: after}, count=count
        )
        if not reply or not reply[0][1]:
            return [], after
        raw = reply[0][1]
        entries = [e for e in _entries(raw) if e.payload]
        counts = await self.delivery_counts([e.entry_id for e in entries])
        return [
            Entry(e.entry_id, e.payload, counts.get(e.entry_id, 1), e.version) for e in entries
        ], raw[-1][0]

    async def claim_stale(self, min_idle_ms: int, count: int) -> list[Entry]:
        """Take over entries left pending by a dead worker (XAUTOCLAIM)."""
        reply: Any = await self.redis.xautoclaim(
            self.stream, self.group, self.consumer, min_idle_ms, "0-0", count=count
        )
        claimed = reply[1]
        if not claimed:
            return []
        entries = _entries(claimed)
        counts = await self.delivery_counts([e.entry_id for e in entries])
        return [Entry(e.entry_id, e.payload, counts.get(e.entry_id, 1), e.version) for e in entries]

    async def delivery_counts(self, ids: list[bytes]) -> dict[bytes, int]:
        """Times each of this consumer's entries was delivered: one XPENDING over their span."""
        if not ids:
            return {}
        ordered = sorted(ids, key=_id_key)
        wanted = set(ids)
        info = await self.redis.xpending_range(
            self.stream,
            self.group,
            min=ordered[0],
            max=ordered[-1],
            count=len(ordered),
            consumername=self.consumer,
        )
        return {
            row["message_id"]: int(row["times_delivered"])
            for row in info
            if row["message_id"] in wanted
        }

    async def redeliver(self, entry_id: bytes) -> int:
        """Count one more delivery of an entry this worker keeps retrying; returns the count."""
        await self.redis.xclaim(self.stream, self.group, self.consumer, 0, [entry_id])
        return (await self.delivery_counts([entry_id])).get(entry_id, 1)

    async def ack(self, ids: list[bytes], stats: dict[str, float]) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.xack(self.stream, self.group, *ids)
        for key, value in stats.items():
            if value:
                if isinstance(value, float):
                    pipe.hincrbyfloat(STATS_KEY, key, value)
                else:
                    pipe.hincrby(STATS_KEY, key, int(value))
        await pipe.execute()

    async def dead_letter(self, entry_id: bytes, payload: bytes, reason: str) -> None:
        await self.redis.xadd(
            self.dead, {b"entry_id": entry_id, b"reason": reason.encode(), PAYLOAD: payload}
        )

    async def trim_acknowledged(self) -> None:
        """Drop entries every group has acknowledged; pending ones are never trimmed."""
        groups = await self.redis.xinfo_groups(self.stream)
        floor: bytes | None = None
        for group in groups:
            name = group["name"]
            summary = await self.redis.xpending(self.stream, name)
            candidate = summary["min"] if summary["pending"] else group["last-delivered-id"]
            if candidate is None:
                return
            if floor is None or _id_key(candidate) < _id_key(floor):
                floor = candidate
        if floor is not None and floor != b"0-0":
            await self.redis.xtrim(self.stream, minid=floor, approximate=False)


def _id_key(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)
