"""SiteCatalog: the rules the worker enriches each site's events with."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tapioca.enrich import SiteRules
from tapioca.sites.catalog import SiteCatalog
from tapioca.storage.base import Store
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
        await catalog.refresh()  # loaded a moment ago: kept
        assert catalog.rules("boba").domains == ("boba.example",)
        reloading = SiteCatalog(store, ttl_s=0)
        await reloading.refresh()
        assert reloading.rules("boba").domains == ("b.example",)
    finally:
        await store.close()


async def test_a_site_created_a_moment_ago_is_known_at_once(migrated_store: Store) -> None:
    store = migrated_store
    await store.execute("INSERT INTO site (id) VALUES ($1)", ["first"])
    catalog = SiteCatalog(store)  # reloads every 10 s
    assert await catalog.unknown({"first", "later"}) == {"later"}
    created = [f"s{i:04d}" for i in range(0, 1200, 400)]
    for site_id in ["later", *created]:
        await store.execute("INSERT INTO site (id) VALUES ($1)", [site_id])
    asked = {f"s{i:04d}" for i in range(1200)} | {"first", "later"}  # three statements
    assert await catalog.unknown(asked) == asked - {"first", "later", *created}
    assert catalog.get("later") is not None and catalog.rules("s0400") == SiteRules()
