"""`tapioca orders …`, `tapioca batch run`, `tapioca scheduler` (api.md, "Order source")."""

from __future__ import annotations

import asyncio
import signal
from datetime import date
from typing import Annotated

import orjson
import typer

from tapioca.cli.backend import Backend, with_backend
from tapioca.cli.common import fail, load_settings
from tapioca.config import Mode

orders_app = typer.Typer(help="A site's own order database (read-only).", no_args_is_help=True)
batch_app = typer.Typer(help="The order batch.", no_args_is_help=True)

SiteArg = Annotated[str, typer.Argument(metavar="SITE_ID", help="The site.")]


def _echo(document: object) -> None:
    typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())


@orders_app.command("connect")
def connect(
    site_id: SiteArg,
    url: Annotated[
        str,
        typer.Argument(
            metavar="URL",
            help="mysql://user:password@host:port/db or postgresql://… (a read-only user).",
        ),
    ],
    timezone: Annotated[
        str | None,
        typer.Option(metavar="ZONE", help="Zone of its naive times.", show_default="the site's"),
    ] = None,
    counted_status: Annotated[
        list[str] | None,
        typer.Option(metavar="STATUS", help="A counted status (repeat).", show_default="SERVED"),
    ] = None,
    lookback_days: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=366,
            metavar="N",
            help="Days counted again before the last run's (no updated_at mapped).",
            show_default="14",
        ),
    ] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            metavar="NAME=COLUMN",
            help="A table or column name other than seed 004's, e.g. updated_at=modified_at.",
            show_default="seed 004's names",
        ),
    ] = None,
) -> None:
    """Connect the site's order database (the password is stored sealed, never shown)."""
    mapping: dict[str, str] = {}
    for pair in map_ or []:
        name, sep, column = pair.partition("=")
        if not sep:
            fail(f"--map {pair!r}: write NAME=COLUMN")
        mapping[name.strip()] = column.strip()
    body: dict[str, object] = {"url": url}
    if timezone:
        body["timezone"] = timezone
    if counted_status:
        body["counted_statuses"] = counted_status
    if lookback_days is not None:
        body["lookback_days"] = lookback_days
    if mapping:
        body["mapping"] = mapping
    settings = load_settings()
    _echo(with_backend(settings, lambda backend: backend.connect_orders(site_id, body)))


@batch_app.command("run")
def batch_run(
    site: Annotated[
        str | None,
        typer.Option(
            "--site",
            metavar="SITE_ID",
            help="The site whose batch runs.",
            show_default="every site with an order source",
        ),
    ] = None,
    from_: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="YYYY-MM-DD",
            help="A backfill: count the days from this one again.",
            show_default="the days since the last run",
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="YYYY-MM-DD",
            help="The backfill's last day.",
            show_default="the days since the last run",
        ),
    ] = None,
) -> None:
    """Bring the order analytics up to date now (or count the days --from … --to again),
    then the forecasts. A run that another holds is not run twice."""
    span = _span(from_, to)
    settings = load_settings()

    async def job(backend: Backend) -> list[dict[str, object]]:
        sites = [site] if site else await backend.order_sites()
        return [await backend.sync_orders(one, span) for one in sites]

    done = with_backend(settings, job)
    _echo({"runs": done})
    if any(run.get("status") != "succeeded" for run in done):
        raise typer.Exit(1)


def _span(start: str | None, end: str | None) -> tuple[date, date] | None:
    if start is None and end is None:
        return None
    if start is None or end is None:
        fail("a backfill needs both --from and --to")
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        fail("--from and --to are days: YYYY-MM-DD")
    if first > last:
        fail("--to is before --from")
    return first, last


def scheduler() -> None:
    """Run the scheduled jobs (the order batch, forecasts) until stopped; as many
    schedulers as wanted run each job once."""
    settings = load_settings()
    if settings.mode is Mode.EMBEDDED:
        fail("`tapioca serve` runs the scheduler in embedded mode; this command is for production")
    asyncio.run(_schedule())


async def _schedule() -> None:
    from tapioca.api.runtime import build_runtime
    from tapioca.scheduler.loop import scheduler_of

    settings = load_settings()
    runtime = build_runtime(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await runtime.store.migrate()
        await scheduler_of(runtime.jobs(), settings).run_forever(stop)
    finally:
        await runtime.close()
