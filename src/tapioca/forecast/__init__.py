"""Forecasts of daily and hourly series: each series' model chosen by a backtest on its
own history against the seasonal-naive forecast, with prediction intervals."""

from tapioca.forecast.schemas import Backtest, Forecast, Freq, Point
from tapioca.forecast.series import read_series_csv
from tapioca.forecast.service import forecast

__all__ = ["Backtest", "Forecast", "Freq", "Point", "forecast", "read_series_csv"]
