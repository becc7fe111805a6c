"""What differs between the two stores' SQL, in one place.

Report and derive SQL is written once in the dialect PostgreSQL and DuckDB share
(architecture.md). Migrations are written once too, in PostgreSQL's spelling of the types
both stores know (text, bigint, bytea, double precision, timestamptz, numeric, ...), with
these tokens for the rest:

- ``{key}``: text compared byte by byte (ids, dimension values): PostgreSQL's "C"
  collation; DuckDB compares text that way already;
- ``{json}``: a JSON document (jsonb; DuckDB's JSON);
- ``{identity:SEQUENCE}``: a bigint numbered by the store (PostgreSQL's identity column;
  DuckDB's default from the sequence named, which its migration creates);
- ``{unlogged}`` before TABLE: a table a crash may empty (PostgreSQL writes no WAL for
  it; DuckDB has no such tables, and makes an ordinary one);
- a statement whose comment says ``-- only: postgres`` (or ``duckdb``) runs on that store
  alone: the indexes and keys PostgreSQL plans with, the embedded store's visitor salt.

On DuckDB the rollups, whose rows the derive job replaces on every run, have no index:
DuckDB reads ranges by the order rows are stored in (the derive job writes them in time
order), and a checkpoint gives back the room of deleted rows only in a table without one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    key: str
    json: str
    identity: str  # formatted with the sequence's name
    unlogged: str
    # Statements at the start of a background transaction (derive, migrations): no
    # statement timeout of the reports, room to aggregate in memory.
    background: tuple[str, ...] = ()

    def render(self, sql: str) -> str:
        """``sql`` with the tokens above replaced by this store's spelling."""

        def token(match: re.Match[str]) -> str:
            name, argument = match[1], match[2]
            if name == "identity" and argument:
                return self.identity.format(argument)
            if name in ("key", "json", "unlogged") and not argument:
                return str(getattr(self, name))
            raise ValueError(f"unknown migration token {match[0]}")

        return _TOKEN.sub(token, sql)

    def runs(self, statement: str) -> bool:
        """Whether a migration statement is for this store (``-- only: NAME``)."""
        only = _ONLY.search(statement)
        return only is None or only[1] == self.name


_TOKEN = re.compile(r"\{(\w+)(?::(\w+))?\}")
_ONLY = re.compile(r"^-- only: (\w+)", re.MULTILINE)

POSTGRES = Dialect(
    name="postgres",
    key='text COLLATE "C"',
    json="jsonb",
    identity="bigint GENERATED ALWAYS AS IDENTITY",
    unlogged="UNLOGGED",
    background=("SET LOCAL statement_timeout = 0", "SET LOCAL work_mem = '256MB'"),
)
DUCKDB = Dialect(
    name="duckdb",
    key="text",
    json="JSON",
    identity="bigint NOT NULL DEFAULT nextval('{}')",
    unlogged="",
)
