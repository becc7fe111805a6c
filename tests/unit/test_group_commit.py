"""The embedded store's group commit tells the derive job when a burst is under way."""

from __future__ import annotations

import asyncio

from tapioca.queue.inprocess import QUIET_S, GroupCommitQueue


async def test_busy_while_requests_wait_or_commit_and_until_quiet() -> None:
    committed: list[list[bytes]] = []
    release = asyncio.Event()

    async def commit(records: list[bytes]) -> None:
        await release.wait()
        committed.append(records)

    queue = GroupCommitQueue(commit)
    queue.start()
    try:
        assert not queue.busy()  # nothing sent yet
        request = asyncio.create_task(queue.publish([b"a", b"b"]))
        await asyncio.sleep(0.2)  # far longer than QUIET_S: still being committed
        assert not request.done()
        assert queue.busy()
        release.set()
        await request
        assert committed == [[b"a", b"b"]]
        assert queue.busy()  # the next request of a burst may be on its way
        await asyncio.sleep(QUIET_S * 2)
        assert not queue.busy()
    finally:
        await queue.close()
