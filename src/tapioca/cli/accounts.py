"""`tapioca users`, `tapioca keys` and `tapioca sites grant|revoke`: accounts, their roles
on sites and the sites' API keys, on the store or through the running server
(cli/backend.py)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import orjson
import typer

from tapioca.auth.passwords import check_new_password
from tapioca.auth.roles import Role, Scope
from tapioca.cli.backend import Backend, with_backend
from tapioca.cli.common import error_line, fail, load_settings
from tapioca.errors import TapiocaError

T = TypeVar("T")

users_app = typer.Typer(help="The instance's accounts.", no_args_is_help=True)
keys_app = typer.Typer(
    help="A site's API keys: read keys read its reports, write keys send its events.",
    no_args_is_help=True,
)

SiteIdArg = Annotated[
    str, typer.Argument(metavar="SITE_ID", help="The site's id: letters, digits and _.:-")
]
EmailArg = Annotated[str, typer.Argument(metavar="EMAIL", help="The account's email address.")]


def _run(job: Callable[[Backend], Awaitable[T]]) -> T:
    return with_backend(load_settings(), job)


def _show(value: Any) -> None:
    typer.echo(orjson.dumps(value).decode())


def _password(from_stdin: bool) -> str:
    """The new account's password: all of stdin but its last line break, or asked for
    twice on the terminal without echo. Never an argument (shells keep those)."""
    if from_stdin:
        password = sys.stdin.read()
        password = password.removesuffix("\n").removesuffix("\r")
    elif sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    else:
        fail("no terminal to ask for the password on: give it on stdin with --password-stdin", 2)
    try:
        check_new_password(password)
    except TapiocaError as exc:
        fail(error_line(exc))
    return password


@users_app.command("create")
def users_create(
    email: EmailArg,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin/--password-prompt",
            help="Read the password from stdin, or ask for it on the terminal (no echo).",
        ),
    ] = False,
    owner: Annotated[
        bool,
        typer.Option("--owner/--no-owner", help="An owner of the instance: owner of every site."),
    ] = False,
) -> None:
    """Create an account (the password is never shown)."""
    password = _password(password_stdin)
    _show(_run(lambda backend: backend.create_user(email, password, owner)))


@users_app.command("list")
def users_list() -> None:
    """List the accounts, one JSON object per line."""
    for account in _run(lambda backend: backend.users()):
        _show(account)


@users_app.command("delete")
def users_delete(email: EmailArg) -> None:
    """Delete an account, its roles and its sessions (the last instance owner stays)."""
    _show(_run(lambda backend: backend.delete_user(email)))


RoleArg = Annotated[
    Role, typer.Argument(metavar="ROLE", help="owner, admin or viewer.", case_sensitive=False)
]


def sites_grant(site_id: SiteIdArg, email: EmailArg, role: RoleArg) -> None:
    """Give an account a role on a site (owner, admin or viewer), or change it."""
    _show(_run(lambda backend: backend.grant(site_id, email, role)))


def sites_revoke(site_id: SiteIdArg, email: EmailArg) -> None:
    """Take an account's role on a site away."""
    _show(_run(lambda backend: backend.revoke(site_id, email)))


@keys_app.command("create")
def keys_create(
    site_id: SiteIdArg,
    scope: Annotated[
        Scope,
        typer.Option(
            metavar="read|write",
            help="What the key may do: read the site's reports, or write its events.",
            case_sensitive=False,
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="A name to tell the key by.", show_default="none"),
    ] = None,
) -> None:
    """Create an API key of a site: printed this once, stored only hashed."""
    _show(_run(lambda backend: backend.create_key(site_id, scope, name)))
    typer.echo("The key is shown only now: keep it somewhere safe.", err=True)


@keys_app.command("list")
def keys_list(site_id: SiteIdArg) -> None:
    """List a site's keys, one JSON object per line (no secrets; with last_used_at)."""
    for key in _run(lambda backend: backend.keys(site_id)):
        _show(key)


@keys_app.command("revoke")
def keys_revoke(
    site_id: SiteIdArg,
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="The key's id (key_...).")],
) -> None:
    """Revoke a key: it stops working within seconds."""
    _show(_run(lambda backend: backend.revoke_key(site_id, key_id)))
