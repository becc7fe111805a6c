"""Versioned SQL migrations, one source for both stores (storage/dialect.py), and the one
runner that applies them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from tapioca.storage.base import Lock, Store
from tapioca.storage.dialect import Dialect

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LEDGER = (
    "CREATE TABLE IF NOT EXISTS schema_migration (version integer PRIMARY KEY, "
    "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self, dialect: Dialect) -> list[str]:
        """The statements for ``dialect``: split on ';' at line ends (the migrations hold
        no procedural bodies), tokens rendered, other stores' statements left out."""
        parts = re.split(r";\s*$", self.sql, flags=re.MULTILINE)
        statements = []
        for part in parts:
            lines = [ln for ln in part.splitlines() if not ln.strip().startswith("--")]
            if "\n".join(lines).strip() and dialect.runs(part):
                statements.append(dialect.render(part.strip()))
        return statements


def load_migrations() -> list[Migration]:
    folder = resources.files(__package__)
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations are not numbered 1..n: {versions}")
    return found


async def apply_migrations(store: Store) -> list[int]:
    """Apply the migrations not applied yet, each in one transaction, one process at a
    time; returns their versions."""
    applied: list[int] = []
    async with store.locked(Lock.MIGRATE) as session:
        await session.execute(_LEDGER)
        done = {row[0] for row in await session.fetch("SELECT version FROM schema_migration")}
        for migration in load_migrations():
            if migration.version in done:
                continue
            async with session.transaction():
                for statement in migration.statements(session.dialect):
                    await session.execute(statement)
                await session.execute(
                    "INSERT INTO schema_migration (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            applied.append(migration.version)
    return applied
