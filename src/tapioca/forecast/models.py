"""The models a series' forecast is chosen from, each a function of the history and the
horizon that returns the next ``horizon`` values. Statsmodels does the fitting; the
seasonal averages are plain means and medians of the same weekday or hour."""

from __future__ import annotations

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
    nonnegative_only: bool = False  # fitted on the square root: for counts and amounts


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


def _holt_winters(history: FloatArray, horizon: int, period: int, damped: bool) -> FloatArray:
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    model = ExponentialSmoothing(
        history,
        trend="add" if damped else None,
        damped_trend=damped,
        seasonal="add",
        seasonal_periods=period,
        initialization_method="estimated",
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


def candidates(freq: Freq) -> list[Candidate]:
    """The models tried on a series of ``freq``, the quickest first."""
    return _daily() if freq is Freq.DAY else _hourly()


def load() -> None:
    """Import statsmodels' models now (seconds, once per process), so that the first fit's
    time says how long the next ones take."""
    import statsmodels.tsa.api  # noqa: F401


def _daily() -> list[Candidate]:
    m = 7
    return [
        Candidate(
            "seasonal_median", partial(_seasonal_average, period=m, seasons=5, median=True), 2 * m
        ),
        Candidate(
            "seasonal_median_10w",
            partial(_seasonal_average, period=m, seasons=10, median=True),
            4 * m,
        ),
        Candidate("holt_winters", partial(_holt_winters, period=m, damped=False), 3 * m),
        Candidate("holt_winters_damped", partial(_holt_winters, period=m, damped=True), 3 * m),
        Candidate("ets", partial(_ets, period=m), 3 * m),
        Candidate("stl_ets", partial(_stl_ets, period=m), 3 * m),
        Candidate("ucm", partial(_ucm, period=m), 3 * m),
        Candidate("theta", partial(_theta, period=m), 3 * m),
        Candidate("ucm_sqrt", on_square_root(partial(_ucm, period=m)), 3 * m, True),
        Candidate(
            "holt_winters_sqrt",
            on_square_root(partial(_holt_winters, period=m, damped=False)),
            3 * m,
            True,
        ),
        Candidate("sarima_airline", partial(_airline, period=m), 5 * m),
    ]


def _hourly() -> list[Candidate]:
    m, w = 24, WEEK_OF_HOURS
    return [
        Candidate("weekly_naive", partial(seasonal_naive, period=w), w),
        Candidate(
            "hour_of_day_mean", partial(_seasonal_average, period=m, seasons=7, median=False), 3 * m
        ),
        Candidate(
            "hour_of_week_mean",
            partial(_seasonal_average, period=w, seasons=3, median=False),
            2 * w,
        ),
        Candidate(
            "hour_of_week_median",
            partial(_seasonal_average, period=w, seasons=5, median=True),
            3 * w,
        ),
        Candidate("holt_winters", partial(_holt_winters, period=m, damped=False), 3 * m),
        Candidate("mstl_ets", _mstl_ets, 3 * w),
        Candidate("stl_ets", partial(_stl_ets, period=m), 3 * m),
    ]
