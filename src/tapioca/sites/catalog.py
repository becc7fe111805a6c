"""The sites a process knows, refreshed from the store (ingest checks, enrichment rules)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from tapioca.enrich import NO_RULES, SiteRules
from tapioca.storage.base import ReadStore

SITE_COLUMNS = "id, name, timezone, domains, currency, page_type_rules, public"


@dataclass(frozen=True, slots=True)
class SiteConfig:
    id: str
    name: str | None
    timezone: str
    domains: tuple[str, ...]
    currency: str
    page_type_rules: tuple[tuple[str, str], ...]
    public: bool

    @property
    def rules(self) -> SiteRules:
        return SiteRules(self.domains, self.page_type_rules)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "timezone": self.timezone,
            "domains": list(self.domains),
            "currency": self.currency,
            "page_type_rules": [{"pattern": p, "page_type": t} for p, t in self.page_type_rules],
            "public": self.public,
        }


def site_from_row(row: tuple[Any, ...]) -> SiteConfig:
    site_id, name, zone, domains, currency, rules, public = row
    parsed_rules = orjson.loads(rules or "[]")
    return SiteConfig(
        id=site_id,
        name=name,
        timezone=zone or "UTC",
        domains=tuple(orjson.loads(domains or "[]")),
        currency=currency or "USD",
        page_type_rules=tuple((r["pattern"], r["page_type"]) for r in parsed_rules),
        public=bool(public),
    )


async def load_sites(db: ReadStore) -> dict[str, SiteConfig]:
    rows = await db.fetch(f"SELECT {SITE_COLUMNS} FROM site ORDER BY id")
    return {row[0]: site_from_row(row) for row in rows}


class SiteCatalog:
    """Sites by id, reloaded when older than ``ttl_s`` (and on demand, at most once a second)."""

    def __init__(self, db: ReadStore, ttl_s: float = 10.0) -> None:
        self._db = db
        self._ttl = ttl_s
        self._sites: dict[str, SiteConfig] = {}
        self._rules: dict[str, SiteRules] = {}
        self._loaded_at = float("-inf")

    async def refresh(self, *, force: bool = False) -> None:
        age = time.monotonic() - self._loaded_at
        if age < self._ttl and not (force and age >= 1.0):
            return
        self._sites = await load_sites(self._db)
        self._rules = {site_id: site.rules for site_id, site in self._sites.items()}
        self._loaded_at = time.monotonic()

    def get(self, site_id: str) -> SiteConfig | None:
        return self._sites.get(site_id)

    def rules(self, site_id: str) -> SiteRules:
        """The site's enrichment rules: one object per site, made when the sites are
        loaded (the worker asks once per event; enrichment caches by it)."""
        return self._rules.get(site_id, NO_RULES)

    async def unknown(self, site_ids: set[str]) -> set[str]:
        """The ids that are not sites, after reloading once if any look new."""
        await self.refresh()
        missing = site_ids - self._sites.keys()
        if missing:
            await self.refresh(force=True)
            missing = site_ids - self._sites.keys()
        return missing
