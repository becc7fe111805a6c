"""The forecaster on made-up series whose right answers are known: seasonal-naive values,
a weekly pattern under noise that the chosen model must see better than seasonal-naive
does, short histories, real zeros, the deadline, intervals, and CSV files refused."""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tapioca.forecast import Forecast, Freq, backtest, forecast, read_series_csv
from tapioca.forecast.models import seasonal_naive

START = datetime(2025, 1, 6)  # a Monday
WEEK = np.array([120.0, 110.0, 100.0, 95.0, 115.0, 60.0, 50.0])  # Monday .. Sunday
NOISE = 8.0
WEEKS = 12


def weekly_series(weeks: int, seed: int = 7) -> np.ndarray:
    """``weeks`` of the WEEK pattern plus Gaussian noise (sd NOISE)."""
    rng = np.random.default_rng(seed)
    return np.tile(WEEK, weeks) + rng.normal(0.0, NOISE, 7 * weeks)


@pytest.fixture(scope="module")
def weekly() -> Forecast:
    """The forecast of the week after WEEKS weeks (weekly_series(WEEKS + 1) has it)."""
    return forecast(weekly_series(WEEKS + 1)[: 7 * WEEKS].tolist(), START, Freq.DAY, 7)


def test_seasonal_naive_is_last_seasons_value() -> None:
    history = np.arange(30, dtype=np.float64)
    assert seasonal_naive(history, 10, 7).tolist() == [23, 24, 25, 26, 27, 28, 29, 23, 24, 25]
    assert seasonal_naive(history, 3, 24).tolist() == [6, 7, 8]
    assert seasonal_naive(history[:3], 2, 7).tolist() == [2, 2]  # under one season: the last


def test_short_daily_history_gets_seasonal_naive() -> None:
    values = [float(v) for v in range(1, 18)]  # under 3 weeks
    made = forecast(values, START, Freq.DAY, 3)
    assert made.model == "seasonal_naive (history too short)"
    assert [p.value for p in made.points] == [11.0, 12.0, 13.0]
    assert [p.ts for p in made.points] == [START + timedelta(days=17 + i) for i in range(3)]
    assert made.level == 80
    # measured on the last 3 days, from 2 weeks before them
    assert made.backtest.origins == 1
    assert made.backtest.naive_mae == 7.0  # every day is 7 more than a week before
    assert made.backtest.score == 1.0
    assert made.backtest.candidates == {"seasonal_naive": 1.0}
    assert all(p.lower <= p.value <= p.upper for p in made.points)


def test_hourly_naive_is_same_hour_yesterday() -> None:
    values = [float(h % 24 + 100 * (h // 24)) for h in range(48)]
    made = forecast(values, START, Freq.HOUR, 25)
    assert made.model == "seasonal_naive (history too short)"
    assert [p.value for p in made.points] == [100.0 + h for h in range(24)] + [100.0]
    assert made.points[0].ts == START + timedelta(hours=48)


def test_history_too_short_for_a_backtest_is_said() -> None:
    made = forecast(weekly_series(4).tolist(), START, Freq.DAY, 7)  # 28 days: 1 cut
    assert made.model == "seasonal_naive (history too short for a backtest)"
    assert made.backtest.origins == 2  # seasonal-naive is still measured, from 2 weeks on
    assert made.backtest.coverage is not None


def test_weekly_pattern_beats_seasonal_naive(weekly: Forecast) -> None:
    b = weekly.backtest
    assert weekly.model.startswith("median of ")
    assert b.origins == 8 and b.horizon == 7
    assert b.score < 0.9
    assert b.score == pytest.approx(b.model_mae / b.naive_mae)
    assert b.candidates["seasonal_naive"] == 1.0
    assert b.candidates[weekly.model] == pytest.approx(b.score)
    assert len(b.candidates) >= 8
    # closer than seasonal-naive to what the days are made of
    ahead = np.array([p.value for p in weekly.points])
    naive = seasonal_naive(weekly_series(WEEKS + 1)[: 7 * WEEKS], 7, 7)
    assert np.abs(ahead - WEEK).mean() < 0.6 * np.abs(naive - WEEK).mean()
    assert [p.ts.weekday() for p in weekly.points] == list(range(7))


def test_intervals_cover_about_eighty_percent(weekly: Forecast) -> None:
    coverage = weekly.backtest.coverage
    assert coverage is not None and 0.65 <= coverage <= 0.95
    # an 80% interval of Gaussian noise is 2.56 sd wide
    widths = [p.upper - p.lower for p in weekly.points]
    assert 1.6 * NOISE < float(np.mean(widths)) < 4.5 * NOISE
    assert all(p.lower <= p.value <= p.upper for p in weekly.points)


def test_next_weeks_values_fall_in_the_intervals(weekly: Forecast) -> None:
    actual = weekly_series(WEEKS + 1)[7 * WEEKS :]
    inside = [p.lower <= v <= p.upper for p, v in zip(weekly.points, actual, strict=True)]
    assert sum(inside) >= 5


def test_zeros_are_kept_and_nothing_goes_below_zero() -> None:
    closed_sundays = np.clip(weekly_series(WEEKS, seed=3), 0, None)
    closed_sundays[6::7] = 0.0
    made = forecast(closed_sundays.tolist(), START, Freq.DAY, 14)
    sundays = [p for p in made.points if p.ts.weekday() == 6]
    assert len(sundays) == 2
    # closed on every one of the last 4 Sundays: closed on the next ones too
    assert all(p.value == p.lower == p.upper == 0.0 for p in sundays)
    assert all(0.0 <= p.lower <= p.value <= p.upper for p in made.points)
    weekdays = [p.value for p in made.points if p.ts.weekday() == 0]
    assert all(v > 100.0 for v in weekdays)


def test_one_zero_among_values_is_a_holiday_not_a_closed_day() -> None:
    series = np.clip(weekly_series(WEEKS, seed=3), 0, None)
    series[-7] = 0.0  # last Monday: a holiday
    made = forecast(series.tolist(), START, Freq.DAY, 7)
    assert made.model.startswith("median of ")
    assert made.points[0].ts.weekday() == 0 and made.points[0].value > 60.0


def test_closed_steps() -> None:
    week = 7
    history = np.tile([5.0, 0.0, 3.0, 0.0, 1.0, 2.0, 0.0], 4)
    history[-4] = 4.0  # the fourth step of the week was open last week
    assert backtest.closed(history, 9, week).tolist() == [
        False, True, False, False, False, False, True, False, True
    ]  # fmt: skip
    assert not backtest.closed(history[1:], 7, week).any()  # under 4 weeks: none
    # hours: closed at night and on the 6th day, every week
    hours = np.tile(np.r_[np.zeros(8), np.ones(16)], 7 * 4)
    hours[5 * 24 + 168 * np.arange(4)[:, None] + np.arange(24)] = 0.0
    shut = backtest.closed(hours, 168, 168)
    assert shut.sum() == 6 * 8 + 24 and shut[5 * 24 : 6 * 24].all() and not shut[8:24].any()


def test_closed_hours_are_forecast_zero() -> None:
    rng = np.random.default_rng(5)
    days = 7 * 4 + 5  # from a Monday: the next two days are a Saturday and a Sunday
    hours = np.zeros(days * 24)
    for d in range(days):
        if d % 7 != 5:  # a Saturday closed all day; every day closed before 09:00
            hours[d * 24 + 9 : d * 24 + 18] = rng.poisson(20, 9)
    made = forecast(hours.tolist(), START, Freq.HOUR, 48)
    assert made.model.startswith("median of ")
    assert made.points[0].ts.weekday() == 5
    for p in made.points:
        closed_now = p.ts.weekday() == 5 or p.ts.hour < 9 or p.ts.hour >= 18
        assert (p.value == p.upper == 0.0) == closed_now, p


def test_negative_series_keeps_negative_bounds() -> None:
    values = [-10.0, -20.0, -30.0, -5.0, -15.0, -25.0, -35.0, -12.0, -22.0, -31.0]
    made = forecast(values, START, Freq.DAY, 3)
    assert [p.value for p in made.points] == [-5.0, -15.0, -25.0]
    assert made.backtest.origins == 0 and made.backtest.coverage is None
    assert math.isnan(made.backtest.score) and math.isnan(made.backtest.naive_mae)
    assert min(p.lower for p in made.points) < -25.0
    assert all(p.lower <= p.value <= p.upper <= 0.0 for p in made.points)


def test_deadline_returns_seasonal_naive_quickly() -> None:
    series = weekly_series(WEEKS + 1)[: 7 * WEEKS].tolist()
    began = time.monotonic()
    made = forecast(series, START, Freq.DAY, 7, deadline_s=0.0)
    assert time.monotonic() - began < 1.0
    assert made.model == "seasonal_naive"
    assert made.backtest.candidates == {"seasonal_naive": 1.0}
    assert [p.value for p in made.points] == series[-7:]


@pytest.mark.parametrize(
    ("values", "horizon", "level", "message"),
    [
        ([], 7, 80, "at least one value"),
        ([1.0, float("nan")], 7, 80, "finite"),
        ([1.0, 2.0], 0, 80, "horizon"),
        ([1.0, 2.0], 7, 100, "level"),
    ],
)
def test_bad_arguments_are_refused(
    values: list[float], horizon: int, level: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        forecast(values, START, Freq.DAY, horizon, level=level)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "series.csv"
    path.write_text(text)
    return path


def test_csv_missing_steps_are_zero(tmp_path: Path) -> None:
    path = write(tmp_path, "ts,value\n2025-01-06,5\n2025-01-07,0\n2025-01-10,2.5\n")
    assert read_series_csv(path, Freq.DAY) == (datetime(2025, 1, 6), [5.0, 0.0, 0.0, 0.0, 2.5])
    path = write(tmp_path, "ts,value\n2025-01-06T22:00:00,1\n2025-01-07 01:00,3\n")
    assert read_series_csv(path, Freq.HOUR) == (datetime(2025, 1, 6, 22), [1.0, 0.0, 0.0, 3.0])


@pytest.mark.parametrize(
    ("text", "freq", "message"),
    [
        ("day,value\n2025-01-06,1\n", Freq.DAY, "line 1: the header must be 'ts,value'"),
        ("ts,value\n", Freq.DAY, "no rows"),
        ("ts,value\nyesterday,1\n", Freq.DAY, "line 2: ts 'yesterday' is not an ISO date"),
        ("ts,value\n2025-01-06,1\n2025-01-07,lots\n", Freq.DAY, "line 3: value 'lots'"),
        ("ts,value\n2025-01-06,nan\n", Freq.DAY, "line 2: value 'nan' is not a finite"),
        ("ts,value\n2025-01-06,\n", Freq.DAY, "line 2: value '' is not a number"),
        ("ts,value\n2025-01-06,1,2\n", Freq.DAY, "line 2: expected 2 fields"),
        ("ts,value\n2025-01-07,1\n2025-01-06,2\n", Freq.DAY, "line 3: .* is before"),
        ("ts,value\n2025-01-06,1\n2025-01-06,2\n", Freq.DAY, "line 3: .* repeats"),
        ("ts,value\n2025-01-06T12:00,1\n", Freq.DAY, "line 2: .* not the start of a day"),
        ("ts,value\n2025-01-06T12:30,1\n", Freq.HOUR, "line 2: .* not the start of a hour"),
        ("ts,value\n2025-01-06T12:00+02:00,1\n", Freq.HOUR, "line 2: .* UTC offset"),
    ],
)
def test_csv_errors_name_the_line_and_field(
    tmp_path: Path, text: str, freq: Freq, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        read_series_csv(write(tmp_path, text), freq)
