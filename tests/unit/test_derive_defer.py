"""Derive runs wait while the worker has a backlog of writes, for a bounded time."""

from __future__ import annotations

import asyncio
import time

import pytest

from tapioca.derive import jobs


async def test_no_backlog_no_wait() -> None:
    started = time.monotonic()
    await jobs._defer(lambda: False, asyncio.Event())
    assert time.monotonic() - started < 0.05


async def test_waits_while_busy_then_goes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "MAX_DEFER_S", 5.0)
    until = time.monotonic() + 0.3
    started = time.monotonic()
    await jobs._defer(lambda: time.monotonic() < until, asyncio.Event())
    waited = time.monotonic() - started
    assert 0.3 <= waited < 1.0


async def test_waits_at_most_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "MAX_DEFER_S", 0.3)
    started = time.monotonic()
    await jobs._defer(lambda: True, asyncio.Event())
    waited = time.monotonic() - started
    assert 0.3 <= waited < 1.0


async def test_stop_ends_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "MAX_DEFER_S", 30.0)
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.1, stop.set)
    started = time.monotonic()
    await jobs._defer(lambda: True, stop)
    assert time.monotonic() - started < 1.0
