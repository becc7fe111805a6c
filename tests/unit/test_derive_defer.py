"""Derive runs wait while the worker has a backlog of writes, for a bounded time (on a
clock the test moves: no waiting on the wall clock)."""

from __future__ import annotations

import asyncio

import pytest

from tapioca.derive import jobs


class StepClock:
    """A clock that moves only when paused: each pause moves it by what was asked (or
    not at all once ``stop`` is set)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.pauses: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def pause(self, seconds: float, stop: asyncio.Event) -> None:
        self.pauses.append(seconds)
        if not stop.is_set():
            self.now += seconds


async def test_no_backlog_no_wait() -> None:
    clock = StepClock()
    await jobs.defer(lambda: False, asyncio.Event(), clock)
    assert clock.pauses == []


async def test_waits_while_busy_then_goes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "MAX_DEFER_S", 5.0)
    clock = StepClock()
    started = clock.now
    await jobs.defer(lambda: clock.now < started + 0.275, asyncio.Event(), clock)
    assert clock.pauses == [0.05] * 6  # busy for 275 ms: six looks 50 ms apart, then it goes
    assert clock.now - started == pytest.approx(0.3)


async def test_waits_at_most_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "MAX_DEFER_S", 0.3)
    clock = StepClock()
    started = clock.now
    await jobs.defer(lambda: True, asyncio.Event(), clock)
    waited = clock.now - started
    assert 0.3 - 1e-9 <= waited <= 0.35 + 1e-9  # the bound, or the look that crosses it


async def test_stop_ends_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "MAX_DEFER_S", 30.0)
    clock = StepClock()
    stop = asyncio.Event()
    looks = 0

    def busy() -> bool:
        nonlocal looks
        looks += 1
        if looks == 3:
            stop.set()
        return True

    await jobs.defer(busy, stop, clock)
    assert looks == 3 and len(clock.pauses) == 2  # the look after stop is the last
