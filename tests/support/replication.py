"""A PostgreSQL primary with one streaming replica, both throw-away, on free ports."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from support.servers import PostgresServer


@dataclass
class Replicated:
    primary: PostgresServer
    replica: PostgresServer
    dbname: str

    @property
    def primary_dsn(self) -> str:
        return self.primary.dsn(self.dbname)

    @property
    def replica_dsn(self) -> str:
        return self.replica.dsn(self.dbname)

    def wait_replayed(self, timeout: float = 20.0) -> None:
        """Until the replica has replayed everything the primary has written so far."""
        target = self.primary.psql("SELECT pg_current_wal_lsn()").strip()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = self.replica.psql(
                f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"
            ).strip()
            if done == "t":
                return
            time.sleep(0.05)
        raise TimeoutError("the replica did not catch up")


@contextmanager
def replicated_pair(base: Path, dbname: str = "tapioca") -> Iterator[Replicated]:
    primary = PostgresServer(base / "primary")
    replica: PostgresServer | None = None
    try:
        primary.init()
        primary.start()
        primary.create_database(dbname)
        replica = primary.make_replica(base / "replica")
        replica.start()
        pair = Replicated(primary, replica, dbname)
        pair.wait_replayed()
        yield pair
    finally:
        if replica is not None:
            replica.cleanup()
        primary.cleanup()
