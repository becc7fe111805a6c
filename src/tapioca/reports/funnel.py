"""Funnel steps and how far one user's events go through them (metrics.md, Product
metrics, Funnel): pure logic, the queries are in reports/product.py.

A step is an event type, or a page path when it starts with ``/`` (a ``page_view`` of
that path). A try starts at a step-1 event in the range; steps 2..n follow in order, each
at or after the previous one in time, within the window after the try's start, each on
an event of its own (one event is never two steps, though it may match several). The
user reaches the furthest step of their best try.

Within one moment the order of events is free, so the search walks the user's events a
moment at a time and, at each, advances as far as a matching of the next steps to that
moment's unused events allows: being further at a moment never leaves fewer ways to
finish (what is left is a suffix of the steps), so the furthest advance is the best.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby

from tapioca.errors import invalid_parameter

MAX_STEPS = 10
MAX_WINDOW = timedelta(days=90)
_WINDOW = re.compile(r"^([1-9][0-9]{0,4})([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
PAGE_VIEW = "page_view"


@dataclass(frozen=True, slots=True)
class Step:
    text: str  # as asked

    @property
    def path(self) -> str | None:
        return self.text if self.text.startswith("/") else None

    def matches(self, event_type: str, path: str | None) -> bool:
        if self.path is not None:
            return event_type == PAGE_VIEW and path == self.path
        return event_type == self.text


def parse_steps(text: str) -> list[Step]:
    """``page_view,/cart,purchase`` → steps; 2 to MAX_STEPS of them."""
    steps = [Step(part.strip()) for part in text.split(",")]
    if any(not s.text for s in steps):
        raise invalid_parameter("steps", "a step is an event type or a path; one is empty")
    if not 2 <= len(steps) <= MAX_STEPS:
        raise invalid_parameter("steps", f"from 2 to {MAX_STEPS} steps, separated by commas")
    if any(len(s.text) > 2048 for s in steps):
        raise invalid_parameter("steps", "a step is at most 2048 characters")
    return steps


def parse_window(text: str) -> timedelta:
    """``30m``, ``24h``, ``7d`` → the window; at most MAX_WINDOW."""
    match = _WINDOW.match(text)
    if match is None:
        raise invalid_parameter("window", "a number and a unit: 30m, 24h or 7d")
    window = timedelta(**{_UNITS[match[2]]: int(match[1])})
    if window > MAX_WINDOW:
        raise invalid_parameter("window", "at most 90 days")
    return window


@dataclass(frozen=True, slots=True)
class Hit:
    """One event of a user that matches some step."""

    ts: datetime
    event_id: str
    event_type: str
    path: str | None
    starts: bool  # a step-1 event inside the range: it may start a try


def _matched(steps: Sequence[Step], events: Sequence[Hit]) -> int:
    """How many of ``steps``, from the first, can go to distinct ``events`` (one moment:
    any order): a bipartite matching grown a step at a time."""
    owner: dict[int, int] = {}  # event index → step index

    def place(step: int, seen: set[int]) -> bool:
        for i, e in enumerate(events):
            if i in seen or not steps[step].matches(e.event_type, e.path):
                continue
            seen.add(i)
            if i not in owner or place(owner[i], seen):
                owner[i] = step
                return True
        return False

    for k in range(len(steps)):
        if not place(k, set()):
            return k
    return len(steps)


def _try(
    steps: Sequence[Step], moments: list[list[Hit]], at: int, start: Hit, end: datetime
) -> int:
    """The furthest step a try from ``start`` (in moment ``at``) reaches."""
    reached = 1
    for n, moment in enumerate(moments[at:]):
        if moment[0].ts > end or reached == len(steps):
            break
        unused = [e for e in moment if e is not start] if n == 0 else moment
        reached += _matched(steps[reached:], unused)
    return reached


def furthest(
    steps: Sequence[Step], hits: Sequence[Hit], window: timedelta
) -> tuple[int, Hit | None]:
    """The furthest step of the user's best try (0: no try) and the start of that try
    (the earliest of the best); ``hits`` in time order."""
    moments = [list(group) for _, group in groupby(hits, key=lambda h: h.ts)]
    best, best_start = 0, None
    for at, moment in enumerate(moments):
        for start in moment:
            if not start.starts or not steps[0].matches(start.event_type, start.path):
                continue
            reached = _try(steps, moments, at, start, start.ts + window)
            if reached > best:
                best, best_start = reached, start
                if best == len(steps):
                    return best, best_start
    return best, best_start
