"""Accounts and credentials for tests: an app of either store run in this process (its
lifespan included), HTTP clients on it from a chosen address, signing in, and access
tokens forged the ways an attacker would (expired, tampered with, unsigned, signed with
another key)."""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from support.rate_limits import LIMITS_OFF
from tapioca.api.app import create_app
from tapioca.config import Settings
from tapioca.storage.base import Store

OWNER_EMAIL = "root@example.com"
OWNER_PASSWORD = "root-password-0123"
PASSWORD = "member-password-0123"
LOOPBACK = "127.0.0.1"
REMOTE = "10.0.0.9"  # a client elsewhere on the network
STORES = ("embedded", "production")


def new_secret_key() -> str:
    return secrets.token_urlsafe(48)


def settings_for(
    store: str,
    data_dir: Path,
    *,
    pg_dsn: str | None = None,
    redis_url: str | None = None,
    secret_key: str | None = None,
    **values: Any,
) -> Settings:
    """Settings of an instance on ``store``: embedded on ``data_dir`` (its secret made
    there unless given), or production on PostgreSQL and Redis (its secret required).
    Rate limits are off unless ``values`` set them (the matrix asks many routes at once
    as one account)."""
    values = {**LIMITS_OFF, **values}
    if store == "embedded":
        return Settings(data_dir=data_dir, secret_key=secret_key, **values)
    assert pg_dsn and redis_url, "production needs a database and a Redis"
    return Settings(
        database_url=pg_dsn,
        redis_url=redis_url,
        secret_key=secret_key or new_secret_key(),
        data_dir=data_dir,
        auto_create_sites=True,
        **values,
    )


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app of ``settings``, started (migrations, first owner, …) and stopped after."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def client_of(app: FastAPI, host: str = LOOPBACK) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of ``app`` whose requests come from ``host``."""
    transport = httpx.ASGITransport(app=app, client=(host, 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://tapioca") as client:
        yield client


def instance_secret_of(settings: Settings) -> str:
    """The secret that signs the instance's access tokens (configured, or made in the
    data directory on the first start of the embedded store)."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    return (settings.data_dir / "secret_key").read_text().strip()


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def basic(user: str, password: str = "") -> dict[str, str]:
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def unique_email(prefix: str = "someone") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


async def sign_in(client: httpx.AsyncClient, email: str, password: str) -> dict[str, Any]:
    """The token pair of a sign-in that must work."""
    response = await client.post("/api/v1/auth/token", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    pair: dict[str, Any] = response.json()
    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
    return pair


async def new_account(
    client: httpx.AsyncClient, owner: Mapping[str, str], email: str, password: str = PASSWORD
) -> dict[str, Any]:
    """An account made by an instance owner (``owner``: its request headers)."""
    response = await client.post(
        "/api/v1/users", json={"email": email, "password": password}, headers=owner
    )
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


async def new_site(
    client: httpx.AsyncClient, owner: Mapping[str, str], site_id: str, **fields: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/sites", json={"site_id": site_id, **fields}, headers=owner
    )
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


async def give_role(
    client: httpx.AsyncClient, owner: Mapping[str, str], site_id: str, email: str, role: str
) -> None:
    response = await client.put(
        f"/api/v1/sites/{site_id}/members/{email}", json={"role": role}, headers=owner
    )
    assert response.status_code == 200, response.text


async def new_key(
    client: httpx.AsyncClient, owner: Mapping[str, str], site_id: str, scope: str
) -> dict[str, Any]:
    """A key of the site: {"key_id", "key", ...}."""
    response = await client.post(
        f"/api/v1/sites/{site_id}/keys", json={"scope": scope, "name": scope}, headers=owner
    )
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    assert made["key"].startswith("tpk_")
    return made


# -- access tokens an attacker would try ------------------------------------------------


def claims_of(account_id: str, now: datetime | None = None, **changes: Any) -> dict[str, Any]:
    """The claims of an access token the instance would issue to ``account_id``."""
    now = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": account_id,
        "iss": "tapioca",
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=15)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    claims.update(changes)
    return claims


def expired_token(secret: str, account_id: str) -> str:
    """Signed with the instance's secret, expired an hour ago."""
    then = datetime.now(UTC) - timedelta(hours=2)
    return jwt.encode(claims_of(account_id, then), secret, algorithm="HS256")


def tampered_token(token: str, **changes: Any) -> str:
    """``token`` with its payload changed and its signature kept."""
    header, _, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(changes)
    forged = jwt.encode(claims, "any key at all, thirty-two bytes+", algorithm="HS256")
    return ".".join([header, forged.split(".")[1], signature])


def unsigned_token(account_id: str) -> str:
    """alg "none": no signature at all."""
    return jwt.encode(claims_of(account_id), "", algorithm="none")


def wrongly_signed_token(account_id: str) -> str:
    """HS256 with a secret that is not the instance's."""
    return jwt.encode(claims_of(account_id), new_secret_key(), algorithm="HS256")


@asynccontextmanager
async def owner_app(
    request: pytest.FixtureRequest, data_dir: Path, load: Callable[[Store], Awaitable[None]]
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """An instance on the store ``request.param`` names ("embedded", or "production": a
    new database of the session's PostgreSQL, dropped after, and its Redis), whose store
    ``load`` filled before it started; its owner signed in. Yields the client and the
    owner's headers."""
    from support.servers import PostgresServer, RedisServer
    from tapioca.storage.duckdb_store import DuckDBStore
    from tapioca.storage.postgres_store import PostgresStore

    store: str = request.param
    owner = {"owner_email": OWNER_EMAIL, "owner_password": OWNER_PASSWORD}
    database = None
    pg: PostgresServer | None = None
    if store == "embedded":
        settings = settings_for(store, data_dir, **owner)
        await load(DuckDBStore(settings.duckdb_path, readers=1))
    else:
        pg = request.getfixturevalue("pg_server")
        redis: RedisServer = request.getfixturevalue("redis_server")
        database = f"app_{uuid.uuid4().hex[:12]}"
        pg.create_database(database)
        await load(PostgresStore(pg.dsn(database), max_size=2))
        settings = settings_for(
            store, data_dir, pg_dsn=pg.dsn(database), redis_url=redis.url, **owner
        )
    try:
        async with running(settings) as app, client_of(app) as client:
            token = (await sign_in(client, OWNER_EMAIL, OWNER_PASSWORD))["access_token"]
            yield client, bearer(token)
    finally:
        if pg is not None and database is not None:
            pg.drop_database(database, force=True)
