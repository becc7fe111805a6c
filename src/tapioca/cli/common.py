"""What every `tapioca` command shares: its settings, and one line for a failure."""

from __future__ import annotations

from typing import NoReturn

import typer
from pydantic import ValidationError

from tapioca.config import Settings
from tapioca.errors import TapiocaError
from tapioca.logging import configure_logging


def env_name(setting: str) -> str:
    return f"{Settings.model_config.get('env_prefix', '')}{setting}".upper()


def load_settings(**overrides: object) -> Settings:
    """The settings from the environment and ``overrides`` (None: not given); an invalid
    one ends the command with one line naming its variable (exit status 2)."""
    values = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = Settings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        for error in exc.errors():
            name = env_name("_".join(map(str, error["loc"])))
            typer.echo(f"invalid setting {name}: {error['msg']}", err=True)
        raise typer.Exit(2) from exc
    configure_logging(settings.log_level, settings.log_json)
    return settings


def fail(message: str, status: int = 1) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(status)


def error_line(exc: TapiocaError) -> str:
    """An error answer as one line: its message, then each detail's field and message."""
    details = "; ".join(f"{d.field}: {d.message}" for d in exc.details)
    return f"{exc.message} {details}".strip()
