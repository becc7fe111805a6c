"""How many sites events may create: per request, and per minute across an instance.

The minute's allowance is a bucket of ``per_minute`` new sites that refills evenly (the
generic cell rate algorithm): at most ``per_minute`` sites in any 60 seconds, and a
client that used the bucket up gets room for one site every 60 / ``per_minute`` seconds.
A request takes room for all its new sites, or none. Embedded, the bucket is the
process's own (the one process of the instance); in production it is one Redis key that
every API process shares (one atomic script per request that names new sites).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis

from tapioca.errors import ErrorDetail, TapiocaError

WINDOW_S = 60.0
_SLACK = 1e-9  # float rounding: a full bucket's last site fits
NEW_SITES_KEY = "tapioca:new-sites"  # production: the instance's bucket (its "full at" time)
ECHOED = 3  # new site ids an error names, at most


@dataclass(frozen=True, slots=True)
class NewSiteLimits:
    per_request: int
    per_minute: int

    @property
    def request_cap(self) -> int:
        """A request may not name more new sites than a whole minute allows."""
        return min(self.per_request, self.per_minute)


def next_full_at(full_at: float, now: float, count: int, per_minute: int) -> tuple[float, float]:
    """The bucket after taking room for ``count`` sites at ``now``: (its new "full at"
    time, 0.0), or, when there is not room, (the old one, seconds until there is).
    ``full_at`` is when the bucket would be whole again (the past: it is)."""
    start = max(full_at, now)
    after = start + count * WINDOW_S / per_minute
    wait = after - now - WINDOW_S
    if wait > _SLACK:
        return full_at, wait
    return after, 0.0


class SiteAllowance(Protocol):
    async def take(self, count: int, now: float) -> float:
        """Take room for ``count`` new sites at ``now`` (Unix seconds): 0.0, or the
        seconds until there is room (nothing taken)."""
        ...


class LocalAllowance:
    """The bucket of this process."""

    def __init__(self, per_minute: int) -> None:
        self._per_minute = per_minute
        self._full_at = 0.0

    async def take(self, count: int, now: float) -> float:
        self._full_at, wait = next_full_at(self._full_at, now, count, self._per_minute)
        return wait


# next_full_at in Redis: the key holds the "full at" time; it expires once it has passed.
_TAKE = """
local now, count, per_minute = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local start = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
local after = start + count * window / per_minute
local wait = after - now - window
if wait > tonumber(ARGV[5]) then return tostring(wait) end
redis.call('SET', KEYS[1], string.format('%.6f', after), 'PX',
           math.ceil((after - now) * 1000) + 1000)
return '0'
"""


class RedisAllowance:
    """The bucket every process of an instance shares, in Redis."""

    def __init__(self, client: aioredis.Redis, per_minute: int, key: str = NEW_SITES_KEY) -> None:
        self._script = client.register_script(_TAKE)
        self._per_minute = per_minute
        self._key = key

    async def take(self, count: int, now: float) -> float:
        args: list[str | int] = [repr(now), count, self._per_minute, repr(WINDOW_S), repr(_SLACK)]
        wait = await self._script(keys=[self._key], args=args)
        return float(wait)


def too_many_new_sites(new: Sequence[str], message: str, retry_after: float = 0.0) -> TapiocaError:
    """429: the request names more new sites than may be made; a few of them are named
    (sorted), never all."""
    shown = ", ".join(f"'{site}'" for site in new[:ECHOED])
    more = f" and {len(new) - ECHOED} more" if len(new) > ECHOED else ""
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after else {}
    details = [ErrorDetail("site_id", f"new sites {shown}{more}")]
    return TapiocaError(429, "too_many_new_sites", message, details, headers)
