"""Report queries: small pure functions that take parameters and return a ``Query`` (SQL
with bind parameters, and the names of its columns). Values are always bound; identifiers
come from fixed tables (model/), never from input. reports/executor.py runs them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Params:
    """The bind parameters of one statement, numbered as they are added."""

    values: list[Any] = field(default_factory=list)

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


@dataclass(frozen=True, slots=True)
class Query:
    sql: str
    params: list[Any]
    columns: tuple[str, ...] = ()  # names of the result's columns, when rows become dicts
