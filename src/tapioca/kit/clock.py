"""Time for the loops that wait: the system's, or one a test moves by hand."""

from __future__ import annotations

import asyncio
import contextlib
import time
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
