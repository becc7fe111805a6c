"""Accounts and keys on both stores (api.md, "Accounts and keys"): signing in, refresh
tokens that rotate and whose reuse revokes their family, logging out, registration
(closed, or by invitation), the first owner (from the settings, or the setup link), how
passwords and keys are stored, and how soon a revoked key stops working."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import structlog
from argon2 import PasswordHasher
from fastapi import FastAPI

from support.accounts import (
    OWNER_EMAIL,
    OWNER_PASSWORD,
    PASSWORD,
    STORES,
    bearer,
    client_of,
    give_role,
    new_account,
    new_key,
    new_secret_key,
    new_site,
    running,
    settings_for,
    sign_in,
    unique_email,
)
from support.error_shape import assert_error
from support.procs import BROWSER_UA
from tapioca.config import Settings
from tapioca.storage.base import Store

pytestmark = pytest.mark.integration


@dataclass
class Place:
    """Where an instance keeps its data: started again on it, an instance finds it."""

    store: str
    data_dir: Path
    pg_dsn: str | None = None
    redis_url: str | None = None
    secret_key: str | None = None

    def settings(self, **values: Any) -> Settings:
        return settings_for(
            self.store, self.data_dir, pg_dsn=self.pg_dsn, redis_url=self.redis_url,
            secret_key=self.secret_key, **values,
        )  # fmt: skip

    @asynccontextmanager
    async def instance(self, **values: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
        async with running(self.settings(**values)) as app, client_of(app) as client:
            yield app, client

    @asynccontextmanager
    async def owned(self, **values: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
        """An instance whose first owner comes from the settings."""
        owner = {"owner_email": OWNER_EMAIL, "owner_password": OWNER_PASSWORD}
        async with self.instance(**owner, **values) as started:
            yield started


@pytest.fixture(params=STORES)
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    if request.param == "embedded":
        return Place("embedded", tmp_path / "data")
    return Place(
        "production",
        tmp_path / "data",
        request.getfixturevalue("pg_dsn"),
        request.getfixturevalue("redis_url"),
        new_secret_key(),
    )


def store_of(app: FastAPI) -> Store:
    store: Store = app.state.runtime.store
    return store


async def root_of(client: httpx.AsyncClient) -> dict[str, str]:
    return bearer((await sign_in(client, OWNER_EMAIL, OWNER_PASSWORD))["access_token"])


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


async def me(client: httpx.AsyncClient, access_token: str) -> dict[str, Any]:
    response = await client.get("/api/v1/auth/me", headers=bearer(access_token))
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def stored_hash(app: FastAPI, email: str) -> str:
    rows = await store_of(app).fetch("SELECT password_hash FROM account WHERE email = $1", [email])
    assert len(rows) == 1
    return str(rows[0][0])


# -- signing in, refresh tokens, logging out ---------------------------------------------


async def test_sign_in_takes_json_or_the_oauth2_form_and_refuses_a_wrong_password(
    place: Place,
) -> None:
    async with place.owned() as (_, client):
        pair = await sign_in(client, OWNER_EMAIL, OWNER_PASSWORD)
        assert (pair["token_type"], pair["expires_in"]) == ("bearer", 15 * 60)
        assert pair["refresh_token"].startswith("tpr_")
        form = {"username": OWNER_EMAIL, "password": OWNER_PASSWORD}
        response = await client.post("/api/v1/auth/token", data=form)
        assert response.status_code == 200, response.text
        assert (await me(client, response.json()["access_token"]))["instance_owner"] is True
        for email, password in (
            (OWNER_EMAIL, "wrong-password-0123"),
            ("nobody@example.com", PASSWORD),
        ):
            wrong = {"email": email, "password": password}
            response = await client.post("/api/v1/auth/token", json=wrong)
            assert_error(response, 401, "invalid_credentials")


async def test_a_refresh_gives_a_new_pair_and_a_spent_token_used_again_revokes_its_family(
    place: Place,
) -> None:
    async with place.owned() as (_, client):
        first = await sign_in(client, OWNER_EMAIL, OWNER_PASSWORD)
        response = await refresh(client, first["refresh_token"])
        assert response.status_code == 200, response.text
        second = response.json()
        assert second["refresh_token"] != first["refresh_token"]
        assert second["access_token"] != first["access_token"]
        assert (await me(client, second["access_token"]))["account"]["email"] == OWNER_EMAIL
        # the first token is spent: used again, it fails and revokes every token of its
        # family, the newest one included (someone else holds one of them)
        assert_error(await refresh(client, first["refresh_token"]), 401, "invalid_refresh_token")
        assert_error(await refresh(client, second["refresh_token"]), 401, "invalid_refresh_token")
        # signing in again starts a new family
        third = await sign_in(client, OWNER_EMAIL, OWNER_PASSWORD)
        response = await refresh(client, third["refresh_token"])
        assert response.status_code == 200, response.text


async def test_logging_out_revokes_the_refresh_token_and_its_family(place: Place) -> None:
    async with place.owned() as (_, client):
        first = await sign_in(client, OWNER_EMAIL, OWNER_PASSWORD)
        second = (await refresh(client, first["refresh_token"])).json()
        response = await client.post(
            "/api/v1/auth/logout", json={"refresh_token": second["refresh_token"]}
        )
        assert (response.status_code, response.json()) == (200, {"status": "logged_out"})
        assert_error(await refresh(client, second["refresh_token"]), 401, "invalid_refresh_token")
        other = await sign_in(client, OWNER_EMAIL, OWNER_PASSWORD)  # another family
        assert (await refresh(client, other["refresh_token"])).status_code == 200


# -- registering --------------------------------------------------------------------------


async def test_registering_needs_an_invitation_unless_sign_up_is_on(place: Place) -> None:
    email = unique_email("walk-in")
    body = {"email": email, "password": PASSWORD}
    async with place.owned() as (_, client):
        response = await client.post("/api/v1/auth/register", json=body)
        assert_error(response, 403, "signup_closed")
        assert_error(await client.post("/api/v1/auth/token", json=body), 401, "invalid_credentials")
    async with place.owned(signup=True) as (_, client):
        response = await client.post("/api/v1/auth/register", json=body)
        assert response.status_code == 201, response.text
        mine = await me(client, (await sign_in(client, email, PASSWORD))["access_token"])
        assert (mine["instance_owner"], mine["sites"]) == (False, {})


async def test_an_invitation_registers_its_email_once_with_its_role_on_its_site(
    place: Place,
) -> None:
    email = unique_email("invited")
    async with place.owned() as (_, client):
        root = await root_of(client)
        await new_site(client, root, "shop")
        invite = {"email": email, "site_id": "shop", "role": "admin"}
        response = await client.post("/api/v1/invitations", json=invite, headers=root)
        assert response.status_code == 201, response.text
        token = response.json()["invitation"]
        assert token.startswith("tpi_")

        async def register(who: str) -> httpx.Response:
            body = {"email": who, "password": PASSWORD, "invitation": token}
            return await client.post("/api/v1/auth/register", json=body)

        assert_error(await register(unique_email("someone-else")), 403, "invalid_invitation")
        response = await register(email)
        assert response.status_code == 201, response.text
        assert response.json()["email"] == email
        assert_error(await register(email), 403, "invalid_invitation")
        assert_error(await register(unique_email("another")), 403, "invalid_invitation")
        mine = await me(client, (await sign_in(client, email, PASSWORD))["access_token"])
        assert (mine["instance_owner"], mine["sites"]) == (False, {"shop": "admin"})


# -- the first owner ------------------------------------------------------------------------


async def test_the_setup_link_makes_the_owner_of_an_empty_instance_once(place: Place) -> None:
    with structlog.testing.capture_logs() as logged:
        async with place.instance() as (_, client):
            links = [entry for entry in logged if entry["event"] == "setup_link"]
            assert len(links) == 1, logged
            url = urlsplit(links[0]["url"])
            assert url.path == "/setup"
            token = parse_qs(url.query)["token"][0]
            assert token.startswith("tps_") and token in links[0]["message"]
            page = await client.get("/setup", params={"token": token})
            assert page.status_code == 200 and "text/html" in page.headers["content-type"]

            async def setup(with_token: str, email: str) -> httpx.Response:
                body = {"token": with_token, "email": email, "password": OWNER_PASSWORD}
                return await client.post("/api/v1/auth/setup", json=body)

            wrong = await setup("tps_" + token[4:][::-1], OWNER_EMAIL)
            assert_error(wrong, 403, "invalid_setup_token")
            made = await setup(token, OWNER_EMAIL)
            assert made.status_code == 201, made.text
            mine = await me(client, made.json()["access_token"])
            assert (mine["account"]["email"], mine["instance_owner"]) == (OWNER_EMAIL, True)
            assert_error(await setup(token, unique_email("late")), 409, "already_set_up")
    with structlog.testing.capture_logs() as logged:
        async with place.instance() as (_, client):
            assert [entry for entry in logged if entry["event"] == "setup_link"] == []
            await sign_in(client, OWNER_EMAIL, OWNER_PASSWORD)


async def test_the_owner_settings_never_change_an_existing_account(place: Place) -> None:
    async with place.owned() as (_, client):
        await sign_in(client, OWNER_EMAIL, OWNER_PASSWORD)
    changed = "another-password-0123"
    async with place.instance(owner_email=OWNER_EMAIL, owner_password=changed) as (_, client):
        await sign_in(client, OWNER_EMAIL, OWNER_PASSWORD)
        wrong = {"email": OWNER_EMAIL, "password": changed}
        assert_error(
            await client.post("/api/v1/auth/token", json=wrong), 401, "invalid_credentials"
        )
    other = unique_email("second-owner")
    async with place.instance(owner_email=other, owner_password=changed) as (_, client):
        attempt = {"email": other, "password": changed}
        assert_error(
            await client.post("/api/v1/auth/token", json=attempt), 401, "invalid_credentials"
        )
        root = await root_of(client)
        users = (await client.get("/api/v1/users", headers=root)).json()["users"]
        assert [user["email"] for user in users] == [OWNER_EMAIL]


# -- what is stored ---------------------------------------------------------------------------


async def test_passwords_are_stored_as_argon2id_and_a_weaker_hash_is_made_again(
    place: Place,
) -> None:
    async with place.owned() as (app, client):
        root = await root_of(client)
        member = unique_email("member")
        await new_account(client, root, member)
        for email, password in ((OWNER_EMAIL, OWNER_PASSWORD), (member, PASSWORD)):
            stored = await stored_hash(app, email)
            assert stored.startswith("$argon2id$v=19$"), stored
            assert password not in stored
            assert not PasswordHasher().check_needs_rehash(stored)
        weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
        assert PasswordHasher().check_needs_rehash(weak)
        await store_of(app).execute(
            "UPDATE account SET password_hash = $2 WHERE email = $1", [member, weak]
        )
        await sign_in(client, member, PASSWORD)
        again = await stored_hash(app, member)
        assert again != weak and again.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), again
        assert not PasswordHasher().check_needs_rehash(again)
        assert PasswordHasher().verify(again, PASSWORD)
        await sign_in(client, member, PASSWORD)
        assert await stored_hash(app, member) == again  # made again once, not at every sign-in


async def dump(store: Store) -> str:
    """Every row of every table of the store, as text."""
    rows = await store.fetch(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema IN ('public', 'main') AND table_type = 'BASE TABLE'"
    )
    tables = sorted(str(row[0]) for row in rows)
    assert {"account", "api_key", "refresh_token", "invitation"} <= set(tables)
    text = []
    for table in tables:
        text += [f"{table}: {row!r}" for row in await store.fetch(f"SELECT * FROM {table}")]
    return "\n".join(text)


async def test_keys_are_stored_by_their_sha256_only_and_their_use_is_recorded(
    place: Place,
) -> None:
    async with place.owned() as (app, client):
        root = await root_of(client)
        await new_site(client, root, "shop", key_required=True)
        read, write = (
            await new_key(client, root, "shop", "read"),
            await new_key(client, root, "shop", "write"),
        )
        listed = (await client.get("/api/v1/sites/shop/keys", headers=root)).json()["keys"]
        assert [key["last_used_at"] for key in listed] == [None, None]
        report = await client.get(
            "/api/v1/stats/overview", params={"site_id": "shop"}, headers=bearer(read["key"])
        )
        assert report.status_code == 200, report.text
        event = {"site_id": "shop", "event_type": "page_view", "timestamp": "2025-11-14T12:00:00Z"}
        sent = await client.post(
            "/event", json=event, headers={"X-Api-Key": write["key"], "User-Agent": BROWSER_UA}
        )
        assert sent.status_code == 202, sent.text
        deadline = time.monotonic() + 5
        while True:  # the time of use is written off the request's path
            listed = (await client.get("/api/v1/sites/shop/keys", headers=root)).json()["keys"]
            if all(key["last_used_at"] for key in listed) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert all(key["last_used_at"] for key in listed), listed
        assert {key["starts_with"] for key in listed} == {read["key"][:12], write["key"][:12]}
        refresh_token = (await sign_in(client, OWNER_EMAIL, OWNER_PASSWORD))["refresh_token"]
        stored = await dump(store_of(app))
        for key in (read, write):
            assert key["key"] not in stored and key["key"][4:] not in stored
            assert hashlib.sha256(key["key"].encode()).hexdigest() in stored
        for secret in (refresh_token, OWNER_PASSWORD, root["Authorization"][7:]):
            assert secret not in stored


async def test_a_revoked_key_stops_working_within_the_time_keys_are_cached(
    place: Place,
) -> None:
    async with place.owned() as (_, client):
        root = await root_of(client)
        await new_site(client, root, "shop")
        key = await new_key(client, root, "shop", "read")
        params = {"site_id": "shop"}

        async def read() -> httpx.Response:
            return await client.get(
                "/api/v1/stats/overview", params=params, headers=bearer(key["key"])
            )

        assert (await read()).status_code == 200  # known now, and cached
        gone = await client.delete(f"/api/v1/sites/shop/keys/{key['key_id']}", headers=root)
        assert gone.status_code == 200, gone.text
        revoked = time.monotonic()
        for _ in range(200):  # 10 s at most
            answer = await read()
            if answer.status_code != 200:
                break
            await asyncio.sleep(0.05)
        waited = time.monotonic() - revoked
        assert_error(answer, 401, "invalid_key")
        assert waited <= 3.0, f"the revoked key worked for {waited:.1f} s"
        listed = (await client.get("/api/v1/sites/shop/keys", headers=root)).json()["keys"]
        assert listed[0]["revoked_at"] is not None


async def test_a_role_taken_away_ends_access_at_once(place: Place) -> None:
    """Roles are read on every request (an access token carries none)."""
    async with place.owned() as (_, client):
        root = await root_of(client)
        await new_site(client, root, "shop")
        email = unique_email("viewer")
        await new_account(client, root, email)
        await give_role(client, root, "shop", email, "viewer")
        viewer = bearer((await sign_in(client, email, PASSWORD))["access_token"])
        params = {"site_id": "shop"}
        answer = await client.get("/api/v1/stats/overview", params=params, headers=viewer)
        assert answer.status_code == 200, answer.text
        gone = await client.delete(f"/api/v1/sites/shop/members/{email}", headers=root)
        assert gone.status_code == 200, gone.text
        answer = await client.get("/api/v1/stats/overview", params=params, headers=viewer)
        assert_error(answer, 404, "site_not_found")
        deleted = await client.delete(f"/api/v1/users/{email}", headers=root)
        assert deleted.status_code == 200, deleted.text
        answer = await client.get("/api/v1/auth/me", headers=viewer)
        assert_error(answer, 401, "invalid_token")


async def test_every_report_of_a_site_that_does_not_exist_is_404_for_an_owner_and_a_key(
    place: Place,
) -> None:
    """An owner of the instance and a read key of the site read reports without the
    access check's lookup: the report's own lookup of the site answers 404 (for a site
    that never was, and for one whose key outlived it)."""
    from fastapi.routing import APIRoute

    from tapioca.api.access import Access, access_of, every_route

    async with place.owned() as (app, client):
        root = await root_of(client)
        await new_site(client, root, "shop")
        key = {"X-Api-Key": (await new_key(client, root, "shop", "read"))["key"]}
        paths = sorted(
            route.path.replace("{transaction_id}", "T-1")
            for route in every_route(app.routes)
            if isinstance(route, APIRoute)
            and access_of(route) is Access.READ
            and "GET" in (route.methods or ())
        )
        assert len(paths) >= 19, paths
        needs = {  # or a 422 comes first
            "/api/v1/stats/breakdown": {"dimension": "path"},
            "/api/v1/product/funnel": {"steps": "page_view,purchase"},
            "/api/v1/forecast": {"metric": "revenue"},
        }
        for path in paths:
            params = {"site_id": "nowhere", **needs.get(path, {})}
            answer = await client.get(path, params=params, headers=root)
            assert_error(answer, 404, "site_not_found")
            params["site_id"] = "shop"
            answer = await client.get(path, params=params, headers=key)
            assert answer.status_code in (200, 404), (path, answer.text)  # 404: no T-1
        await store_of(app).execute("DELETE FROM site WHERE id = 'shop'")  # its key stays
        for path in paths:
            params = {"site_id": "shop", **needs.get(path, {})}
            answer = await client.get(path, params=params, headers=key)
            assert_error(answer, 404, "site_not_found")
