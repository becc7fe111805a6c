"""The bench generator: the benchmarks' figures are only as honest as its traffic."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from bench.generator import generate

START = datetime(2025, 10, 1, tzinfo=UTC)


def test_same_seed_same_events_and_exactly_the_count() -> None:
    first = list(generate(7, 5_000))
    assert first == list(generate(7, 5_000))
    assert len(first) == 5_000
    assert len({e["event_id"] for e in first}) == 5_000
    assert first != list(generate(8, 5_000))


def test_events_spread_over_every_day_of_the_span() -> None:
    events = list(generate(3, 60_000, start=START, days=30))
    per_day = Counter(
        (datetime.fromisoformat(e["timestamp"]) - START) // timedelta(days=1) for e in events
    )
    inside = [per_day[day] for day in range(30)]
    assert min(inside) > 2_000 * 0.8, inside
    assert max(inside) < 2_000 * 1.2, inside
    # only sessions begun in the last minutes of the span run past it
    assert sum(n for day, n in per_day.items() if not 0 <= day < 30) < 50


def test_no_filler_every_event_belongs_to_a_session() -> None:
    events = list(generate(5, 20_000))
    same = Counter((e["user_id"], e["path"], e["timestamp"]) for e in events)
    assert same.most_common(1)[0][1] == 1
    sessions = Counter(e["session_id"] for e in events)
    assert len(sessions) > 20_000 / 6
    visitors = {e["user_id"] for e in events}
    assert len(sessions) > len(visitors) > len(sessions) / 2


def test_sessions_come_in_order_of_their_start() -> None:
    firsts: dict[str, str] = {}
    for event in generate(9, 10_000):
        firsts.setdefault(event["session_id"], event["timestamp"])
    starts = list(firsts.values())
    assert starts == sorted(starts)
