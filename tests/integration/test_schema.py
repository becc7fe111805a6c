"""Both stores migrated from empty hold the same tables with the same columns (one source
of each migration, storage/migrations), and the event table is the event's field table
(model/event.py) column by column: its kind, NOT NULL where required, byte order where
ordered."""

from __future__ import annotations

from pathlib import Path

import pytest

from tapioca.model.event import FIELDS, Kind
from tapioca.storage.duckdb_store import DuckDBStore
from tapioca.storage.postgres_store import PostgresStore

pytestmark = pytest.mark.integration

# Each store's names of a type, as one name (test-side: what the stores report).
POSTGRES_TYPES = {
    "text": "text", "timestamp with time zone": "timestamptz", "integer": "integer",
    "bigint": "bigint", "jsonb": "json", "boolean": "boolean", "bytea": "blob",
    "double precision": "double", "date": "date", "timestamp without time zone": "timestamp",
}  # fmt: skip
DUCKDB_TYPES = {
    "VARCHAR": "text", "TIMESTAMP WITH TIME ZONE": "timestamptz", "INTEGER": "integer",
    "BIGINT": "bigint", "JSON": "json", "BOOLEAN": "boolean", "BLOB": "blob",
    "DOUBLE": "double", "DATE": "date", "DECIMAL(18,4)": "numeric(18,4)",
    "DECIMAL(38,4)": "numeric(38,4)", "TIMESTAMP": "timestamp", "DECIMAL(38,0)": "numeric(38,0)",
}  # fmt: skip
KIND_TYPES = {
    Kind.TEXT: "text", Kind.ID: "text", Kind.INT: "integer", Kind.TIME: "timestamptz",
    Kind.MONEY: "numeric(18,4)", Kind.JSON: "json", Kind.ITEMS: "json", Kind.FLAG: "boolean",
}  # fmt: skip
EMBEDDED_ONLY = {"visitor_salt"}  # production keeps the daily salt in Redis

Columns = dict[str, dict[str, tuple[str, bool]]]  # table → column → (type, nullable)


async def postgres_columns(store: PostgresStore) -> tuple[Columns, set[tuple[str, str]]]:
    rows = await store.fetch(
        "SELECT table_name, column_name, data_type, numeric_precision, numeric_scale, "
        "is_nullable, collation_name FROM information_schema.columns "
        "WHERE table_schema = 'public'"
    )
    columns: Columns = {}
    ordered = set()
    for table, column, kind, precision, scale, nullable, collation in rows:
        name = f"numeric({precision},{scale})" if kind == "numeric" else POSTGRES_TYPES[kind]
        columns.setdefault(table, {})[column] = (name, nullable == "YES")
        if collation == "C":
            ordered.add((table, column))
    return columns, ordered


async def duckdb_columns(store: DuckDBStore) -> Columns:
    rows = await store.fetch(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns"
    )
    columns: Columns = {}
    for table, column, kind, nullable in rows:
        columns.setdefault(table, {})[column] = (DUCKDB_TYPES[kind], nullable == "YES")
    return columns


@pytest.fixture
async def schemas(pg_dsn: str, tmp_path: Path) -> tuple[Columns, set[tuple[str, str]], Columns]:
    postgres = PostgresStore(pg_dsn, max_size=2)
    duckdb = DuckDBStore(tmp_path / "schema.duckdb", readers=1)
    try:
        assert await postgres.migrate() == await duckdb.migrate()  # the same versions
        pg, ordered = await postgres_columns(postgres)
        return pg, ordered, await duckdb_columns(duckdb)
    finally:
        await postgres.close()
        await duckdb.close()


async def test_both_stores_hold_the_same_columns(
    schemas: tuple[Columns, set[tuple[str, str]], Columns],
) -> None:
    postgres, _, duckdb = schemas
    assert set(duckdb) - set(postgres) == EMBEDDED_ONLY
    for table, columns in postgres.items():
        assert duckdb[table] == columns, table


async def test_the_event_table_is_the_field_table(
    schemas: tuple[Columns, set[tuple[str, str]], Columns],
) -> None:
    postgres, ordered, _ = schemas
    stored = dict(postgres["event"])
    assert stored.pop("seq") == ("bigint", False)  # the ingest sequence, the store's own
    assert stored == {f.name: (KIND_TYPES[f.kind], not f.required) for f in FIELDS}
    text = {f.name for f in FIELDS if KIND_TYPES[f.kind] == "text"}
    assert {c for t, c in ordered if t == "event" and c in text} == {
        f.name for f in FIELDS if f.ordered
    }
