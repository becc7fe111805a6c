"""Forecast accuracy on real series, held out: for each of the last few origins the
forecaster sees only the history before it (and chooses its model on that alone), and its
forecast of the next ``horizon`` values is compared with what happened, beside the
seasonal-naive forecast of the same values. Per series: the models chosen, the MAE
relative to seasonal-naive (score, lower is better, under 1 beats it) and the share of
actual values inside the 80% intervals (coverage).

Series: the UCI Online Retail invoices (read from ../shared/data at run time: daily
revenue and orders over every calendar day, closed days 0; hourly orders), Victoria's
hourly electricity demand as shipped with statsmodels' tests (hourly, and summed by day),
and the bench's web traffic (bench/generator.py: daily pageviews and visitors).

    .venv/bin/python -m bench.bench_forecast [--series NAME ...] [--json FILE] [--best-single]

--best-single also scores, on the same values, the one model that did best in each
backtest: what choosing it instead of the median would have given.

    .venv/bin/python -m bench.bench_forecast --hindsight

scores instead, on the same held-out values, a forecast no forecaster can make: the mean
of the same step of the week in the 3 weeks before and the 3 weeks after (what the
weekly pattern and the level were, known in hindsight; in seconds).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from tapioca.forecast import Forecast, Freq, backtest, forecast, service
from tapioca.forecast.models import FloatArray, seasonal_naive

RETAIL = Path(__file__).resolve().parents[2] / "shared" / "data" / "online_retail.csv.gz"
OUTER = {Freq.DAY: 16, Freq.HOUR: 14}  # held-out origins, one horizon apart
LEVEL = 80


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    freq: Freq
    horizon: int
    start: datetime
    values: list[float]
    source: str


def _retail_lines() -> pd.DataFrame:
    lines = pd.read_csv(RETAIL, dtype={"InvoiceNo": str, "StockCode": str})
    clean = ~lines.InvoiceNo.str.startswith("C") & (lines.Quantity > 0) & (lines.UnitPrice > 0)
    lines = lines[clean].copy()
    lines["at"] = pd.to_datetime(lines.InvoiceDate)
    lines["revenue"] = lines.Quantity * lines.UnitPrice
    return lines


def retail() -> list[Series]:
    lines = _retail_lines()
    days = pd.date_range("2010-12-01", "2011-12-09", freq="D")
    by_day = lines.groupby(lines["at"].dt.floor("D"))
    revenue = by_day.revenue.sum().reindex(days, fill_value=0.0)
    invoices = lines.drop_duplicates("InvoiceNo")
    orders = invoices.groupby(invoices["at"].dt.floor("D")).size().reindex(days, fill_value=0)
    # hours up to the last invoice's: later ones are not known to be closed
    hours = pd.date_range(days[0], invoices["at"].max().floor("h"), freq="h")
    hourly = invoices.groupby(invoices["at"].dt.floor("h")).size().reindex(hours, fill_value=0)
    src = "UCI Online Retail, clean lines (not C, quantity > 0, price > 0)"
    first = days[0].to_pydatetime()
    return [
        Series("retail revenue / day", Freq.DAY, 7, first, revenue.astype(float).tolist(), src),
        Series("retail orders / day", Freq.DAY, 7, first, orders.astype(float).tolist(), src),
        Series("retail orders / hour", Freq.HOUR, 24, first, hourly.astype(float).tolist(), src),
    ]


def electricity() -> list[Series]:
    import statsmodels.tsa.stl.tests as stl_tests

    path = Path(stl_tests.__file__).parent / "results" / "mstl_elec_vic.csv"
    frame = pd.read_csv(path, parse_dates=["ds"])
    hourly = frame.y.astype(float).to_numpy()
    first = frame.ds.iloc[0].to_pydatetime()
    src = "Victoria electricity demand 2012-01-01..05-29 (statsmodels' MSTL test data)"
    return [
        Series("electricity / hour", Freq.HOUR, 24, first, hourly.tolist(), src),
        Series(
            "electricity / day", Freq.DAY, 7, first, hourly.reshape(-1, 24).sum(1).tolist(), src
        ),
    ]


def web() -> list[Series]:
    """The bench's web traffic (bench/generator.py): half a year of a site's events, its
    pageviews and distinct visitors per UTC day. The generator starts visits at an even
    rate over the whole span: the series have neither a weekly pattern nor a trend, only
    the day-to-day noise of when visits come."""
    from bench.generator import generate

    days, first = 182, datetime(2025, 1, 6, tzinfo=UTC)
    views, visitors = Counter[int](), defaultdict[int, set[str]](set)
    for event in generate(17, 300_000, site="web", start=first, days=days):
        day = (datetime.fromisoformat(event["timestamp"]) - first).days
        visitors[day].add(event["user_id"])
        views[day] += event["event_type"] == "page_view"
    src = "bench/generator.py: 300,000 events over 182 days (seed 17), per UTC day"
    start = first.replace(tzinfo=None)
    pageviews = [float(views[d]) for d in range(days)]
    people = [float(len(visitors[d])) for d in range(days)]
    return [
        Series("web pageviews / day", Freq.DAY, 7, start, pageviews, src),
        Series("web visitors / day", Freq.DAY, 7, start, people, src),
    ]


@dataclass(frozen=True, slots=True)
class Result:
    series: str
    freq: str
    horizon: int
    held_out: int  # origins
    models: dict[str, int]  # chosen model -> how many origins
    score: float  # held-out MAE / seasonal-naive MAE
    coverage: float  # held-out values inside the intervals
    backtest_score: float  # mean of the scores the forecaster reported
    seconds_per_forecast: float
    best_single_score: float | None  # held out, had the backtest's best model been used


def best_single(history: np.ndarray, freq: Freq, horizon: int) -> np.ndarray:
    """The forecast of the one model (seasonal-naive included) that did best in the
    forecaster's backtest: what choosing it, instead of the median, would have given."""
    period = freq.season
    plan = backtest.plan(
        history, horizon, period, service.MIN_SEASONS * period, service.WINDOW[freq], freq.week
    )
    naive = service.run_naive(plan)
    if len(plan.origins) < service.MIN_ORIGINS:
        last: FloatArray = naive.forecasts[-1]
        return last
    trials = [naive, *service.fit_models(plan, freq, naive, float("inf"))]
    best = min(trials, key=lambda t: t.mae(plan.actuals()))
    ahead: FloatArray = best.forecasts[-1]
    return np.maximum(ahead, 0.0) if plan.nonnegative else ahead


def evaluate(series: Series, outer: int, compare: bool) -> Result:
    y = np.asarray(series.values)
    h, period = series.horizon, series.freq.season
    errors, naive_errors, inside, reported, models = [], [], [], [], Counter[str]()
    single_errors = []
    began = time.monotonic()
    for k in reversed(range(outer)):
        cut = len(y) - h * (k + 1)
        made: Forecast = forecast(y[:cut].tolist(), series.start, series.freq, h, level=LEVEL)
        actual = y[cut : cut + h]
        value = np.array([p.value for p in made.points])
        lower = np.array([p.lower for p in made.points])
        upper = np.array([p.upper for p in made.points])
        errors.append(np.abs(value - actual))
        naive_errors.append(np.abs(seasonal_naive(y[:cut], h, period) - actual))
        inside.append((lower <= actual) & (actual <= upper))
        reported.append(made.backtest.score)
        models[made.model] += 1
        if compare:
            single_errors.append(np.abs(best_single(y[:cut], series.freq, h) - actual))
    naive_mae = float(np.mean(naive_errors))
    return Result(
        series.name, series.freq.value, h, outer, dict(models.most_common()),
        float(np.mean(errors)) / naive_mae, float(np.mean(inside)),
        float(np.nanmean(reported)), (time.monotonic() - began) / outer,
        float(np.mean(single_errors)) / naive_mae if compare else None,
    )  # fmt: skip


HINDSIGHT_WEEKS = (-3, -2, -1, 1, 2, 3)


def hindsight(series: Series, outer: int) -> float:
    """The held-out score of the mean of the same step of the week in the weeks around
    each value (HINDSIGHT_WEEKS, those inside the series), against seasonal-naive."""
    y = np.asarray(series.values)
    h, week = series.horizon, series.freq.week
    errors, naive_errors = [], []
    for k in reversed(range(outer)):
        cut = len(y) - h * (k + 1)
        around = [cut + week * j for j in HINDSIGHT_WEEKS if 0 <= cut + week * j <= len(y) - h]
        known = np.mean([y[i : i + h] for i in around], axis=0)
        actual = y[cut : cut + h]
        errors.append(np.abs(known - actual))
        naive_errors.append(np.abs(seasonal_naive(y[:cut], h, series.freq.season) - actual))
    return float(np.mean(errors) / np.mean(naive_errors))


def table(results: list[Result]) -> str:
    rows = [
        "| series | freq | horizon | held-out origins | score vs seasonal-naive | coverage "
        "(80%) | backtest score | best single model's score | models chosen (times) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        chosen = ", ".join(f"{name} ({n})" for name, n in r.models.items())
        single = "-" if r.best_single_score is None else f"{r.best_single_score:.3f}"
        rows.append(
            f"| {r.series} | {r.freq} | {r.horizon} | {r.held_out} | {r.score:.3f} | "
            f"{r.coverage:.0%} | {r.backtest_score:.3f} | {single} | {chosen} |"
        )
    return "\n".join(rows)


SOURCES: dict[str, Callable[[], list[Series]]] = {
    "retail": retail,
    "electricity": electricity,
    "web": web,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", nargs="*", help="names (or parts of names) to run")
    parser.add_argument("--json", type=Path, help="write the results here too")
    parser.add_argument(
        "--best-single",
        action="store_true",
        help="also score the backtest's best single model on the same held-out values",
    )
    parser.add_argument(
        "--hindsight",
        action="store_true",
        help="only score the mean of the same step of the weeks around each value",
    )
    args = parser.parse_args()
    results = []
    if args.hindsight:
        print("| series | held-out origins | hindsight average's score vs seasonal-naive |")
        print("|---|---|---|")
        for source in SOURCES.values():
            for series in source():
                outer = OUTER[series.freq]
                print(f"| {series.name} | {outer} | {hindsight(series, outer):.3f} |")
        return
    for source in SOURCES.values():
        for series in source():
            if args.series and not any(part in series.name for part in args.series):
                continue
            result = evaluate(series, OUTER[series.freq], args.best_single)
            print(f"{series.name}: {json.dumps(asdict(result))}", flush=True)
            results.append(result)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
