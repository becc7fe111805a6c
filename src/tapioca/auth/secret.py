"""The instance secret that signs access tokens (TAPIOCA_SECRET_KEY).

Production has no default: every API process must sign and check tokens with the same
secret, so it is configured. The embedded store generates one on first start and keeps
it in the data directory, readable by its owner only (0600)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from tapioca.config import Mode, Settings

SECRET_FILE = "secret_key"  # noqa: S105 (a file name)
MIN_LENGTH = 32


class SecretMissing(Exception):
    """Production without TAPIOCA_SECRET_KEY, or one too short to sign with."""


def instance_secret(settings: Settings) -> bytes:
    configured = settings.secret_key.get_secret_value() if settings.secret_key else None
    if configured is not None:
        if len(configured) < MIN_LENGTH:
            raise SecretMissing(f"TAPIOCA_SECRET_KEY must be at least {MIN_LENGTH} characters")
        return configured.encode()
    if settings.mode is Mode.PRODUCTION:
        raise SecretMissing(
            "production mode needs TAPIOCA_SECRET_KEY (at least 32 random characters, the "
            "same for every API process), e.g. from `python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))'`"
        )
    return private_file(settings.data_dir / SECRET_FILE, lambda: secrets.token_urlsafe(48))


def private_file(path: Path, make: object) -> bytes:
    """The contents of ``path``, written first with ``make()`` (mode 0600, created
    exclusively: of two processes starting at once, both read the one that won)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        assert callable(make)
        with os.fdopen(fd, "w") as out:
            out.write(str(make()))
    os.chmod(path, 0o600)
    text = path.read_text().strip()
    if not text:
        raise SecretMissing(f"{path} is empty: remove it to make a new one")
    return text.encode()
