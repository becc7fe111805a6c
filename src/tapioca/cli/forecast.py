"""`tapioca forecast`: the forecaster of the product, on any daily or hourly series in a
CSV file, printed as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from tapioca.cli.common import fail
from tapioca.forecast import Forecast, Freq, forecast, read_series_csv


def forecast_command(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", exists=True, dir_okay=False, help="A CSV file with a ts,value header."
        ),
    ],
    freq: Annotated[Freq, typer.Option(metavar="day|hour", help="How far apart the values are.")],
    horizon: Annotated[
        int, typer.Option(min=1, max=10_000, metavar="N", help="Steps to forecast.")
    ],
    level: Annotated[
        int, typer.Option(min=1, max=99, metavar="PCT", help="Prediction interval, in %.")
    ] = 80,
) -> None:
    """Forecast a series (CSV `ts,value`; a missing day or hour is 0): the model chosen by
    a backtest against the seasonal-naive forecast, and the next values with intervals."""
    try:
        start, values = read_series_csv(file, freq)
        made = forecast(values, start, freq, horizon, level=level)
    except (OSError, ValueError) as exc:
        fail(f"{file}: {exc}", 2)
    typer.echo(orjson.dumps(as_json(made)).decode())


def as_json(made: Forecast) -> dict[str, Any]:
    b = made.backtest
    return {
        "model": made.model,
        "backtest": {
            "model_mae": b.model_mae,
            "naive_mae": b.naive_mae,
            "score": b.score,
            "origins": b.origins,
            "horizon": b.horizon,
            "coverage": b.coverage,
            "candidates": b.candidates,
        },
        "forecasts": [
            {"ts": p.ts.isoformat(), "value": p.value, "lower": p.lower, "upper": p.upper}
            for p in made.points
        ],
    }
