"""What a forecast is: its points, its model and the backtest that chose that model."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class Freq(StrEnum):
    """How far apart a series' values are."""

    DAY = "day"
    HOUR = "hour"

    @property
    def step(self) -> timedelta:
        return timedelta(days=1) if self is Freq.DAY else timedelta(hours=1)

    @property
    def season(self) -> int:
        """Steps in one season: a week of days, a day of hours."""
        return 7 if self is Freq.DAY else 24

    @property
    def week(self) -> int:
        """Steps in one week: a shop closed on a weekday, or at an hour of the week, is
        closed at the same step of the next week."""
        return 7 if self is Freq.DAY else 7 * 24


@dataclass(frozen=True, slots=True)
class Point:
    ts: datetime
    value: float
    lower: float
    upper: float


@dataclass(frozen=True, slots=True)
class Backtest:
    """How the model did on the series' own recent history, origin by origin.

    ``score`` is ``model_mae / naive_mae``: under 1 beats the seasonal-naive forecast.
    ``coverage`` is the share of held-out values inside the model's intervals (None: no
    backtest). With no origin at all the errors are NaN.
    """

    model_mae: float
    naive_mae: float
    score: float
    origins: int
    horizon: int
    coverage: float | None
    candidates: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Forecast:
    model: str
    backtest: Backtest
    points: list[Point]
    level: int
