"""The models whose median is a series' forecast, each a function of the history and the
horizon that returns the next ``horizon`` values. Statsmodels does the fitting; the
seasonal averages are plain means and medians of the same weekday or hour."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import numpy.typing as npt

from tapioca.forecast.schemas import Freq

FloatArray = npt.NDArray[np.float64]
Predict = Callable[[FloatArray, int], FloatArray]
WEEK_OF_HOURS = 168


@dataclass(frozen=True, slots=True)
class Candidate:
    name: str
    predict: Predict
    min_history: int  # values the model needs to be fitted
    nonnegative_only: bool = False  # square roots, shares of totals: for counts and amounts
    statsmodels: bool = True  # False: plain arithmetic, no import to wait for


def seasonal_naive(history: FloatArray, horizon: int, period: int) -> FloatArray:
    """Each step's value one season before (same weekday last week, same hour yesterday);
    under one season of history, the last value."""
    if len(history) < period:
        return np.full(horizon, history[-1], dtype=np.float64)
    return history[len(history) - period + np.arange(horizon) % period]


def _seasonal_average(
    history: FloatArray, horizon: int, period: int, seasons: int, median: bool
) -> FloatArray:
    seasons = min(seasons, len(history) // period)
    table = history[len(history) - seasons * period :].reshape(seasons, period)
    profile = np.median(table, axis=0) if median else table.mean(axis=0)
    return np.asarray(profile[np.arange(horizon) % period], dtype=np.float64)


def _holt_winters(history: FloatArray, horizon: int, period: int) -> FloatArray:
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    model = ExponentialSmoothing(
        history, seasonal="add", seasonal_periods=period, initialization_method="estimated"
    )
    return np.asarray(model.fit().forecast(horizon), dtype=np.float64)


def _ets(history: FloatArray, horizon: int, period: int) -> FloatArray:
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    model = ETSModel(
        history, error="add", trend="add", damped_trend=True, seasonal="add",
        seasonal_periods=period,
    )  # fmt: skip
    return np.asarray(model.fit(disp=False).forecast(horizon), dtype=np.float64)


def _stl_ets(history: FloatArray, horizon: int, period: int) -> FloatArray:
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel
    from statsmodels.tsa.forecasting.stl import STLForecast

    model = STLForecast(
        history, ETSModel, model_kwargs={"error": "add", "trend": "add", "damped_trend": True},
        period=period, robust=True,
    )  # fmt: skip
    return np.asarray(model.fit(fit_kwargs={"disp": False}).forecast(horizon), dtype=np.float64)


def _ucm(history: FloatArray, horizon: int, period: int) -> FloatArray:
    from statsmodels.tsa.statespace.structural import UnobservedComponents

    model = UnobservedComponents(history, level="local level", seasonal=period)
    return np.asarray(model.fit(disp=False).forecast(horizon), dtype=np.float64)


def _theta(history: FloatArray, horizon: int, period: int) -> FloatArray:
    from statsmodels.tsa.forecasting.theta import ThetaModel

    model = ThetaModel(history, period=period, deseasonalize=True, method="additive")
    return np.asarray(model.fit().forecast(horizon), dtype=np.float64)


def _airline(history: FloatArray, horizon: int, period: int) -> FloatArray:
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    model = SARIMAX(history, order=(0, 1, 1), seasonal_order=(0, 1, 1, period))
    return np.asarray(model.fit(disp=False).forecast(horizon), dtype=np.float64)


def _blocks(history: FloatArray, size: int, count: int) -> FloatArray:
    """The last ``count`` whole blocks of ``size`` values (as many as there are), a row each."""
    count = min(count, len(history) // size)
    return history[len(history) - count * size :].reshape(count, size)


def _weekly_total_shares(history: FloatArray, horizon: int) -> FloatArray:
    """Next weeks' totals by damped-trend exponential smoothing of the weekly totals, split
    among the days as the last 6 weeks split theirs."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    weeks = _blocks(history, 7, 104)
    model = ExponentialSmoothing(
        weeks.sum(axis=1), trend="add", damped_trend=True, initialization_method="estimated"
    )
    totals = np.maximum(model.fit().forecast(-(-horizon // 7)), 0.0)
    recent = weeks[-6:]
    shares = recent.sum(axis=0) / max(float(recent.sum()), 1e-12)
    step = np.arange(horizon)
    return np.asarray(totals[step // 7] * shares[step % 7], dtype=np.float64)


def _daily_total_shares(history: FloatArray, horizon: int) -> FloatArray:
    """Next days' totals by Holt-Winters on the daily totals (weekly pattern), split among
    the hours as the same weekday's hours were over the last 4 weeks."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    days = _blocks(history, 24, 8 * 7)
    model = ExponentialSmoothing(
        days.sum(axis=1), seasonal="add", seasonal_periods=7, initialization_method="estimated"
    )
    totals = np.maximum(model.fit().forecast(-(-horizon // 24)), 0.0)
    weeks = _blocks(history, WEEK_OF_HOURS, 4)
    by_day = weeks.reshape(len(weeks), 7, 24).sum(axis=0)  # rows: the days after the end, in turn
    shares = by_day / np.maximum(by_day.sum(axis=1, keepdims=True), 1e-12)
    step = np.arange(horizon)
    return np.asarray(totals[step // 24] * shares[(step // 24) % 7, step % 24], dtype=np.float64)


def _mstl_ets(history: FloatArray, horizon: int) -> FloatArray:
    """Daily and weekly patterns taken out by MSTL, each carried on from its last cycle; the
    rest forecast by damped-trend exponential smoothing."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing
    from statsmodels.tsa.seasonal import MSTL

    periods = (24, WEEK_OF_HOURS)
    seasonal = np.asarray(MSTL(history, periods=periods).fit().seasonal, dtype=np.float64)
    adjusted = history - seasonal.sum(axis=1)
    model = ExponentialSmoothing(
        adjusted, trend="add", damped_trend=True, initialization_method="estimated"
    )
    ahead = np.asarray(model.fit().forecast(horizon), dtype=np.float64)
    for column, period in enumerate(periods):
        ahead += seasonal[len(history) - period + np.arange(horizon) % period, column]
    return ahead


def on_square_root(predict: Predict) -> Predict:
    """``predict`` fitted on the square root of a non-negative series, squared back: big
    days then sway the fit less."""

    def rooted(history: FloatArray, horizon: int) -> FloatArray:
        ahead = predict(np.sqrt(np.maximum(history, 0.0)), horizon)
        return np.asarray(np.square(np.maximum(ahead, 0.0)), dtype=np.float64)

    return rooted


def _average(period: int, seasons: int, median: bool) -> Predict:
    return partial(_seasonal_average, period=period, seasons=seasons, median=median)


def candidates(freq: Freq) -> list[Candidate]:
    """The models tried on a series of ``freq``, the quickest first."""
    return _daily() if freq is Freq.DAY else _hourly()


def _daily() -> list[Candidate]:
    m = 7
    return [
        Candidate("seasonal_median_5w", _average(m, 5, median=True), 2 * m, statsmodels=False),
        Candidate("seasonal_median_3w", _average(m, 3, median=True), 2 * m, statsmodels=False),
        Candidate("weekly_total_shares", _weekly_total_shares, 8 * m, nonnegative_only=True),
        Candidate("holt_winters", partial(_holt_winters, period=m), 3 * m),
        Candidate("ets", partial(_ets, period=m), 3 * m),
        Candidate("stl_ets", partial(_stl_ets, period=m), 3 * m),
        Candidate("ucm", partial(_ucm, period=m), 3 * m),
        Candidate("theta", partial(_theta, period=m), 3 * m),
        Candidate("ucm_sqrt", on_square_root(partial(_ucm, period=m)), 3 * m, True),
        Candidate(
            "holt_winters_sqrt",
            on_square_root(partial(_holt_winters, period=m)),
            3 * m,
            nonnegative_only=True,
        ),
        Candidate("sarima_airline_sqrt", on_square_root(partial(_airline, period=m)), 5 * m, True),
    ]


def _hourly() -> list[Candidate]:
    w = WEEK_OF_HOURS
    return [
        Candidate("weekly_naive", partial(seasonal_naive, period=w), w, statsmodels=False),
        Candidate("hour_of_week_mean_2w", _average(w, 2, median=False), 2 * w, statsmodels=False),
        Candidate("hour_of_week_mean_3w", _average(w, 3, median=False), 2 * w, statsmodels=False),
        Candidate("hour_of_week_median_5w", _average(w, 5, median=True), 3 * w, statsmodels=False),
        Candidate("daily_total_shares", _daily_total_shares, 3 * w, nonnegative_only=True),
        Candidate("mstl_ets", _mstl_ets, 3 * w),
        Candidate("mstl_ets_sqrt", on_square_root(_mstl_ets), 3 * w, nonnegative_only=True),
    ]


def load() -> None:
    """Import statsmodels' models now (seconds, once per process), so that the first fit's
    time says how long the next ones take."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # notices of the libraries it imports
        import statsmodels.tsa.api  # noqa: F401


def loaded() -> bool:
    return "statsmodels.tsa.api" in sys.modules
