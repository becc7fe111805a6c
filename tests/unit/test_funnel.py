"""How far one user's events go through a funnel's steps (reports/funnel.py), on cases
made by hand: each asserts the furthest step of the best try, and where it starts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tapioca.errors import TapiocaError
from tapioca.reports.funnel import Hit, Step, furthest, mask_of, parse_steps, parse_window

T = datetime(2025, 11, 3, 12, tzinfo=UTC)
WEEK = timedelta(days=7)


Raw = tuple[int, str, str, str | None, bool]  # second, event type, event id, path, starts


def hit(second: int, kind: str, eid: str, path: str | None = None, starts: bool = True) -> Raw:
    return (second, kind, eid, path, starts)


def steps(*names: str) -> list[Step]:
    return [Step(n) for n in names]


def run(names: list[Step], raw: list[Raw], window: timedelta = WEEK) -> tuple[int, str | None]:
    hits = [Hit(T + timedelta(seconds=second), eid, mask_of(names, kind, path), starts)
            for second, kind, eid, path, starts in raw]  # fmt: skip
    hits.sort(key=lambda h: (h.ts, h.event_id))
    depth, start = furthest(len(names), hits, window)
    return depth, None if start is None else start.event_id


def test_steps_in_order() -> None:
    hits = [hit(0, "view", "a"), hit(5, "cart", "b"), hit(9, "buy", "c")]
    assert run(steps("view", "cart", "buy"), hits) == (3, "a")


def test_a_step_before_the_previous_one_does_not_count() -> None:
    hits = [hit(0, "cart", "b"), hit(5, "view", "a"), hit(9, "buy", "c")]
    assert run(steps("view", "cart", "buy"), hits) == (1, "a")


def test_steps_at_one_moment_follow_in_any_order() -> None:
    hits = [hit(0, "buy", "a"), hit(0, "cart", "b"), hit(0, "view", "c")]
    assert run(steps("view", "cart", "buy"), hits) == (3, "c")


def test_one_event_is_never_two_steps() -> None:
    assert run(steps("view", "view"), [hit(0, "view", "a")]) == (1, "a")
    assert run(steps("view", "view"), [hit(0, "view", "a"), hit(0, "view", "b")]) == (2, "a")
    assert run(steps("view", "view", "view"), [hit(0, "view", "a"), hit(3, "view", "b")]) == (
        2,
        "a",
    )


def test_an_event_that_matches_two_steps_goes_where_it_lets_the_try_go_furthest() -> None:
    # the page view of /cart is step 2 (a page_view) or step 3 (/cart); at the same
    # moment a plain page view can only be step 2
    hits = [hit(0, "signup", "a"), hit(5, "page_view", "y", "/cart"),
            hit(5, "page_view", "z", "/")]  # fmt: skip
    assert run(steps("signup", "page_view", "/cart"), hits) == (3, "a")


def test_the_window_counts_from_the_try_start() -> None:
    hits = [hit(0, "view", "a"), hit(3600, "cart", "b"), hit(7300, "buy", "c")]
    assert run(steps("view", "cart", "buy"), hits, timedelta(hours=2)) == (2, "a")
    assert run(steps("view", "cart", "buy"), hits, timedelta(seconds=7300)) == (3, "a")


def test_a_later_start_can_be_the_best_try() -> None:
    hits = [hit(0, "view", "a"), hit(10 * 86400, "view", "b"), hit(10 * 86400 + 5, "cart", "c")]
    assert run(steps("view", "cart"), hits) == (2, "b")


def test_only_events_in_the_range_start_a_try() -> None:
    hits = [hit(0, "view", "a", starts=False), hit(5, "cart", "b")]
    assert run(steps("view", "cart"), hits) == (0, None)


def test_a_path_step_is_a_page_view_of_that_path() -> None:
    hits = [hit(0, "page_view", "a", "/"), hit(5, "click", "b", "/pricing"),
            hit(7, "page_view", "c", "/pricing")]  # fmt: skip
    assert run(steps("/", "/pricing"), hits) == (2, "a")
    assert run(steps("/", "/pricing"), hits[:2]) == (1, "a")


@pytest.mark.parametrize(
    ("text", "field"),
    [("view", "steps"), ("view,,buy", "steps"), (",".join(["a"] * 11), "steps")],
)
def test_bad_steps(text: str, field: str) -> None:
    with pytest.raises(TapiocaError) as caught:
        parse_steps(text)
    assert [d.field for d in caught.value.details] == [field]


def test_windows() -> None:
    assert parse_window("30m") == timedelta(minutes=30)
    assert parse_window("24h") == timedelta(hours=24)
    assert parse_window("90d") == timedelta(days=90)
    for bad in ("0d", "7", "7w", "91d", "1.5h", " 7d"):
        with pytest.raises(TapiocaError):
            parse_window(bad)
