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
finish (what is left is a suffix of the steps), so the furthest advance is the best. A
start later than another one's moment is tried only when an event lies beyond the
earlier try's window and within its own: any way through from it using earlier events
is also a way from the earlier start.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby

from tapioca.errors import invalid_parameter

MAX_STEPS = 10
MAX_WINDOW = timedelta(days=90)
# What parse_steps and parse_window take, as /openapi.json states it: 2 to MAX_STEPS
# steps separated by commas, each with a character other than a space, none with NUL;
# a window of at most 90 days in minutes, hours or days.
_PART = r"[^,\x00]*[^,\s\x00][^,\x00]*"
STEPS_PATTERN = rf"^{_PART}(?:,{_PART}){{1,{MAX_STEPS - 1}}}$"
WINDOW_PATTERN = (
    r"^(?:(?:[1-9][0-9]{0,4}|1[01][0-9]{4}|12[0-8][0-9]{3}|129[0-5][0-9]{2}|129600)m"
    r"|(?:[1-9][0-9]{0,2}|1[0-9]{3}|20[0-9]{2}|21[0-5][0-9]|2160)h"
    r"|(?:[1-9]|[1-8][0-9]|90)d)$"
)
_WINDOW = re.compile(r"^([1-9][0-9]{0,5})([mhd])$")
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
    if "\x00" in text:
        raise invalid_parameter("steps", "a step holds no NUL character")
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
    mask: int  # bit k: the event matches step k (``mask_of``)
    starts: bool  # an event inside the range: a step-1 one may start a try


def mask_of(steps: Sequence[Step], event_type: str, path: str | None) -> int:
    """The steps an event matches, as bits (the reports compute it in SQL)."""
    return sum(1 << k for k, step in enumerate(steps) if step.matches(event_type, path))


def _matched(first: int, count: int, masks: Sequence[int]) -> int:
    """How many of the ``count`` steps from step ``first`` on can go to distinct events
    (``masks``: the steps each one matches, one moment: any order), from the first: a
    bipartite matching grown a step at a time."""
    owner: dict[int, int] = {}  # event index → step

    def place(step: int, seen: set[int]) -> bool:
        for i, mask in enumerate(masks):
            if i in seen or not mask >> step & 1:
                continue
            seen.add(i)
            if i not in owner or place(owner[i], seen):
                owner[i] = step
                return True
        return False

    for k in range(count):
        if not place(first + k, set()):
            return k
    return count


def _try(
    n: int, moments: list[tuple[datetime, list[int]]], at: int, start: int, end: datetime
) -> int:
    """The furthest of ``n`` steps a try from the event ``start`` (its index in moment
    ``at``) reaches; ``moments``: (time, the steps each event matches)."""
    reached = 1
    for m in range(at, len(moments)):
        ts, masks = moments[m]
        if ts > end or reached == n:
            break
        if m == at:
            masks = masks[:start] + masks[start + 1 :]
        if len(masks) == 1:  # one event: at most one step
            reached += masks[0] >> reached & 1
        elif masks:
            reached += _matched(reached, n - reached, masks)
    return reached


def furthest(n: int, hits: Sequence[Hit], window: timedelta) -> tuple[int, Hit | None]:
    """The furthest of ``n`` steps the user's best try reaches (0: no try) and the start
    of that try (the earliest of the best); ``hits`` in time order."""
    moments: list[tuple[datetime, list[int]]] = []
    events: list[list[Hit]] = []
    for ts, group in groupby(hits, key=lambda h: h.ts):
        found = list(group)
        moments.append((ts, [h.mask for h in found]))
        events.append(found)
    # a try from a later start can only go further than one from an earlier moment with
    # events after that one's window: anything before it, the earlier start could use
    later = [ts for ts, masks in moments if any(m >> 1 for m in masks)]
    best, best_start = 0, None
    tried: datetime | None = None  # the window's end of the last try of an earlier moment
    for at, (ts, masks) in enumerate(moments):
        end, last = ts + window, tried
        for i, hit in enumerate(events[at]):
            if not hit.starts or not masks[i] & 1:
                continue
            if last is not None:
                k = bisect_right(later, last)
                if k == len(later) or later[k] > end:
                    continue
            tried = end
            reached = _try(n, moments, at, i, end)
            if reached > best:
                best, best_start = reached, hit
                if best == n:
                    return best, best_start
    return best, best_start
