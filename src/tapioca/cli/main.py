"""The `tapioca` command."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer

from tapioca import __version__
from tapioca.api.processes import APP_FACTORY, run_processes, run_server
from tapioca.cli import accounts, orders
from tapioca.cli.backend import Backend, on_store, with_backend
from tapioca.cli.common import env_name, fail, load_settings
from tapioca.cli.forecast import forecast_command
from tapioca.cli.importer import ImportFailed
from tapioca.config import Mode, Settings
from tapioca.sites.service import SiteChanges

T = TypeVar("T")

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    # an uncaught exception is logged as JSON (tapioca.logging), never shown with its locals
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"tapioca {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Tapioca: self-hosted analytics for websites and online shops.

    Settings come from the environment (TAPIOCA_*, listed in docs/configuration.md); an
    option that shows an env var sets that same setting.
    """


def _setting(name: str, metavar: str, help: str) -> Any:
    """The option of the setting ``name``, read from the setting's environment variable."""
    return typer.Option(metavar=metavar, help=help, envvar=env_name(name), show_envvar=True)


def _default(name: str) -> Any:
    return Settings.model_fields[name].default


HostOpt = Annotated[str, _setting("host", "ADDRESS", "Address to listen on.")]
PortOpt = Annotated[int, _setting("port", "PORT", "Port to listen on.")]


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
def serve(host: HostOpt = _default("host"), port: PortOpt = _default("port")) -> None:
    """Run everything in one process (API + group-commit writer) on the configured store."""
    settings = load_settings(host=host, port=port)
    from tapioca.api.app import create_app

    run_server(create_app(settings), settings)


@app.command()
def api(
    host: HostOpt = _default("host"),
    port: PortOpt = _default("port"),
    workers: Annotated[
        int, _setting("api_workers", "N", "HTTP processes, each on its own socket.")
    ] = _default("api_workers"),
) -> None:
    """Run the HTTP API (production: ingest into Redis, reports from PostgreSQL)."""
    settings = load_settings(host=host, port=port, api_workers=workers)
    _require_production(settings, "api")
    os.environ["TAPIOCA_HOST"] = settings.host
    os.environ["TAPIOCA_PORT"] = str(settings.port)
    if settings.api_workers > 1:
        raise typer.Exit(run_processes(settings.host, settings.port, settings.api_workers))
    run_server(APP_FACTORY, settings)


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Exit once the queue is empty.")] = False,
    name: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="Name of this worker in the Redis consumer group.",
            show_default="this machine's host name and the process id",
        ),
    ] = None,
) -> None:
    """Consume the Redis stream and write events to PostgreSQL in bulk."""
    settings = load_settings()
    _require_production(settings, "worker")
    from tapioca.worker.main import run_worker

    consumer = name or f"{socket.gethostname()}-{os.getpid()}"
    sys.exit(asyncio.run(run_worker(settings, consumer, burst=burst)))


@app.command()
def migrate() -> None:
    """Apply the store's pending migrations."""
    settings = load_settings()
    applied = on_store(settings, lambda store: store.migrate(), migrate_first=False)
    typer.echo(f"applied migrations: {applied}" if applied else "schema is up to date")


sites_app = typer.Typer(
    help="Sites: time zone, domains, currency, page types, browser origins, who may see them.",
    no_args_is_help=True,
)
app.add_typer(sites_app, name="sites")
sites_app.command("grant")(accounts.sites_grant)
sites_app.command("revoke")(accounts.sites_revoke)
app.add_typer(accounts.users_app, name="users")
app.add_typer(accounts.keys_app, name="keys")
app.command("forecast", help="Forecast a daily or hourly series in a CSV file.")(forecast_command)
app.add_typer(orders.orders_app, name="orders")
app.add_typer(orders.batch_app, name="batch")
app.command("scheduler")(orders.scheduler)

SiteIdArg = accounts.SiteIdArg
# option, metavar, help
_SITE_OPTIONS = {
    "name": ("--name", "NAME", "Display name."),
    "timezone": ("--timezone", "ZONE", "IANA time zone of its reports."),
    "domain": ("--domain", "HOST", "A host name of the site's own (repeat for more)."),
    "currency": ("--currency", "CODE", "Currency of its reports."),
    "page_type": (
        "--page-type",
        "PATTERN=TYPE",
        "A page type rule, e.g. '/shop/*=product' (repeat for more).",
    ),
    "public": ("--public/--private", None, "Public site: reports readable without a key."),
    "any_origin": (
        "--any-origin/--own-origins",
        None,
        "Browsers on any origin may send its events, or pages on its domains only.",
    ),
    "key_required": (
        "--key-required/--no-key-required",
        None,
        "Its events are taken only with a write key of its own, or from anyone.",
    ),
}


def _site_option(name: str, show_default: bool | str = True) -> Any:
    option, metavar, help = _SITE_OPTIONS[name]
    return typer.Option(option, metavar=metavar, help=help, show_default=show_default)


def _changes(
    name: str | None,
    timezone: str | None,
    domain: list[str] | None,
    currency: str | None,
    page_type: list[str] | None,
    public: bool | None,
    any_origin: bool | None,
    key_required: bool | None,
) -> SiteChanges:
    rules = None
    if page_type is not None:
        rules = []
        for rule in page_type:
            pattern, sep, kind = rule.partition("=")
            if not sep:
                raise typer.BadParameter(f"'{rule}' is not PATTERN=TYPE", param_hint="--page-type")
            rules.append((pattern, kind))
    return SiteChanges(name, timezone, domain, currency, rules, public, any_origin, key_required)


def _on_backend(job: Callable[[Backend], Awaitable[T]]) -> T:
    """``job`` on the store, or through `tapioca serve` while it holds the embedded store."""
    return with_backend(load_settings(), job)


@sites_app.command("create")
def sites_create(
    site_id: SiteIdArg,
    name: Annotated[str | None, _site_option("name", "none")] = None,
    timezone: Annotated[str, _site_option("timezone")] = "UTC",
    domain: Annotated[list[str] | None, _site_option("domain", "none")] = None,
    currency: Annotated[str, _site_option("currency")] = "USD",
    page_type: Annotated[list[str] | None, _site_option("page_type", "none")] = None,
    public: Annotated[bool, _site_option("public")] = False,
    any_origin: Annotated[bool, _site_option("any_origin")] = False,
    key_required: Annotated[bool, _site_option("key_required")] = False,
) -> None:
    """Create a site."""
    changes = _changes(
        name, timezone, domain or [], currency, page_type or [], public, any_origin, key_required
    )
    site = _on_backend(lambda backend: backend.create_site(site_id, changes))
    typer.echo(orjson.dumps(site).decode())


@sites_app.command("update")
def sites_update(
    site_id: SiteIdArg,
    name: Annotated[str | None, _site_option("name", "unchanged")] = None,
    timezone: Annotated[str | None, _site_option("timezone", "unchanged")] = None,
    domain: Annotated[list[str] | None, _site_option("domain", "unchanged")] = None,
    currency: Annotated[str | None, _site_option("currency", "unchanged")] = None,
    page_type: Annotated[list[str] | None, _site_option("page_type", "unchanged")] = None,
    public: Annotated[bool | None, _site_option("public", "unchanged")] = None,
    any_origin: Annotated[bool | None, _site_option("any_origin", "unchanged")] = None,
    key_required: Annotated[bool | None, _site_option("key_required", "unchanged")] = None,
) -> None:
    """Change a site's settings: only the options given (a list given replaces the list)."""
    changes = _changes(
        name, timezone, domain, currency, page_type, public, any_origin, key_required
    )
    site = _on_backend(lambda backend: backend.update_site(site_id, changes))
    typer.echo(orjson.dumps(site).decode())


@sites_app.command("list")
def sites_list() -> None:
    """List the sites, one JSON object per line."""
    for site in _on_backend(lambda backend: backend.sites()):
        typer.echo(orjson.dumps(site).decode())


derive_app = typer.Typer(help="Derived tables (sessions, report rollups).", no_args_is_help=True)
app.add_typer(derive_app, name="derive")


@derive_app.command("run")
def derive_run() -> None:
    """Bring sessions and rollups up to date with the stored events (serve and worker do too)."""
    settings = load_settings()
    from tapioca.derive.jobs import derive_once

    typer.echo(f"processed {on_store(settings, derive_once)} new event seqs")


@derive_app.command("rebuild")
def derive_rebuild() -> None:
    """Drop every derived table and recompute it from the event table."""
    settings = load_settings()
    from tapioca.derive.jobs import rebuild

    typer.echo(f"rebuilt from {on_store(settings, rebuild)} event seqs")


@app.command("import")
def import_(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", exists=True, dir_okay=False, help="A CSV or NDJSON file of events."
        ),
    ],
    site_id: Annotated[
        str | None,
        typer.Option(
            metavar="SITE_ID", help="Site of the rows without a site_id.", show_default="none"
        ),
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option(
            min=1,
            max=100_000,
            metavar="N",
            help="Events written per transaction (sent per request while `serve` runs).",
        ),
    ] = 10_000,
) -> None:
    """Import events from CSV or NDJSON (the fields of POST /events, aliases included)."""
    try:
        done = _on_backend(lambda backend: backend.import_events(file, site_id, batch_size))
    except ImportFailed as exc:
        for detail in exc.details:
            typer.echo(f"{detail.field}: {detail.message}", err=True)
        fail("nothing was imported")
    typer.echo(done)
