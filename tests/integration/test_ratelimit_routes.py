"""The rate limits of signing in and of reports, through the app, on both stores: a
limit answers 429 ``rate_limited`` with Retry-After in the error shape, and the route
answers again once the window has passed. A dashboard firing 20 reports at once passes
the default limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from support.error_shape import assert_error
from support.rate_limits import LIMITS_OFF
from tapioca.api.app import create_app
from tapioca.config import Settings

pytestmark = pytest.mark.integration

OWNER = {"email": "owner@example.com", "password": "a long password"}
SECRET = "k" * 48


@pytest.fixture(params=["duckdb", "postgres"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, object]:
    base: dict[str, object] = {
        "data_dir": tmp_path,
        "owner_email": OWNER["email"],
        "owner_password": OWNER["password"],
        **LIMITS_OFF,
    }
    if request.param == "postgres":
        base |= {
            "database_url": request.getfixturevalue("pg_dsn"),
            "redis_url": request.getfixturevalue("redis_url"),
            "secret_key": SECRET,
            "auto_create_sites": True,
        }
    return base


@asynccontextmanager
async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://tapioca") as client:
            yield client


async def _until_allowed(send: object, wait_s: float = 3.0) -> httpx.Response:
    """The first answer that is not a 429, within ``wait_s``."""
    assert callable(send)
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        answer: httpx.Response = await send()
        if answer.status_code != 429 or asyncio.get_running_loop().time() > deadline:
            return answer
        await asyncio.sleep(0.1)


async def test_failed_sign_ins_are_limited_per_account(store_settings: dict[str, object]) -> None:
    settings = Settings(**{**store_settings, "rate_limit_sign_in_account": "2/2second"})  # type: ignore[arg-type]
    async with _client(settings) as client:
        wrong = {**OWNER, "password": "not the password"}
        for _ in range(2):
            answer = await client.post("/api/v1/auth/token", json=wrong)
            assert_error(answer, 401, "invalid_credentials")
        refused = await client.post("/api/v1/auth/token", json=OWNER)  # right, but too late
        body = assert_error(refused, 429, "rate_limited")
        assert [d["field"] for d in body["error"]["details"]] == ["email"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 2
        other = await client.post(  # another account is not held back
            "/api/v1/auth/token", json={"email": "else@example.com", "password": "whatever x"}
        )
        assert_error(other, 401, "invalid_credentials")
        again = await _until_allowed(lambda: client.post("/api/v1/auth/token", json=OWNER))
        assert again.status_code == 200, again.text


async def test_reports_are_limited_per_reader_and_recover(
    store_settings: dict[str, object],
) -> None:
    settings = Settings(**{**store_settings, "rate_limit_reports": "3/2second"})  # type: ignore[arg-type]
    async with _client(settings) as client:
        token = (await client.post("/api/v1/auth/token", json=OWNER)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        made = await client.post("/api/v1/sites", json={"site_id": "shop"}, headers=headers)
        assert made.status_code == 201, made.text  # counts: a signed-in route
        asked = [await client.get("/stats?site_id=shop", headers=headers) for _ in range(3)]
        assert [answer.status_code for answer in asked] == [200, 200, 429]
        body = assert_error(asked[-1], 429, "rate_limited")
        assert [d["field"] for d in body["error"]["details"]] == ["account"]
        assert "Retry-After" in asked[-1].headers
        again = await _until_allowed(lambda: client.get("/stats?site_id=shop", headers=headers))
        assert again.status_code == 200, again.text


async def test_a_dashboard_of_20_reports_at_once_passes_the_default(
    store_settings: dict[str, object],
) -> None:
    defaults = {k: v for k, v in store_settings.items() if k != "rate_limit_reports"}
    async with _client(Settings(**defaults)) as client:  # type: ignore[arg-type]
        token = (await client.post("/api/v1/auth/token", json=OWNER)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        await client.post("/api/v1/sites", json={"site_id": "shop"}, headers=headers)
        answers = await asyncio.gather(
            *(client.get("/api/v1/stats/overview?site_id=shop", headers=headers) for _ in range(20))
        )
        assert [answer.status_code for answer in answers] == [200] * 20
