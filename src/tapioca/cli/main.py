"""The `tapioca` command."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
import uvicorn

from tapioca.api.connection import http_options
from tapioca.api.processes import GRACE_S
from tapioca.config import Mode, Settings
from tapioca.logging import configure_logging
from tapioca.sites.service import SiteChanges
from tapioca.storage import open_store
from tapioca.storage.base import Store

app = typer.Typer(
    help="Tapioca: self-hosted analytics for websites and online shops.",
    no_args_is_help=True,
    add_completion=False,
)

HostOpt = Annotated[
    str | None, typer.Option(help="Bind address [env TAPIOCA_HOST, default 127.0.0.1]")
]
PortOpt = Annotated[int | None, typer.Option(help="Port [env TAPIOCA_PORT, default 8000]")]


def _settings(**overrides: object) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    settings = Settings(**values)  # type: ignore[arg-type]
    configure_logging(settings.log_level, settings.log_json)
    return settings


def _require_production(settings: Settings, command: str) -> None:
    if settings.mode is not Mode.PRODUCTION or not settings.redis_url:
        typer.echo(
            f"`tapioca {command}` is a production process and needs TAPIOCA_DATABASE_URL "
            "(PostgreSQL) and TAPIOCA_REDIS_URL. On the embedded store one process owns the "
            "DuckDB file: use `tapioca serve`.",
            err=True,
        )
        raise typer.Exit(2)


@app.command()
def serve(host: HostOpt = None, port: PortOpt = None) -> None:
    """Run everything in one process (API + group-commit writer) on the configured store."""
    settings = _settings(host=host, port=port)
    from tapioca.api.app import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        timeout_graceful_shutdown=GRACE_S,
        **http_options(settings),
    )


@app.command()
def api(
    host: HostOpt = None,
    port: PortOpt = None,
    workers: Annotated[int | None, typer.Option(help="processes [env TAPIOCA_API_WORKERS]")] = None,
) -> None:
    """Run the HTTP API (production: ingest into Redis, reports from PostgreSQL)."""
    settings = _settings(host=host, port=port, api_workers=workers)
    _require_production(settings, "api")
    os.environ["TAPIOCA_HOST"] = settings.host
    os.environ["TAPIOCA_PORT"] = str(settings.port)
    if settings.api_workers > 1:
        from tapioca.api.processes import run_processes

        raise typer.Exit(run_processes(settings.host, settings.port, settings.api_workers))
    uvicorn.run(
        "tapioca.api.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        timeout_graceful_shutdown=GRACE_S,
        **http_options(settings),
    )


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="exit when the queue is empty")] = False,
    name: Annotated[str | None, typer.Option(help="consumer name (default host-pid)")] = None,
) -> None:
    """Consume the Redis stream and write events to PostgreSQL in bulk."""
    settings = _settings()
    _require_production(settings, "worker")
    from tapioca.worker.main import run_worker

    consumer = name or f"{socket.gethostname()}-{os.getpid()}"
    sys.exit(asyncio.run(run_worker(settings, consumer, burst=burst)))


@app.command()
def migrate() -> None:
    """Apply the store's pending migrations."""
    settings = _settings()

    async def run() -> list[int]:
        store = open_store(settings)
        try:
            return await store.migrate()
        finally:
            await store.close()

    applied = asyncio.run(run())
    typer.echo(f"applied migrations: {applied}" if applied else "schema is up to date")


sites_app = typer.Typer(
    help="Sites: time zone, domains, currency, page types, browser origins.", no_args_is_help=True
)
app.add_typer(sites_app, name="sites")

DomainOpt = Annotated[list[str] | None, typer.Option("--domain", help="own host (repeat)")]
RuleOpt = Annotated[
    list[str] | None, typer.Option("--page-type", help="PATTERN=TYPE, e.g. '/shop/*=product'")
]
_ORIGINS_HELP = "browsers on any origin may send its events, or pages on its domains only"


def _changes(
    name: str | None,
    timezone: str | None,
    domain: list[str] | None,
    currency: str | None,
    page_type: list[str] | None,
    public: bool | None,
    any_origin: bool | None,
) -> SiteChanges:
    rules = None
    if page_type is not None:
        rules = []
        for rule in page_type:
            pattern, sep, kind = rule.partition("=")
            if not sep:
                raise typer.BadParameter(f"'{rule}' is not PATTERN=TYPE", param_hint="--page-type")
            rules.append((pattern, kind))
    return SiteChanges(name, timezone, domain, currency, rules, public, any_origin)


def _site_command(action: Callable[[Store], Awaitable[Any]]) -> Any:
    settings = _settings()
    from tapioca.errors import TapiocaError

    async def run() -> Any:
        store = open_store(settings)
        try:
            await store.migrate()
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except TapiocaError as exc:
        details = "; ".join(f"{d.field}: {d.message}" for d in exc.details)
        typer.echo(f"{exc.message} {details}".strip(), err=True)
        raise typer.Exit(1) from exc


@sites_app.command("create")
def sites_create(
    site_id: Annotated[str, typer.Argument(help="letters, digits, _.:-")],
    name: Annotated[str | None, typer.Option()] = None,
    timezone: Annotated[str, typer.Option(help="IANA zone of its reports")] = "UTC",
    domain: DomainOpt = None,
    currency: Annotated[str, typer.Option(help="reporting currency")] = "USD",
    page_type: RuleOpt = None,
    public: Annotated[bool, typer.Option("--public/--private")] = False,
    any_origin: Annotated[
        bool, typer.Option("--any-origin/--own-origins", help=_ORIGINS_HELP)
    ] = False,
) -> None:
    """Create a site."""
    from tapioca.sites.service import create_site

    changes = _changes(name, timezone, domain or [], currency, page_type or [], public, any_origin)
    site = _site_command(lambda store: create_site(store, site_id, changes))
    typer.echo(orjson.dumps(site.as_dict()).decode())


@sites_app.command("update")
def sites_update(
    site_id: str,
    name: Annotated[str | None, typer.Option()] = None,
    timezone: Annotated[str | None, typer.Option()] = None,
    domain: DomainOpt = None,
    currency: Annotated[str | None, typer.Option()] = None,
    page_type: RuleOpt = None,
    public: Annotated[bool | None, typer.Option("--public/--private")] = None,
    any_origin: Annotated[
        bool | None, typer.Option("--any-origin/--own-origins", help=_ORIGINS_HELP)
    ] = None,
) -> None:
    """Change a site's settings (only the options given)."""
    from tapioca.sites.service import update_site

    changes = _changes(name, timezone, domain, currency, page_type, public, any_origin)
    site = _site_command(lambda store: update_site(store, site_id, changes))
    typer.echo(orjson.dumps(site.as_dict()).decode())


@sites_app.command("list")
def sites_list() -> None:
    """List the sites, one JSON object per line."""
    from tapioca.sites.catalog import load_sites

    for site in _site_command(load_sites).values():
        typer.echo(orjson.dumps(site.as_dict()).decode())


derive_app = typer.Typer(help="Derived tables (sessions, report rollups).", no_args_is_help=True)
app.add_typer(derive_app, name="derive")


@derive_app.command("run")
def derive_run() -> None:
    """Bring sessions and rollups up to date with the stored events (serve and worker do too)."""
    settings = _settings()
    from tapioca.derive.jobs import derive_once

    typer.echo(f"processed {asyncio.run(_with_store(settings, derive_once))} new event seqs")


@derive_app.command("rebuild")
def derive_rebuild() -> None:
    """Drop every derived table and recompute it from the event table."""
    settings = _settings()
    from tapioca.derive.jobs import rebuild

    typer.echo(f"rebuilt from {asyncio.run(_with_store(settings, rebuild))} event seqs")


async def _with_store(settings: Settings, job: Callable[[Store], Awaitable[int]]) -> int:
    store = open_store(settings)
    try:
        await store.migrate()
        return await job(store)
    finally:
        await store.close()


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or NDJSON")],
    site_id: Annotated[str | None, typer.Option(help="site for rows without site_id")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=100_000)] = 10_000,
) -> None:
    """Import events from CSV or NDJSON (the fields of POST /events, aliases included)."""
    settings = _settings()
    from tapioca.cli.importer import ImportFailed, import_file

    async def run() -> tuple[int, int]:
        store = open_store(settings)
        try:
            await store.migrate()
            return await import_file(file, store, site_id=site_id, batch_size=batch_size)
        finally:
            await store.close()

    try:
        received, inserted = asyncio.run(run())
    except ImportFailed as exc:
        for detail in exc.details:
            typer.echo(f"{detail.field}: {detail.message}", err=True)
        typer.echo("nothing was imported", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"imported {inserted} new events ({received - inserted} already stored)")
