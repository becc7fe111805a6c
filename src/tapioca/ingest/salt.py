"""The daily salt of cookieless visitor ids (rotates at midnight UTC, never stored with events)."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import date

SaltSource = Callable[[date], Awaitable[bytes]]


class SaltProvider:
    def __init__(self, source: SaltSource, fixed: str | None = None) -> None:
        self._source = source
        self._fixed = fixed
        self._cache: tuple[date, bytes] | None = None

    async def salt_for(self, day: date) -> bytes:
        if self._cache is not None and self._cache[0] == day:
            return self._cache[1]
        if self._fixed is not None:
            salt = hashlib.blake2b(f"{self._fixed}|{day.isoformat()}".encode()).digest()
        else:
            salt = await self._source(day)
        self._cache = (day, salt)
        return salt
