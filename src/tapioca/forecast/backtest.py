"""Rolling-origin backtests: a model is fitted on the history up to each of the last few
origins and scored on the ``horizon`` values after it, as it would have done had it been
used then. The same errors size the prediction intervals."""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from functools import partial

import numpy as np
import numpy.typing as npt

from tapioca.forecast.models import Candidate, FloatArray, Predict

MAX_ORIGINS = 8
CLOSED_WEEKS = 4  # a step of the week that was 0 in each of the last so many weeks is closed
SCALE_SEASONS = 8
SCALE_FLOOR = 0.1  # of the mean scale: a phase that never moved still gets some width


@dataclass(frozen=True, slots=True)
class Plan:
    """Where a series is cut for its backtest, and what each cut is scored on."""

    history: FloatArray
    horizon: int
    period: int
    window: int  # at most this many values are fitted at once (the latest)
    origins: list[int]  # index of the first held-out value of each cut
    nonnegative: bool
    week: int  # steps in a week: where closed days and hours repeat

    def train(self, end: int) -> FloatArray:
        return self.history[max(0, end - self.window) : end]

    @property
    def ends(self) -> list[int]:
        """Each cut, then the whole history (the fit the forecast is made from)."""
        return [*self.origins, len(self.history)]

    def actuals(self) -> FloatArray:
        return np.array([self.history[o : o + self.horizon] for o in self.origins])

    def scales(self) -> FloatArray:
        """Interval scale of each step at each cut, then at the end: rows as ``ends``."""
        return np.array([step_scale(self.train(e), self.horizon, self.period) for e in self.ends])


def plan(
    history: FloatArray, horizon: int, period: int, min_train: int, window: int, week: int
) -> Plan:
    """Up to MAX_ORIGINS cuts, ``min(horizon, period)`` apart, the last one ``horizon``
    values before the end, each with at least ``min_train`` values before it."""
    spacing = min(horizon, period)
    last = len(history) - horizon
    count = 0 if last < min_train else min(MAX_ORIGINS, (last - min_train) // spacing + 1)
    origins = [last - spacing * k for k in reversed(range(count))]
    return Plan(history, horizon, period, window, origins, bool(history.min() >= 0), week)


def step_scale(train: FloatArray, horizon: int, period: int) -> FloatArray:
    """How much each step's phase (weekday, hour) moves from one season to the next: the
    mean absolute seasonal difference over the last seasons, floored."""
    seasons = min(SCALE_SEASONS, len(train) // period - 1)
    if seasons < 1:
        diffs = np.abs(np.diff(train)) if len(train) > 1 else np.zeros(1)
        return np.full(horizon, max(float(diffs.mean()), 1e-9))
    tail = train[len(train) - seasons * period :]
    before = train[len(train) - (seasons + 1) * period : len(train) - period]
    phase = np.abs(tail - before).reshape(seasons, period).mean(axis=0)
    phase = np.maximum(phase, max(SCALE_FLOOR * float(phase.mean()), 1e-9))
    return np.asarray(phase[np.arange(horizon) % period], dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Trial:
    """A model's forecasts at every cut of a plan (rows as ``Plan.ends``)."""

    name: str
    forecasts: FloatArray

    def errors(self, actuals: FloatArray) -> FloatArray:
        return np.asarray(actuals - self.forecasts[:-1], dtype=np.float64)

    def mae(self, actuals: FloatArray) -> float:
        return float(np.abs(self.errors(actuals)).mean())


def run(plan: Plan, name: str, predict: Predict, until: float = float("inf")) -> Trial | None:
    """``predict`` at every cut; None when the model fails on one, or would end after
    ``until`` (time.monotonic)."""
    ends = plan.ends
    rows = []
    for done, end in enumerate(reversed(ends), start=1):  # the forecast's own fit first
        began = time.monotonic()
        ahead = _predict(predict, plan.train(end), plan.horizon)
        if ahead is None:
            return None
        rows.append(np.maximum(ahead, 0.0) if plan.nonnegative else ahead)
        now = time.monotonic()
        if now + (now - began) * (len(ends) - done) > until:
            return None
    return Trial(name, np.array(rows[::-1]))


def closed(train: FloatArray, horizon: int, week: int) -> npt.NDArray[np.bool_]:
    """For each step ahead, whether the same step of the week was 0 in each of the last
    CLOSED_WEEKS weeks: a day or an hour the shop is closed, forecast 0 by every model
    (a model fitted on a weekly pattern puts a little there, and a little is an error).
    One zero among other values (a holiday) does not close a step."""
    if len(train) < CLOSED_WEEKS * week:
        return np.zeros(horizon, dtype=np.bool_)
    weeks = train[len(train) - CLOSED_WEEKS * week :].reshape(CLOSED_WEEKS, week)
    shut = (weeks == 0.0).all(axis=0)
    return np.asarray(shut[np.arange(horizon) % week], dtype=np.bool_)


def run_candidate(plan: Plan, candidate: Candidate, until: float) -> Trial | None:
    predict = candidate.predict
    if plan.nonnegative:
        predict = partial(_shut, predict, week=plan.week)
    return run(plan, candidate.name, predict, until)


def _shut(predict: Predict, train: FloatArray, horizon: int, week: int) -> FloatArray:
    """``predict``, with 0 at the steps of the week the history says are closed."""
    ahead = predict(train, horizon)
    return np.where(closed(train, horizon, week), 0.0, ahead)


def _predict(predict: Predict, train: FloatArray, horizon: int) -> FloatArray | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence and start-value notices of statsmodels
        try:
            ahead = np.asarray(predict(train, horizon), dtype=np.float64)
        except (ValueError, ArithmeticError, IndexError, RuntimeError):
            return None  # a model that cannot be fitted on this series is not a candidate
    if ahead.shape != (horizon,) or not np.isfinite(ahead).all():
        return None
    return ahead


def median(name: str, trials: list[Trial]) -> Trial:
    """The median of several models' forecasts, step by step, at every cut."""
    return Trial(name, np.median([t.forecasts for t in trials], axis=0))


@dataclass(frozen=True, slots=True)
class Band:
    """Prediction intervals from normalised backtest errors."""

    low: float
    high: float
    coverage: float | None


def band(trial: Trial, plan: Plan, scales: FloatArray, level: int) -> Band:
    """Error quantiles per unit of scale, and the share of held-out values that intervals
    made without that origin's own errors held (leave one origin out)."""
    actuals = plan.actuals()
    if not plan.origins:
        return Band(0.0, 0.0, None)
    normed = trial.errors(actuals) / scales[:-1]
    low, high = error_quantiles(normed, level)
    if len(plan.origins) < 2:
        return Band(low, high, None)
    inside = []
    for k in range(len(plan.origins)):
        lo, hi = error_quantiles(np.delete(normed, k, axis=0), level)
        lower, upper = bounds(trial.forecasts[k], scales[k], lo, hi, plan.nonnegative)
        inside.append((lower <= actuals[k]) & (actuals[k] <= upper))
    return Band(low, high, float(np.mean(inside)))


def error_quantiles(errors: FloatArray, level: int) -> tuple[float, float]:
    """The errors that ``level``% of new ones should fall between: of n errors, the
    ⌊(n+1)·tail⌋-th smallest and the ⌈(n+1)·(1-tail)⌉-th (split-conformal ranks, a bit
    wider than the plain quantiles when there are few errors)."""
    ordered = np.sort(errors, axis=None)
    n, tail = len(ordered), (1.0 - level / 100.0) / 2.0
    low = min(max(math.floor((n + 1) * tail), 1), n)
    high = min(max(math.ceil((n + 1) * (1.0 - tail)), 1), n)
    return float(ordered[low - 1]), float(ordered[high - 1])


def bounds(
    ahead: FloatArray, scale: FloatArray, low: float, high: float, nonnegative: bool
) -> tuple[FloatArray, FloatArray]:
    lower, upper = ahead + low * scale, ahead + high * scale
    if nonnegative:
        lower, upper = np.maximum(lower, 0.0), np.maximum(upper, 0.0)
    return np.minimum(lower, ahead), np.maximum(upper, ahead)
