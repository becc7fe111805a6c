"""SiteCatalog: the rules the worker enriches each site's events with."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from tapioca.enrich import SiteRules
from tapioca.sites.catalog import SiteCatalog
from tapioca.storage.duckdb_store import DuckDBStore

pytestmark = pytest.mark.integration


async def test_each_site_has_its_rules_and_unknown_sites_none(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "c.duckdb", readers=1)
    try:
        await store.migrate()
        rules = [{"pattern": "/menu/*", "page_type": "product"}]
        await store.execute(
            "INSERT INTO site (id, domains, page_type_rules) VALUES ($1, $2, $3)",
            ["boba", orjson.dumps(["boba.example"]).decode(), orjson.dumps(rules).decode()],
        )
        catalog = SiteCatalog(store)
        await catalog.refresh()
        expected = SiteRules(("boba.example",), (("/menu/*", "product"),))
        assert catalog.rules("boba") == expected
        assert catalog.rules("boba") is catalog.rules("boba")  # made once per load
        assert catalog.rules("ghost") == SiteRules()

        await store.execute("UPDATE site SET domains = $1 WHERE id = 'boba'", ['["b.example"]'])
        await asyncio.sleep(1.05)  # a forced reload happens at most once a second
        await catalog.refresh(force=True)
        assert catalog.rules("boba").domains == ("b.example",)
    finally:
        await store.close()
