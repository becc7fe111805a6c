"""What an instance does about accounts when it starts: the first owner (from the
settings, or a one-time setup link), how to sign in, and on the embedded store the
local admin credential that lets this machine's CLI reach the running server."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import orjson

from tapioca.auth import accounts
from tapioca.auth.access import LOCAL_PREFIX
from tapioca.auth.tokens import new_secret
from tapioca.config import Settings
from tapioca.logging import get_logger
from tapioca.storage.base import Store

log = get_logger(__name__)

LOCAL_FILE = "local_admin.json"
SETUP_TTL = timedelta(hours=24)
_ANY = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 (addresses listened on, reached on loopback)


def base_url(settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = "127.0.0.1" if settings.host in _ANY else settings.host
    return f"http://{host}:{settings.port}"


async def first_owner(store: Store, settings: Settings) -> None:
    """Make the first owner from TAPIOCA_OWNER_EMAIL/PASSWORD, or print a setup link when
    the instance has no account; then say how to sign in."""
    email = settings.owner_email
    password = settings.owner_password.get_secret_value() if settings.owner_password else None
    if email and password:
        made = await accounts.bootstrap_owner(store, email, password)
        if made is not None:
            log.info("owner_created", email=made.email)
    if await accounts.account_count(store) == 0:
        token = await accounts.new_setup_link_token(store, SETUP_TTL)
        link = f"{base_url(settings)}/setup?token={token}"
        log.warning(
            "setup_link",
            message=f"No account yet: open {link} within 24 hours to make the owner "
            "(or set TAPIOCA_OWNER_EMAIL and TAPIOCA_OWNER_PASSWORD)",
            url=link,
        )
        return
    log.info(
        "sign_in",
        message=f"Sign in with POST {base_url(settings)}/api/v1/auth/token "
        '{"email": ..., "password": ...}; API keys: POST /api/v1/sites/{site_id}/keys',
    )


def write_local_credential(settings: Settings) -> str:
    """A new local admin credential for this run, in the data directory (0600) with the
    address the CLI reaches the server at."""
    token = new_secret(LOCAL_PREFIX)
    path = settings.data_dir / LOCAL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(orjson.dumps({"url": local_url(settings), "token": token, "pid": os.getpid()}))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return token


def local_url(settings: Settings) -> str:
    host = settings.host
    if host in _ANY or host == "localhost":
        host = "127.0.0.1"
    return f"http://[{host}]:{settings.port}" if ":" in host else f"http://{host}:{settings.port}"


def remove_local_credential(settings: Settings, token: str) -> None:
    path = settings.data_dir / LOCAL_FILE
    try:
        if orjson.loads(path.read_bytes()).get("token") == token:
            path.unlink()
    except (OSError, ValueError):
        pass


def read_local_credential(data_dir: Path) -> tuple[str, str] | None:
    """(url, token) of the server running on this data directory, if it left them."""
    try:
        found = orjson.loads((data_dir / LOCAL_FILE).read_bytes())
        return str(found["url"]), str(found["token"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
