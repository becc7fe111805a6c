"""The sites a process knows, refreshed from the store (ingest checks, enrichment rules)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from tapioca.enrich import NO_RULES, SiteRules
from tapioca.sites.site import SITE_COLUMNS, Site, site_from_row
from tapioca.storage.base import ReadStore

_LOOKUP = 500  # ids looked up per statement


async def load_sites(db: ReadStore) -> dict[str, Site]:
    rows = await db.fetch(f"SELECT {SITE_COLUMNS} FROM site ORDER BY id")
    return {row[0]: site_from_row(row) for row in rows}


class SiteCatalog:
    """Sites by id, reloaded when older than ``ttl_s``; a site it does not know yet is
    looked up when asked for."""

    def __init__(self, db: ReadStore, ttl_s: float = 10.0) -> None:
        self._db = db
        self._ttl = ttl_s
        self._sites: dict[str, Site] = {}
        self._rules: dict[str, SiteRules] = {}
        self._loaded_at = float("-inf")

    async def refresh(self) -> None:
        if time.monotonic() - self._loaded_at < self._ttl:
            return
        self._sites = await load_sites(self._db)
        self._rules = {site_id: site.rules for site_id, site in self._sites.items()}
        self._loaded_at = time.monotonic()

    @property
    def sites(self) -> Mapping[str, Site]:
        """Every site loaded so far, by id: a new mapping whenever one is added or changed."""
        return self._sites

    def get(self, site_id: str) -> Site | None:
        return self._sites.get(site_id)

    def rules(self, site_id: str) -> SiteRules:
        """The site's enrichment rules: one object per site, made when the sites are
        loaded (the worker asks once per event; enrichment caches by it)."""
        return self._rules.get(site_id, NO_RULES)

    async def unknown(self, site_ids: set[str]) -> set[str]:
        """The ids that are not sites: those the catalog does not know are looked up in
        the store (a site created a moment ago is known at once)."""
        await self.refresh()
        missing = sorted(site_ids - self._sites.keys())
        for start in range(0, len(missing), _LOOKUP):
            await self._look_up(missing[start : start + _LOOKUP])
        return site_ids - self._sites.keys()

    async def _look_up(self, site_ids: list[str]) -> None:
        marks = ", ".join(f"${i}" for i in range(1, len(site_ids) + 1))
        sql = f"SELECT {SITE_COLUMNS} FROM site WHERE id IN ({marks})"
        for row in await self._db.fetch(sql, site_ids):
            site = site_from_row(row)
            self._sites = {**self._sites, site.id: site}
            self._rules = {**self._rules, site.id: site.rules}
