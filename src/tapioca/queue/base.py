"""What ingest needs from a queue: hold a request's events durably, or refuse."""

from __future__ import annotations

from typing import Protocol


class EventQueue(Protocol):
    async def publish(self, records: list[bytes]) -> None:
        """Return only once the records are durable; raise QueueUnavailable otherwise."""

    async def lag(self) -> int:
        """Events (or entries) accepted but not yet written to the store."""

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
