"""`tapioca forecast FILE --freq --horizon [--level]`: JSON out, or one line and exit
status 2 for a file or series it cannot use."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import orjson
from typer.testing import CliRunner

from tapioca.cli.main import app

runner = CliRunner()


def series_file(tmp_path: Path, values: list[float], first: date = date(2025, 1, 6)) -> Path:
    path = tmp_path / "series.csv"
    rows = [f"{first + timedelta(days=i)},{v}" for i, v in enumerate(values)]
    path.write_text("ts,value\n" + "\n".join(rows) + "\n")
    return path


def test_prints_the_forecast_as_json(tmp_path: Path) -> None:
    path = series_file(tmp_path, [float(v) for v in range(1, 11)])
    result = runner.invoke(app, ["forecast", str(path), "--freq", "day", "--horizon", "3"])
    assert result.exit_code == 0, result.output
    body = orjson.loads(result.stdout)
    assert list(body) == ["model", "backtest", "forecasts"]
    assert body["model"] == "seasonal_naive (history too short)"
    assert set(body["backtest"]) == {
        "model_mae", "naive_mae", "score", "origins", "horizon", "coverage", "candidates"
    }  # fmt: skip
    assert body["backtest"]["horizon"] == 3
    assert [f["ts"] for f in body["forecasts"]] == [
        "2025-01-16T00:00:00", "2025-01-17T00:00:00", "2025-01-18T00:00:00"
    ]  # fmt: skip
    assert [f["value"] for f in body["forecasts"]] == [4.0, 5.0, 6.0]
    assert all(f["lower"] <= f["value"] <= f["upper"] for f in body["forecasts"])


def test_a_wider_level_gives_wider_intervals(tmp_path: Path) -> None:
    noise = np.random.default_rng(5).normal(0.0, 5.0, 14)
    week = np.array([120.0, 110.0, 100.0, 95.0, 115.0, 60.0, 50.0])
    path = series_file(tmp_path, (np.tile(week, 2) + noise).tolist())
    widths = {}
    for level in ("50", "95"):
        args = ["forecast", str(path), "--freq", "day", "--horizon", "7", "--level", level]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        widths[level] = sum(
            f["upper"] - f["lower"] for f in orjson.loads(result.stdout)["forecasts"]
        )
    assert widths["95"] > widths["50"]


def test_a_bad_series_exits_2_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("ts,value\n2025-01-06,1\n2025-01-06,2\n")
    result = runner.invoke(app, ["forecast", str(path), "--freq", "day", "--horizon", "7"])
    assert result.exit_code == 2
    assert "line 3: ts '2025-01-06' repeats the previous row's ts" in result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    path = series_file(tmp_path, [1.0, 2.0])
    for args in (
        [str(tmp_path / "missing.csv"), "--freq", "day", "--horizon", "7"],
        [str(path), "--freq", "week", "--horizon", "7"],
        [str(path), "--freq", "day", "--horizon", "0"],
        [str(path), "--freq", "day", "--horizon", "7", "--level", "100"],
        [str(path), "--freq", "day"],
    ):
        result = runner.invoke(app, ["forecast", *args])
        assert result.exit_code == 2, args
