"""A series' forecast: the median of the forecasts of several models, used when it beats
the seasonal-naive forecast in a rolling-origin backtest on the series' own history, with
intervals sized by the errors it made there.

Why the median and not the model that did best: over a few weeks of backtest the best
model is often the luckiest one; held out, choosing it did worse than the median of all
of them on every series of bench/bench_forecast.py (docs/forecasts.md)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import datetime
from functools import partial

import numpy as np

from tapioca.forecast import backtest
from tapioca.forecast.backtest import Plan, Trial
from tapioca.forecast.models import FloatArray, candidates, load, loaded, seasonal_naive
from tapioca.forecast.schemas import Backtest, Forecast, Freq, Point

NAIVE = "seasonal_naive"
MIN_SEASONS = 3  # of history before any model is tried
MIN_ORIGINS = 2  # backtest cuts before a model is chosen by them
LOAD_S = 5.0  # time left for statsmodels' first import (seconds, once per process)
WINDOW = {Freq.DAY: 3 * 365, Freq.HOUR: 8 * 7 * 24}  # values fitted at most (the latest)


def forecast(
    values: Sequence[float],
    start: datetime,
    freq: Freq,
    horizon: int,
    *,
    level: int = 80,
    deadline_s: float = 20.0,
) -> Forecast:
    """The next ``horizon`` values after ``values`` (``values[i]`` at ``start + i`` steps),
    with ``level``% intervals. Models are tried until ``deadline_s`` has passed; the
    seasonal-naive forecast is always there to fall back on."""
    until = time.monotonic() + deadline_s
    history = _checked(values, horizon, level)
    period = freq.season
    plan = backtest.plan(history, horizon, period, MIN_SEASONS * period, WINDOW[freq], freq.week)
    if len(history) < MIN_SEASONS * period or len(plan.origins) < MIN_ORIGINS:
        # seasonal-naive, measured on the cuts that leave two seasons (one to compare with)
        short = backtest.plan(history, horizon, period, 2 * period, WINDOW[freq], freq.week)
        naive = run_naive(short)
        why = "history too short" + (
            "" if len(history) < MIN_SEASONS * period else " for a backtest"
        )
        return _made(f"{NAIVE} ({why})", naive, naive, short, start, freq, level)
    naive = run_naive(plan)
    trials = fit_models(plan, freq, naive, until)
    scores = {t.name: _score(t, naive, plan) for t in [naive, *trials]}
    chosen = naive
    if trials:
        name = trials[0].name if len(trials) == 1 else f"median of {len(trials)} models"
        median = backtest.median(name, trials)
        scores[name] = _score(median, naive, plan)
        if scores[name] < 1.0:
            chosen = median
    return _made(chosen.name, chosen, naive, plan, start, freq, level, scores)


def _checked(values: Sequence[float], horizon: int, level: int) -> FloatArray:
    history = np.asarray(values, dtype=np.float64)
    if history.ndim != 1 or len(history) == 0:
        raise ValueError("a forecast needs at least one value")
    if not np.isfinite(history).all():
        raise ValueError("every value must be a finite number")
    if horizon < 1:
        raise ValueError("the horizon must be at least 1 step")
    if not 1 <= level <= 99:
        raise ValueError("the level must be a percentage from 1 to 99")
    return history


def run_naive(plan: Plan) -> Trial:
    trial = backtest.run(plan, NAIVE, partial(seasonal_naive, period=plan.period))
    assert trial is not None  # indexing only: it cannot fail
    return trial


def fit_models(plan: Plan, freq: Freq, naive: Trial, until: float) -> list[Trial]:
    """Every model that could be fitted in time at every cut."""
    trials: list[Trial] = []
    if naive.mae(plan.actuals()) == 0.0:
        return trials  # nothing beats a perfect forecast
    shortest = len(plan.train(plan.origins[0]))
    usable = [
        c
        for c in candidates(freq)
        if c.min_history <= shortest and (plan.nonnegative or not c.nonnegative_only)
    ]
    if until - time.monotonic() > LOAD_S:
        load()
    for candidate in usable:
        if time.monotonic() >= until:
            break
        if candidate.statsmodels and not loaded():
            continue  # too little time left to import it
        trial = backtest.run_candidate(plan, candidate, until)
        if trial is not None:
            trials.append(trial)
    return trials


def _score(trial: Trial, naive: Trial, plan: Plan) -> float:
    actuals = plan.actuals()
    naive_mae = naive.mae(actuals)
    return trial.mae(actuals) / naive_mae if naive_mae > 0 else 1.0


def _made(
    model: str,
    chosen: Trial,
    naive: Trial,
    plan: Plan,
    start: datetime,
    freq: Freq,
    level: int,
    scores: dict[str, float] | None = None,
) -> Forecast:
    scales = plan.scales()
    band = backtest.band(chosen, plan, scales, level)
    if not plan.origins:
        # no held-out values: the history's own seasonal changes size the intervals
        band, scales = _differences_band(plan, level), np.ones_like(scales)
    actuals = plan.actuals()
    model_mae = chosen.mae(actuals) if plan.origins else math.nan
    naive_mae = naive.mae(actuals) if plan.origins else math.nan
    score = _score(chosen, naive, plan) if plan.origins else math.nan
    result = Backtest(
        model_mae, naive_mae, score, len(plan.origins), plan.horizon, band.coverage,
        scores if scores is not None else {NAIVE: score},
    )  # fmt: skip
    ahead = chosen.forecasts[-1]
    lower, upper = backtest.bounds(ahead, scales[-1], band.low, band.high, plan.nonnegative)
    if plan.nonnegative:  # closed days and hours: 0, whatever the model
        shut = backtest.closed(plan.history, plan.horizon, plan.week)
        ahead, lower, upper = (np.where(shut, 0.0, a) for a in (ahead, lower, upper))
    first = len(plan.history)
    points = [
        Point(start + (first + i) * freq.step, float(v), float(lo), float(hi))
        for i, (v, lo, hi) in enumerate(zip(ahead, lower, upper, strict=True))
    ]
    return Forecast(model, result, points, level)


def _differences_band(plan: Plan, level: int) -> backtest.Band:
    """Intervals of a history too short to backtest, in the series' units: quantiles of
    its changes from one season to the next (under two seasons: from step to step)."""
    history, period = plan.history, plan.period
    lag = period if len(history) > period else 1
    if len(history) <= lag:
        return backtest.Band(0.0, 0.0, None)
    low, high = backtest.error_quantiles(history[lag:] - history[:-lag], level)
    return backtest.Band(low, high, None)
