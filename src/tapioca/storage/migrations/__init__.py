"""Versioned SQL migrations, one directory per store dialect."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        """Split on ';' at line ends (our migrations contain no procedural bodies)."""
        parts = re.split(r";\s*$", self.sql, flags=re.MULTILINE)
        cleaned = []
        for part in parts:
            lines = [ln for ln in part.splitlines() if not ln.strip().startswith("--")]
            if "\n".join(lines).strip():
                cleaned.append(part.strip())
        return cleaned


def load_migrations(dialect: str) -> list[Migration]:
    folder = resources.files(__package__).joinpath(dialect)
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{dialect} migrations are not numbered 1..n: {versions}")
    return found
