"""A series from a CSV file of ``ts,value`` rows, one value per day or hour."""

from __future__ import annotations

import csv
import math
from datetime import datetime
from pathlib import Path

from tapioca.forecast.schemas import Freq

MAX_STEPS = 1_000_000


def _parse_ts(raw: str, line: int, freq: Freq) -> datetime:
    try:
        ts = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError(f"line {line}: ts {raw!r} is not an ISO date or date-time") from None
    if ts.tzinfo is not None:
        raise ValueError(f"line {line}: ts {raw!r} has a UTC offset; give local times without one")
    aligned = ts.minute == ts.second == ts.microsecond == 0 and (freq is Freq.HOUR or ts.hour == 0)
    if not aligned:
        raise ValueError(f"line {line}: ts {raw!r} is not the start of a {freq.value}")
    return ts


def _parse_value(raw: str, line: int) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"line {line}: value {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"line {line}: value {raw!r} is not a finite number")
    return value


def read_series_csv(path: Path, freq: Freq) -> tuple[datetime, list[float]]:
    """The first ts and one value per step from it on; a missing step is 0 (a day without
    orders is a real zero). Refuses, naming the line and field: a header other than
    ``ts,value``, a bad ts or value, a ts off the day or hour, unsorted or duplicate ts."""
    with path.open(newline="", encoding="utf-8-sig") as file:
        rows = csv.reader(file)
        header = [name.strip() for name in next(rows, [])]
        if header != ["ts", "value"]:
            raise ValueError(f"line 1: the header must be 'ts,value', not {','.join(header)!r}")
        points: list[tuple[datetime, float]] = []
        for line, row in enumerate(rows, start=2):
            if not row:
                continue
            if len(row) != 2:
                raise ValueError(f"line {line}: expected 2 fields (ts,value), got {len(row)}")
            ts, value = _parse_ts(row[0], line, freq), _parse_value(row[1], line)
            if points and ts <= points[-1][0]:
                word = "repeats" if ts == points[-1][0] else "is before"
                raise ValueError(f"line {line}: ts {row[0]!r} {word} the previous row's ts")
            points.append((ts, value))
    if not points:
        raise ValueError("the file has no rows after its header")
    return points[0][0], _fill(points, freq)


def _fill(points: list[tuple[datetime, float]], freq: Freq) -> list[float]:
    start = points[0][0]
    steps = (points[-1][0] - start) // freq.step + 1
    if steps > MAX_STEPS:
        raise ValueError(f"the series spans {steps} {freq.value}s; at most {MAX_STEPS}")
    values = [0.0] * steps
    for ts, value in points:
        values[(ts - start) // freq.step] = value
    return values
