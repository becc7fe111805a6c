"""Statements both stores take, made from rows in hand (settings, the order batch's
days, forecast points): a multi-row INSERT with numbered parameters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

ROWS_PER_STATEMENT = 1_000
Statement = tuple[str, list[Any]]


def insert_values(
    table: str, columns: str, rows: Sequence[Sequence[Any]], per_statement: int = ROWS_PER_STATEMENT
) -> list[Statement]:
    """INSERT statements of ``rows`` into ``table`` (``columns``: their names, comma
    separated; both fixed text of the caller), at most ``per_statement`` rows each."""
    statements = []
    width = len(rows[0]) if rows else 0
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        marks = ", ".join(
            "(" + ", ".join(f"${n * width + k + 1}" for k in range(width)) + ")"
            for n in range(len(chunk))
        )
        args = [value for row in chunk for value in row]
        statements.append((f"INSERT INTO {table} ({columns}) VALUES {marks}", args))
    return statements
