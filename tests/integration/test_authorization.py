"""Who may call what, on both stores: every route of the app (those the framework routes,
and the ingest routes served in front of it) against every kind of caller.

The expectations are a table keyed by the access level each route declares
(api/access.py) and, where a route answers otherwise, by the route itself. The routes are
read from the running app: a route without a row fails, and so does a row without a route,
so that no route is added without saying who may use it.

Callers: no credential; accounts with each role on private site A, the owner of site B
(no role on A), an owner of the instance; read, write and revoked keys of A, keys of site K
(which takes events only with one of its write keys); access tokens that are expired,
tampered with, unsigned (alg none) or signed with another secret; on the embedded store,
this machine's local admin credential. Every answer is checked: its status, and for a
refusal its error code in the one error shape."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route

from support.accounts import (
    LOOPBACK,
    OWNER_EMAIL,
    OWNER_PASSWORD,
    PASSWORD,
    REMOTE,
    STORES,
    basic,
    bearer,
    client_of,
    expired_token,
    give_role,
    instance_secret_of,
    new_account,
    new_key,
    new_secret_key,
    new_site,
    running,
    settings_for,
    sign_in,
    tampered_token,
    unique_email,
    unsigned_token,
    wrongly_signed_token,
)
from support.error_shape import error_shape_problems
from support.procs import BROWSER_UA
from support.servers import PostgresServer, RedisServer
from tapioca.api.access import Access, access_of, every_route
from tapioca.api.app import create_app
from tapioca.auth import accounts
from tapioca.auth.bootstrap import read_local_credential
from tapioca.auth.passwords import hash_password
from tapioca.config import Settings
from tapioca.ingest.protocols import ROUTES
from tapioca.ingest.protocols.base import Shape

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

SITE_A, SITE_B, SITE_C, SITE_K = "site-a", "site-b", "site-c", "site-k"
_HASH = hash_password(PASSWORD)  # of the accounts made in the store directly

# -- callers ----------------------------------------------------------------------------

ANONYMOUS = "anonymous"
VIEWER = "viewer of A"
ADMIN = "admin of A"
OWNER = "owner of A"
OTHER_OWNER = "owner of B"
ROOT = "instance owner"
LOCAL = "local credential"  # embedded only
READ_KEY = "read key of A"
WRITE_KEY = "write key of A"
REVOKED_KEY = "revoked key of A"
K_READ = "read key of K"
K_WRITE = "write key of K"
EXPIRED = "expired JWT"
TAMPERED = "tampered JWT"
UNSIGNED = "alg=none JWT"
OTHER_SECRET = "JWT of another secret"

ACCOUNTS = (VIEWER, ADMIN, OWNER, OTHER_OWNER, ROOT)
KEYS = (READ_KEY, WRITE_KEY, K_READ, K_WRITE)
FORGED = (EXPIRED, TAMPERED, UNSIGNED, OTHER_SECRET)
EVERYONE = (ANONYMOUS, *ACCOUNTS, LOCAL, *KEYS, REVOKED_KEY, *FORGED)


# -- answers ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expect:
    status: int
    code: str | None = None  # the error code, for an answer that is one

    def __str__(self) -> str:
        return f"{self.status} {self.code}" if self.code else str(self.status)


OK = Expect(200)
CREATED = Expect(201)
ACCEPTED = Expect(202)
UNAUTHORIZED = Expect(401, "unauthorized")
INVALID_CREDENTIAL = Expect(401, "invalid_token")
INVALID_KEY = Expect(401, "invalid_key")
FORBIDDEN = Expect(403, "forbidden")
SITE_NOT_FOUND = Expect(404, "site_not_found")
TRANSACTION_NOT_FOUND = Expect(404, "transaction_not_found")
ALLOWED = None  # the answer of the call itself (Case.answer)

Answer = Expect | None


class Ingest(StrEnum):
    """The ingest routes' levels, by the site the events are of."""

    PUBLIC_TRACKING = "ingest:public"  # site A: events from anyone
    KEY_REQUIRED = "ingest:key"  # site K: only with a write key of K


class Remote(StrEnum):
    """Levels as a client elsewhere on the network meets them (the main sweep comes from
    this machine, the loopback address)."""

    LOCAL_OR_ADMIN = "local-or-owner, remote"


class Public(StrEnum):
    READ = "site:read, public site"


Level = Access | Ingest | Remote | Public


def refused_without_credential(grants: Mapping[str, Answer]) -> dict[str, Answer]:
    """Whatever the level: no credential → 401 unauthorized; a credential that is not
    valid → 401 (a key: invalid_key; an access token: invalid_token)."""
    base: dict[str, Answer] = {
        ANONYMOUS: UNAUTHORIZED,
        REVOKED_KEY: INVALID_KEY,
        **dict.fromkeys(FORGED, INVALID_CREDENTIAL),
    }
    return {**base, **grants}


_RANK = {VIEWER: 1, ADMIN: 2, OWNER: 3}


def site_role(need: int) -> dict[str, Answer]:
    """A role on site A of at least ``need`` (1 viewer, 2 admin, 3 owner): lower → 403,
    none → 404 (A is private); keys are not accounts → 403."""
    grants: dict[str, Answer] = {
        role: ALLOWED if rank >= need else FORBIDDEN for role, rank in _RANK.items()
    }
    grants |= {OTHER_OWNER: SITE_NOT_FOUND, ROOT: ALLOWED, LOCAL: ALLOWED}
    grants |= dict.fromkeys(KEYS, FORBIDDEN)
    return refused_without_credential(grants)


INSTANCE_OWNER = refused_without_credential(
    {
        **dict.fromkeys((VIEWER, ADMIN, OWNER, OTHER_OWNER), FORBIDDEN),
        ROOT: ALLOWED,
        LOCAL: ALLOWED,
        **dict.fromkeys(KEYS, FORBIDDEN),
    }
)

LEVELS: dict[Level, dict[str, Answer]] = {
    Access.OPEN: dict.fromkeys(EVERYONE, ALLOWED),
    Access.READ: refused_without_credential(
        {
            **dict.fromkeys((VIEWER, ADMIN, OWNER, ROOT, LOCAL, READ_KEY), ALLOWED),
            OTHER_OWNER: SITE_NOT_FOUND,
            WRITE_KEY: FORBIDDEN,  # a key of the site, of the other scope
            K_READ: SITE_NOT_FOUND,
            K_WRITE: SITE_NOT_FOUND,
        }
    ),
    Access.ACCOUNT: refused_without_credential(
        {**dict.fromkeys((*ACCOUNTS, LOCAL), ALLOWED), **dict.fromkeys(KEYS, FORBIDDEN)}
    ),
    Access.VIEWER: site_role(1),
    Access.ADMIN: site_role(2),
    Access.OWNER: site_role(3),
    Access.INSTANCE_OWNER: INSTANCE_OWNER,
    # this machine: /metrics answers without looking at the credential at all
    Access.LOCAL_OR_ADMIN: dict.fromkeys(EVERYONE, ALLOWED),
    Remote.LOCAL_OR_ADMIN: {**INSTANCE_OWNER, LOCAL: INVALID_CREDENTIAL},
    # events of a site that takes public tracking: from anyone; access tokens are not
    # ingest credentials (trackers' headers carry other things) and are not looked at;
    # a key that is sent must be valid, of whatever site or scope
    Ingest.PUBLIC_TRACKING: {**dict.fromkeys(EVERYONE, ALLOWED), REVOKED_KEY: INVALID_KEY},
    Ingest.KEY_REQUIRED: {
        **dict.fromkeys((ANONYMOUS, *ACCOUNTS, *FORGED), UNAUTHORIZED),
        **dict.fromkeys((READ_KEY, WRITE_KEY, K_READ), FORBIDDEN),
        K_WRITE: ALLOWED,
        LOCAL: ALLOWED,
        REVOKED_KEY: INVALID_KEY,
    },
    # a public site's reports: anyone reads them; a credential that is sent must be valid
    Public.READ: {
        **dict.fromkeys(EVERYONE, ALLOWED),
        REVOKED_KEY: INVALID_KEY,
        **dict.fromkeys(FORGED, INVALID_CREDENTIAL),
    },
}


# -- the world the calls are made in -------------------------------------------------------


@dataclass
class World:
    store: str
    app: FastAPI
    settings: Settings
    client: httpx.AsyncClient  # from this machine
    remote: httpx.AsyncClient  # from elsewhere
    credentials: dict[str, dict[str, str]] = field(default_factory=dict)  # headers by caller
    ids: dict[str, str] = field(default_factory=dict)  # account ids by caller
    removable: str = ""  # an account given a role on A before each removal
    promoted: str = ""  # an account PUT with the admin role
    demoted: str = ""  # an account PUT with the viewer role

    @property
    def root(self) -> dict[str, str]:
        return self.credentials[ROOT]

    async def key_id(self, site: str) -> str:
        return str((await new_key(self.client, self.root, site, "read"))["key_id"])

    async def account(self) -> str:
        """An account with no role, made in the store (through the API, each would cost
        an Argon2 hash; the routes that make accounts are in the table themselves)."""
        email = unique_email("target")
        await self.app.state.runtime.store.execute(
            "INSERT INTO account (id, email, password_hash, instance_owner, created_at) "
            "VALUES ($1, $2, $3, false, $4)",
            [f"acc_{uuid.uuid4().hex[:16]}", email, _HASH, datetime.now(UTC)],
        )
        return email

    async def member(self, site: str) -> str:
        await give_role(self.client, self.root, site, self.removable, "viewer")
        return self.removable

    async def refresh_token(self) -> str:
        """A refresh token of the viewer, made in the store (signing in costs Argon2)."""
        store = self.app.state.runtime.store
        return await accounts.issue_refresh(store, self.ids[VIEWER], timedelta(days=1))

    async def invitation(self, email: str) -> str:
        body = {"email": email, "site_id": SITE_A, "role": "viewer"}
        response = await self.client.post("/api/v1/invitations", json=body, headers=self.root)
        assert response.status_code == 201, response.text
        return str(response.json()["invitation"])


async def build_world(store: str, app: FastAPI, settings: Settings, world: World) -> None:
    """Accounts, sites, roles and keys, made through the API by the instance's owner."""
    client = world.client
    root = bearer((await sign_in(client, OWNER_EMAIL, OWNER_PASSWORD))["access_token"])
    world.credentials = {ANONYMOUS: {}, ROOT: root}
    me = await client.get("/api/v1/auth/me", headers=root)
    assert me.status_code == 200, me.text
    world.ids[ROOT] = me.json()["account"]["id"]
    await new_site(client, root, SITE_A)
    await new_site(client, root, SITE_B)
    await new_site(client, root, SITE_C, public=True)
    await new_site(client, root, SITE_K, key_required=True)
    for caller, site, role in (
        (VIEWER, SITE_A, "viewer"),
        (ADMIN, SITE_A, "admin"),
        (OWNER, SITE_A, "owner"),
        (OTHER_OWNER, SITE_B, "owner"),
    ):
        email = unique_email(role)
        world.ids[caller] = (await new_account(client, root, email))["id"]
        await give_role(client, root, site, email, role)
        token = (await sign_in(client, email, PASSWORD))["access_token"]
        world.credentials[caller] = bearer(token)
    for caller, site, scope in (
        (READ_KEY, SITE_A, "read"),
        (WRITE_KEY, SITE_A, "write"),
        (REVOKED_KEY, SITE_A, "write"),
        (K_READ, SITE_K, "read"),
        (K_WRITE, SITE_K, "write"),
    ):
        made = await new_key(client, root, site, scope)
        world.credentials[caller] = bearer(made["key"])
        if caller == REVOKED_KEY:
            gone = await client.delete(f"/api/v1/sites/{site}/keys/{made['key_id']}", headers=root)
            assert gone.status_code == 200, gone.text
    world.removable, world.promoted, world.demoted = [await world.account() for _ in range(3)]
    # access tokens an attacker makes, for accounts with a role on A
    secret = instance_secret_of(settings)
    viewer_token = world.credentials[VIEWER]["Authorization"].removeprefix("Bearer ")
    world.credentials |= {
        EXPIRED: bearer(expired_token(secret, world.ids[OWNER])),
        TAMPERED: bearer(tampered_token(viewer_token, sub=world.ids[OWNER])),
        UNSIGNED: bearer(unsigned_token(world.ids[OWNER])),
        OTHER_SECRET: bearer(wrongly_signed_token(world.ids[OWNER])),
    }
    if store == "embedded":
        found = read_local_credential(settings.data_dir)
        assert found is not None, "the embedded server leaves its local admin credential"
        world.credentials[LOCAL] = bearer(found[1])


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=STORES)
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    store: str = request.param
    data_dir = tmp_path_factory.mktemp(f"authz-{store}")
    owner = {"owner_email": OWNER_EMAIL, "owner_password": OWNER_PASSWORD}
    database = None
    if store == "embedded":
        settings = settings_for(store, data_dir, **owner)  # its secret made in data_dir
    else:
        pg: PostgresServer = request.getfixturevalue("pg_server")
        redis: RedisServer = request.getfixturevalue("redis_server")
        database = f"authz_{uuid.uuid4().hex[:12]}"
        pg.create_database(database)
        redis.flushall()
        settings = settings_for(
            store, data_dir, pg_dsn=pg.dsn(database), redis_url=redis.url,
            secret_key=new_secret_key(), **owner,
        )  # fmt: skip
    try:
        async with (
            running(settings) as app,
            client_of(app, LOOPBACK) as client,
            client_of(app, REMOTE) as remote,
        ):
            made = World(store, app, settings, client, remote)
            await build_world(store, app, settings, made)
            yield made
    finally:
        if database is not None:
            pg.drop_database(database, force=True)


# -- the calls, one or more per route ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    path: str
    params: dict[str, str] | None = None
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


Build = Callable[[World, str], Awaitable[Call]]  # the world, the site the sweep is about


@dataclass(frozen=True, slots=True)
class Case:
    """A call of a route (made anew for each caller) and what it answers when allowed."""

    name: str
    build: Build
    answer: Expect = OK
    level: Level | None = None  # None: its row's
    overrides: Mapping[str, Answer] = field(default_factory=dict)  # by caller


def plain(method: str, path: str, **body: Any) -> Build:
    """``path`` with {site_id} the sweep's site; ``body`` as JSON when given."""

    async def build(_world: World, site: str) -> Call:
        return Call(method, path.format(site_id=site), json=body or None)

    return build


def report(path: str, **params: str) -> Build:
    async def build(_world: World, site: str) -> Call:
        return Call("GET", path, params={"site_id": site, **params})

    return build


def report_posted(path: str) -> Build:
    """A report asked by POST (seed 003's routes): the site in the query, a parameter in
    the JSON body."""

    async def build(_world: World, site: str) -> Call:
        return Call("POST", path, params={"site_id": site}, json={"from_date": "2025-01-01"}
                    if "retention" not in path else {"start_date": "2025-01-01"})  # fmt: skip

    return build


async def token_call(world: World, _site: str) -> Call:
    return Call(
        "POST", "/api/v1/auth/token", json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD}
    )


async def refresh_call(world: World, _site: str) -> Call:
    return Call("POST", "/api/v1/auth/refresh", json={"refresh_token": await world.refresh_token()})


async def logout_call(world: World, _site: str) -> Call:
    return Call("POST", "/api/v1/auth/logout", json={"refresh_token": await world.refresh_token()})


async def register_invited(world: World, _site: str) -> Call:
    email = unique_email("invited")
    body = {"email": email, "password": PASSWORD, "invitation": await world.invitation(email)}
    return Call("POST", "/api/v1/auth/register", json=body)


async def register_uninvited(_world: World, _site: str) -> Call:
    body = {"email": unique_email("uninvited"), "password": PASSWORD}
    return Call("POST", "/api/v1/auth/register", json=body)


async def setup_call(_world: World, _site: str) -> Call:
    body = {"token": "tps_" + "x" * 43, "email": unique_email("setup"), "password": PASSWORD}
    return Call("POST", "/api/v1/auth/setup", json=body)


async def invite_to_site(_world: World, site: str) -> Call:
    body = {"email": unique_email("guest"), "site_id": site, "role": "viewer"}
    return Call("POST", "/api/v1/invitations", json=body)


async def invite_to_instance(_world: World, _site: str) -> Call:
    return Call("POST", "/api/v1/invitations", json={"email": unique_email("guest")})


async def create_site_call(_world: World, _site: str) -> Call:
    return Call("POST", "/api/v1/sites", json={"site_id": f"new-{uuid.uuid4().hex[:12]}"})


def put_member(role: str) -> Build:
    async def build(world: World, site: str) -> Call:
        email = world.promoted if role == "admin" else world.demoted
        return Call("PUT", f"/api/v1/sites/{site}/members/{email}", json={"role": role})

    return build


async def delete_member(world: World, site: str) -> Call:
    return Call("DELETE", f"/api/v1/sites/{site}/members/{await world.member(site)}")


async def delete_key(world: World, site: str) -> Call:
    return Call("DELETE", f"/api/v1/sites/{site}/keys/{await world.key_id(site)}")


# an order database nobody listens on: a sync fails at once (and its run says why)
DEAD_SOURCE = {"url": "mysql://reader:pw@127.0.0.1:1/shop", "timezone": "UTC"}


def with_source(method: str, suffix: str = "") -> Build:
    """A call of the site's order-source routes, the site having a source (set by root)."""

    async def build(world: World, site: str) -> Call:
        path = f"/api/v1/sites/{site}/order-source"
        made = await world.client.put(path, json=DEAD_SOURCE, headers=world.root)
        assert made.status_code in (200, 404), made.text  # 404: a site that is not there
        return Call(method, path + suffix)

    return build


async def create_user(_world: World, _site: str) -> Call:
    body = {"email": unique_email("user"), "password": PASSWORD}
    return Call("POST", "/api/v1/users", json=body)


async def delete_user(world: World, _site: str) -> Call:
    return Call("DELETE", f"/api/v1/users/{await world.account()}")


# ingest: a minimal valid body of each protocol, for one route and one site


def native_body(shape: Shape, site: str) -> bytes:
    event = {
        "site_id": site,
        "event_type": "page_view",
        "event_id": uuid.uuid4().hex,
        "timestamp": datetime.now(UTC).isoformat(),
        "path": "/authz",
    }
    return orjson.dumps(event if shape is Shape.ONE else [event])


BODIES: dict[str, Callable[[Shape, str], bytes]] = {"native": native_body}


def ingest(path: str) -> tuple[Case, ...]:
    """The route's events of site A (public tracking) and of site K (key required)."""
    protocol, route = ROUTES[path]
    body = BODIES.get(protocol.name)
    if body is None:  # a new protocol: say how its minimal valid body looks
        raise LookupError(f"BODIES has no body of the {protocol.name} protocol ({path})")

    def of(site: str) -> Build:
        async def build(_world: World, _site: str) -> Call:
            headers = {"Content-Type": "application/json", "User-Agent": BROWSER_UA}
            return Call("POST", path, content=body(route.shape, site), headers=headers)

        return build

    return (
        Case(f"events of {SITE_A}", of(SITE_A), ACCEPTED, Ingest.PUBLIC_TRACKING),
        Case(f"events of {SITE_K}", of(SITE_K), ACCEPTED, Ingest.KEY_REQUIRED),
    )


@dataclass(frozen=True, slots=True)
class Row:
    """A route: the level it must declare (None: an ingest route, served before routing;
    its cases say the level of each site) and its cases."""

    level: Access | None
    cases: tuple[Case, ...]


def row(level: Access | None, *cases: Case) -> Row:
    return Row(level, cases)


SITE = "/api/v1/sites/{site_id}"

TABLE: dict[tuple[str, str], Row] = {
    ("GET", "/openapi.json"): row(Access.OPEN, Case("document", plain("GET", "/openapi.json"))),
    ("GET", "/docs"): row(Access.OPEN, Case("page", plain("GET", "/docs"))),
    ("GET", "/redoc"): row(Access.OPEN, Case("page", plain("GET", "/redoc"))),
    ("GET", "/docs/assets/{path}"): row(
        Access.OPEN, Case("css", plain("GET", "/docs/assets/swagger-ui.css"))
    ),
    ("GET", "/health"): row(Access.OPEN, Case("health", plain("GET", "/health"))),
    ("GET", "/ready"): row(Access.OPEN, Case("ready", plain("GET", "/ready"))),
    ("GET", "/metrics"): row(Access.LOCAL_OR_ADMIN, Case("metrics", plain("GET", "/metrics"))),
    ("GET", "/setup"): row(Access.OPEN, Case("page", plain("GET", "/setup"))),
    ("GET", "/stats"): row(Access.READ, Case("all time", report("/stats"))),
    ("GET", "/api/v1/stats/overview"): row(
        Access.READ, Case("all time", report("/api/v1/stats/overview"))
    ),
    ("GET", "/api/v1/stats/timeseries"): row(
        Access.READ, Case("days", report("/api/v1/stats/timeseries"))
    ),
    ("GET", "/api/v1/stats/breakdown"): row(
        Access.READ, Case("paths", report("/api/v1/stats/breakdown", dimension="path"))
    ),
    ("GET", "/api/v1/stats/realtime"): row(
        Access.READ, Case("now", report("/api/v1/stats/realtime"))
    ),
    **{
        ("GET", path): row(Access.READ, Case("all time", report(path)))
        for path in (
            "/api/v1/commerce/summary",
            "/api/v1/commerce/carts",
            "/api/v1/commerce/products",
            "/api/v1/commerce/transactions",
            "/metrics/pageviews/total",
            "/metrics/users-sessions",
            "/metrics/sessions/by-channel",
            "/metrics/sessions/by-device",
            "/metrics/pageviews/by-pagetype",
            "/metrics/transactions/summary",
            "/metrics/transactions/aov",
            "/metrics/cart/avg",
            "/api/v1/product/active-users",
            "/api/v1/product/top-events",
            "/api/v1/product/retention",
            "/api/v1/product/lifecycle",
            "/api/v1/product/stickiness",
            "/api/stats/dau",
            "/api/stats/top-events",
            "/api/stats/retention",
            "/api/admin/analytics/summary",
            "/api/admin/analytics/top-items",
            "/api/admin/analytics/hourly",
            "/api/admin/analytics/forecast/daily",
            "/api/admin/analytics/forecast/hourly",
        )
    },
    ("GET", "/api/v1/forecast"): row(
        Access.READ,
        Case(
            "no run yet",
            report("/api/v1/forecast", metric="revenue"),
            Expect(404, "forecast_not_found"),
        ),
    ),
    ("GET", "/api/v1/product/funnel"): row(
        Access.READ, Case("two steps", report("/api/v1/product/funnel", steps="page_view,signup"))
    ),
    **{
        ("POST", path): row(Access.READ, Case("since a day", report_posted(path)))
        for path in ("/api/stats/dau", "/api/stats/top-events", "/api/stats/retention")
    },
    **{
        ("GET", path): row(
            Access.READ,
            Case("unknown", report(path.format(transaction_id="none")), TRANSACTION_NOT_FOUND),
        )
        for path in (
            "/api/v1/commerce/transactions/{transaction_id}",
            "/transactions/{transaction_id}/items",
        )
    },
    ("POST", "/api/v1/auth/token"): row(Access.OPEN, Case("right password", token_call)),
    ("POST", "/api/v1/auth/refresh"): row(Access.OPEN, Case("unspent token", refresh_call)),
    ("POST", "/api/v1/auth/logout"): row(Access.OPEN, Case("unspent token", logout_call)),
    ("POST", "/api/v1/auth/register"): row(
        Access.OPEN,
        Case("invited", register_invited, CREATED),
        Case("uninvited, sign-up off", register_uninvited, Expect(403, "signup_closed")),
    ),
    ("POST", "/api/v1/auth/setup"): row(
        Access.OPEN, Case("instance has an owner", setup_call, Expect(409, "already_set_up"))
    ),
    ("GET", "/api/v1/auth/me"): row(Access.ACCOUNT, Case("me", plain("GET", "/api/v1/auth/me"))),
    ("POST", "/api/v1/invitations"): row(
        Access.ACCOUNT,
        # to a role on a site: its admins invite (viewers)
        Case(
            "to A",
            invite_to_site,
            CREATED,
            overrides={VIEWER: FORBIDDEN, OTHER_OWNER: SITE_NOT_FOUND},
        ),
        # to no site: owners of the instance only
        Case(
            "to the instance",
            invite_to_instance,
            CREATED,
            overrides=dict.fromkeys((VIEWER, ADMIN, OWNER, OTHER_OWNER), FORBIDDEN),
        ),
    ),
    ("GET", "/api/v1/sites"): row(Access.ACCOUNT, Case("list", plain("GET", "/api/v1/sites"))),
    ("POST", "/api/v1/sites"): row(Access.ACCOUNT, Case("new site", create_site_call, CREATED)),
    ("GET", SITE): row(Access.VIEWER, Case("settings", plain("GET", SITE))),
    ("PATCH", SITE): row(Access.ADMIN, Case("rename", plain("PATCH", SITE, name="Site A"))),
    ("GET", SITE + "/members"): row(Access.ADMIN, Case("list", plain("GET", SITE + "/members"))),
    ("PUT", SITE + "/members/{email}"): row(
        Access.ADMIN,
        Case("viewer", put_member("viewer")),
        Case("admin", put_member("admin"), overrides={ADMIN: FORBIDDEN}),  # owners only
    ),
    ("DELETE", SITE + "/members/{email}"): row(Access.ADMIN, Case("a viewer", delete_member)),
    ("POST", SITE + "/keys"): row(
        Access.ADMIN, Case("read key", plain("POST", SITE + "/keys", scope="read"), CREATED)
    ),
    ("GET", SITE + "/keys"): row(Access.ADMIN, Case("list", plain("GET", SITE + "/keys"))),
    ("DELETE", SITE + "/keys/{key_id}"): row(Access.ADMIN, Case("a key", delete_key)),
    ("PUT", SITE + "/order-source"): row(
        Access.ADMIN, Case("connect", plain("PUT", SITE + "/order-source", **DEAD_SOURCE))
    ),
    ("GET", SITE + "/order-source"): row(Access.ADMIN, Case("show", with_source("GET"))),
    ("DELETE", SITE + "/order-source"): row(Access.ADMIN, Case("forget", with_source("DELETE"))),
    ("POST", SITE + "/order-source/sync"): row(
        Access.ADMIN, Case("sync (fails: nobody listens)", with_source("POST", "/sync"))
    ),
    ("GET", SITE + "/runs"): row(Access.ADMIN, Case("list", plain("GET", SITE + "/runs"))),
    ("GET", "/api/v1/users"): row(
        Access.INSTANCE_OWNER, Case("list", plain("GET", "/api/v1/users"))
    ),
    ("POST", "/api/v1/users"): row(
        Access.INSTANCE_OWNER, Case("new account", create_user, CREATED)
    ),
    ("DELETE", "/api/v1/users/{email}"): row(
        Access.INSTANCE_OWNER, Case("an account", delete_user)
    ),
    **{("POST", path): row(None, *ingest(path)) for path in ROUTES},
}


def routes_of(app: FastAPI) -> dict[tuple[str, str], Access | None]:
    """(method, path) of every route of the app, with the level it declares; a mount as
    GET of its path; the ingest routes (POST, served before routing) as None."""
    found: dict[tuple[str, str], Access | None] = {}
    for route in every_route(app.routes):
        if isinstance(route, Mount):
            found["GET", f"{route.path}/{{path}}"] = access_of(route)
        elif isinstance(route, APIRoute | Route):
            methods = set(route.methods or ()) - {"HEAD"} or {"HEAD"}
            for method in methods:
                found[method, route.path] = access_of(route)
        else:
            found["?", repr(route)] = None
    for path in ROUTES:
        assert ("POST", path) not in found, f"{path} is an ingest route and a routed one"
        found["POST", path] = None
    return found


def table_problems(app: FastAPI) -> list[str]:
    """Routes without a row, rows without a route, and routes that declare another level
    than their row says."""
    routes = routes_of(app)
    problems = [f"{m} {path}: no row in TABLE" for m, path in routes if (m, path) not in TABLE]
    problems += [f"{m} {path}: a row of no route" for m, path in TABLE if (m, path) not in routes]
    for key, declared in routes.items():
        found = TABLE.get(key)
        if found is None or declared == found.level:
            continue
        if declared is None and key == ("GET", app.openapi_url):
            continue  # FastAPI's own document (api/access.py: undeclared)
        problems.append(f"{key[0]} {key[1]}: declares {declared}, its row says {found.level}")
    return problems


def mismatch(response: httpx.Response, want: Expect) -> str | None:
    got = response.status_code
    if got != want.status:
        return f"{got} (want {want}): {response.text[:160]}"
    if want.code is None:
        return None
    shape = error_shape_problems(got, response.content, response.headers.get("x-request-id"))
    if shape:
        return "; ".join(shape)
    code = response.json()["error"]["code"]
    return None if code == want.code else f"{got} {code} (want {want})"


async def sweep(
    world: World,
    client: httpx.AsyncClient,
    site: str,
    levels: Mapping[Level, Level],
    extra: Mapping[str, str] | None = None,
) -> tuple[int, list[str]]:
    """Every case of every route whose level is in ``levels`` (read as the level it maps
    to), by every caller: (calls made, what answered otherwise)."""
    problems, calls = table_problems(world.app), 0
    for key in routes_of(world.app):
        found = TABLE.get(key)
        if found is None:
            continue  # table_problems tells
        for case in found.cases:
            level = case.level or found.level
            if level is None or level not in levels:
                continue
            table = LEVELS[levels[level]]
            for caller, headers in world.credentials.items():
                want = (
                    case.overrides.get(caller, table[caller]) if site == SITE_A else table[caller]
                )
                want = want or case.answer
                call = await case.build(world, site)
                response = await client.request(
                    call.method, call.path, params=call.params, json=call.json,
                    content=call.content, headers={**call.headers, **(extra or {}), **headers},
                )  # fmt: skip
                calls += 1
                wrong = mismatch(response, want)
                if wrong is not None:
                    problems.append(f"{caller:>22} | {call.method} {key[1]} [{case.name}]: {wrong}")
    return calls, problems


def report_of(world: World, calls: int, problems: list[str]) -> str:
    return f"{world.store}: {len(problems)} of {calls} calls answered otherwise:\n" + "\n".join(
        problems
    )


# -- the tests ----------------------------------------------------------------------------


async def test_every_route_has_a_row_and_every_row_a_route(tmp_path: Path) -> None:
    problems = table_problems(create_app(Settings(data_dir=tmp_path)))
    assert not problems, "\n".join(problems)


async def test_every_route_by_every_caller_on_a_private_site(world: World) -> None:
    levels: dict[Level, Level] = {level: level for level in (*Access, *Ingest)}
    calls, problems = await sweep(world, world.client, SITE_A, levels)
    assert calls > 400
    assert not problems, report_of(world, calls, problems)


async def test_a_public_sites_reports_are_read_by_anyone_with_no_or_a_valid_credential(
    world: World,
) -> None:
    calls, problems = await sweep(world, world.client, SITE_C, {Access.READ: Public.READ})
    assert calls >= 5 * len(world.credentials)
    assert not problems, report_of(world, calls, problems)


async def test_metrics_from_elsewhere_need_an_owner_of_the_instance(world: World) -> None:
    remote: dict[Level, Level] = {Access.LOCAL_OR_ADMIN: Remote.LOCAL_OR_ADMIN}
    calls, problems = await sweep(world, world.remote, SITE_A, remote)
    # passed on by a proxy on this machine: not this machine's own request
    proxied = {"X-Forwarded-For": "203.0.113.7"}
    more, also = await sweep(world, world.client, SITE_A, remote, proxied)
    assert calls == more >= len(world.credentials)
    assert not problems + also, report_of(world, calls + more, problems + also)


async def test_keys_are_taken_in_every_header_trackers_use(world: World) -> None:
    read = world.credentials[READ_KEY]["Authorization"].removeprefix("Bearer ")
    write = world.credentials[K_WRITE]["Authorization"].removeprefix("Bearer ")
    overview = {"site_id": SITE_A}
    for headers in ({"X-Api-Key": read}, basic(read), basic("", read)):
        response = await world.client.get(
            "/api/v1/stats/overview", params=overview, headers=headers
        )
        assert response.status_code == 200, (headers, response.text)
    body = native_body(Shape.ONE, SITE_K)
    for headers in ({"X-Api-Key": write}, basic(write), basic("", write), bearer(write)):
        response = await world.client.post("/event", content=body, headers=headers)
        assert response.status_code == 202, (headers, response.text)
        body = native_body(Shape.ONE, SITE_K)
    refused = await world.client.post("/event", content=body, headers={"X-Api-Key": read})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")


async def test_an_unknown_site_is_not_told_apart_from_a_private_one(world: World) -> None:
    """Anonymous: 401 either way; signed in without a role: 404 either way."""
    for site in (SITE_A, "no-such-site"):
        params = {"site_id": site}
        anonymous = await world.client.get("/api/v1/stats/overview", params=params)
        assert mismatch(anonymous, UNAUTHORIZED) is None, anonymous.text
        stranger = world.credentials[OTHER_OWNER]
        answer = await world.client.get("/api/v1/stats/overview", params=params, headers=stranger)
        assert mismatch(answer, SITE_NOT_FOUND) is None, answer.text
        settings = await world.client.get(f"/api/v1/sites/{site}", headers=stranger)
        assert mismatch(settings, SITE_NOT_FOUND) is None, settings.text
