"""How each site spells the sources Tapioca does not know: the first spelling stored wins
("Partner" then "partner" and "PARTNER" are one source, shown as "Partner"). Known sources
have their catalogue name already (enrich/sources.py); the others are looked up here,
written once per site and source (the first writer wins), and kept by every process."""

from __future__ import annotations

from collections.abc import Sequence

from tapioca.enrich.sources import is_known_name
from tapioca.storage.base import Store
from tapioca.storage.rows import EventRow

_CHUNK = 300  # (site, source) pairs per statement
_KEPT = 100_000  # spellings kept per process (a spelling never changes once stored)


def spelling_key(source: str) -> str:
    return source.lower()


class SourceSpellings:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._known: dict[tuple[str, str], str] = {}

    async def apply(self, rows: Sequence[EventRow]) -> list[EventRow]:
        """``rows`` with each unknown source in its site's first spelling; the spellings
        met for the first time are stored (the first row of the batch gives it)."""
        keys = [
            None if not row.source or is_known_name(row.source)
            else (row.site_id, spelling_key(row.source))
            for row in rows
        ]  # fmt: skip
        missing: dict[tuple[str, str], str] = {}
        for key, row in zip(keys, rows, strict=True):
            if key is not None and key not in self._known:
                missing.setdefault(key, row.source)
        if missing:
            await self._store_first(missing)
        known = self._known
        return [
            row if key is None or known[key] == row.source else row._replace(source=known[key])
            for key, row in zip(keys, rows, strict=True)
        ]

    async def _store_first(self, missing: dict[tuple[str, str], str]) -> None:
        if len(self._known) + len(missing) > _KEPT:
            self._known = {}
        found: dict[tuple[str, str], str] = {}
        items = list(missing.items())
        for start in range(0, len(items), _CHUNK):
            chunk = items[start : start + _CHUNK]
            values = ", ".join(
                f"(${3 * i + 1}, ${3 * i + 2}, ${3 * i + 3})" for i in range(len(chunk))
            )
            params = [v for (site, key), name in chunk for v in (site, key, name)]
            await self._store.execute(
                f"INSERT INTO source_spelling (site_id, key, name) VALUES {values} "
                "ON CONFLICT DO NOTHING",
                params,
            )
            pairs = ", ".join(f"(${2 * i + 1}, ${2 * i + 2})" for i in range(len(chunk)))
            rows = await self._store.fetch(
                f"SELECT site_id, key, name FROM source_spelling WHERE (site_id, key) IN ({pairs})",
                [v for (site, key), _ in chunk for v in (site, key)],
            )
            found.update({(site, key): name for site, key, name in rows})
        lost = missing.keys() - found.keys()
        if lost:
            raise RuntimeError(f"source spellings not stored: {sorted(lost)[:3]}")
        self._known.update(found)
