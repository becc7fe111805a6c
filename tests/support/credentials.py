"""The credential the suite's servers take (docs/security.md).

Reports, the account routes and /metrics from another machine need a credential. Every
server the suite starts (support/procs.py; the benchmarks too, bench/procs.py) has one
owner of the instance, made from ``TAPIOCA_OWNER_EMAIL`` / ``TAPIOCA_OWNER_PASSWORD``
(``owner_env``); once it is ready the owner signs in through the API, like any client,
and the tests send ``Authorization: Bearer <access token>``. Production needs
``TAPIOCA_SECRET_KEY``: the suite's is ``SECRET_KEY``. Apps run in this process with
their lifespan have their helpers in support/accounts.py; an app made of some routers
only gets the access checks from ``install_gate``.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
from fastapi import FastAPI

from support.accounts import bearer
from support.rate_limits import LIMITS_OFF
from tapioca.auth import accounts
from tapioca.auth.access import Gate
from tapioca.auth.keys import KeyRing
from tapioca.auth.ratelimit import RateLimits
from tapioca.auth.tokens import TokenSigner
from tapioca.config import Settings
from tapioca.sites.catalog import SiteCatalog
from tapioca.storage.base import Store

SECRET_KEY = "tapioca-test-secret-key-0123456789abcdefghijklmn"  # 48 characters
OWNER_EMAIL = "test-owner@example.com"
OWNER_PASSWORD = "the test owner's password"
TOKEN_MINUTES = 600  # longer than any test: a token never expires in the middle of one
SIGN_IN = "/api/v1/auth/token"


def owner_env() -> dict[str, str]:
    """The environment of a server the suite starts: the test owner, and access tokens
    that outlive the test. Production servers get ``production_env()`` as well."""
    return {
        "TAPIOCA_OWNER_EMAIL": OWNER_EMAIL,
        "TAPIOCA_OWNER_PASSWORD": OWNER_PASSWORD,
        "TAPIOCA_ACCESS_TOKEN_MINUTES": str(TOKEN_MINUTES),
    }


def production_env() -> dict[str, str]:
    """What production mode needs beyond the embedded store's settings."""
    return {"TAPIOCA_SECRET_KEY": SECRET_KEY}


def signed_in(
    client: httpx.Client, email: str = OWNER_EMAIL, password: str = OWNER_PASSWORD
) -> dict[str, str]:
    """The headers that carry the access token of ``email`` (POST /api/v1/auth/token)."""
    response = client.post(SIGN_IN, json={"email": email, "password": password})
    assert response.status_code == 200, f"signing in as {email}: {response.text[:500]}"
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return bearer(token)


async def install_gate(app: FastAPI, store: Store) -> dict[str, str]:
    """For an app made of some routers only (not create_app): the access checks the
    report routes need, on ``store`` as create_app builds them (app.state.gate, and
    app.state.limits with every limit off), and the headers of the test owner's access
    token, the owner being made on ``store`` when no account exists yet, as a starting
    server does."""
    signer = TokenSigner(SECRET_KEY.encode(), timedelta(minutes=TOKEN_MINUTES))
    app.state.gate = Gate(store, signer, KeyRing(store), SiteCatalog(store))
    app.state.limits = RateLimits.from_settings(Settings.model_validate(LIMITS_OFF))
    await accounts.bootstrap_owner(store, OWNER_EMAIL, OWNER_PASSWORD)
    account = await accounts.sign_in(store, OWNER_EMAIL, OWNER_PASSWORD)
    assert account is not None and account.instance_owner, "the test owner signs in"
    return bearer(signer.issue(account.id).token)
