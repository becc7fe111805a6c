"""docs/production.md's PostgreSQL setup, run as written: the owner migrates, the worker
writes and derives, the API reads (and makes sites), each with no more than its role; and
the guide's way of deleting one person's data leaves nothing of them in any table."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from support.factories import make_row
from support.mariadb import MariaDBServer
from support.order_db import create_reader_mariadb, load_mariadb, mariadb_database, sample_orders
from support.servers import PostgresServer
from tapioca.auth import accounts, keys
from tapioca.auth.roles import Role, Scope
from tapioca.derive.jobs import derive_once, rebuild
from tapioca.orders.source import Sealer, make_source, save_source
from tapioca.scheduler.jobs import ORDERS, Context, job_named, jobs, run_job
from tapioca.scheduler.loop import Scheduler
from tapioca.sites.service import SiteChanges, update_site
from tapioca.sites.spellings import SourceSpellings
from tapioca.storage.migrations import load_migrations
from tapioca.storage.postgres_store import PostgresStore
from tapioca.storage.rows import INSERT_SITES, EventRow

pytestmark = pytest.mark.integration

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "production.md"
ROLES = ("tapioca_owner", "tapioca_worker", "tapioca_api")


def guide_sql(first_line: str) -> str:
    """The guide's SQL block that starts with ``first_line``."""
    blocks: list[str] = re.findall(r"```sql\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    found = [block for block in blocks if block.startswith(first_line + "\n")]
    assert len(found) == 1, f"docs/production.md has {len(found)} blocks '{first_line}'"
    return found[0]


@dataclass(frozen=True)
class Instance:
    """The guide's roles and database, under names of this test's own."""

    server: PostgresServer
    suffix: str

    def name(self, role_or_database: str) -> str:
        return f"{role_or_database}_{self.suffix}"

    def rename(self, sql: str) -> str:
        sql = re.sub(r"\b(tapioca_(?:owner|worker|api))\b", rf"\1_{self.suffix}", sql)
        return re.sub(r"\btapioca\b", self.name("tapioca"), sql)

    def dsn(self, role: str, database: str = "tapioca") -> str:
        return f"postgresql://{self.name(role)}@127.0.0.1:{self.server.port}/{self.name(database)}"

    async def run(self, sql: str, role: str | None = None) -> None:
        """Statements one by one, as psql would: ``\\connect DB`` switches database; as
        the superuser, or as ``role`` on the instance's database."""
        if role is None:
            con = await asyncpg.connect(self.server.dsn("postgres"))
        else:
            con = await asyncpg.connect(self.dsn(role))
        try:
            for statement in re.split(r";\s*$", self.rename(sql), flags=re.MULTILINE):
                lines = [ln for ln in statement.splitlines() if not ln.startswith("--")]
                for line in [ln for ln in lines if ln.startswith("\\connect ")]:
                    await con.close()
                    con = await asyncpg.connect(self.server.dsn(line.split()[1]))
                text = "\n".join(ln for ln in lines if not ln.startswith("\\connect "))
                if text.strip():
                    await con.execute(text)
        finally:
            await con.close()


@pytest.fixture
async def instance(pg_server: PostgresServer) -> AsyncIterator[Instance]:
    made = Instance(pg_server, uuid.uuid4().hex[:8])
    try:
        await made.run(guide_sql("-- roles, database and schema (as a superuser)"))
        yield made
    finally:
        pg_server.drop_database(made.name("tapioca"), force=True)
        roles = ", ".join(made.name(role) for role in ROLES)
        pg_server.psql(f"DROP ROLE IF EXISTS {roles}")


async def migrated(instance: Instance) -> None:
    owner = PostgresStore(instance.dsn("tapioca_owner"), max_size=2)
    try:
        assert await owner.migrate() == [m.version for m in load_migrations()]
    finally:
        await owner.close()
    await instance.run(guide_sql("-- after the first tapioca migrate (as tapioca_owner)"),
                       role="tapioca_owner")  # fmt: skip


def rows() -> list[EventRow]:
    person = [
        make_row(event_id="p1", visitor_id="user-42", user_id="user-42", path="/a"),
        make_row(event_id="p2", visitor_id="anon-7f3a", anonymous_id="anon-7f3a", path="/b"),
    ]
    others = [make_row(event_id=f"o{i}", visitor_id=f"u-{i}", path="/a") for i in range(3)]
    return person + others


async def accounts_over_the_api(api: PostgresStore) -> None:
    """What the API does for accounts, keys and sites' settings, with the API's role."""
    owner = await accounts.create_account(api, "owner@example.com", "a long password")
    viewer = await accounts.create_account(api, "viewer@example.com", "a long password")
    await accounts.set_role(api, "blog", viewer, Role.VIEWER)
    refresh = await accounts.issue_refresh(api, owner.id, timedelta(days=1))
    _, refresh = await accounts.rotate_refresh(api, refresh, timedelta(days=1))
    assert await accounts.log_out(api, refresh)
    key = await keys.create_key(api, "blog", Scope.WRITE, "server", owner.id)
    await keys.revoke_key(api, "blog", key["key_id"])
    token, _ = await accounts.invite(api, "new@example.com", "blog", Role.VIEWER, owner.id,
                                     timedelta(days=1))  # fmt: skip
    await accounts.register(api, "new@example.com", "a long password", token, False)
    site = await update_site(api, "blog", SiteChanges(timezone="Europe/Paris", public=True))
    assert (site.timezone.key, site.public) == ("Europe/Paris", True)
    await accounts.delete_account(api, "viewer@example.com")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await api.execute("DELETE FROM site WHERE id = 'blog'")


async def test_each_process_works_with_its_role_and_no_more(instance: Instance) -> None:
    await migrated(instance)
    worker = PostgresStore(instance.dsn("tapioca_worker"), max_size=2)
    api = PostgresStore(instance.dsn("tapioca_api"), max_size=2)
    try:
        assert await worker.migrate() == []  # the start-up check passes once migrated
        assert await api.migrate() == []
        written = await worker.write_events(rows())
        assert (written.received, written.inserted) == (5, 5)
        again = await worker.write_events(rows()[:2])  # a replay: the idempotent way
        assert (again.received, again.inserted) == (2, 0)
        assert await derive_once(worker) == 5
        assert await rebuild(worker) == 5
        spelled = await SourceSpellings(worker).apply([make_row(event_id="s", source="Partner")])
        assert [row.source for row in spelled] == ["Partner"]
        assert await api.fetch("SELECT site_id, key, name FROM source_spelling") == [
            ("shop", "partner", "Partner")
        ]
        assert await api.fetch("SELECT count(*), sum(pageviews) FROM session") == [(5, 5)]
        await api.execute(INSERT_SITES, [["blog"]])  # TAPIOCA_AUTO_CREATE_SITES=true
        assert await api.fetch("SELECT id FROM site ORDER BY id") == [("blog",), ("shop",)]
        await accounts_over_the_api(api)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await api.write_events([make_row(site_id="blog", event_id="x")])
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await api.execute("DELETE FROM session")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await worker.execute("DELETE FROM event")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await worker.execute("DELETE FROM schema_migration")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await worker.execute("ALTER TABLE event ADD COLUMN extra text")
    finally:
        await worker.close()
        await api.close()


async def test_order_sources_work_with_the_guides_roles(
    instance: Instance, mariadb_server: MariaDBServer
) -> None:
    """The API connects a source and syncs it (an admin asked); the scheduler runs as the
    worker; neither may do more."""
    await migrated(instance)
    worker = PostgresStore(instance.dsn("tapioca_worker"), max_size=2)
    api = PostgresStore(instance.dsn("tapioca_api"), max_size=2)
    sealer = Sealer(b"k" * 48)
    orders, items = sample_orders(300)
    try:
        with mariadb_database(mariadb_server) as db:
            await load_mariadb(mariadb_server, db, orders, items)
            url = await create_reader_mariadb(mariadb_server, db, f"g{instance.suffix}", "pw")
            await api.execute(INSERT_SITES, [["cafe"]])
            await save_source(api, sealer, make_source("cafe", url, "UTC"))
            by_api = await run_job(
                Context(api, api, sealer), job_named(ORDERS), "cafe", cause="http"
            )
            assert by_api is not None and by_api.status == "succeeded", by_api
            scheduler = Scheduler(Context(worker, worker, sealer), jobs("5 0 * * *", "15 0 * * *"))
            ran = await scheduler.tick()
            assert sorted((run.job, run.status) for run in ran) == [
                ("forecast", "succeeded"), ("orders", "succeeded"),
            ]  # fmt: skip
        assert await api.fetch("SELECT sum(orders) FROM order_day") == [(len(orders),)]
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await api.execute("DELETE FROM scheduler_beat")
    finally:
        await worker.close()
        await api.close()


async def test_deleting_a_person_then_rebuilding_leaves_nothing_of_them(
    instance: Instance,
) -> None:
    await migrated(instance)
    worker = PostgresStore(instance.dsn("tapioca_worker"), max_size=2)
    try:
        await worker.write_events(rows())
        await derive_once(worker)
        await instance.run(guide_sql("-- one person's events (as tapioca_owner)"),
                           role="tapioca_owner")  # fmt: skip
        await rebuild(worker)
        person = ("user-42", "anon-7f3a")
        assert await worker.fetch(
            "SELECT count(*) FROM event WHERE visitor_id = ANY($1)", [list(person)]
        ) == [(0,)]
        assert await worker.fetch(
            "SELECT count(*) FROM session WHERE visitor_id = ANY($1)", [list(person)]
        ) == [(0,)]
        totals = "SELECT sum(events), sum(pageviews), sum(visitors) FROM rollup_hour WHERE dim = ''"
        assert await worker.fetch(totals) == [(3, 3, 3)]
        paths = "SELECT value, visitors FROM rollup_hour WHERE dim = 'path' ORDER BY value"
        assert await worker.fetch(paths) == [("/a", 3)]
        days = "SELECT visitors FROM rollup_day WHERE dim = ''"
        assert await worker.fetch(days) == [(3,)]
    finally:
        await worker.close()
