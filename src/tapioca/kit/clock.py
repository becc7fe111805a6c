"""Time for the loops that wait: the system's, or one a test moves by hand; and moments
as answers write them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    async def pause(self, seconds: float, stop: asyncio.Event) -> None:
        """Wait ``seconds``, or less when ``stop`` is set meanwhile."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    async def pause(self, seconds: float, stop: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


SYSTEM_CLOCK = SystemClock()


def utc_text(moment: datetime | None) -> str | None:
    """An aware moment as answers write it: ISO 8601 in UTC with a Z (None stays None)."""
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
