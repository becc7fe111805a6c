"""The stores: the embedded DuckDB file, or PostgreSQL with its read replicas."""

from __future__ import annotations

from tapioca.config import Mode, Settings
from tapioca.storage.base import ReadStore, Store
from tapioca.storage.read_router import PoolOptions, ReadRouter

__all__ = ["ReadStore", "Store", "open_reader", "open_store"]


def open_store(settings: Settings) -> Store:
    """The store the settings name (nothing connects until it is used)."""
    if settings.mode is Mode.PRODUCTION:
        from tapioca.storage.postgres_store import PostgresStore

        assert settings.database_url is not None
        return PostgresStore(
            settings.database_url,
            min_size=settings.pg_pool_min,
            max_size=settings.pg_pool_max,
            statement_timeout_ms=settings.pg_statement_timeout_ms,
            acquire_timeout_s=settings.pg_acquire_timeout_s,
        )
    from tapioca.storage.duckdb_store import DuckDBStore

    return DuckDBStore(
        settings.duckdb_path,
        readers=settings.duckdb_readers,
        threads=settings.duckdb_threads,
        memory_limit=settings.duckdb_memory_limit,
        answer_slots=settings.answer_cache_slots,
    )


def open_reader(settings: Settings) -> ReadRouter:
    """Production: the reads of reports, on replicas when healthy, else the primary."""
    assert settings.database_url is not None
    return ReadRouter(
        settings.database_url,
        settings.replica_dsns,
        options=PoolOptions(
            min_size=settings.pg_pool_min,
            max_size=settings.pg_pool_max,
            statement_timeout_ms=settings.pg_statement_timeout_ms,
            acquire_timeout_s=settings.pg_acquire_timeout_s,
        ),
        check_seconds=settings.replica_check_seconds,
        max_lag_seconds=settings.replica_max_lag_seconds,
    )
